//! `dlm get x.torrent` against real seeders on 127.0.0.1: libtorrent
//! announced to opentracker over HTTP and over UDP, a multi-file torrent
//! with nested directories, and a peer given with `--peer`; every file is
//! compared with the seeded payload.

use std::net::SocketAddr;
use std::time::Duration;

use dlm_tests::bt::{
    Aria2Options, Aria2Seeder, LibtorrentOptions, LibtorrentPeer, NO_TRACKER, StaticTracker,
    TorrentSpec, Tracker,
};
use dlm_tests::{dlm_command, dlm_kill_and_resume};

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

fn run<T>(body: impl std::future::Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body)
}

/// Runs `dlm get ARGS --no-netrc --quiet` and asserts it succeeded (with
/// its stderr in the message, prefixed by `what`).
async fn dlm_get(what: &str, args: &[&str]) {
    let out = tokio::process::Command::from(dlm_command())
        .arg("get")
        .args(args)
        .args(["--no-netrc", "--quiet"])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
        run(dlm_get(&announce, &[&torrent, "-d", out.to_str().unwrap()]));
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
    .with_tracker(NO_TRACKER)
    .with_piece_len_log2(17)
    .create(&dir.path().join("seed")) else {
        return;
    };
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx)) else {
        return;
    };
    let out = dir.path().join("out");
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    let torrent = fx.torrent_path.to_str().unwrap().to_string();
    // The tracker on port 1 answers nothing: the given peer is enough.
    run(dlm_get(
        "dlm get",
        &[&torrent, "--peer", &peer, "-d", out.to_str().unwrap()],
    ));
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

#[test]
fn a_peer_sending_corrupt_pieces_is_banned_and_a_good_peer_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("guarded.bin", 6 << 20)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(18)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    // Throttled, so the download lasts long enough to ask the bad peer too.
    let Some(good) =
        LibtorrentPeer::start(LibtorrentOptions::seeding(&fx).with_upload_limit(2 << 20))
    else {
        return;
    };
    // A real client serving bad data: aria2c seeds, unverified, a copy of the
    // file with one byte of every piece flipped.
    let corrupt_dir = dir.path().join("corrupt");
    std::fs::create_dir_all(&corrupt_dir).unwrap();
    let mut bytes = std::fs::read(fx.file_path_in(&fx.data_dir, &fx.files[0])).unwrap();
    for at in (0..bytes.len()).step_by(fx.piece_len as usize) {
        bytes[at] ^= 0xff;
    }
    std::fs::write(fx.file_path_in(&corrupt_dir, &fx.files[0]), &bytes).unwrap();
    let Some(bad_seeder) =
        Aria2Seeder::start_from(&fx.torrent_path, &corrupt_dir, &Aria2Options::default())
    else {
        return;
    };
    let out = dir.path().join("out");
    let torrent = fx.torrent_path.to_str().unwrap().to_string();
    // Bans are by IP address: the bad peer is reached at another loopback
    // address (aria2c listens on all of them) so the good one stays usable.
    let bad = format!("127.0.0.2:{}", bad_seeder.addr().port());
    let good = SocketAddr::V4(good.addr()).to_string();
    let result = run(async {
        tokio::process::Command::from(dlm_command())
            .args([
                "get", &torrent, "--peer", &bad, "--peer", &good, "--quiet", "-d",
            ])
            .arg(&out)
            .env("DLM_LOG", "dlm_bittorrent=warn")
            .kill_on_drop(true)
            .output()
            .await
            .unwrap()
    });
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    fx.check_download(&out).unwrap();
    assert!(
        stderr.contains("failed its SHA-1: peer banned") && stderr.contains(&bad),
        "the corrupt peer was caught: {stderr}"
    );
}

#[test]
fn a_killed_download_resumes_without_fetching_verified_pieces_again() {
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 16 << 20;
    let Some(fx) = TorrentSpec::single_file("resumed.bin", size)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(18)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    // 8 MiB/s: the first run is killed about halfway.
    let Some(mut seeder) =
        LibtorrentPeer::start(LibtorrentOptions::seeding(&fx).with_upload_limit(8 << 20))
    else {
        return;
    };
    let out = dir.path().join("out");
    let torrent = fx.torrent_path.to_str().unwrap().to_string();
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    let args = [
        "get",
        &torrent,
        "--peer",
        &peer,
        "--json",
        "-d",
        out.to_str().unwrap(),
    ];
    let (resumed_at, _) = run(dlm_kill_and_resume(&args, &[size / 2]));
    fx.check_download(&out).unwrap();
    assert_eq!(resumed_at[0], 0);
    assert!(resumed_at[1] >= size / 4, "resumed at {resumed_at:?}");
    // The seeder sent the file once, plus what was in flight or not yet saved at the kill (at most a
    // second of transfer at 8 MiB/s, minus what chunk completions saved): far less than a restart's
    // 8 MiB more.
    // The status file trails by up to 0.2 s: wait until it shows at least the
    // file once (which every run must have sent), then bound the excess.
    let key = fx.info_hash_hex();
    let uploaded = seeder
        .wait_until(Duration::from_secs(10), |s| {
            s.torrents
                .get(&key)
                .is_some_and(|t| t.uploaded_bytes >= size)
        })
        .map(|s| s.torrents[&key].uploaded_bytes)
        .expect("the seeder's status shows the whole file sent");
    eprintln!("resumed at {resumed_at:?}; the seeder uploaded {uploaded} bytes for {size}");
    assert!(
        uploaded <= size + (4 << 20),
        "re-fetched too much: {uploaded}"
    );
}

