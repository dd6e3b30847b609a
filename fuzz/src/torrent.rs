//! BitTorrent: bencode, metainfo (`.torrent`), the peer wire, tracker
//! replies over HTTP and UDP.

use std::path::{Component, Path};

use bytes::BytesMut;
use dlm_bittorrent::InfoHash;
use dlm_bittorrent::metainfo_v2;
use dlm_bittorrent::tracker;
use dlm_bittorrent::wire::{HANDSHAKE_LEN, Handshake, HashRequest, Message};

/// The bencode scanner (BEP 3) on arbitrary bytes. Input: bencoded bytes.
///
/// Checks: none beyond not panicking (no overflow, no out-of-bounds).
pub fn bencode(data: &[u8]) {
    let _ = dlm_bittorrent::bencode::validate(data);
    let _ = dlm_bittorrent::bencode::dict_value(data, b"info");
}

/// `.torrent` files (BEP 3; BEP 52 v2-only and hybrid, with BEP 47 padding
/// files; seeds `v2-*` and `hybrid-*` made by libtorrent 2.1.1's
/// `create_torrent`) through `Metainfo::from_bytes`. Input: the file.
///
/// Checks: what parses describes one consistent byte space (files in order,
/// not overlapping, inside the total, padding only between or after them;
/// v2 files each on a piece boundary; the piece count covers it) with
/// relative paths that stay inside the destination.
pub fn metainfo(data: &[u8]) {
    let Ok(m) = dlm_bittorrent::Metainfo::from_bytes(data) else {
        return;
    };
    let mut end = 0;
    for f in &m.files {
        assert!(f.offset >= end, "{:?} overlaps", f.path);
        end = f.offset + f.length;
        if m.meta_version != dlm_bittorrent::MetaVersion::V1 && f.length > 0 {
            assert_eq!(f.offset % m.piece_length, 0, "{:?}", f.path);
            assert!(f.pieces_root.is_some());
        }
    }
    assert!(end <= m.total_length);
    assert_eq!(
        m.piece_count() as u64,
        m.total_length.div_ceil(m.piece_length)
    );
    for f in &m.files {
        assert!(normal_components_only(&f.path), "{:?}", f.path);
    }
}

fn normal_components_only(p: &Path) -> bool {
    p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Peer wire (BEP 3, BEP 10, BEP 52 hash messages): a handshake from the
/// first 68 bytes, and the whole input as a message stream. The first byte
/// also sets the bitfield length expected (× 64 bytes).
///
/// Checks: every message decoded encodes back to bytes that decode to it.
/// A `hash request` or `hash reject` is answered from a made-up piece layer
/// (its `index % 64 + 1` hashes, pieces of `16 KiB << base layer % 4`): an
/// answer whose proof reaches the root proves out against that layer's
/// root; a `hashes` message is checked against its own pieces root without
/// panicking.
pub fn wire(data: &[u8]) {
    if let Some(hs) = data.get(..HANDSHAKE_LEN) {
        let hs: &[u8; HANDSHAKE_LEN] = hs.try_into().expect("68 bytes");
        let _ = Handshake::decode(hs, None);
    }
    let bitfield_len = data.first().map_or(0, |b| usize::from(*b) * 64);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(m)) = Message::decode(&mut buf, bitfield_len) {
        let mut again = BytesMut::new();
        m.encode(&mut again);
        assert_eq!(
            Message::decode(&mut again, bitfield_len).ok().flatten(),
            Some(m.clone())
        );
        match &m {
            Message::HashRequest(r) | Message::HashReject(r) => hash_request(r),
            Message::Hashes { request: r, hashes } => {
                let length = (u64::from(r.index) + 1) << 14;
                let _ = metainfo_v2::verify_hashes(
                    &r.pieces_root,
                    length,
                    r.base_layer,
                    r.index,
                    r.length,
                    r.proof_layers,
                    hashes,
                );
            }
            _ => {}
        }
    }
}

/// Answers `r` from a made-up piece layer and checks the proof (see [`wire`]).
fn hash_request(r: &HashRequest) {
    let piece_length = 16384u64 << (r.base_layer % 4);
    let n = (r.index % 64) as usize + 1;
    let layer: Vec<[u8; 32]> = (0..n).map(|i| [i as u8; 32]).collect();
    let file_length = n as u64 * piece_length;
    let Some(answer) = metainfo_v2::answer_hashes(
        &layer,
        file_length,
        piece_length,
        r.base_layer,
        r.index,
        r.length,
        r.proof_layers,
    ) else {
        return;
    };
    let layers = metainfo_v2::tree_layers(file_length);
    let reaches_root = r.base_layer + (r.proof_layers + 1).max(r.length.trailing_zeros()) == layers;
    if reaches_root {
        let pad = metainfo_v2::merkle_root(&[], (piece_length / 16384) as usize, [0; 32]);
        let root = metainfo_v2::merkle_root(&layer, layer.len(), pad);
        assert!(
            metainfo_v2::verify_hashes(
                &root,
                file_length,
                r.base_layer,
                r.index,
                r.length,
                r.proof_layers,
                &answer
            )
            .is_some(),
            "our answer to {r:?} does not prove out"
        );
    }
}

/// HTTP tracker replies (BEP 3, compact peers BEP 23, IPv6 peers BEP 7).
/// Input: the reply body; also read as compact IPv4 and IPv6 peer lists.
///
/// Checks: a compact list yields at most one peer per whole entry.
pub fn tracker_reply(data: &[u8]) {
    let _ = tracker::parse_http_reply("http://tracker.example/announce", data);
    assert!(tracker::parse_compact_v4(data).len() <= data.len() / 6);
    assert!(tracker::parse_compact_v6(data).len() <= data.len() / 18);
}

