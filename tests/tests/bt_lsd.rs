//! Local Service Discovery (BEP 14) against libtorrent on loopback: dlm,
//! told of no tracker and no peer and with the DHT off, finds a libtorrent
//! seeder through the 239.192.152.143:6771 announces, and a libtorrent
//! leecher finds `dlm seed` the same way. Private torrents never announce.

use std::process::Stdio;
use std::time::Duration;

use dlm_tests::bt::{LibtorrentOptions, LibtorrentPeer, NO_TRACKER, TorrentSpec};
use dlm_tests::{dlm_command, free_port};

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

fn run<T>(body: impl std::future::Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body)
}

#[test]
fn dlm_and_libtorrent_find_each_other_through_local_service_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("lan.bin", 3 << 20)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(16)
        .with_seed(31)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx).with_lsd()) else {
        return;
    };
    let out = dir.path().join("out");
    let port = free_port().to_string();
    let got = run(async {
        tokio::process::Command::from(dlm_command())
            .arg("get")
            .arg(&fx.torrent_path)
            .arg("-d")
            .arg(&out)
            .args(["--no-netrc", "--quiet", "--no-dht", "--lsd"])
            .args(["--listen-port", &port])
            .kill_on_drop(true)
            .output()
            .await
            .unwrap()
    });
    assert!(
        got.status.success(),
        "dlm get through LSD: {}\n--- libtorrent ---\n{}",
        String::from_utf8_lossy(&got.stderr),
        seeder.log()
    );
    fx.check_download(&out).unwrap();
    drop(seeder);

    // The other way: dlm seeds and announces; a libtorrent leecher with no
    // tracker and no peer finds it.
    let seed_port = free_port().to_string();
    let mut seeding = dlm_command()
        .arg("seed")
        .arg(&fx.torrent_path)
        .arg("-d")
        .arg(&out)
        .args([
            "--no-dht",
            "--lsd",
            "--listen",
            &format!("127.0.0.1:{seed_port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let leech = dir.path().join("leech");
    std::fs::create_dir_all(&leech).unwrap();
    let leecher = LibtorrentPeer::start(
        LibtorrentOptions::default()
            .with_leech(&fx.torrent_path, &leech)
            .without_trackers()
            .with_lsd(),
    );
    let done = leecher.map(|mut l| l.wait_complete(&fx.info_hash, Duration::from_secs(60)));
    let _ = seeding.kill();
    let _ = seeding.wait();
    if let Some(done) = done {
        assert!(done, "the libtorrent leecher found dlm seed through LSD");
        fx.check_download(&leech).unwrap();
    }
}
