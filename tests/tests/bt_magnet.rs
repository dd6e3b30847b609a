//! `dlm get magnet:…` and `dlm info magnet:…` against real libtorrent
//! peers on 127.0.0.1: the info dictionary is fetched with `ut_metadata`
//! (BEP 9 over BEP 10) from peers found through the link's tracker (`tr`)
//! or its peer addresses (`x.pe`), saved for a resumed run, and the
//! download then runs as a torrent's; peers learned by peer exchange (BEP
//! 11) are used.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dlm_tests::bt::{LibtorrentOptions, LibtorrentPeer, NO_TRACKER, TorrentSpec, Tracker};
use dlm_tests::dlm_command;

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// `-DL0100-` in hex: dlm's peer IDs.
const DLM_PEER_ID_HEX: &str = "2d444c303130302d";

fn run<T>(body: impl std::future::Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body)
}

/// Runs `dlm ARGS` (see [`dlm_tests::dlm_run`]): its status, stdout and stderr.
async fn dlm(args: &[&str]) -> (bool, String, String) {
    let r = dlm_tests::dlm_run(args).await;
    (r.ok, r.stdout, r.stderr)
}

/// `magnet:?xt=urn:btih:<hash>` plus `extra` (`&x.pe=…`, `&so=…`).
fn magnet(info_hash_hex: &str, extra: &str) -> String {
    format!("magnet:?xt=urn:btih:{info_hash_hex}{extra}")
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_magnet_link_with_only_a_tracker_resolves_and_downloads() {
    let Some(tracker) = Tracker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 1024 pieces of 32 KiB: a 20 KiB info dictionary, two metadata pieces.
    let Some(fx) = TorrentSpec::single_file("tracked.bin", 32 << 20)
        .with_tracker(&tracker.announce_http())
        .with_piece_len_log2(15)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    tracker.allow(&fx.info_hash_hex());
    let Some(_seeder) = LibtorrentPeer::start(LibtorrentOptions::default().with_seed(&fx)) else {
        return;
    };
    assert!(
        tracker.wait_for_seeders(&fx.info_hash, 1, Duration::from_secs(20)),
        "the seeder announced"
    );
    // The fixture's magnet: xt, dn and one tr.
    let link = fx.magnet();
    let (ok, stdout, stderr) = run(dlm(&["info", &link]));
    assert!(ok, "dlm info: {stderr}");
    assert!(stdout.contains(&fx.info_hash_hex()), "{stdout}");
    assert!(stdout.contains("tracked.bin"), "{stdout}");
    assert!(stdout.contains("1024 × 32768 bytes"), "{stdout}");
    let out = dir.path().join("out");
    let (ok, _, stderr) = run(dlm(&["get", &link, "-d", path_str(&out)]));
    assert!(ok, "dlm get: {stderr}");
    fx.check_download(&out).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".torrent"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the saved metadata goes once the download completes: {leftovers:?}"
    );
}

#[test]
fn a_magnet_link_with_only_a_peer_address_downloads_the_files_it_selects() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::multi_file(
        "picked",
        &[("a.bin", 1_000_000), ("b.bin", 3_000_001), ("c.bin", 17)],
    )
    .with_tracker(NO_TRACKER)
    .with_piece_len_log2(16)
    .create(&dir.path().join("seed")) else {
        return;
    };
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx)) else {
        return;
    };
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    // x.pe only (no tracker), and so=1: only b.bin.
    let link = magnet(&fx.info_hash_hex(), &format!("&x.pe={peer}&so=1"));
    let out = dir.path().join("out");
    let (ok, _, stderr) = run(dlm(&["get", &link, "-d", path_str(&out)]));
    assert!(ok, "dlm get: {stderr}");
    let want = std::fs::read(fx.file_path_in(&fx.data_dir, &fx.files[1])).unwrap();
    let got = std::fs::read(fx.file_path_in(&out, &fx.files[1])).unwrap();
    assert!(got == want, "b.bin differs");
    let a = fx.file_path_in(&out, &fx.files[0]);
    let a_len = std::fs::metadata(&a).map(|m| m.len()).unwrap_or(0);
    assert!(
        a_len < 1_000_000
            || std::fs::read(&a).unwrap()
                != std::fs::read(fx.file_path_in(&fx.data_dir, &fx.files[0])).unwrap(),
        "a.bin was not selected (so=1) and is not downloaded whole"
    );
}

