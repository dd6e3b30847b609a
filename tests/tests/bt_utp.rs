//! uTP (BEP 29) against real libtorrent peers that have TCP turned off both
//! ways: dlm downloads from a uTP-only seeder (outgoing uTP), the same
//! download with `--no-utp` fails with a clear error instead of hanging,
//! and a uTP-only libtorrent leecher downloads from `dlm seed` (incoming
//! uTP, on the UDP port with the TCP listener's number). Every download is
//! compared with the seeded bytes.

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use dlm_tests::bt::{LibtorrentOptions, LibtorrentPeer, LtTransport, NO_TRACKER, TorrentSpec};
use dlm_tests::dlm_command;

const TEST_TIMEOUT: Duration = Duration::from_secs(90);

/// `dlm get TORRENT --peer PEER -d OUT EXTRA… --no-netrc --quiet`, with no
/// DHT and any free listening port.
async fn dlm_get(
    torrent: &str,
    peer: SocketAddrV4,
    out: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    tokio::process::Command::from(dlm_command())
        .args(["get", torrent, "--peer", &peer.to_string(), "-d"])
        .arg(out)
        .args(["--no-dht", "--listen-port", "0"])
        .args(extra)
        .args(["--no-netrc", "--quiet"])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

#[test]
fn dlm_downloads_from_a_utp_only_seeder_and_not_without_utp() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("utp.bin", 6 << 20)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(18)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(seeder) =
        LibtorrentPeer::start(LibtorrentOptions::seeding(&fx).with_transport(LtTransport::UtpOnly))
    else {
        return;
    };
    let torrent = fx.torrent_path.to_str().unwrap().to_string();

    // (a) Over uTP: TCP is refused or closed, uTP takes over. (b) shows
    // that TCP alone gets nothing from this seeder.
    let out = dir.path().join("utp");
    let o = dlm_tests::runtime::e2e(TEST_TIMEOUT, dlm_get(&torrent, seeder.addr(), &out, &[]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    fx.check_download(&out).unwrap();

    // (b) The same with uTP off: no peer, a clear error, within the connect
    // timeout (not a hang).
    let out = dir.path().join("tcp");
    let o = dlm_tests::runtime::e2e(
        TEST_TIMEOUT,
        dlm_get(
            &torrent,
            seeder.addr(),
            &out,
            &["--no-utp", "-O", "bittorrent.connect_timeout=5s"],
        ),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("dlm's error: {stderr}");
    assert!(
        !o.status.success(),
        "a uTP-only seeder served a --no-utp download"
    );
    assert!(
        stderr.contains("could be reached"),
        "the error says no peer was usable: {stderr}"
    );
}

#[test]
fn a_utp_only_libtorrent_leecher_downloads_from_dlm_seed() {
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
            &["--seed-time", "80", "--no-dht"],
        )
        .await;
        let addr = seeder.addr();
        let options = LibtorrentOptions::default()
            .with_leech(&fx.torrent_path, &leech_dir)
            .without_trackers()
            .with_transport(LtTransport::UtpOnly)
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
        assert!(done, "the uTP-only libtorrent leecher finished");
        fx.check_download(&leech_dir).unwrap();
    }
}
