//! `ut_metadata` (BEP 9): the info dictionary fetched from peers in
//! 16 KiB pieces, for magnet links, and served to peers that ask.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::ExtensionError;
use crate::{InfoHash, bencode};

/// Bytes per metadata piece (BEP 9); the last may be shorter.
pub const METADATA_PIECE_LEN: usize = 16 << 10;

/// Largest info dictionary fetched from peers, in bytes (32 MiB, 2048
/// pieces; libtorrent's default `max_metadata_size` is 3 MiB, and real
/// torrents of a million files stay under this).
pub const MAX_METADATA_BYTES: usize = 32 << 20;

/// A `ut_metadata` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataMessage {
    /// `msg_type` 0: asks for piece `piece`.
    Request {
        /// Piece index.
        piece: u32,
    },
    /// `msg_type` 1: piece `piece` of an info dictionary of `total_size` bytes.
    Data {
        /// Piece index.
        piece: u32,
        /// Bytes of the whole info dictionary.
        total_size: u64,
        /// The piece's bytes.
        data: Bytes,
    },
    /// `msg_type` 2: the sender will not send piece `piece`.
    Reject {
        /// Piece index.
        piece: u32,
    },
}

#[derive(Serialize, Deserialize)]
struct Header {
    msg_type: i64,
    piece: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    total_size: Option<i64>,
}

impl MetadataMessage {
    /// Parses a message payload (after the extended id).
    ///
    /// # Errors
    /// [`ExtensionError`] for malformed bencode, an unknown `msg_type`, a
    /// negative or huge field, or a `data` message without `total_size`.
    pub fn decode(payload: &Bytes) -> Result<Self, ExtensionError> {
        let bad = |w: String| ExtensionError::new("ut_metadata", w);
        let end = bencode::value_len(payload).map_err(|e| bad(e.to_string()))?;
        let h: Header =
            serde_bencode::from_bytes(&payload[..end]).map_err(|e| bad(e.to_string()))?;
        let piece = u32::try_from(h.piece).map_err(|_| bad(format!("piece {}", h.piece)))?;
        Ok(match h.msg_type {
            0 => Self::Request { piece },
            1 => {
                let total_size = h
                    .total_size
                    .and_then(|t| u64::try_from(t).ok())
                    .ok_or_else(|| bad("data without a valid total_size".into()))?;
                Self::Data {
                    piece,
                    total_size,
                    data: payload.slice(end..),
                }
            }
            2 => Self::Reject { piece },
            t => return Err(bad(format!("msg_type {t}"))),
        })
    }

    /// The payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        let (msg_type, piece, total_size, data) = match self {
            Self::Request { piece } => (0, *piece, None, None),
            Self::Data {
                piece,
                total_size,
                data,
            } => (1, *piece, Some(*total_size as i64), Some(data)),
            Self::Reject { piece } => (2, *piece, None, None),
        };
        let mut out = serde_bencode::to_bytes(&Header {
            msg_type,
            piece: i64::from(piece),
            total_size,
        })
        .unwrap_or_default();
        if let Some(d) = data {
            out.extend_from_slice(d);
        }
        out
    }
}

/// Number of pieces of an info dictionary of `size` bytes.
pub fn piece_count(size: usize) -> usize {
    size.div_ceil(METADATA_PIECE_LEN)
}

/// Piece `piece` of `info` (for serving it), `None` past the end.
pub fn piece_of(info: &Bytes, piece: u32) -> Option<Bytes> {
    let start = (piece as usize).checked_mul(METADATA_PIECE_LEN)?;
    (start < info.len()).then(|| info.slice(start..(start + METADATA_PIECE_LEN).min(info.len())))
}

/// An info dictionary being assembled from `data` messages.
#[derive(Debug)]
pub struct MetadataAssembly {
    size: usize,
    buf: BytesMut,
    have: Vec<bool>,
    missing: usize,
}

impl MetadataAssembly {
    /// Room for an info dictionary of `size` bytes (1..=[`MAX_METADATA_BYTES`]).
    pub fn new(size: usize) -> Option<Self> {
        if size == 0 || size > MAX_METADATA_BYTES {
            return None;
        }
        let n = piece_count(size);
        Some(Self {
            size,
            buf: BytesMut::zeroed(size),
            have: vec![false; n],
            missing: n,
        })
    }

