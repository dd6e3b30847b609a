//! dlm-bittorrent's peer connection against real seeders on 127.0.0.1:
//! handshake, bitfield, interest, unchoke and pipelined block requests,
//! every piece checked against the metainfo's SHA-1.

use std::time::Duration;

use dlm_bittorrent::Metainfo;
use dlm_bittorrent::peer::{PeerConnection, PeerState, PieceCounts, Uploads};
use dlm_bittorrent::tracker::PeerId;
use dlm_tests::bt::{LibtorrentOptions, LibtorrentPeer, NO_TRACKER, TorrentSpec};
use sha1::{Digest, Sha1};

const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const IDLE: Duration = Duration::from_secs(20);

fn run<T>(body: impl std::future::Future<Output = T>) -> T {
    dlm_tests::runtime::e2e(TEST_TIMEOUT, body)
}

#[test]
fn every_piece_of_a_libtorrent_seed_arrives_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fx) = TorrentSpec::single_file("seeded.bin", (4 << 20) + 12_345)
        .with_tracker(NO_TRACKER)
        .with_piece_len_log2(18)
        .create(dir.path())
    else {
        return;
    };
    let Some(seeder) = LibtorrentPeer::start(LibtorrentOptions::seeding(&fx)) else {
        return;
    };
    let m = Metainfo::from_file(&fx.torrent_path).unwrap();
    let payload = std::fs::read(fx.file_path_in(&fx.data_dir, &fx.files[0])).unwrap();
    run(async {
        let m = std::sync::Arc::new(m);
        let counts = std::sync::Arc::new(PieceCounts::new(m.piece_count()));
        let state = PeerState::new(std::net::SocketAddr::V4(seeder.addr()), counts.clone());
        let mut peer = PeerConnection::connect(
            std::sync::Arc::new(state),
            std::sync::Arc::new(Uploads::new(m.clone(), None)),
            m.info_hash,
            PeerId::random(),
            dlm_bittorrent::Encryption::default(),
            IDLE,
        )
        .await
        .unwrap();
        peer.wait_for_pieces(IDLE).await.unwrap();
        assert_eq!(counts.get(0), 1, "the seed's pieces are counted");
        for i in 0..m.piece_count() {
            assert!(peer.has(i), "the seed has piece {i}");
            let len = m.piece_len(i) as u32;
            let piece = peer.fetch_piece(i as u32, len, IDLE).await.unwrap();
            assert_eq!(
                <[u8; 20]>::from(Sha1::digest(&piece)),
                m.pieces[i],
                "piece {i}"
            );
            let start = i * m.piece_length as usize;
            assert_eq!(
                &piece[..],
                &payload[start..start + len as usize],
                "piece {i}"
            );
        }
    });
}