#[test]
fn a_resumed_magnet_download_needs_no_peer_for_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("resumed.bin", 8 << 20)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(16)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    // Slow enough that the first run is still downloading when it is killed.
    let Some(seeder) =
        LibtorrentPeer::start(LibtorrentOptions::seeding(&fx).with_upload_limit(1 << 20))
    else {
        return;
    };
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    let bare = magnet(&fx.info_hash_hex(), "");
    let with_peer = magnet(&fx.info_hash_hex(), &format!("&x.pe={peer}"));
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let saved = out.join(format!(".{}.torrent", fx.info_hash_hex()));
    run(async {
        let mut first = tokio::process::Command::from(dlm_command())
            .args([
                "get",
                &with_peer,
                "-d",
                path_str(&out),
                "--quiet",
                "--no-netrc",
            ])
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !saved.exists() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the metadata was never saved at {}",
                saved.display()
            );
            assert!(
                first.try_wait().unwrap().is_none(),
                "the first run ended early"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        first.kill().await.unwrap();
    });
    // The saved file is a valid .torrent of the same swarm.
    let (ok, stdout, stderr) = run(dlm(&["info", path_str(&saved)]));
    assert!(ok, "dlm info on the saved metadata: {stderr}");
    assert!(stdout.contains(&fx.info_hash_hex()), "{stdout}");
    // No peer at all: with the metadata on disk, the run gets past it and
    // fails only for want of peers for the pieces.
    let (ok, _, stderr) = run(dlm(&["get", &bare, "-d", path_str(&out), "--no-dht"]));
    assert!(!ok, "nothing to download from, yet it succeeded");
    assert!(
        !stderr.contains("metadata"),
        "the metadata was fetched again instead of read from disk: {stderr}"
    );
    assert!(stderr.contains("no peers"), "{stderr}");
    let (ok, _, stderr) = run(dlm(&["get", &with_peer, "-d", path_str(&out)]));
    assert!(ok, "the resumed run: {stderr}");
    fx.check_download(&out).unwrap();
    assert!(!saved.exists(), "the saved metadata goes once complete");
}

#[test]
fn a_peer_learned_only_through_peer_exchange_serves_the_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("exchanged.bin", 6 << 20)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(16)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx)) else {
        return;
    };
    // The middle peer knows the seeder but gets little from it (a limit of
    // a few bytes/s would slow even the handshakes it receives).
    let middle_dir = dir.path().join("middle");
    std::fs::create_dir_all(&middle_dir).unwrap();
    let Some(mut middle) = LibtorrentPeer::start(
        LibtorrentOptions::default()
            .with_leech(&fx.torrent_path, &middle_dir)
            .without_trackers()
            .with_connect(SocketAddr::V4(seeder.addr()))
            .with_download_limit(20_000),
    ) else {
        return;
    };
    let out = dir.path().join("out");
    let middle_addr = SocketAddr::V4(middle.addr()).to_string();
    // dlm is told only of the middle peer.
    let (ok, _, stderr) = run(dlm(&[
        "get",
        path_str(&fx.torrent_path),
        "--peer",
        &middle_addr,
        "-d",
        path_str(&out),
    ]));
    assert!(ok, "dlm get: {stderr}");
    fx.check_download(&out).unwrap();
    let from_seeder = seeder
        .torrent(&fx.info_hash)
        .map_or(0, |t| t.uploaded_to(DLM_PEER_ID_HEX));
    assert!(
        from_seeder > 0,
        "the seeder, known only through the middle peer's ut_pex, served dlm"
    );
    let handshake = dlm_extension_handshake(&mut middle, &fx.info_hash);
    assert!(handshake.contains("ut_pex"), "{handshake}");
}

/// The extended handshake (BEP 10) dlm sent to libtorrent `peer`, as
/// libtorrent's peer log shows it.
fn dlm_extension_handshake(peer: &mut LibtorrentPeer, info_hash: &[u8; 20]) -> String {
    let from_dlm = |s: &dlm_tests::bt::LtStatus| {
        s.torrents
            .get(&hex::encode(info_hash))?
            .peers
            .values()
            .filter(|p| {
                p.peer_id
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with(DLM_PEER_ID_HEX)
            })
            .find_map(|p| p.extension_handshake.clone())
    };
    // The status file trails the peer log by up to 0.2 s.
    peer.wait_until(Duration::from_secs(10), |s| from_dlm(s).is_some())
        .and_then(|s| from_dlm(&s))
        .unwrap_or_else(|| panic!("no extended handshake from dlm: {}", peer.log()))
}

#[test]
fn a_private_torrent_offers_metadata_but_no_peer_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("private.bin", 1 << 20)
        .with_tracker(NO_TRACKER)
        .with_private()
        .with_piece_len_log2(16)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(mut seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx)) else {
        return;
    };
    let out = dir.path().join("out");
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    let (ok, stdout, stderr) = run(dlm(&["info", path_str(&fx.torrent_path)]));
    assert!(
        ok && stdout.contains("private:        yes"),
        "{stdout}{stderr}"
    );
    let (ok, _, stderr) = run(dlm(&[
        "get",
        path_str(&fx.torrent_path),
        "--peer",
        &peer,
        "-d",
        path_str(&out),
    ]));
    assert!(ok, "dlm get: {stderr}");
    fx.check_download(&out).unwrap();
    // BEP 27: no peer exchange for a private torrent.
    let handshake = dlm_extension_handshake(&mut seeder, &fx.info_hash);
    assert!(handshake.contains("ut_metadata"), "{handshake}");
    assert!(!handshake.contains("ut_pex"), "{handshake}");
}
