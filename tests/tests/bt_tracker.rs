//! dlm-bittorrent's metainfo and tracker clients against real programs on
//! 127.0.0.1: `.torrent` files made by mktorrent (info-hashes computed
//! independently of dlm) and opentracker over HTTP (BEP 3, 23) and UDP
//! (BEP 15).

use std::time::Duration;

use dlm_bittorrent::tracker::{AnnounceEvent, AnnounceRequest, PeerId, TrackerTiers, UdpTiming};
use dlm_bittorrent::{InfoHash, Metainfo};
use dlm_tests::bt::{NO_TRACKER, TorrentSpec, Tracker};

const TEST_TIMEOUT: Duration = Duration::from_secs(60);

fn run<T>(body: impl std::future::Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body)
}

#[test]
fn metainfo_from_mktorrent_matches_its_info_hash_and_layout() {
    let dir = tempfile::tempdir().unwrap();
    let specs = [
        TorrentSpec::single_file("single.bin", 300_001).with_tracker(NO_TRACKER),
        TorrentSpec::multi_file(
            "tree",
            &[("a.bin", 40_000), ("sub/dir/b.bin", 70_000), ("c.txt", 3)],
        )
        .with_tier(&["http://127.0.0.1:1/announce", "udp://127.0.0.1:1/announce"]),
    ];
    for spec in specs {
        let Some(fx) = spec.create(dir.path()) else {
            return;
        };
        let m = Metainfo::from_file(&fx.torrent_path).unwrap();
        assert_eq!(m.info_hash, InfoHash(fx.info_hash), "{}", fx.name);
        assert_eq!(m.total_length, fx.total_len);
        assert_eq!(m.piece_length, fx.piece_len);
        assert_eq!(m.piece_count() as u64, fx.num_pieces());
        // mktorrent orders files its own way: match them by path.
        assert_eq!(m.files.len(), fx.files.len());
        let mut offset = 0;
        for f in &m.files {
            let want = fx
                .files
                .iter()
                .find(|w| fx.file_path_in(&fx.data_dir, w) == fx.data_dir.join(&f.path))
                .unwrap_or_else(|| panic!("{} is not in the fixture", f.path.display()));
            assert_eq!(f.length, want.len, "{}", f.path.display());
            assert_eq!(f.offset, offset);
            offset += f.length;
        }
    }
}

fn request(info_hash: InfoHash, port: u16, event: Option<AnnounceEvent>) -> AnnounceRequest {
    AnnounceRequest {
        info_hash,
        peer_id: PeerId::random(),
        port,
        uploaded: 0,
        downloaded: 0,
        left: 1000,
        event,
        num_want: Some(50),
        key: fastrand::u32(..),
    }
}

#[test]
fn announces_over_http_and_udp_find_each_other() {
    let Some(tracker) = Tracker::start() else {
        return;
    };
    let client = dlm_http::HttpClient::new(dlm_http::HttpConfig::default()).unwrap();
    run(async {
        for (kind, url) in [
            ("http", tracker.announce_http()),
            ("udp", tracker.announce_udp()),
        ] {
            // A fresh swarm per protocol: opentracker keeps peers listed.
            let info_hash = InfoHash(std::array::from_fn(|_| fastrand::u8(..)));
            tracker.allow(&info_hash.to_hex());
            let mut tiers =
                TrackerTiers::new(&[vec![url.clone()]], &client).with_udp_timing(UdpTiming {
                    base: Duration::from_millis(500),
                    max_retries: 3,
                });
            let (used, first) = tiers
                .announce(&request(info_hash, 7001, Some(AnnounceEvent::Started)))
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert!(used.starts_with(kind), "{used}");
            assert!(first.interval > 0, "{kind}: {first:?}");
            let (_, second) = tiers
                .announce(&request(info_hash, 7002, Some(AnnounceEvent::Started)))
                .await
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert!(
                second.peers.contains(&"127.0.0.1:7001".parse().unwrap()),
                "{kind}: the second peer learns the first: {second:?}"
            );
        }
        // A swarm the tracker does not serve: a failure, not retried.
        let stranger = InfoHash([0x5a; 20]);
        let mut tiers = TrackerTiers::new(&[vec![tracker.announce_http()]], &client);
        let err = tiers
            .announce(&request(stranger, 7003, None))
            .await
            .unwrap_err();
        let err: dlm_core::Error = err.into();
        assert!(!err.is_retryable(), "{err}");
    });
}

#[test]
fn a_udp_tracker_that_never_answers_gives_up_after_its_retransmissions() {
    // A bound socket that reads nothing: every datagram is lost.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "udp://127.0.0.1:{}/announce",
        silent.local_addr().unwrap().port()
    );
    let client = dlm_http::HttpClient::new(dlm_http::HttpConfig::default()).unwrap();
    run(async {
        let mut tiers = TrackerTiers::new(&[vec![url]], &client).with_udp_timing(UdpTiming {
            base: Duration::from_millis(50),
            max_retries: 2,
        });
        let err = tiers
            .announce(&request(InfoHash([1; 20]), 7004, None))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no reply after 3 attempts"),
            "{err}"
        );
        assert!(dlm_core::Error::from(err).is_retryable());
    });
}