#[test]
fn two_seeders_libtorrent_and_transmission_both_serve_the_download() {
    let Some(tracker) = Tracker::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("shared.bin", 20 << 20)
        .with_tracker(&tracker.announce_http())
        .with_piece_len_log2(18)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    tracker.allow(&fx.info_hash_hex());
    // libtorrent is throttled so that Transmission, slow to unchoke (3-8 s), gets its share.
    let Some(mut lt) = LibtorrentPeer::start(
        LibtorrentOptions::default()
            .with_seed(&fx)
            .with_upload_limit(1 << 20),
    ) else {
        return;
    };
    let Some(tr) = dlm_tests::bt::TransmissionSeeder::start() else {
        return;
    };
    tr.seed(&fx);
    assert!(
        tracker.wait_for_seeders(&fx.info_hash, 2, Duration::from_secs(30)),
        "both seeders announced"
    );
    let out = dir.path().join("out");
    let torrent = fx.torrent_path.to_str().unwrap().to_string();
    run(dlm_get("dlm get", &[&torrent, "-d", out.to_str().unwrap()]));
    fx.check_download(&out).unwrap();
    // Both counters lag (libtorrent's status file by up to 0.2 s, Transmission's uploadedEver by about 1 s):
    // poll them.
    let key = fx.info_hash_hex();
    let from_lt = lt
        .wait_until(Duration::from_secs(10), |s| {
            s.torrents.get(&key).is_some_and(|t| t.uploaded_bytes > 0)
        })
        .map_or(0, |s| s.torrents[&key].uploaded_bytes);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut from_tr = tr.uploaded_bytes(&fx.info_hash);
    while from_tr == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        from_tr = tr.uploaded_bytes(&fx.info_hash);
    }
    eprintln!("libtorrent sent {from_lt} bytes, Transmission {from_tr}");
    assert!(
        from_lt > 0 && from_tr > 0,
        "both seeders served: {from_lt} / {from_tr}"
    );
}

#[test]
fn a_file_selection_downloads_only_the_selected_files() {
    let dir = tempfile::tempdir().unwrap();
    // 64 KiB pieces and odd sizes: pieces straddle file boundaries.
    let files = [
        ("a.bin", 300_001),
        ("sub/deep/b.bin", 500_000),
        ("c.txt", 17),
        ("sub/d.bin", 700_003),
    ];
    // A tracker that names no peer, to see what dlm announces.
    let tracker = StaticTracker::start(&[]);
    let Some(fx) = TorrentSpec::multi_file("picked", &files)
        .with_tracker(&tracker.announce_url())
        .with_piece_len_log2(16)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx)) else {
        return;
    };
    let m = dlm_bittorrent::Metainfo::from_file(&fx.torrent_path).unwrap();
    // Select b.bin and c.txt by their numbers in the torrent's own order.
    let number = |suffix: &str| {
        1 + m
            .files
            .iter()
            .position(|f| f.path.ends_with(suffix))
            .unwrap()
    };
    let selection = format!("{},{}", number("sub/deep/b.bin"), number("c.txt"));
    let out = dir.path().join("out");
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    let torrent = fx.torrent_path.to_str().unwrap().to_string();
    run(dlm_get(
        "dlm get",
        &[
            &torrent,
            "--peer",
            &peer,
            "--select-file",
            &selection,
            "-d",
            out.to_str().unwrap(),
        ],
    ));
    for f in &fx.files {
        let got = fx.file_path_in(&out, f);
        let picked = got.ends_with("sub/deep/b.bin") || got.ends_with("c.txt");
        if picked {
            assert_eq!(
                dlm_tests::sha256_file(&got).unwrap(),
                f.sha256,
                "{}",
                got.display()
            );
        } else {
            assert!(!got.exists(), "{} was not selected", got.display());
        }
    }
    assert!(
        std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with('.')),
        "no parts file or resume state left"
    );
    // BEP 3 `left`: the selected files' pieces only, not the whole torrent.
    let started = tracker
        .requests()
        .into_iter()
        .find(|r| r.contains("event=started") && r.contains("peer_id=-DL0100-"))
        .expect("dlm's started announce");
    let left: u64 = started
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("left="))
        .and_then(|v| v.parse().ok())
        .expect("left=");
    assert!(
        (500_017..fx.total_len).contains(&left),
        "left={left} of {} bytes: {started}",
        fx.total_len
    );
}

