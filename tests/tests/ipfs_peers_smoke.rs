//! Checks the IPFS test peers without dlm's code: the Helia node's ready line, its trustless gateway (a raw
//! block whose SHA-256 matches its CID, a CAR with a valid header and verifiable blocks, a path CAR, the IPNS
//! record, a corrupting gateway, the request log), Kubo's CIDv0, and bitswap both ways between Helia and Kubo.
//!
//! Each test skips when a peer is missing (fails under `DLM_REQUIRE_PEERS=1`). Timeouts bound hangs only;
//! nothing asserts a speed.

use std::fs;
use std::time::Duration;

use dlm_tests::http1;
use dlm_tests::ipfs::{helia_fetch, kubo_fetch};
use dlm_tests::runtime::e2e;
use dlm_tests::{AddSpec, HeliaConfig, HeliaNode, KuboNode, sha256_file, write_random_file};
use sha2::{Digest, Sha256};

const TIMEOUT: Duration = Duration::from_secs(60);

const RAW: u64 = 0x55;
const DAG_PB: u64 = 0x70;
const SHA2_256: u64 = 0x12;

/// A file of 1 MiB + 5 bytes (five 256 KiB chunks, the last short) and a small tree `tree/{a.txt, sub/b.bin}`.
fn fixtures(dir: &std::path::Path) -> String {
    let sha256 = write_random_file(dir, "f.bin", (1 << 20) + 5, 41).unwrap();
    fs::create_dir_all(dir.join("tree/sub")).unwrap();
    fs::write(dir.join("tree/a.txt"), b"hello from a\n").unwrap();
    write_random_file(&dir.join("tree/sub"), "b.bin", 300_000, 42).unwrap();
    sha256
}

#[test]
fn helia_gateway_serves_verifiable_raw_blocks_cars_and_ipns() {
    let data = tempfile::tempdir().unwrap();
    fixtures(data.path());
    let config = HeliaConfig::default()
        .with_gateway()
        .with_add(AddSpec::new(data.path().join("f.bin")))
        .with_add(AddSpec::new(data.path().join("tree")))
        .with_ipns(true);
    let Some(node) = HeliaNode::start(&config) else {
        return;
    };

    assert!(node.peer_id.starts_with("12D3KooW"), "{}", node.peer_id);
    assert!(!node.multiaddrs.is_empty());
    for ma in &node.multiaddrs {
        assert!(ma.starts_with("/ip4/127.0.0.1/tcp/"), "{ma}");
        assert!(ma.ends_with(&format!("/p2p/{}", node.peer_id)), "{ma}");
    }
    assert_eq!(node.gateways.len(), 1);
    assert!(node.gateway(0).starts_with("http://127.0.0.1:"));
    assert_eq!(node.added.len(), 2);
    assert_eq!(node.added[0].path, data.path().join("f.bin"));
    let file_cid = Cid::parse(node.cid(0));
    let tree_cid = Cid::parse(node.cid(1));
    assert!(node.cid(0).starts_with("bafybei"), "{}", node.cid(0));
    assert_eq!((file_cid.codec, tree_cid.codec), (DAG_PB, DAG_PB));
    let ipns = node.ipns.clone().expect("ipns name");
    assert!(ipns.name.starts_with("k51"), "{}", ipns.name);
    assert_eq!(ipns.peer_id_name, node.peer_id);
    assert_eq!(ipns.value, format!("/ipfs/{}", node.cid(0)));

    let gateway = node.gateway_addr(0);
    e2e(TIMEOUT, async {
        // One raw block: the root, whose SHA-256 is the CID's digest.
        let cid = node.cid(0);
        let raw = http1::get(gateway, &format!("/ipfs/{cid}?format=raw"), &[])
            .await
            .unwrap();
        assert_eq!(raw.status, 200);
        assert_eq!(raw.header("content-type"), Some("application/vnd.ipld.raw"));
        assert_eq!(Sha256::digest(&raw.body).as_slice(), file_cid.digest);

        // The same by Accept header.
        let by_accept = http1::get(
            gateway,
            &format!("/ipfs/{cid}"),
            &[("Accept", "application/vnd.ipld.raw")],
        )
        .await
        .unwrap();
        assert_eq!((by_accept.status, &by_accept.body), (200, &raw.body));

        // The whole DAG as a CAR: header with the root, then the root block first, then the five leaves in order.
        let car = http1::get(gateway, &format!("/ipfs/{cid}?format=car"), &[])
            .await
            .unwrap();
        assert_eq!(car.status, 200);
        assert_eq!(
            car.header("content-type"),
            Some("application/vnd.ipld.car; version=1; order=dfs; dups=n")
        );
        let blocks = check_car(&car.body, &file_cid);
        assert_eq!(blocks.len(), 6, "root + 5 leaves");
        assert_eq!(blocks[0].cid, file_cid.bytes);
        assert!(
            blocks[1..]
                .iter()
                .all(|b| Cid::from_bytes(&b.cid).codec == RAW)
        );

        // A path inside the directory with dag-scope=block: the directory, sub/, and b.bin's root.
        let tree = node.cid(1);
        let path_car = http1::get(
            gateway,
            &format!("/ipfs/{tree}/sub/b.bin?format=car&dag-scope=block"),
            &[],
        )
        .await
        .unwrap();
        assert_eq!(path_car.status, 200);
        let blocks = check_car(&path_car.body, &tree_cid);
        assert_eq!(blocks.len(), 3, "tree, sub, b.bin's root");
        assert_eq!(blocks[0].cid, tree_cid.bytes);

        // entity-bytes: the last byte needs the root and the last leaf only.
        let tail = http1::get(
            gateway,
            &format!("/ipfs/{cid}?format=car&entity-bytes=-1:*"),
            &[],
        )
        .await
        .unwrap();
        assert_eq!(tail.status, 200);
        assert_eq!(check_car(&tail.body, &file_cid).len(), 2);

        // The IPNS record, by name.
        let record = http1::get(
            gateway,
            &format!("/ipns/{}?format=ipns-record", ipns.name),
            &[],
        )
        .await
        .unwrap();
        assert_eq!(record.status, 200);
        assert_eq!(
            record.header("content-type"),
            Some("application/vnd.ipfs.ipns-record")
        );
        assert!(!record.body.is_empty());

        // Unknown block: a quick 404 (offline blockstore), not a hang.
        let missing = http1::get(
            gateway,
            "/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy?format=raw",
            &[],
        )
        .await
        .unwrap();
        assert_eq!(missing.status, 404);
    });

    // Every request above was logged.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while node.gateway_request_count(node.gateway(0)) < 7 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let requests = node.gateway_requests();
    assert_eq!(requests.len(), 7, "{requests:#?}");
    assert!(requests.iter().any(|r| r.status == 404));
    assert!(
        requests
            .iter()
            .all(|r| r.gateway == node.gateway(0) && r.method == "GET")
    );
}

