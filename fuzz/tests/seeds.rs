//! The hand-made seeds are inputs the parsers accept: a seed that fails to
//! parse would start the fuzzer from an error path only. Inputs a fuzzer run
//! found (`found-*`, often ones a fix now refuses) are left out.

use std::path::Path;

fn seed(target: &str, name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("found-")
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn control_files_decode() {
    for (name, data) in seeds("control_file") {
        dlm_core::ControlFile::decode(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn ipns_records_verify() {
    for (name, data) in seeds("ipns")
        .into_iter()
        .filter(|(n, _)| n.starts_with("v2-record"))
    {
        let at = data.iter().position(|&b| b == b'\n').unwrap();
        let key = std::str::from_utf8(&data[..at]).unwrap();
        let now = std::time::SystemTime::now();
        let r = dlm_ipfs::ipns::verify_record(key, &data[at + 1..], now)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.value.starts_with("/ip"), "{name}: {r:?}");
    }
}

#[test]
fn car_files_yield_verified_blocks() {
    use futures::FutureExt;
    for (name, data) in seeds("car") {
        let stream = futures::stream::iter([Ok(bytes::Bytes::from(data))]);
        let mut r = dlm_ipfs::car::CarReader::new(stream)
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!(r.roots().len(), 1, "{name}");
        while let Some((cid, block)) = r.next_block().now_or_never().unwrap().unwrap() {
            dlm_ipfs::block::verify(&cid, &block, "seed").unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn dag_pb_blocks_decode_as_unixfs() {
    for (name, data) in seeds("dag_pb") {
        let cid = dlm_ipfs::block::sha256_cid(dlm_ipfs::block::DAG_PB, &data);
        dlm_ipfs::unixfs::Node::decode(&cid, data.into()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn bitswap_streams_read_to_the_end() {
    for (name, data) in seeds("bitswap") {
        let (messages, error) = dlm_ipfs::fuzzing::bitswap_messages(&data);
        assert!(error.is_none() && !messages.is_empty(), "{name}: {error:?}");
    }
    let (m, _) = dlm_ipfs::fuzzing::bitswap_messages(&seed("bitswap", "payload-block"));
    assert_eq!(m[0].blocks.len(), 1);
}

#[test]
fn s3_bodies_parse() {
    for (name, data) in seeds("s3_list") {
        dlm_s3::fuzzing::list_page(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, data) in seeds("s3_error") {
        assert!(dlm_s3::fuzzing::error_document(&data).is_some(), "{name}");
    }
}

#[test]
fn udp_tracker_replies_decode() {
    assert!(
        dlm_bittorrent::tracker::parse_connect_reply(&seed("tracker_udp", "connect")).is_some()
    );
    let r =
        dlm_bittorrent::tracker::parse_announce_reply(&seed("tracker_udp", "announce-ipv4"), false);
    assert_eq!(r.map(|r| r.peers.len()), Some(2));
}

#[test]
fn ftp_listings_list_entries() {
    for (name, data) in seeds("ftp_listing") {
        let text = String::from_utf8_lossy(&data[1..]);
        assert!(
            !dlm_ftp::fuzzing::listing(&text, data[0] & 1 == 1).is_empty(),
            "{name}"
        );
    }
}

#[test]
fn header_values_parse() {
    for (name, data) in seeds("content_range") {
        assert!(dlm_http::fuzzing::content_range(&data).is_some(), "{name}");
    }
    for (name, data) in seeds("content_disposition") {
        let v = std::str::from_utf8(&data).unwrap();
        assert!(
            dlm_http::content_disposition::file_name(v).is_some(),
            "{name}"
        );
    }
    for (name, data) in seeds("digest") {
        let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        let n = dlm_http::fuzzing::published_digests("repr-digest", &lines).len();
        assert!(n > 0, "{name}");
    }
}

/// The MSE seeds made for the fuzz target's fixed keys complete the
/// handshake (so the fuzzer starts past the hashes), with the policy's
/// crypto method.
#[test]
fn mse_seeds_complete_the_handshake() {
    use dlm_bittorrent::InfoHash;
    use dlm_bittorrent::mse::{Encryption, dh::KeyPair, handshake::respond_keyed};
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for (name, policy, rc4) in [
        ("prefer-both-ia", Encryption::Prefer, false),
        ("require-rc4-pads", Encryption::Require, true),
    ] {
        let data = seed("mse_respond", name);
        let mut input = KeyPair::from_private(&[3; 20]).public().to_vec();
        input.extend_from_slice(&data[1..]);
        let r = rt.block_on(respond_keyed(
            tokio::io::join(&input[..], tokio::io::sink()),
            &[InfoHash([0xAB; 20])],
            policy,
            Some(KeyPair::from_private(&[4; 20])),
        ));
        let (s, _) = r.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.is_encrypted(), rc4, "{name}");
    }
}
