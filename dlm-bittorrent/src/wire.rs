//! The peer wire protocol's framing (BEP 3): the 68-byte handshake and
//! length-prefixed messages, decoded incrementally with every length bounded
//! before anything is allocated.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::metainfo_v2::{MAX_HASH_REQUEST_LENGTH, MAX_TREE_LAYERS, Sha256Hash};
use crate::{InfoHash, tracker::PeerId};

/// `BitTorrent protocol`, the handshake's protocol string.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
/// Length of a handshake in bytes.
pub const HANDSHAKE_LEN: usize = 68;
/// The block size requested (BEP 3's de facto standard; larger requests are
/// refused by many clients).
pub const BLOCK_LEN: u32 = 16 << 10;
/// Largest block served to a peer, in bytes (clients ask 16 KiB; some up to 128 KiB).
pub const MAX_REQUEST_LEN: u32 = 128 << 10;
/// Largest message accepted apart from bitfields: a 128 KiB block plus its
/// header. Longer messages (other than a bitfield of the torrent's size)
/// end the connection before their body is read.
pub const MAX_MESSAGE_LEN: u32 = MAX_REQUEST_LEN + 9;
/// Body length of `hash request` and `hash reject` (BEP 52): the pieces
/// root and four 32-bit fields.
pub const HASH_REQUEST_LEN: u32 = 32 + 4 * 4;
/// Most hashes one `hashes` message carries (BEP 52): the base-layer
/// hashes of one request plus an uncle hash per tree layer.
pub const MAX_HASHES_PER_MESSAGE: u32 = MAX_HASH_REQUEST_LENGTH + MAX_TREE_LAYERS;

/// Why bytes from a peer are not protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Not a BitTorrent handshake.
    #[error("not a BitTorrent handshake")]
    BadHandshake,
    /// The peer is in another swarm.
    #[error("handshake for another torrent ({0})")]
    WrongInfoHash(InfoHash),
    /// A length above what the protocol allows.
    #[error("message of {0} bytes is longer than allowed")]
    TooLong(u32),
    /// A message whose length does not fit its id.
    #[error("message id {id} with a {len}-byte body")]
    BadLength {
        /// Message id.
        id: u8,
        /// Body length.
        len: u32,
    },
}

/// A handshake (BEP 3; reserved bits per BEP 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// Reserved bits; bit 20 from the right (`reserved[5] & 0x10`) is the
    /// extension protocol (BEP 10), bit 0 (`reserved[7] & 0x01`) the DHT (BEP 5).
    pub reserved: [u8; 8],
    /// The swarm.
    pub info_hash: InfoHash,
    /// The sender.
    pub peer_id: PeerId,
}

impl Handshake {
    /// Our handshake: the extension-protocol bit (BEP 10) and the
    /// BitTorrent v2 bit (BEP 52: we answer hash requests) set.
    pub fn ours(info_hash: InfoHash, peer_id: PeerId) -> Self {
        let mut reserved = [0u8; 8];
        reserved[5] |= 0x10;
        reserved[7] |= 0x10;
        Self {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// Whether the sender speaks the extension protocol (BEP 10).
    pub fn supports_extensions(&self) -> bool {
        self.reserved[5] & 0x10 != 0
    }

    /// Whether the sender speaks BitTorrent v2 (BEP 52: bit 4 of the last
    /// reserved byte, `reserved[7] & 0x10`), so it takes hash requests.
    pub fn supports_v2(&self) -> bool {
        self.reserved[7] & 0x10 != 0
    }

    /// The 68 bytes.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = 19;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id.0);
        out
    }

    /// Parses 68 bytes; `expected` checks the swarm.
    ///
    /// # Errors
    /// [`WireError::BadHandshake`], or [`WireError::WrongInfoHash`].
    pub fn decode(
        bytes: &[u8; HANDSHAKE_LEN],
        expected: Option<InfoHash>,
    ) -> Result<Self, WireError> {
        if bytes[0] != 19 || &bytes[1..20] != PROTOCOL {
            return Err(WireError::BadHandshake);
        }
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&bytes[20..28]);
        let mut ih = [0u8; 20];
        ih.copy_from_slice(&bytes[28..48]);
        let mut id = [0u8; 20];
        id.copy_from_slice(&bytes[48..68]);
        let info_hash = InfoHash(ih);
        if expected.is_some_and(|e| e != info_hash) {
            return Err(WireError::WrongInfoHash(info_hash));
        }
        Ok(Self {
            reserved,
            info_hash,
            peer_id: PeerId(id),
        })
    }
}