#[test]
fn helia_corrupting_gateway_flips_only_the_chosen_blocks() {
    let data = tempfile::tempdir().unwrap();
    fixtures(data.path());
    let spec = AddSpec::new(data.path().join("f.bin"));
    // Learn the root CID first (the same content and options give the same CID in the second node).
    let Some(first) = HeliaNode::start(&HeliaConfig::default().with_add(spec.clone())) else {
        return;
    };
    let root = first.cid(0).to_owned();
    drop(first);
    let config = HeliaConfig::default()
        .with_add(spec)
        .with_gateway()
        .with_corrupt_gateway([root.clone()]);
    let Some(node) = HeliaNode::start(&config) else {
        return;
    };
    let root_cid = Cid::parse(&root);
    let (good, bad) = (node.gateway_addr(0), node.gateway_addr(1));
    e2e(TIMEOUT, async {
        let path = format!("/ipfs/{root}?format=raw");
        let good_raw = http1::get(good, &path, &[]).await.unwrap();
        let bad_raw = http1::get(bad, &path, &[]).await.unwrap();
        assert_eq!((good_raw.status, bad_raw.status), (200, 200));
        assert_eq!(Sha256::digest(&good_raw.body).as_slice(), root_cid.digest);
        assert_eq!(good_raw.body.len(), bad_raw.body.len());
        assert_ne!(Sha256::digest(&bad_raw.body).as_slice(), root_cid.digest);

        // Inside a CAR the root block is corrupted too; the leaves are intact.
        let car = http1::get(bad, &format!("/ipfs/{root}?format=car"), &[])
            .await
            .unwrap();
        let blocks = parse_car(&car.body);
        let intact: Vec<bool> = blocks.iter().map(Block::is_intact).collect();
        assert_eq!(intact, [false, true, true, true, true, true]);
    });
}

