//! Checks the BitTorrent test peers with third-party clients only (no dlm code): opentracker over HTTP and UDP,
//! libtorrent as seeder and leecher, Transmission and aria2c as seeders, aria2c as leecher, torrents made by
//! mktorrent, the fixed-answer tracker, and the status the libtorrent peer reports (per-peer bytes and pieces).
//!
//! Each test skips when a peer program is missing (fails under `DLM_REQUIRE_PEERS=1`). Timeouts bound hangs
//! only; nothing asserts a speed.

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::time::Duration;

use dlm_tests::{
    Aria2Leecher, Aria2Options, Aria2Seeder, LibtorrentOptions, LibtorrentPeer, LtPeerStats,
    StaticTracker, TorrentFixture, TorrentSpec, Tracker, TransmissionSeeder,
};

/// Bounds one download (a hang fails instead of blocking CI).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Bounds waiting for a seeder to show up at the tracker.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(10);

const MIB: u64 = 1 << 20;

/// A temp dir holding a fixture (payload under `data/`, the `.torrent` beside it).
fn fixture(spec: &TorrentSpec) -> Option<(tempfile::TempDir, TorrentFixture)> {
    let dir = tempfile::tempdir().unwrap();
    let fixture = spec.create(dir.path())?;
    Some((dir, fixture))
}

/// A tree with nested directories, an empty file and files that do not end on a piece boundary.
fn tree_spec(name: &str, seed: u64) -> TorrentSpec {
    TorrentSpec::multi_file(
        name,
        &[
            ("a.bin", 3 * MIB + 5),
            ("sub/b.bin", 700_001),
            ("sub/deeper/c.bin", 2 * MIB),
            ("sub/empty.txt", 0),
            ("z.txt", 123),
        ],
    )
    .with_piece_len_log2(15)
    .with_seed(seed)
}