/// A peer that handshakes, says it has every piece, unchokes, then sends
/// only keep-alives (every 100 ms) and never a block: no real client does
/// that, so a loopback socket plays it. Returns its port.
async fn keep_alive_only_peer(info_hash: [u8; 20], pieces: u64) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut theirs = [0u8; 68];
                if stream.read_exact(&mut theirs).await.is_err() {
                    return;
                }
                let mut out = Vec::new();
                out.push(19u8);
                out.extend_from_slice(b"BitTorrent protocol");
                out.extend_from_slice(&[0; 8]);
                out.extend_from_slice(&info_hash);
                out.extend_from_slice(b"-KA0001-keepalive!!!");
                let bitfield_len = pieces.div_ceil(8) as usize;
                let mut bitfield = vec![0xffu8; bitfield_len];
                let spare = (bitfield_len * 8) as u64 - pieces;
                if let Some(last) = bitfield.last_mut() {
                    *last = 0xffu8 << spare;
                }
                out.extend_from_slice(&(1 + bitfield_len as u32).to_be_bytes());
                out.push(5);
                out.extend_from_slice(&bitfield);
                out.extend_from_slice(&[0, 0, 0, 1, 1]); // unchoke
                if stream.write_all(&out).await.is_err() {
                    return;
                }
                let (mut read, mut write) = stream.into_split();
                // Whatever dlm sends (interested, requests) is read and ignored.
                tokio::spawn(async move {
                    let mut sink = [0u8; 4096];
                    while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
                });
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if write.write_all(&[0, 0, 0, 0]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn a_peer_that_unchokes_then_sends_only_keep_alives_is_dropped_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("alive.bin", 6 << 20)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(18)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    // Throttled, so the download lasts well past the 1 s idle timeout.
    let Some(good) =
        LibtorrentPeer::start(LibtorrentOptions::seeding(&fx).with_upload_limit(2 << 20))
    else {
        return;
    };
    let out = dir.path().join("out");
    let torrent = fx.torrent_path.to_str().unwrap().to_string();
    let good = SocketAddr::V4(good.addr()).to_string();
    let result = run(async {
        let port = keep_alive_only_peer(fx.info_hash, fx.num_pieces()).await;
        let idle = format!("127.0.0.1:{port}");
        tokio::process::Command::from(dlm_command())
            .args([
                "get",
                &torrent,
                "--peer",
                &idle,
                "--peer",
                &good,
                "-c",
                "4",
                "-O",
                "bittorrent.idle_timeout=1s",
                "--quiet",
                "-d",
            ])
            .arg(&out)
            .env("DLM_LOG", "dlm_bittorrent=debug")
            .kill_on_drop(true)
            .output()
            .await
            .map(|o| (o, idle))
            .unwrap()
    });
    let (result, idle) = result;
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    fx.check_download(&out).unwrap();
    let dropped = stderr
        .lines()
        .any(|l| l.contains(&format!("peer {idle}: nothing for 1 s")));
    assert!(dropped, "the keep-alive-only peer was dropped: {stderr}");
}

#[test]
fn a_torrent_of_more_files_than_the_process_may_open_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..150)
        .map(|i| format!("d{}/f{i:03}.bin", i % 7))
        .collect();
    let files: Vec<(&str, u64)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), 1_000 + i as u64 * 97))
        .collect();
    let Some(fx) = TorrentSpec::multi_file("many", &files)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(15)
        .create(&dir.path().join("seed"))
    else {
        return;
    };
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx)) else {
        return;
    };
    let out = dir.path().join("out");
    let peer = SocketAddr::V4(seeder.addr()).to_string();
    // 64 open files at most, soft and hard: 150 files cannot all be open, nor the limit raised.
    let status = run(async {
        tokio::process::Command::new("prlimit")
            .arg("--nofile=64:64")
            .arg("--")
            .arg(dlm_tests::dlm_binary())
            .args(["get", fx.torrent_path.to_str().unwrap(), "--peer", &peer])
            .args(["-d", out.to_str().unwrap(), "--no-netrc", "--quiet"])
            .env(dlm_tests::cli::NO_PORT_MAPPING_ENV, "1")
            .kill_on_drop(true)
            .output()
            .await
            .unwrap()
    });
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    fx.check_download(&out).unwrap();
}
