//! Peer wire decoding on arbitrary bytes: handshakes and message streams.
#![no_main]

use bytes::BytesMut;
use dlm_bittorrent::wire::{HANDSHAKE_LEN, Handshake, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(hs) = data.get(..HANDSHAKE_LEN) {
        let hs: &[u8; HANDSHAKE_LEN] = hs.try_into().expect("68 bytes");
        let _ = Handshake::decode(hs, None);
    }
    let bitfield_len = data.first().map_or(0, |b| usize::from(*b) * 64);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(m)) = Message::decode(&mut buf, bitfield_len) {
        // Whatever decodes must encode back to a decodable message.
        let mut again = BytesMut::new();
        m.encode(&mut again);
        assert_eq!(Message::decode(&mut again, bitfield_len).ok().flatten(), Some(m));
    }
});
