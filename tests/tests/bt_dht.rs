//! The DHT (BEP 5) against libtorrent nodes purely on loopback: a
//! trackerless torrent downloaded from a seeder found only through the DHT
//! (and refused cleanly with `--no-dht`), the same from a bare magnet link
//! (peers, then metadata, then pieces), a private torrent (BEP 27) that
//! never reaches the DHT, and a libtorrent leecher that finds `dlm seed`
//! through dlm's `announce_peer`.
//!
//! Each test builds its own DHT of libtorrent nodes that know each other
//! (`lt_peer.py --dht`). dlm bootstraps from one of them
//! (`-O bittorrent.dht_bootstrap=127.0.0.1:P`), on any free UDP port, with
//! its routing table kept in the test's temp dir.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use dlm_tests::bt::{LibtorrentOptions, LibtorrentPeer, TorrentFixture, TorrentSpec};
use dlm_tests::dlm_command;

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Bounds each wait on the libtorrent nodes (a hang, not a speed).
const WAIT: Duration = Duration::from_secs(30);

/// Starts `n` libtorrent DHT nodes on loopback, the first with `first`'s
/// torrents, and makes every node know every other; returns once each
/// routing table holds another node. `None` when libtorrent is missing.
fn loopback_dht(first: LibtorrentOptions, n: usize) -> Option<Vec<LibtorrentPeer>> {
    let mut nodes = vec![LibtorrentPeer::start(first.with_dht())?];
    for _ in 1..n {
        let seed = SocketAddr::V4(nodes[0].addr());
        nodes.push(LibtorrentPeer::start(
            LibtorrentOptions::default().with_dht().with_dht_node(seed),
        )?);
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|p| SocketAddr::V4(p.addr())).collect();
    for (i, node) in nodes.iter_mut().enumerate() {
        for (j, a) in addrs.iter().enumerate() {
            if i != j {
                node.add_dht_node(*a);
            }
        }
    }
    for node in &mut nodes {
        assert!(
            node.wait_until(WAIT, |s| s.dht.as_ref().is_some_and(|d| d.nodes >= 1))
                .is_some(),
            "a libtorrent DHT node met no other: {}",
            node.log()
        );
    }
    Some(nodes)
}

/// Waits until some node got an `announce_peer` for `info_hash`, asking
/// `announcer` (when given) to announce again every 2 s meanwhile.
fn wait_for_announce(
    nodes: &mut [LibtorrentPeer],
    info_hash: &str,
    announcer: Option<usize>,
) -> bool {
    let deadline = Instant::now() + WAIT;
    let mut next = Instant::now();
    while Instant::now() < deadline {
        if let Some(i) = announcer.filter(|_| Instant::now() >= next) {
            nodes[i].dht_announce();
            next = Instant::now() + Duration::from_secs(2);
        }
        if nodes.iter().any(|n| announced(n, info_hash)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn announced(node: &LibtorrentPeer, info_hash: &str) -> bool {
    node.status()
        .dht
        .is_some_and(|d| d.announces.contains_key(info_hash))
}

/// `get_peers` queries for `info_hash` the nodes received, in all.
fn get_peers_seen(nodes: &[LibtorrentPeer], info_hash: &str) -> u64 {
    nodes
        .iter()
        .filter_map(|n| n.status().dht)
        .map(|d| d.get_peers.get(info_hash).copied().unwrap_or(0))
        .sum()
}

/// The DHT options for dlm: bootstrap from `node`, any UDP port, the
/// routing table in `dir`.
fn dht_options(node: &LibtorrentPeer, dir: &Path) -> Vec<String> {
    vec![
        "-O".into(),
        format!("bittorrent.dht_bootstrap=127.0.0.1:{}", node.port()),
        "-O".into(),
        "bittorrent.dht_port=0".into(),
        "-O".into(),
        format!(
            "bittorrent.dht_state_file={}",
            dir.join("dht-nodes").display()
        ),
    ]
}

/// Runs `dlm get TORRENT -d OUT ARGS` (not listening for peers); returns
/// whether it succeeded and its stderr.
async fn dlm_get(fx: &TorrentFixture, out: &Path, args: &[String]) -> (bool, String) {
    let got = tokio::process::Command::from(dlm_command())
        .arg("get")
        .arg(&fx.torrent_path)
        .arg("-d")
        .arg(out)
        .args(["--no-netrc", "--quiet", "--no-listen"])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        got.status.success(),
        String::from_utf8_lossy(&got.stderr).into_owned(),
    )
}

#[test]
fn a_trackerless_torrent_is_found_through_the_dht_and_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("trackerless.bin", 3 << 20)
        .with_piece_len_log2(16)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(mut nodes) = loopback_dht(LibtorrentOptions::default().with_seed(&fx), 3) else {
        return;
    };
    let ih = fx.info_hash_hex();
    assert!(
        wait_for_announce(&mut nodes, &ih, Some(0)),
        "the libtorrent seeder announced to the DHT"
    );
    let options = dht_options(&nodes[1], dir.path());

    // --no-dht: no tracker, no peer, no DHT: a clean failure.
    let out = dir.path().join("no-dht");
    let mut no_dht = options.clone();
    no_dht.push("--no-dht".into());
    let (ok, stderr) = dlm_tests::runtime::e2e(TEST_TIMEOUT, dlm_get(&fx, &out, &no_dht));
    assert!(!ok, "--no-dht downloaded a trackerless torrent");
    assert!(stderr.contains("no peers"), "{stderr}");

    // With the DHT: found through nodes 1 and 2 (dlm never hears of the
    // seeder otherwise).
    let before = get_peers_seen(&nodes, &ih);
    let out = dir.path().join("out");
    let (ok, stderr) = dlm_tests::runtime::e2e(TEST_TIMEOUT, dlm_get(&fx, &out, &options));
    assert!(ok, "dlm get through the DHT: {stderr}");
    fx.check_download(&out).unwrap();
    assert!(
        get_peers_seen(&nodes, &ih) > before,
        "dlm's get_peers reached the libtorrent nodes"
    );
    // A bare magnet link (info-hash only): peers from the DHT, then the
    // metadata from them (BEP 9), then the pieces.
    let magnet_out = dir.path().join("magnet");
    let got = dlm_tests::runtime::e2e(TEST_TIMEOUT, async {
        tokio::process::Command::from(dlm_command())
            .args(["get", &format!("magnet:?xt=urn:btih:{ih}"), "-d"])
            .arg(&magnet_out)
            .args(["--no-netrc", "--quiet", "--no-listen"])
            .args(&options)
            .kill_on_drop(true)
            .output()
            .await
            .unwrap()
    });
    assert!(
        got.status.success(),
        "dlm get of a bare magnet through the DHT: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    fx.check_download(&magnet_out).unwrap();
    // The routing table was kept for the next run: libtorrent's nodes.
    let kept = std::fs::read_to_string(dir.path().join("dht-nodes")).unwrap_or_default();
    assert!(
        nodes.iter().any(|n| kept.contains(&n.addr().to_string())),
        "state file: {kept:?}"
    );
}

#[test]
fn a_private_torrent_never_reaches_the_dht() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("private.bin", 1 << 20)
        .with_piece_len_log2(16)
        .with_private()
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(nodes) = loopback_dht(LibtorrentOptions::default().with_seed(&fx), 3) else {
        return;
    };
    let ih = fx.info_hash_hex();
    let mut args = dht_options(&nodes[1], dir.path());
    args.extend(["--peer".into(), SocketAddr::V4(nodes[0].addr()).to_string()]);
    let out = dir.path().join("out");
    let (ok, stderr) = dlm_tests::runtime::e2e(TEST_TIMEOUT, dlm_get(&fx, &out, &args));
    assert!(ok, "dlm get from the given peer: {stderr}");
    fx.check_download(&out).unwrap();
    // Give a stray query time to show in the status (written every 0.2 s).
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        get_peers_seen(&nodes, &ih),
        0,
        "a get_peers for a private torrent"
    );
    assert!(
        !nodes.iter().any(|n| announced(n, &ih)),
        "an announce_peer for a private torrent"
    );
}