#[test]
fn kubo_adds_cidv0_and_trades_blocks_with_helia() {
    let data = tempfile::tempdir().unwrap();
    let sha256 = fixtures(data.path());
    let Some(kubo) = KuboNode::start(data.path(), &["f.bin"]) else {
        return;
    };
    assert!(kubo.cid(0).starts_with("Qm"), "{}", kubo.cid(0));
    assert_eq!(kubo.added[0].path, data.path().join("f.bin"));
    assert!(kubo.multiaddr().starts_with("/ip4/127.0.0.1/tcp/"));
    assert!(
        kubo.multiaddr()
            .ends_with(&format!("/p2p/{}", kubo.peer_id))
    );

    // Helia fetches Kubo's CIDv0 file over bitswap.
    let out = data.path().join("from-kubo.bin");
    let Some(report) = helia_fetch(kubo.multiaddr(), kubo.cid(0), &out) else {
        return;
    };
    assert_eq!(report.bytes, (1 << 20) + 5);
    assert_eq!(sha256_file(&out).unwrap(), sha256);

    // Kubo fetches Helia's CIDv1 (raw leaves) file over bitswap.
    let Some(helia) =
        HeliaNode::start(&HeliaConfig::default().with_add(AddSpec::new(data.path().join("f.bin"))))
    else {
        return;
    };
    let out = data.path().join("from-helia.bin");
    let report = kubo_fetch(helia.multiaddr(), helia.cid(0), &out).expect("kubo is installed");
    assert_eq!(report.bytes, (1 << 20) + 5);
    assert_eq!(sha256_file(&out).unwrap(), sha256);

    // Helia's CIDv0 import with dag-pb leaves gives Kubo's CID: the same UnixFS DAG.
    let Some(helia_v0) = HeliaNode::start(
        &HeliaConfig::default().with_add(AddSpec::new(data.path().join("f.bin")).cid_v0()),
    ) else {
        return;
    };
    assert_eq!(helia_v0.cid(0), kubo.cid(0));
}

// ---- just enough CID and CAR decoding to check the peers independently of dlm-ipfs ----

/// A CIDv1 (from its base32 string or its bytes) or a CIDv0 (from bytes).
#[derive(Debug)]
struct Cid {
    bytes: Vec<u8>,
    codec: u64,
    hash_code: u64,
    digest: Vec<u8>,
}

impl Cid {
    /// Parses a base32 (`b…`) CIDv1 string.
    fn parse(text: &str) -> Self {
        let body = text
            .strip_prefix('b')
            .unwrap_or_else(|| panic!("not base32: {text}"));
        Self::from_bytes(&base32_decode(body))
    }

    /// Parses the CID at the start of `bytes` (only its own bytes are kept).
    fn from_bytes(bytes: &[u8]) -> Self {
        if bytes.starts_with(&[0x12, 0x20]) {
            return Self {
                bytes: bytes[..34].to_vec(),
                codec: DAG_PB,
                hash_code: SHA2_256,
                digest: bytes[2..34].to_vec(),
            };
        }
        let mut at = 0;
        assert_eq!(varint(bytes, &mut at), 1, "CID version");
        let codec = varint(bytes, &mut at);
        let hash_code = varint(bytes, &mut at);
        let len = usize::try_from(varint(bytes, &mut at)).unwrap();
        let digest = bytes[at..at + len].to_vec();
        Self {
            bytes: bytes[..at + len].to_vec(),
            codec,
            hash_code,
            digest,
        }
    }
}

#[derive(Debug)]
struct Block {
    cid: Vec<u8>,
    data: Vec<u8>,
}

impl Block {
    fn is_intact(&self) -> bool {
        let cid = Cid::from_bytes(&self.cid);
        assert_eq!(cid.hash_code, SHA2_256);
        Sha256::digest(&self.data).as_slice() == cid.digest
    }
}

/// Checks a CARv1: the header is a DAG-CBOR map `{roots: [root], version: 1}`, and every block's data matches its
/// CID. Returns the blocks.
fn check_car(car: &[u8], root: &Cid) -> Vec<Block> {
    let blocks = parse_car(car);
    for block in &blocks {
        assert!(
            block.is_intact(),
            "block {:?} does not match its CID",
            block.cid
        );
    }
    let mut at = 0;
    let header_len = usize::try_from(varint(car, &mut at)).unwrap();
    let header = &car[at..at + header_len];
    // map(2) { "roots": [tag 42 (bytes: 0x00 ++ cid)], "version": 1 }
    let mut expected = vec![0xa2, 0x65];
    expected.extend_from_slice(b"roots");
    expected.extend_from_slice(&[
        0x81,
        0xd8,
        0x2a,
        0x58,
        u8::try_from(root.bytes.len() + 1).unwrap(),
        0x00,
    ]);
    expected.extend_from_slice(&root.bytes);
    expected.push(0x67);
    expected.extend_from_slice(b"version");
    expected.push(0x01);
    assert_eq!(header, expected.as_slice(), "CAR header");
    blocks
}

/// The blocks of a CARv1 (header skipped).
fn parse_car(car: &[u8]) -> Vec<Block> {
    let mut at = 0;
    let header_len = usize::try_from(varint(car, &mut at)).unwrap();
    at += header_len;
    let mut blocks = Vec::new();
    while at < car.len() {
        let len = usize::try_from(varint(car, &mut at)).unwrap();
        let section = &car[at..at + len];
        let cid = Cid::from_bytes(section);
        blocks.push(Block {
            data: section[cid.bytes.len()..].to_vec(),
            cid: cid.bytes,
        });
        at += len;
    }
    blocks
}

fn varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = bytes[*at];
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
    }
    panic!("varint too long")
}

/// RFC 4648 base32, lowercase, no padding (multibase `b`).
fn base32_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let value = match c {
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("bad base32 character {:?}", c as char),
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}
