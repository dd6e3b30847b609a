//! dlm uploads while it downloads: a libtorrent leecher that knows only
//! dlm gets pieces from it before dlm has the whole torrent, and finishes
//! from dlm alone (dlm keeps seeding with `--seed-time`). Also: a
//! `.torrent` named by an `http://` URL (served by nginx).

use std::net::SocketAddr;
use std::time::Duration;

use dlm_tests::bt::{LibtorrentOptions, LibtorrentPeer, NO_TRACKER, TorrentSpec};
use dlm_tests::nginx::{Nginx, NginxOptions};
use dlm_tests::{dlm_command, free_port};

const TEST_TIMEOUT: Duration = Duration::from_secs(150);

#[test]
fn a_libtorrent_leecher_gets_pieces_from_dlm_while_dlm_is_still_downloading() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("relay.bin", 8 << 20)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(18)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    // A slow seeder, so dlm's download lasts a few seconds.
    let Some(seeder) =
        LibtorrentPeer::start(LibtorrentOptions::seeding(&fx).with_upload_limit(1 << 20))
    else {
        return;
    };
    let port = free_port();
    let out = dir.path().join("dlm");
    let mut dlm = dlm_command();
    dlm.args([
        "get",
        fx.torrent_path.to_str().unwrap(),
        "--quiet",
        "--no-netrc",
    ])
    .args(["--peer", &seeder.addr().to_string()])
    .args(["--listen-port", &port.to_string(), "--seed-time", "100"])
    .arg("-d")
    .arg(&out);
    dlm.stdout(std::process::Stdio::null());
    let mut dlm = dlm_tests::ChildGuard::new("dlm get", dlm.spawn().unwrap());
    dlm.wait_for_port(port, Duration::from_secs(20))
        .expect("dlm listens for peers");
    let leech_dir = dir.path().join("leech");
    std::fs::create_dir_all(&leech_dir).unwrap();
    let Some(mut leecher) = LibtorrentPeer::start(
        LibtorrentOptions::default()
            .with_leech(&fx.torrent_path, &leech_dir)
            .without_trackers()
            // Slower than dlm's download, so the leecher stays interested in dlm
            // until the end: libtorrent drops a peer whose last `have` makes it a
            // seed while it is not interested ("uninteresting upload-only peer"),
            // and this leecher knows no other way back to dlm.
            .with_download_limit(512 << 10)
            .with_connect(SocketAddr::from(([127, 0, 0, 1], port))),
    ) else {
        return;
    };
    let key = fx.info_hash_hex();
    let first = leecher
        .wait_until(TEST_TIMEOUT, |s| {
            s.torrents.get(&key).is_some_and(|t| t.downloaded_bytes > 0)
        })
        .expect("the leecher got bytes from dlm");
    let seeder_sent = seeder
        .torrent(&fx.info_hash)
        .expect("the seeder's status lists the torrent")
        .uploaded_bytes;
    assert!(
        seeder_sent < fx.total_len,
        "dlm uploaded before it had everything (seeder had sent {seeder_sent} of {} bytes; leecher had {})",
        fx.total_len,
        first.torrents[&key].downloaded_bytes
    );
    assert!(
        leecher.wait_complete(&fx.info_hash, TEST_TIMEOUT),
        "the leecher finished from dlm alone: {}",
        leecher.log()
    );
    fx.check_download(&leech_dir).unwrap();
    fx.check_download(&out).unwrap();
    assert!(dlm.try_wait().unwrap().is_none(), "dlm is still seeding");
}

/// Both kinds of torrent URL go through the registry: by the `.torrent`
/// suffix, and by `Content-Type: application/x-bittorrent` on a URL that
/// does not say (the HTTP protocol hands it over).
#[test]
fn a_torrent_named_by_an_http_url_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::multi_file("web", &[("a.bin", 700_000), ("d/b.bin", 300_001)])
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(16)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(nginx) = Nginx::start(NginxOptions::default()) else {
        return;
    };
    std::fs::copy(&fx.torrent_path, nginx.www().join("web.torrent")).unwrap();
    std::fs::copy(&fx.torrent_path, nginx.www().join("download-id-42")).unwrap();
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx)) else {
        return;
    };
    for (i, url) in [
        nginx.http_url("/web.torrent"),
        nginx.http_url("/as-torrent/download-id-42"),
    ]
    .iter()
    .enumerate()
    {
        let out = dir.path().join(format!("out{i}"));
        let result = dlm_tests::runtime::e2e(TEST_TIMEOUT, async {
            tokio::process::Command::from(dlm_command())
                .args(["get", url, "--quiet", "--no-netrc"])
                .args(["--peer", &seeder.addr().to_string(), "--no-listen", "-d"])
                .arg(&out)
                .kill_on_drop(true)
                .output()
                .await
                .unwrap()
        });
        assert!(
            result.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        fx.check_download(&out).unwrap();
    }
    // `dlm info` on the URL describes the torrent without joining its swarm.
    let info = dlm_tests::runtime::e2e(TEST_TIMEOUT, async {
        tokio::process::Command::from(dlm_command())
            .args([
                "info",
                &nginx.http_url("/as-torrent/download-id-42"),
                "--no-netrc",
            ])
            .kill_on_drop(true)
            .output()
            .await
            .unwrap()
    });
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success(), "{text}");
    assert!(text.contains(&fx.info_hash_hex()), "{text}");
    assert!(text.contains("d/b.bin"), "{text}");
}
