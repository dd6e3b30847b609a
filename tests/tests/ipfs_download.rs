//! `dlm get ipfs://…` against real IPFS implementations on 127.0.0.1: a Helia node (js) serving bitswap and
//! trustless gateways, and Kubo (go, v0.22 as a library) serving bitswap. Files by CIDv1 and CIDv0, balanced
//! and trickle DAGs, raw and dag-pb leaves, paths through plain and HAMT-sharded directories, whole
//! directories, IPNS names, a gateway that corrupts blocks (dropped, the other gateway used), resume after
//! SIGKILL, and malformed addresses. Every download is compared with the original by SHA-256.
//!
//! Each test skips when a peer is missing (fails under `DLM_REQUIRE_PEERS=1`). Timeouts bound hangs only;
//! nothing asserts a speed.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use dlm_tests::ipfs::Layout;
use dlm_tests::{
    AddSpec, HeliaConfig, HeliaNode, KuboNode, dlm_command, dlm_kill_and_resume, sha256_file, walk,
    write_random_file,
};
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// Polls `check` every 50 ms for up to 5 s.
fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..100 {
        if let Some(v) = check() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Runs `dlm` with `args`.
fn dlm(args: &[&str]) -> Output {
    dlm_command()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dlm")
}

/// Runs `dlm` and checks that it succeeded.
fn dlm_ok(args: &[&str]) -> Output {
    let out = dlm(args);
    assert!(
        out.status.success(),
        "dlm {args:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_file_by_cid_over_the_gateway_car_and_over_bitswap_from_helia() {
    let data = tempfile::tempdir().unwrap();
    let sha = write_random_file(data.path(), "big.bin", 64 * MIB, 1).unwrap();
    let config = HeliaConfig::default()
        .with_gateway()
        .with_add(AddSpec::new(data.path().join("big.bin")));
    let Some(node) = HeliaNode::start(&config) else {
        return;
    };
    let cid = node.cid(0).to_string();
    assert!(cid.starts_with("bafybei"), "{cid}");
    let out = tempfile::tempdir().unwrap();

    let bs = out.path().join("bs.bin");
    dlm_ok(&[
        "get",
        &format!("ipfs://{cid}"),
        "--no-gateway",
        "--peer",
        node.multiaddr(),
        "-o",
        path(&bs),
    ]);
    assert_eq!(sha256_file(&bs).unwrap(), sha);
    // A request is logged once answered: had dlm asked the gateway, the line would be there by now.
    std::thread::sleep(Duration::from_millis(300));
    let asked = node.gateway_requests();
    assert!(
        asked.is_empty(),
        "--no-gateway asked the gateway: {asked:?}"
    );

    let gw = out.path().join("gw.bin");
    dlm_ok(&[
        "get",
        &format!("ipfs://{cid}"),
        "--gateway",
        node.gateway(0),
        "-c",
        "4",
        "-o",
        path(&gw),
    ]);
    assert_eq!(sha256_file(&gw).unwrap(), sha);
    // The gateway logs a request once it has answered it: wait for the log to show the CAR requests.
    wait_for(|| {
        node.gateway_requests()
            .iter()
            .any(|r| r.url.contains("format=car") && r.url.contains("entity-bytes="))
            .then_some(())
    })
    .expect("ranges went as CAR requests with entity-bytes");

    // Bare CIDs and /ipfs/ paths name the same file; `dlm info` describes it.
    let info = dlm_ok(&["info", &cid, "--gateway", node.gateway(0)]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("CIDv1, dag-pb, sha2-256"), "{text}");
    assert!(text.contains(&format!("{} bytes", 64 * MIB)), "{text}");
    let info = dlm_ok(&[
        "info",
        &format!("/ipfs/{cid}"),
        "--gateway",
        node.gateway(0),
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["len"], 64 * MIB);
    assert_eq!(v["cid"], cid);
}

#[test]
fn cidv0_trickle_and_small_dags_from_helia_over_both_transports() {
    let data = tempfile::tempdir().unwrap();
    let v0_sha = write_random_file(data.path(), "v0.bin", 8 * MIB + 123, 2).unwrap();
    let trickle_sha = write_random_file(data.path(), "trickle.bin", 9 * MIB + 7, 3).unwrap();
    let tiny_sha = write_random_file(data.path(), "tiny.bin", 1000, 4).unwrap();
    let config = HeliaConfig::default()
        .with_gateway()
        .with_add(AddSpec::new(data.path().join("v0.bin")).cid_v0())
        .with_add(
            AddSpec::new(data.path().join("trickle.bin"))
                .with_layout(Layout::Trickle)
                .with_chunk_size(100_000),
        )
        .with_add(AddSpec::new(data.path().join("tiny.bin")));
    let Some(node) = HeliaNode::start(&config) else {
        return;
    };
    assert!(node.cid(0).starts_with("Qm"), "{}", node.cid(0));
    assert!(
        node.cid(2).starts_with("bafkrei"),
        "a single raw block: {}",
        node.cid(2)
    );
    let out = tempfile::tempdir().unwrap();
    for (i, sha) in [(0, &v0_sha), (1, &trickle_sha), (2, &tiny_sha)] {
        let cid = node.cid(i).to_string();
        let a = out.path().join(format!("{i}-gw"));
        dlm_ok(&["get", &cid, "--gateway", node.gateway(0), "-o", path(&a)]);
        assert_eq!(&sha256_file(&a).unwrap(), sha, "{cid} over the gateway");
        let b = out.path().join(format!("{i}-bs"));
        dlm_ok(&[
            "get",
            &format!("ipfs://{cid}"),
            "--no-gateway",
            "--peer",
            node.multiaddr(),
            "-o",
            path(&b),
        ]);
        assert_eq!(&sha256_file(&b).unwrap(), sha, "{cid} over bitswap");
    }
    let info = dlm_ok(&["info", node.cid(0), "--gateway", node.gateway(0)]);
    assert!(String::from_utf8_lossy(&info.stdout).contains("CIDv0, dag-pb, sha2-256"));
}

/// A tree with a HAMT-sharded directory (`many/`, 300 entries) and names with spaces and non-ASCII letters.
fn write_tree(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut add = |rel: &str, size: u64, seed: u64| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let sha = write_random_file(
            p.parent().unwrap(),
            p.file_name().unwrap().to_str().unwrap(),
            size,
            seed,
        )
        .unwrap();
        files.push((rel.to_string(), sha));
    };
    add("a.txt", 13, 10);
    add("sub dir/b.bin", 3 * MIB + 5, 11);
    add("sub dir/deeper/Ünï.bin", 300_000, 12);
    for i in 0..300 {
        add(&format!("many/f{i}.txt"), 100 + i, 100 + i);
    }
    files
}

#[test]
fn paths_and_whole_directories_plain_and_hamt_sharded() {
    let data = tempfile::tempdir().unwrap();
    let files = write_tree(&data.path().join("tree"));
    let config = HeliaConfig::default()
        .with_gateway()
        .with_add(AddSpec::new(data.path().join("tree")).with_shard_split_threshold_bytes(2_000));
    let Some(node) = HeliaNode::start(&config) else {
        return;
    };
    let root = node.cid(0).to_string();
    let out = tempfile::tempdir().unwrap();

    // One file by path, through a plain directory and through the HAMT.
    for rel in ["sub dir/deeper/Ünï.bin", "many/f123.txt", "many/f0.txt"] {
        let want = &files.iter().find(|(r, _)| r == rel).unwrap().1;
        let url = format!("ipfs://{root}/{}", rel.replace(' ', "%20"));
        let dest = out.path().join("one");
        dlm_ok(&["get", &url, "--gateway", node.gateway(0), "-o", path(&dest)]);
        assert_eq!(&sha256_file(&dest).unwrap(), want, "{url}");
        std::fs::remove_file(&dest).unwrap();
    }
    let missing = dlm(&[
        "get",
        &format!("ipfs://{root}/many/nope.txt"),
        "--gateway",
        node.gateway(0),
        "-d",
        path(out.path()),
    ]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no such file"),
        "{missing:?}"
    );

    // The whole tree over the gateway, then over bitswap: into DIR/<CID>.
    for (flag, value, sub) in [
        ("--gateway", node.gateway(0), "gw"),
        ("--peer", node.multiaddr(), "bs"),
    ] {
        let dest = out.path().join(sub);
        let mut args = vec!["get", &root, flag, value, "-d", path(&dest)];
        if flag == "--peer" {
            args.push("--no-gateway");
        }
        dlm_ok(&args);
        let base = dest.join(&root);
        for (rel, sha) in &files {
            assert_eq!(
                &sha256_file(&base.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")),
                sha,
                "{rel}"
            );
        }
        let written = walk(&base).iter().filter(|p| p.is_file()).count();
        assert_eq!(written, files.len(), "nothing else written");
    }

    // `dlm info` on a directory lists it.
    let info = dlm_ok(&[
        "info",
        &format!("ipfs://{root}/many"),
        "--gateway",
        node.gateway(0),
    ]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("HAMT-sharded"), "{text}");
    assert!(text.contains("f299.txt"), "{text}");
}

#[test]
fn a_file_kubo_added_over_bitswap() {
    let data = tempfile::tempdir().unwrap();
    let sha = write_random_file(data.path(), "k.bin", 16 * MIB + 1, 5).unwrap();
    let Some(kubo) = KuboNode::start(data.path(), &["k.bin"]) else {
        return;
    };
    let cid = kubo.cid(0).to_string();
    assert!(cid.starts_with("Qm"), "Kubo adds CIDv0: {cid}");
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("k.bin");
    dlm_ok(&[
        "get",
        &format!("ipfs://{cid}"),
        "--no-gateway",
        "--peer",
        kubo.multiaddr(),
        "-o",
        path(&dest),
    ]);
    assert_eq!(sha256_file(&dest).unwrap(), sha);
}

/// The CIDs of a file's 256 KiB raw leaves (Helia's defaults).
fn leaf_cids(file: &Path) -> Vec<String> {
    let bytes = std::fs::read(file).unwrap();
    bytes
        .chunks(256 * 1024)
        .map(|c| dlm_ipfs::block::raw_cid(c).to_string())
        .collect()
}

#[test]
fn a_gateway_that_corrupts_blocks_is_dropped_and_the_other_serves() {
    let data = tempfile::tempdir().unwrap();
    let sha = write_random_file(data.path(), "c.bin", 16 * MIB, 6).unwrap();
    let leaves = leaf_cids(&data.path().join("c.bin"));
    // Every eighth leaf is corrupted by the first gateway.
    let bad: Vec<String> = leaves.iter().step_by(8).cloned().collect();
    let config = HeliaConfig::default()
        .with_corrupt_gateway(bad)
        .with_gateway()
        .with_add(AddSpec::new(data.path().join("c.bin")));
    let Some(node) = HeliaNode::start(&config) else {
        return;
    };
    let cid = node.cid(0).to_string();
    let out = tempfile::tempdir().unwrap();

    // Only the corrupting gateway: the download fails as an integrity error, and writes no bad byte.
    let only_bad = out.path().join("bad.bin");
    let r = dlm(&[
        "get",
        &cid,
        "--gateway",
        node.gateway(0),
        "-o",
        path(&only_bad),
    ]);
    assert_eq!(r.status.code(), Some(3), "dlm's integrity exit code");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("(integrity)"), "{stderr}");
    assert!(!only_bad.exists(), "nothing was committed");

    // Both gateways: the bad one is dropped after its first bad block; the file is right.
    let dest = out.path().join("c.bin");
    let r = dlm_command()
        .env("DLM_LOG", "dlm_ipfs=warn")
        .args([
            "get",
            &cid,
            "--gateway",
            node.gateway(0),
            "--gateway",
            node.gateway(1),
            "-c",
            "4",
            "--json",
            "-o",
            path(&dest),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    assert_eq!(sha256_file(&dest).unwrap(), sha);
    assert!(
        stderr.contains("gateway dropped") && stderr.contains(node.gateway(0)),
        "the corrupting gateway was dropped: {stderr}"
    );
    let events: Vec<Value> = String::from_utf8_lossy(&r.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "chunk_failed" && e["kind"] == "integrity"),
        "a chunk failed on the bad block"
    );
}

#[test]
fn an_ipns_name_resolves_through_a_verified_record() {
    let data = tempfile::tempdir().unwrap();
    let sha = write_random_file(data.path(), "n.bin", 2 * MIB + 3, 7).unwrap();
    let config = HeliaConfig::default()
        .with_gateway()
        .with_tampering_ipns_gateway()
        .with_add(AddSpec::new(data.path().join("n.bin")))
        .with_ipns(true);
    let Some(node) = HeliaNode::start(&config) else {
        return;
    };
    let ipns = node.ipns.clone().expect("an IPNS name");
    let out = tempfile::tempdir().unwrap();
    for name in [&ipns.name, &ipns.peer_id_name] {
        let dest = out.path().join("n.bin");
        dlm_ok(&[
            "get",
            &format!("ipns://{name}"),
            "--gateway",
            node.gateway(0),
            "-o",
            path(&dest),
        ]);
        assert_eq!(sha256_file(&dest).unwrap(), sha, "ipns://{name}");
        std::fs::remove_file(&dest).unwrap();
    }
    // A record whose signature does not verify is refused...
    let name = format!("ipns://{}", ipns.name);
    let r = dlm(&[
        "get",
        &name,
        "--gateway",
        node.gateway(1),
        "-d",
        path(out.path()),
    ]);
    assert!(!r.status.success());
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("signature does not verify"), "{stderr}");
    // ...and with a good gateway beside it, the good record is used.
    let dest = out.path().join("n.bin");
    dlm_ok(&[
        "get",
        &name,
        "--gateway",
        node.gateway(1),
        "--gateway",
        node.gateway(0),
        "-o",
        path(&dest),
    ]);
    assert_eq!(sha256_file(&dest).unwrap(), sha);
    // A name whose record the gateway does not have: the gateway's 404.
    let other = "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8";
    let r = dlm(&[
        "get",
        &format!("ipns://{other}"),
        "--gateway",
        node.gateway(0),
        "-d",
        path(out.path()),
    ]);
    assert!(!r.status.success());
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("404") && stderr.contains("(not-found)"),
        "{stderr}"
    );
}

#[test]
fn dlm_get_over_bitswap_resumes_after_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let size = 32 * MIB;
    let sha = write_random_file(data.path(), "r.bin", size, 8).unwrap();
    let config = HeliaConfig::default().with_add(AddSpec::new(data.path().join("r.bin")));
    let Some(node) = HeliaNode::start(&config) else {
        return;
    };
    let url = format!("ipfs://{}", node.cid(0));
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("r.bin");
    let args = [
        "get",
        &url,
        "--no-gateway",
        "--peer",
        node.multiaddr(),
        "--json",
        "--limit-rate",
        "8M",
        "-o",
        path(&dest),
    ];
    // Killed past 1/4 and past 3/4 (at 8 MiB/s each run saves its state at least once), then finished.
    let (resumed, completed) = dlm_tests::runtime::e2e(
        Duration::from_secs(120),
        dlm_kill_and_resume(&args, &[size / 4, size * 3 / 4]),
    );
    eprintln!("resumed at {resumed:?} of {size} bytes");
    assert_eq!(resumed[0], 0);
    assert!(resumed[1] > 0 && resumed[2] > resumed[1], "{resumed:?}");
    // The last run fetched what was missing (plus at most what was in flight at the last kill).
    let fetched = completed["fetched_bytes"].as_u64().unwrap();
    assert!(
        fetched <= size - resumed[2] + 8 * MIB,
        "fetched {fetched} after resuming at {}",
        resumed[2]
    );
    assert_eq!(sha256_file(&dest).unwrap(), sha);
}

#[test]
fn malformed_addresses_are_invalid_input() {
    let out = tempfile::tempdir().unwrap();
    for bad in [
        "ipfs://notacid",
        "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzd",
        "ipfs://QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn/../etc/passwd",
    ] {
        // 192.0.2.1 (TEST-NET-1) is never asked: the address fails before any request.
        let r = dlm(&[
            "get",
            bad,
            "--gateway",
            "http://192.0.2.1:9",
            "-d",
            path(out.path()),
        ]);
        assert!(!r.status.success(), "{bad}");
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(stderr.contains("invalid-input"), "{bad}: {stderr}");
    }
    let r = dlm(&[
        "get",
        "ipfs://QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",
        "--peer",
        "/ip4/127.0.0.1/tcp/1",
    ]);
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("/p2p/"),
        "{r:?}"
    );
}