/// The fields shared by `hash request`, `hashes` and `hash reject` (BEP 52
/// "hash request"): which hashes of which file's Merkle tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashRequest {
    /// The file's `pieces root`: names the tree.
    pub pieces_root: Sha256Hash,
    /// The layer the hashes are taken from, counted up from the 16 KiB
    /// leaves (0); the piece layer is `log2(piece length / 16 KiB)`.
    pub base_layer: u32,
    /// The first hash's offset in the base layer.
    pub index: u32,
    /// How many base-layer hashes (a power of two; at most
    /// [`MAX_HASH_REQUEST_LENGTH`] are served).
    pub length: u32,
    /// How many layers above the base layer the proof reaches, less one:
    /// the answer adds an uncle hash for each layer above the subtree the
    /// `length` hashes span ([`crate::metainfo_v2::uncle_count`]).
    pub proof_layers: u32,
}

impl HashRequest {
    fn decode(b: &[u8]) -> Self {
        let mut pieces_root = [0u8; 32];
        pieces_root.copy_from_slice(&b[..32]);
        Self {
            pieces_root,
            base_layer: u32_at(b, 32),
            index: u32_at(b, 36),
            length: u32_at(b, 40),
            proof_layers: u32_at(b, 44),
        }
    }

    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.pieces_root);
        out.put_u32(self.base_layer);
        out.put_u32(self.index);
        out.put_u32(self.length);
        out.put_u32(self.proof_layers);
    }
}