/// UDP tracker replies (BEP 15): the datagram as a connect reply and as an
/// announce reply from an IPv4 and from an IPv6 tracker. Input: the
/// datagram.
///
/// Checks: the connection ID is bytes 8..16; an announce reply's interval,
/// leechers and seeders are its big-endian words at 8, 12 and 16, and it
/// yields at most one peer per whole entry after byte 20.
pub fn tracker_udp(data: &[u8]) {
    if let Some(id) = tracker::parse_connect_reply(data) {
        assert_eq!(&id[..], &data[8..16]);
    }
    let word = |i: usize| u32::from_be_bytes(data[i..i + 4].try_into().expect("4 bytes"));
    for (ipv6, entry) in [(false, 6), (true, 18)] {
        if let Some(r) = tracker::parse_announce_reply(data, ipv6) {
            assert_eq!(r.interval, word(8));
            assert_eq!(r.incomplete, Some(word(12)));
            assert_eq!(r.complete, Some(word(16)));
            assert!(r.peers.len() <= (data.len() - 20) / entry);
        }
    }
}

/// The extension protocol (BEP 10): the input as an extended handshake, a
/// `ut_metadata` message (BEP 9) and a `ut_pex` message (BEP 11).
///
/// Checks: what decodes encodes back to bytes that decode to the same
/// message; a `ut_metadata` data message's bytes are what follows its
/// dictionary; a `ut_pex` message keeps at most `MAX_PEX_READ` added peers.
pub fn bt_extension(data: &[u8]) {
    use dlm_bittorrent::extension::ExtendedHandshake;
    use dlm_bittorrent::extension::ut_metadata::MetadataMessage;
    use dlm_bittorrent::extension::ut_pex::{MAX_PEX_READ, PexMessage};
    if let Ok(h) = ExtendedHandshake::decode(data) {
        let again = ExtendedHandshake::decode(&h.encode()).expect("re-encoded handshake");
        assert_eq!(again, h);
    }
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(m) = MetadataMessage::decode(&bytes) {
        if let MetadataMessage::Data { data: piece, .. } = &m {
            assert!(data.ends_with(piece));
        }
        let again = MetadataMessage::decode(&bytes::Bytes::from(m.encode()))
            .expect("re-encoded ut_metadata");
        assert_eq!(again, m);
    }
    if let Ok(m) = PexMessage::decode(data) {
        assert!(m.added.len() <= MAX_PEX_READ);
    }
}

/// Magnet links (BEP 9): the input as UTF-8 text.
///
/// Checks: a parsed link keeps its hint lists within `MAX_MAGNET_HINTS`.
pub fn magnet(data: &[u8]) {
    use dlm_bittorrent::magnet::{MAX_MAGNET_HINTS, MagnetLink};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = MagnetLink::parse(text) {
        assert!(m.trackers.len() <= MAX_MAGNET_HINTS);
        assert!(m.peers.len() <= MAX_MAGNET_HINTS);
        assert!(m.web_seeds.len() <= MAX_MAGNET_HINTS);
    }
}

/// The MSE/PE responder (`dlm_bittorrent::mse`, B's side of the
/// handshake). Input: byte 0 is the mode: bits 0-1 pick the policy (0
/// prefer, 1 require, else disable); with bit 7 clear, A's public key for
/// the private key of twenty 0x03 bytes is sent first, then the rest of the
/// input (so seeds made for the fixed keys reach the encrypted fields);
/// with bit 7 set, the rest is the whole stream. B's private key is twenty
/// 0x04 bytes and it serves the info-hash of twenty 0xAB bytes; what B
/// sends is discarded.
///
/// Checks: a handshake that succeeds names the served info-hash and obeys
/// the policy (RC4 under require, plaintext under disable), and the
/// payload stream after it reads to its end.
pub fn mse_respond(data: &[u8]) {
    use dlm_bittorrent::mse::{Encryption, dh::KeyPair, handshake::respond_keyed};
    use tokio::io::AsyncReadExt;
    const SERVED: InfoHash = InfoHash([0xAB; 20]);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let policy = match mode & 3 {
        0 => Encryption::Prefer,
        1 => Encryption::Require,
        _ => Encryption::Disable,
    };
    let mut input = Vec::with_capacity(96 + rest.len());
    if mode & 0x80 == 0 {
        input.extend_from_slice(KeyPair::from_private(&[3; 20]).public());
    }
    input.extend_from_slice(rest);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let io = tokio::io::join(&input[..], tokio::io::sink());
        let keys = KeyPair::from_private(&[4; 20]);
        if let Ok((mut s, info_hash)) = respond_keyed(io, &[SERVED], policy, Some(keys)).await {
            assert_eq!(info_hash, SERVED);
            match policy {
                Encryption::Require => assert!(s.is_encrypted()),
                Encryption::Disable => assert!(!s.is_encrypted()),
                _ => {}
            }
            let mut payload = Vec::new();
            let _ = s.read_to_end(&mut payload).await;
        }
    });
}

/// Local service discovery announces (BEP 14): the datagram.
///
/// Checks: a parsed announce names a port and 1..=`MAX_LSD_INFOHASHES`
/// info-hashes, and its encoding fits in one datagram and parses back to it.
pub fn lsd(data: &[u8]) {
    use dlm_bittorrent::lsd::{LsdAnnounce, MAX_LSD_INFOHASHES, MAX_LSD_MESSAGE};
    if let Some(m) = LsdAnnounce::parse(data) {
        assert!(m.port != 0);
        assert!((1..=MAX_LSD_INFOHASHES).contains(&m.info_hashes.len()));
        assert!(m.encode().len() <= MAX_LSD_MESSAGE);
        assert_eq!(LsdAnnounce::parse(&m.encode()).as_ref(), Some(&m));
    }
}
