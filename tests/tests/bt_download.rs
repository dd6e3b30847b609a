//! `dlm get x.torrent` against real seeders on 127.0.0.1: libtorrent
//! announced to opentracker over HTTP and over UDP, a multi-file torrent
//! with nested directories, and a peer given with `--peer`; every file is
//! compared with the seeded payload.

use std::net::SocketAddr;
use std::time::Duration;

use dlm_tests::bt::{LibtorrentOptions, LibtorrentPeer, TorrentSpec, Tracker};
use dlm_tests::dlm_command;

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

fn run<T>(body: impl std::future::Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body)
}

async fn dlm_get(args: &[&str]) -> std::process::Output {
    tokio::process::Command::from(dlm_command())
        .arg("get")
        .args(args)
        .args(["--no-netrc", "--quiet"])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

#[test]
fn a_torrent_from_a_libtorrent_seed_found_through_opentracker_over_http_and_udp() {
    let Some(tracker) = Tracker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (i, announce) in [tracker.announce_http(), tracker.announce_udp()]
        .into_iter()
        .enumerate()
    {
        let Some(fx) = TorrentSpec::single_file(&format!("big{i}.bin"), 24 << 20)
            .with_tracker(&announce)
            .with_seed(i as u64)
            .create(&dir.path().join(format!("seed{i}")))
        else {
            return;
        };
        tracker.allow(&fx.info_hash_hex());
        let Some(_seeder) = LibtorrentPeer::start(LibtorrentOptions::default().with_seed(&fx))
        else {
            return;
        };
        assert!(
            tracker.wait_for_seeders(&fx.info_hash, 1, Duration::from_secs(20)),
            "the seeder announced"
        );
        let out = dir.path().join(format!("out{i}"));
        let torrent = fx.torrent_path.to_str().unwrap().to_string();
        let result = run(dlm_get(&[&torrent, "-d", out.to_str().unwrap()]));
        assert!(
            result.status.success(),
            "{announce}: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        fx.check_download(&out)
            .unwrap_or_else(|e| panic!("{announce}: {e}"));
    }
}

#[test]
fn a_multi_file_torrent_from_a_peer_given_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::multi_file(
        "tree",
        &[
            ("a.bin", 3_000_000),
            ("sub/deeper/b.bin", 5_000_001),
            ("c.txt", 17),
            ("sub/d.bin", 1_234_567),
        ],
    )
    .with_tracker("http://127.0.0.1:1/announce")
    .with_piece_len_log2(17)
    .create(&dir.path().join("seed")) else {
        return;
    };
    let Some(seeder) = LibtorrentPeer::start(
        LibtorrentOptions::default()
            .with_seed(&fx)
            .without_trackers(),
    ) else {
        return;
    };
    let out = dir.path().join("out");
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    let torrent = fx.torrent_path.to_str().unwrap().to_string();
    // The tracker on port 1 answers nothing: the given peer is enough.
    let result = run(dlm_get(&[
        &torrent,
        "--peer",
        &peer,
        "-d",
        out.to_str().unwrap(),
    ]));
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    fx.check_download(&out).unwrap();
    // No resume state or parts file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