fn assert_aria2_ok(leecher: &mut Aria2Leecher, what: &str) {
    let status = leecher.wait(DOWNLOAD_TIMEOUT);
    assert!(
        status.is_some_and(|s| s.success()),
        "aria2c {what}: {status:?}\n--- output ---\n{}\n--- log (tail) ---\n{}",
        leecher.output(),
        tail(&leecher.log(), 40)
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn torrent_fixture_is_reproducible_and_names_its_trackers() {
    let spec = tree_spec("tree", 3)
        .with_tracker("http://127.0.0.1:1/announce")
        .with_tier(&["udp://127.0.0.1:2/announce", "http://127.0.0.1:3/announce"]);
    let Some((_a, first)) = fixture(&spec) else {
        return;
    };
    let (_b, second) = fixture(&spec).unwrap();
    assert_eq!(first.info_hash, second.info_hash);
    assert_eq!(first.torrent_bytes(), second.torrent_bytes());
    let (_c, other) = fixture(&tree_spec("tree", 4)).unwrap();
    assert_ne!(first.info_hash, other.info_hash);
    assert_eq!(first.total_len, 3 * MIB + 5 + 700_001 + 2 * MIB + 123);
    assert_eq!(first.num_pieces(), first.total_len.div_ceil(1 << 15));
    let bytes = first.torrent_bytes();
    let text = String::from_utf8_lossy(&bytes);
    let text = &text[..text.find("6:pieces").expect("a pieces key")];
    assert!(
        text.contains("8:announce27:http://127.0.0.1:1/announce"),
        "{text}"
    );
    assert!(
        text.contains(
            "13:announce-listll27:http://127.0.0.1:1/announceel26:udp://127.0.0.1:2/announce\
             27:http://127.0.0.1:3/announceee"
        ),
        "{text}"
    );
    assert!(text.contains("4:pathl3:sub6:deeper5:c.bine"), "{text}");
    assert!(text.contains("12:piece lengthi32768e"), "{text}");
    assert!(first.magnet().starts_with(&format!(
        "magnet:?xt=urn:btih:{}&dn=tree&tr=http%3A%2F%2F127.0.0.1%3A1%2Fannounce",
        first.info_hash_hex()
    )));
    first.check_download(&first.data_dir).unwrap();
}

/// aria2c downloads a 16 MiB single file from a libtorrent seeder found through opentracker's HTTP announce.
/// libtorrent keys its torrents by the info-hash the fixture computed, and counts every byte it sent to aria2c.
#[test]
fn aria2c_downloads_from_libtorrent_via_http_tracker() {
    let Some(tracker) = Tracker::start() else {
        return;
    };
    let spec = TorrentSpec::single_file("single.bin", 16 * MIB)
        .with_tracker(&tracker.announce_http())
        .with_seed(11);
    let Some((dir, fixture)) = fixture(&spec) else {
        return;
    };
    tracker.allow(&fixture.info_hash_hex());
    let Some(mut seeder) = LibtorrentPeer::start(LibtorrentOptions::default().with_seed(&fixture))
    else {
        return;
    };
    assert!(
        tracker.wait_for_seeders(&fixture.info_hash, 1, ANNOUNCE_TIMEOUT),
        "the libtorrent seeder did not announce\n{}",
        seeder.log()
    );
    let out = dir.path().join("aria2");
    let Some(mut leecher) =
        Aria2Leecher::start(&fixture.torrent_path, &out, &Aria2Options::default())
    else {
        return;
    };
    assert_aria2_ok(&mut leecher, "from libtorrent over HTTP tracker");
    fixture.check_download(&out).unwrap();

    // Per-peer counts come from alerts and may trail aria2c's exit by one status write (0.2 s).
    let key = fixture.info_hash_hex();
    let is_aria2 = |p: &&LtPeerStats| p.client.as_deref().is_some_and(|c| c.contains("aria2"));
    let status = seeder
        .wait_until(ANNOUNCE_TIMEOUT, |s| {
            s.torrents.get(&key).is_some_and(|t| {
                t.peers
                    .values()
                    .filter(is_aria2)
                    .map(|p| p.uploaded_bytes)
                    .sum::<u64>()
                    >= fixture.total_len
            })
        })
        .unwrap_or_else(|| panic!("libtorrent's status: {:#?}", seeder.status()));
    let status = &status.torrents[&key];
    assert!(status.is_seeding, "{status:?}");
    let aria2 = status.peers.values().find(is_aria2).unwrap();
    // aria2c connects to the seeder and sends BEP 10's extension bit (43) and BEP 6's fast bit (61).
    assert_eq!(aria2.outgoing, Some(false), "{aria2:?}");
    let reserved = aria2.reserved.as_deref().unwrap_or_default().as_bytes();
    assert_eq!(
        (reserved.get(43), reserved.get(61)),
        (Some(&b'1'), Some(&b'1')),
        "{aria2:?}"
    );
    assert_eq!(aria2.uploaded_pieces.len() as u64, fixture.num_pieces());
    assert!(
        aria2.requests.iter().all(|r| r[2] <= 16 * 1024),
        "aria2c asked for > 16 KiB"
    );
    let stats = tracker.scrape(&fixture.info_hash);
    assert!(stats.complete >= 1, "{stats:?}");
}

/// aria2c downloads a multi-file tree (nested directories, an empty file) from a libtorrent seeder found
/// through opentracker's UDP announce (aria2c needs its DHT on for UDP trackers).
#[test]
fn aria2c_downloads_a_tree_from_libtorrent_via_udp_tracker() {
    let Some(tracker) = Tracker::start() else {
        return;
    };
    let spec = tree_spec("tree", 21).with_tracker(&tracker.announce_udp());
    let Some((dir, fixture)) = fixture(&spec) else {
        return;
    };
    tracker.allow(&fixture.info_hash_hex());
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::default().with_seed(&fixture))
    else {
        return;
    };
    assert!(
        tracker.wait_for_seeders(&fixture.info_hash, 1, ANNOUNCE_TIMEOUT),
        "the libtorrent seeder did not announce over UDP\n{}",
        seeder.log()
    );
    let out = dir.path().join("aria2");
    let Some(mut leecher) = Aria2Leecher::start(
        &fixture.torrent_path,
        &out,
        &Aria2Options::default().with_dht(true),
    ) else {
        return;
    };
    assert_aria2_ok(&mut leecher, "from libtorrent over UDP tracker");
    fixture.check_download(&out).unwrap();
    assert!(
        leecher.log().contains("UDPT received ANNOUNCE reply"),
        "aria2c did not use the UDP tracker"
    );
}

/// A libtorrent leecher downloads from two rate-limited libtorrent seeders and its status shows bytes from
/// each; the seeders' own counts agree.
#[test]
fn libtorrent_leecher_reports_bytes_per_seeder() {
    let Some(tracker) = Tracker::start() else {
        return;
    };
    let spec = TorrentSpec::single_file("two.bin", 4 * MIB)
        .with_tracker(&tracker.announce_http())
        .with_piece_len_log2(15)
        .with_seed(31);
    let Some((dir, fixture)) = fixture(&spec) else {
        return;
    };
    tracker.allow(&fixture.info_hash_hex());
    let seeder_options = LibtorrentOptions::default()
        .with_seed(&fixture)
        .with_upload_limit(2 * MIB);
    let Some(seed_a) = LibtorrentPeer::start(seeder_options.clone()) else {
        return;
    };
    let seed_b = LibtorrentPeer::start(seeder_options).unwrap();
    assert!(tracker.wait_for_seeders(&fixture.info_hash, 2, ANNOUNCE_TIMEOUT));
    let out = dir.path().join("leech");
    fs::create_dir(&out).unwrap();
    let mut leecher =
        LibtorrentPeer::start(LibtorrentOptions::default().with_leech(&fixture.torrent_path, &out))
            .unwrap();
    assert!(
        leecher.wait_complete(&fixture.info_hash, DOWNLOAD_TIMEOUT),
        "{}",
        leecher.log()
    );
    fixture.check_download(&out).unwrap();

    // Per-peer counts come from alerts and may trail completion by one status write (0.2 s).
    let key = fixture.info_hash_hex();
    let status = leecher
        .wait_until(ANNOUNCE_TIMEOUT, |s| {
            s.torrents[&key]
                .peers
                .values()
                .map(|p| p.downloaded_bytes)
                .sum::<u64>()
                >= fixture.total_len
        })
        .unwrap_or_else(|| panic!("per-peer counts never added up: {:#?}", leecher.status()));
    let peers = &status.torrents[&key].peers;
    let from = |seeder: &LibtorrentPeer| -> u64 {
        peers
            .get(&seeder.addr().to_string())
            .map_or(0, |p| p.downloaded_bytes)
    };
    let (a, b) = (from(&seed_a), from(&seed_b));
    assert!(
        a > 0 && b > 0,
        "bytes from each seeder: {a}, {b}; peers {peers:#?}"
    );
    // In end-game mode a block may arrive from both seeders.
    assert!(a + b >= fixture.total_len, "{a} + {b}");
}

/// A leecher that starts with the first half of the file resumes: it connects straight to the seeder (no
/// tracker), and the seeder uploads only pieces from the missing half.
#[test]
fn libtorrent_resume_fetches_only_missing_pieces() {
    let spec = TorrentSpec::single_file("resume.bin", 4 * MIB)
        .with_piece_len_log2(16)
        .with_seed(41);
    let Some((dir, fixture)) = fixture(&spec) else {
        return;
    };
    let Some(mut seeder) = LibtorrentPeer::start(LibtorrentOptions::default().with_seed(&fixture))
    else {
        return;
    };
    let out = dir.path().join("leech");
    fs::create_dir(&out).unwrap();
    let full = fs::read(fixture.data_dir.join(&fixture.name)).unwrap();
    let half = full.len() / 2;
    fs::write(out.join(&fixture.name), &full[..half]).unwrap();
    let mut leecher = LibtorrentPeer::start(
        LibtorrentOptions::default()
            .with_leech(&fixture.torrent_path, &out)
            .with_connect(SocketAddr::from(seeder.addr()))
            .with_exit_when_complete(true),
    )
    .unwrap();
    let exit = leecher.wait_exit(DOWNLOAD_TIMEOUT);
    assert!(
        exit.is_some_and(|s| s.success()),
        "{exit:?}\n{}",
        leecher.log()
    );
    fixture.check_download(&out).unwrap();

    let first_missing = (half as u64 / fixture.piece_len) as u32;
    let missing_bytes = fixture.total_len - half as u64;
    // The seeder's counts come from alerts and may trail the leecher's completion by one status write.
    let key = fixture.info_hash_hex();
    let status = seeder
        .wait_until(ANNOUNCE_TIMEOUT, |s| {
            s.torrents[&key].uploaded_to("") >= missing_bytes
        })
        .unwrap_or_else(|| panic!("seeder status: {:#?}", seeder.status()));
    let sent = &status.torrents[&key];
    let pieces: BTreeSet<u32> = sent
        .peers
        .values()
        .flat_map(|p| p.uploaded_pieces.iter().copied())
        .collect();
    let missing: BTreeSet<u32> = (first_missing..fixture.num_pieces() as u32).collect();
    assert_eq!(pieces, missing);
    assert_eq!(sent.uploaded_to(""), missing_bytes);
}

/// libtorrent leeches from an aria2c seeder it is told to connect to.
#[test]
fn libtorrent_downloads_from_aria2c_seeder() {
    let spec = tree_spec("from-aria2", 51);
    let Some((dir, fixture)) = fixture(&spec) else {
        return;
    };
    let Some(seeder) = Aria2Seeder::start(&fixture, &Aria2Options::default()) else {
        return;
    };
    let out = dir.path().join("leech");
    fs::create_dir(&out).unwrap();
    let Some(mut leecher) = LibtorrentPeer::start(
        LibtorrentOptions::default()
            .with_leech(&fixture.torrent_path, &out)
            .with_connect(SocketAddr::from(seeder.addr())),
    ) else {
        return;
    };
    assert!(
        leecher.wait_complete(&fixture.info_hash, DOWNLOAD_TIMEOUT),
        "{}\n--- aria2c ---\n{}",
        leecher.log(),
        tail(&seeder.log(), 40)
    );
    fixture.check_download(&out).unwrap();
}

/// aria2c downloads from Transmission, pointed at it by a fixed-answer tracker; Transmission's RPC reports
/// the upload. Transmission is slow on loopback (~10-20 s for these 8 MiB and 16 MiB alike).
#[test]
fn aria2c_downloads_from_transmission_via_static_tracker() {
    let spec = TorrentSpec::single_file("transmission.bin", 8 * MIB)
        .with_tracker("http://127.0.0.1:9/announce")
        .with_seed(61);
    let Some((dir, fixture)) = fixture(&spec) else {
        return;
    };
    let Some(transmission) = TransmissionSeeder::start() else {
        return;
    };
    transmission.seed(&fixture);
    let tracker = StaticTracker::start(&[transmission.addr()]);
    let out = dir.path().join("aria2");
    let Some(mut leecher) = Aria2Leecher::start(
        &fixture.torrent_path,
        &out,
        &Aria2Options::default().only_tracker(&tracker.announce_url()),
    ) else {
        return;
    };
    assert_aria2_ok(&mut leecher, "from Transmission");
    fixture.check_download(&out).unwrap();
    let announces = tracker.requests();
    assert!(
        announces
            .iter()
            .any(|r| r.contains("event=started") && r.contains("info_hash=")),
        "{announces:?}"
    );
    // Transmission refreshes its counters about once a second.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while transmission.uploaded_bytes(&fixture.info_hash) < fixture.total_len {
        assert!(
            std::time::Instant::now() < deadline,
            "Transmission reports {} bytes uploaded",
            transmission.uploaded_bytes(&fixture.info_hash)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