/// A peer wire message (BEP 3, plus `port` of BEP 5, `extended` of BEP 10
/// and the hash messages of BEP 52).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Length 0: keep the connection open.
    KeepAlive,
    /// 0: no requests will be served.
    Choke,
    /// 1: requests will be served.
    Unchoke,
    /// 2: the sender wants pieces from the receiver.
    Interested,
    /// 3: it does not.
    NotInterested,
    /// 4: the sender has piece `index`.
    Have(u32),
    /// 5: the sender's pieces, high bit first.
    Bitfield(Bytes),
    /// 6: asks for `length` bytes at `begin` of piece `index`.
    Request {
        /// Piece.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// Bytes.
        length: u32,
    },
    /// 7: a block of piece `index` at `begin`.
    Piece {
        /// Piece.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// The bytes.
        block: Bytes,
    },
    /// 8: withdraws a request.
    Cancel {
        /// Piece.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// Bytes.
        length: u32,
    },
    /// 9: the sender's DHT port (BEP 5).
    Port(u16),
    /// 20: an extension message (BEP 10), kept for later issues.
    Extended {
        /// Extended message id.
        id: u8,
        /// Its payload.
        payload: Bytes,
    },
    /// 21: asks for hashes of a file's Merkle tree (BEP 52).
    HashRequest(HashRequest),
    /// 22: the hashes asked for (BEP 52): `length` base-layer hashes, then
    /// the uncle hashes from the lowest layer up; at most
    /// [`MAX_HASHES_PER_MESSAGE`].
    Hashes {
        /// The request answered.
        request: HashRequest,
        /// Base-layer hashes, then uncle hashes.
        hashes: Vec<Sha256Hash>,
    },
    /// 23: the sender will not answer this request (BEP 52).
    HashReject(HashRequest),
    /// Any other id: ignored, as BEP 3 asks.
    Unknown {
        /// The id.
        id: u8,
    },
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Message {
    /// Decodes one message from the front of `buf`, consuming it; `None`
    /// when more bytes are needed. `bitfield_len` is the torrent's bitfield
    /// size in bytes (the one longer message allowed).
    ///
    /// # Errors
    /// [`WireError::TooLong`] before reading a body above the limits;
    /// [`WireError::BadLength`] for a body that does not fit its id.
    pub fn decode(buf: &mut BytesMut, bitfield_len: usize) -> Result<Option<Self>, WireError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32_at(buf, 0);
        let limit = MAX_MESSAGE_LEN.max(
            u32::try_from(bitfield_len)
                .unwrap_or(u32::MAX)
                .saturating_add(1),
        );
        if len > limit {
            return Err(WireError::TooLong(len));
        }
        if len == 0 {
            buf.advance(4);
            return Ok(Some(Self::KeepAlive));
        }
        let total = 4 + len as usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let mut frame = buf.split_to(total).freeze();
        frame.advance(4);
        let id = frame[0];
        frame.advance(1);
        let body_len = len - 1;
        let bad = || WireError::BadLength { id, len: body_len };
        let fixed = |want: u32| if body_len == want { Ok(()) } else { Err(bad()) };
        Ok(Some(match id {
            0 => fixed(0).map(|()| Self::Choke)?,
            1 => fixed(0).map(|()| Self::Unchoke)?,
            2 => fixed(0).map(|()| Self::Interested)?,
            3 => fixed(0).map(|()| Self::NotInterested)?,
            4 => fixed(4).map(|()| Self::Have(u32_at(&frame, 0)))?,
            5 => Self::Bitfield(frame),
            6 | 8 => {
                fixed(12)?;
                let (index, begin, length) =
                    (u32_at(&frame, 0), u32_at(&frame, 4), u32_at(&frame, 8));
                if id == 6 {
                    Self::Request {
                        index,
                        begin,
                        length,
                    }
                } else {
                    Self::Cancel {
                        index,
                        begin,
                        length,
                    }
                }
            }
            7 => {
                if frame.len() < 8 {
                    return Err(bad());
                }
                let (index, begin) = (u32_at(&frame, 0), u32_at(&frame, 4));
                frame.advance(8);
                Self::Piece {
                    index,
                    begin,
                    block: frame,
                }
            }
            9 => fixed(2).map(|()| Self::Port(u16::from_be_bytes([frame[0], frame[1]])))?,
            20 => {
                if frame.is_empty() {
                    return Err(bad());
                }
                let ext = frame[0];
                frame.advance(1);
                Self::Extended {
                    id: ext,
                    payload: frame,
                }
            }
            21 | 23 => {
                fixed(HASH_REQUEST_LEN)?;
                let r = HashRequest::decode(&frame);
                if id == 21 {
                    Self::HashRequest(r)
                } else {
                    Self::HashReject(r)
                }
            }
            22 => {
                let n = body_len.checked_sub(HASH_REQUEST_LEN).ok_or_else(bad)?;
                if !n.is_multiple_of(32) || n / 32 > MAX_HASHES_PER_MESSAGE {
                    return Err(bad());
                }
                let request = HashRequest::decode(&frame);
                let hashes = frame[HASH_REQUEST_LEN as usize..]
                    .chunks_exact(32)
                    .map(|c| {
                        let mut h = [0u8; 32];
                        h.copy_from_slice(c);
                        h
                    })
                    .collect();
                Self::Hashes { request, hashes }
            }
            _ => Self::Unknown { id },
        }))
    }

    /// Appends the message's bytes to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let simple = |out: &mut BytesMut, id: u8| {
            out.put_u32(1);
            out.put_u8(id);
        };
        match self {
            Self::KeepAlive => out.put_u32(0),
            Self::Choke => simple(out, 0),
            Self::Unchoke => simple(out, 1),
            Self::Interested => simple(out, 2),
            Self::NotInterested => simple(out, 3),
            Self::Have(i) => {
                out.put_u32(5);
                out.put_u8(4);
                out.put_u32(*i);
            }
            Self::Bitfield(b) => {
                out.put_u32(1 + b.len() as u32);
                out.put_u8(5);
                out.put_slice(b);
            }
            Self::Request {
                index,
                begin,
                length,
            }
            | Self::Cancel {
                index,
                begin,
                length,
            } => {
                out.put_u32(13);
                out.put_u8(if matches!(self, Self::Request { .. }) {
                    6
                } else {
                    8
                });
                out.put_u32(*index);
                out.put_u32(*begin);
                out.put_u32(*length);
            }
            Self::Piece {
                index,
                begin,
                block,
            } => {
                out.put_u32(9 + block.len() as u32);
                out.put_u8(7);
                out.put_u32(*index);
                out.put_u32(*begin);
                out.put_slice(block);
            }
            Self::Port(p) => {
                out.put_u32(3);
                out.put_u8(9);
                out.put_u16(*p);
            }
            Self::Extended { id, payload } => {
                out.put_u32(2 + payload.len() as u32);
                out.put_u8(20);
                out.put_u8(*id);
                out.put_slice(payload);
            }
            Self::HashRequest(r) | Self::HashReject(r) => {
                out.put_u32(1 + HASH_REQUEST_LEN);
                out.put_u8(if matches!(self, Self::HashRequest(_)) {
                    21
                } else {
                    23
                });
                r.encode(out);
            }
            Self::Hashes { request, hashes } => {
                out.put_u32(1 + HASH_REQUEST_LEN + 32 * hashes.len() as u32);
                out.put_u8(22);
                request.encode(out);
                for h in hashes {
                    out.put_slice(h);
                }
            }
            Self::Unknown { id } => simple(out, *id),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn roundtrip(m: &Message) {
        let mut b = BytesMut::new();
        m.encode(&mut b);
        let got = Message::decode(&mut b, 16).unwrap().unwrap();
        assert_eq!(&got, m);
        assert!(b.is_empty());
    }

    #[test]
    fn messages_roundtrip() {
        for m in [
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have(7),
            Message::Bitfield(Bytes::from_static(&[0xff, 0x80])),
            Message::Request {
                index: 1,
                begin: 16384,
                length: 16384,
            },
            Message::Piece {
                index: 2,
                begin: 0,
                block: Bytes::from_static(b"data"),
            },
            Message::Cancel {
                index: 1,
                begin: 0,
                length: 16384,
            },
            Message::Port(6881),
            Message::Extended {
                id: 0,
                payload: Bytes::from_static(b"d1:md6:ut_pexi1eee"),
            },
        ] {
            roundtrip(&m);
        }
    }

    /// The hash messages of BEP 52, byte for byte: written out by hand from
    /// the layout in BEP 52 ("hash request": `<len><id><pieces root>
    /// <base layer><index><length><proof layers>`, big-endian u32s).
    #[test]
    fn hash_messages_are_bep52_bytes() {
        let r = HashRequest {
            pieces_root: [0xab; 32],
            base_layer: 1,
            index: 512,
            length: 512,
            proof_layers: 9,
        };
        let mut b = BytesMut::new();
        Message::HashRequest(r).encode(&mut b);
        let mut want = vec![0, 0, 0, 49, 21];
        want.extend([0xab; 32]);
        want.extend([0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 9]);
        assert_eq!(&b[..], &want[..]);
        for m in [
            Message::HashRequest(r),
            Message::HashReject(r),
            Message::Hashes {
                request: r,
                hashes: vec![[1; 32], [2; 32]],
            },
            Message::Hashes {
                request: r,
                hashes: Vec::new(),
            },
        ] {
            roundtrip(&m);
        }
        // A short request, hashes that are not whole, too many hashes: refused.
        let mut b = BytesMut::from(&[0u8, 0, 0, 5, 21, 0, 0, 0, 0][..]);
        assert!(matches!(
            Message::decode(&mut b, 16),
            Err(WireError::BadLength { id: 21, .. })
        ));
        let mut b = BytesMut::new();
        b.put_u32(1 + HASH_REQUEST_LEN + 31);
        b.put_u8(22);
        b.put_bytes(0, HASH_REQUEST_LEN as usize + 31);
        assert!(matches!(
            Message::decode(&mut b, 16),
            Err(WireError::BadLength { id: 22, .. })
        ));
        let mut b = BytesMut::new();
        let n = MAX_HASHES_PER_MESSAGE + 1;
        b.put_u32(1 + HASH_REQUEST_LEN + 32 * n);
        b.put_u8(22);
        b.put_bytes(0, (HASH_REQUEST_LEN + 32 * n) as usize);
        assert!(matches!(
            Message::decode(&mut b, 16),
            Err(WireError::BadLength { id: 22, .. })
        ));
    }

    #[test]
    fn partial_input_waits_and_huge_lengths_fail_before_reading() {
        let mut b = BytesMut::from(&[0u8, 0, 0][..]);
        assert_eq!(Message::decode(&mut b, 16).unwrap(), None);
        let mut b = BytesMut::from(&[0u8, 0, 0, 13, 6, 0][..]);
        assert_eq!(Message::decode(&mut b, 16).unwrap(), None);
        let mut b = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff, 7][..]);
        assert_eq!(
            Message::decode(&mut b, 16),
            Err(WireError::TooLong(u32::MAX))
        );
        let mut b = BytesMut::from(&[0u8, 0, 0, 2, 0, 0][..]);
        assert!(matches!(
            Message::decode(&mut b, 16),
            Err(WireError::BadLength { id: 0, .. })
        ));
    }

    #[test]
    fn handshakes_roundtrip_and_check_the_swarm() {
        let h = Handshake::ours(InfoHash([3; 20]), PeerId(*b"-DL0100-abcdefghijkl"));
        assert!(h.supports_extensions());
        assert!(h.supports_v2());
        let bytes = h.encode();
        assert_eq!(
            Handshake::decode(&bytes, Some(InfoHash([3; 20]))).unwrap(),
            h
        );
        assert_eq!(
            Handshake::decode(&bytes, Some(InfoHash([4; 20]))),
            Err(WireError::WrongInfoHash(InfoHash([3; 20])))
        );
        let mut bad = bytes;
        bad[3] = b'x';
        assert_eq!(Handshake::decode(&bad, None), Err(WireError::BadHandshake));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut b = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = Message::decode(&mut b, 32) {}
        }
    }
}