#[test]
fn a_libtorrent_leecher_finds_dlm_seed_through_its_announce() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("announced.bin", 2 << 20)
        .with_piece_len_log2(16)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(mut nodes) = loopback_dht(LibtorrentOptions::default(), 3) else {
        return;
    };
    let ih = fx.info_hash_hex();
    let options = dht_options(&nodes[1], dir.path());
    let ran = dlm_tests::runtime::e2e(TEST_TIMEOUT, async {
        let mut args = vec!["--seed-time", "100"];
        args.extend(options.iter().map(String::as_str));
        let seeder = dlm_tests::DlmSeed::start(&fx.torrent_path, &fx.data_dir, &args).await;
        let port = seeder.addr().port().to_string();
        let fx_path = fx.torrent_path.clone();
        let out = dir.path().join("out");
        let out2 = out.clone();
        let seed_node = SocketAddr::V4(nodes[2].addr());
        let ih2 = ih.clone();
        let leeched = tokio::task::spawn_blocking(move || {
            // dlm's announce_peer reached a libtorrent node, with its port.
            assert!(
                wait_for_announce(&mut nodes, &ih2, None),
                "dlm seed announced to the DHT"
            );
            let addrs: Vec<String> = nodes
                .iter()
                .filter_map(|n| n.status().dht)
                .flat_map(|d| d.announces.get(&ih2).cloned().unwrap_or_default())
                .collect();
            assert!(
                addrs.contains(&format!("127.0.0.1:{port}")),
                "announced {addrs:?}, dlm listens on {port}"
            );
            let mut leecher = LibtorrentPeer::start(
                LibtorrentOptions::default()
                    .with_dht()
                    .with_dht_node(seed_node)
                    .with_leech(&fx_path, &out2),
            )
            .expect("libtorrent is there");
            // It looks the info-hash up when asked; ask again until done.
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut done = false;
            while !done && Instant::now() < deadline {
                leecher.dht_announce();
                done = leecher.wait_complete(&fx_hash(&fx_path), Duration::from_secs(3));
            }
            (done, leecher.log())
        })
        .await
        .unwrap();
        drop(seeder);
        (leeched, out)
    });
    let ((done, log), out) = ran;
    assert!(done, "the libtorrent leecher finished: {log}");
    fx.check_download(&out).unwrap();
}

/// The v1 info-hash of the `.torrent` at `path`.
fn fx_hash(path: &Path) -> [u8; 20] {
    dlm_tests::bt::info_hash_of(&std::fs::read(path).unwrap()).unwrap()
}
