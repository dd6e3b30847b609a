//! Message Stream Encryption (MSE/PE) against real libtorrent peers: dlm
//! downloads from a seeder that forces encryption both ways (with the
//! default `prefer` and with `require`), `require` against a seeder that
//! refuses MSE fails with a clear error instead of hanging, and a
//! libtorrent leecher that forces encryption downloads from `dlm seed`
//! (incoming MSE). Every download is compared with the seeded bytes.

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use dlm_tests::bt::{LibtorrentOptions, LibtorrentPeer, LtEncryption, NO_TRACKER, TorrentSpec};
use dlm_tests::dlm_command;

const TEST_TIMEOUT: Duration = Duration::from_secs(90);

/// `dlm get TORRENT --peer PEER -d OUT EXTRA… --no-netrc --quiet`.
async fn dlm_get(
    torrent: &str,
    peer: SocketAddrV4,
    out: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    tokio::process::Command::from(dlm_command())
        .args(["get", torrent, "--peer", &peer.to_string(), "-d"])
        .arg(out)
        .args(extra)
        .args(["--no-netrc", "--quiet"])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

#[test]
fn dlm_downloads_from_a_seeder_that_forces_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("forced.bin", 6 << 20)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(18)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(seeder) = LibtorrentPeer::start(
        LibtorrentOptions::seeding(&fx).with_encryption(LtEncryption::Forced),
    ) else {
        return;
    };
    let torrent = fx.torrent_path.to_str().unwrap().to_string();
    for (name, extra) in [
        ("prefer", &[][..]),
        ("require", &["-O", "bittorrent.encryption=require"][..]),
    ] {
        let out = dir.path().join(name);
        let o =
            dlm_tests::runtime::e2e(TEST_TIMEOUT, dlm_get(&torrent, seeder.addr(), &out, extra));
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        fx.check_download(&out)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn require_against_a_seeder_without_encryption_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("plain.bin", 1 << 20)
        .with_tracker(NO_TRACKER)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(seeder) = LibtorrentPeer::start(
        LibtorrentOptions::seeding(&fx).with_encryption(LtEncryption::Disabled),
    ) else {
        return;
    };
    let torrent = fx.torrent_path.to_str().unwrap().to_string();
    let out = dir.path().join("out");
    let o = dlm_tests::runtime::e2e(
        TEST_TIMEOUT,
        dlm_get(
            &torrent,
            seeder.addr(),
            &out,
            &[
                "-O",
                "bittorrent.encryption=require",
                "-O",
                "bittorrent.connect_timeout=5s",
            ],
        ),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("dlm's error: {stderr}");
    assert!(
        !o.status.success(),
        "a plaintext-only seeder served a `require` download"
    );
    // libtorrent closes on our MSE handshake; the error says so.
    assert!(
        stderr.contains("could be reached") && stderr.contains("encrypted handshake"),
        "the error says why no peer was usable: {stderr}"
    );
}

#[test]
fn a_libtorrent_leecher_that_forces_encryption_downloads_from_dlm_seed() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("served.bin", 5 << 20)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(18)
        .create(&dir.path().join("data"))
    else {
        return;
    };
    let leech_dir = dir.path().join("leech");
    std::fs::create_dir_all(&leech_dir).unwrap();
    let done = dlm_tests::runtime::e2e(TEST_TIMEOUT, async {
        let mut seeder = dlm_tests::DlmSeed::start(
            &fx.torrent_path,
            &fx.data_dir,
            &["--seed-time", "80", "-O", "bittorrent.encryption=require"],
        )
        .await;
        let addr = seeder.addr();
        let options = LibtorrentOptions::default()
            .with_leech(&fx.torrent_path, &leech_dir)
            .without_trackers()
            .with_encryption(LtEncryption::Forced)
            .with_connect(SocketAddr::V4(addr));
        let info_hash = fx.info_hash;
        let done = tokio::task::spawn_blocking(move || {
            let mut leecher = LibtorrentPeer::start(options)?;
            Some(leecher.wait_complete(&info_hash, Duration::from_secs(70)))
        })
        .await
        .unwrap();
        seeder.kill();
        done
    });
    if let Some(done) = done {
        assert!(done, "the libtorrent leecher finished");
        fx.check_download(&leech_dir).unwrap();
    }
}