    /// Bytes of the whole dictionary.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The pieces not received yet.
    pub fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        self.have
            .iter()
            .enumerate()
            .filter(|(_, h)| !**h)
            .map(|(i, _)| i as u32)
    }

    /// Stores piece `piece`.
    ///
    /// # Errors
    /// [`ExtensionError`] when `total_size` disagrees with the size the
    /// peer announced, or the piece is out of range or of the wrong length.
    pub fn place(
        &mut self,
        piece: u32,
        total_size: u64,
        data: &[u8],
    ) -> Result<(), ExtensionError> {
        let bad = |w: String| ExtensionError::new("ut_metadata", w);
        if total_size != self.size as u64 {
            return Err(bad(format!(
                "total_size {total_size}, announced {}",
                self.size
            )));
        }
        let i = piece as usize;
        let start = i
            .checked_mul(METADATA_PIECE_LEN)
            .filter(|&s| s < self.size)
            .ok_or_else(|| bad(format!("piece {piece} past the end")))?;
        let want = METADATA_PIECE_LEN.min(self.size - start);
        if data.len() != want {
            return Err(bad(format!(
                "piece {piece} has {} bytes, not {want}",
                data.len()
            )));
        }
        if !self.have[i] {
            self.buf[start..start + want].copy_from_slice(data);
            self.have[i] = true;
            self.missing -= 1;
        }
        Ok(())
    }

    /// Whether every piece arrived.
    pub fn is_complete(&self) -> bool {
        self.missing == 0
    }

    /// The dictionary when it is complete and its SHA-1 is `info_hash`
    /// (BEP 9: verified before use); `None` otherwise.
    pub fn verified(&self, info_hash: &InfoHash) -> Option<Bytes> {
        self.verified_by(Some(info_hash), None)
    }

    /// The dictionary when it is complete and hashes to every info-hash
    /// given: SHA-1 to `v1` (BEP 9), SHA-256 to `v2` (BEP 52: a v2 magnet's
    /// `btmh`); `None` otherwise, or when neither is given.
    pub fn verified_by(
        &self,
        v1: Option<&InfoHash>,
        v2: Option<&crate::metainfo_v2::Sha256Hash>,
    ) -> Option<Bytes> {
        let ok = self.is_complete()
            && (v1.is_some() || v2.is_some())
            && v1.is_none_or(|h| Sha1::digest(&self.buf[..]).as_slice() == h.0)
            && v2.is_none_or(|h| sha2::Sha256::digest(&self.buf[..]).as_slice() == h);
        ok.then(|| Bytes::copy_from_slice(&self.buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        // The examples of BEP 9.
        let req = MetadataMessage::Request { piece: 0 };
        assert_eq!(req.encode(), b"d8:msg_typei0e5:piecei0ee");
        let data = MetadataMessage::Data {
            piece: 0,
            total_size: 3425,
            data: Bytes::from_static(b"xyz"),
        };
        let bytes = Bytes::from(data.encode());
        assert_eq!(
            &bytes[..],
            b"d8:msg_typei1e5:piecei0e10:total_sizei3425eexyz"
        );
        assert_eq!(MetadataMessage::decode(&bytes).unwrap(), data);
        let rej = MetadataMessage::Reject { piece: 3 };
        assert_eq!(
            MetadataMessage::decode(&Bytes::from(rej.encode())).unwrap(),
            rej
        );
        for bad in [
            &b"d8:msg_typei7e5:piecei0ee"[..],
            b"d8:msg_typei1e5:piecei0ee",
            b"d5:piecei-1e8:msg_typei0ee",
            b"x",
        ] {
            assert!(MetadataMessage::decode(&Bytes::copy_from_slice(bad)).is_err());
        }
    }

    #[test]
    fn assembles_and_verifies() {
        let info: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let ih = InfoHash(Sha1::digest(&info).into());
        let info = Bytes::from(info);
        let mut a = MetadataAssembly::new(info.len()).unwrap();
        assert_eq!(a.missing().count(), 3);
        for p in [2u32, 0, 1] {
            a.place(p, 40_000, &piece_of(&info, p).unwrap()).unwrap();
        }
        assert!(a.place(3, 40_000, b"").is_err());
        assert!(a.place(0, 39_999, &piece_of(&info, 0).unwrap()).is_err());
        assert!(a.place(1, 40_000, b"short").is_err());
        assert_eq!(a.verified(&ih).as_deref(), Some(&info[..]));
        assert!(a.verified(&InfoHash([1; 20])).is_none());
        assert!(MetadataAssembly::new(MAX_METADATA_BYTES + 1).is_none());
        assert!(piece_of(&info, 3).is_none());
    }
}
