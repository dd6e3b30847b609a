//! Bitswap messages (spec: Bitswap 1.2.0, `message.proto`), decoded with
//! `prost`, and the CID prefixes that name the blocks they carry.

use bytes::Bytes;
use cid::Cid;
use prost::Message as _;

use crate::IpfsError;
use crate::block::digest;

/// A want's type (bitswap 1.2.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub(crate) enum WantType {
    /// Send the block.
    Block = 0,
    /// Say whether you have it.
    Have = 1,
}

/// One wantlist entry.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Entry {
    /// The wanted CID, binary.
    #[prost(bytes = "bytes", tag = "1")]
    pub(crate) block: Bytes,
    #[prost(int32, tag = "2")]
    pub(crate) priority: i32,
    #[prost(bool, tag = "3")]
    pub(crate) cancel: bool,
    #[prost(enumeration = "WantType", tag = "4")]
    pub(crate) want_type: i32,
    #[prost(bool, tag = "5")]
    pub(crate) send_dont_have: bool,
}

/// A wantlist (a delta unless `full`).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Wantlist {
    #[prost(message, repeated, tag = "1")]
    pub(crate) entries: Vec<Entry>,
    #[prost(bool, tag = "2")]
    pub(crate) full: bool,
}

/// A block with the CID prefix needed to name it (bitswap ≥ 1.1.0).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PayloadBlock {
    #[prost(bytes = "bytes", tag = "1")]
    pub(crate) prefix: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub(crate) data: Bytes,
}

/// `HAVE` or `DONT_HAVE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub(crate) enum PresenceType {
    Have = 0,
    DontHave = 1,
}

/// A block presence (bitswap 1.2.0).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct BlockPresence {
    #[prost(bytes = "bytes", tag = "1")]
    pub(crate) cid: Bytes,
    #[prost(enumeration = "PresenceType", tag = "2")]
    pub(crate) r#type: i32,
}

/// A bitswap message.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Message {
    #[prost(message, optional, tag = "1")]
    pub(crate) wantlist: Option<Wantlist>,
    /// Bitswap 1.0.0 blocks (CIDv0 implied).
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub(crate) blocks: Vec<Bytes>,
    #[prost(message, repeated, tag = "3")]
    pub(crate) payload: Vec<PayloadBlock>,
    #[prost(message, repeated, tag = "4")]
    pub(crate) block_presences: Vec<BlockPresence>,
    #[prost(int32, tag = "5")]
    pub(crate) pending_bytes: i32,
}

impl Message {
    /// A message carrying `entries`.
    pub(crate) fn wants(entries: Vec<Entry>) -> Self {
        Self {
            wantlist: Some(Wantlist {
                entries,
                full: false,
            }),
            ..Self::default()
        }
    }

    pub(crate) fn decode_bytes(bytes: Bytes) -> Result<Self, IpfsError> {
        Self::decode(bytes).map_err(|e| IpfsError::Bitswap(format!("message does not decode: {e}")))
    }
}

/// A want for `cid`.
pub(crate) fn want(cid: &Cid, want_type: WantType) -> Entry {
    Entry {
        block: Bytes::from(cid.to_bytes()),
        priority: 1,
        cancel: false,
        want_type: want_type as i32,
        send_dont_have: true,
    }
}

/// A cancel for `cid`.
pub(crate) fn cancel(cid: &Cid) -> Entry {
    Entry {
        block: Bytes::from(cid.to_bytes()),
        priority: 0,
        cancel: true,
        want_type: WantType::Block as i32,
        send_dont_have: false,
    }
}

/// The CID of `data` under `prefix` (version, codec, multihash code and
/// digest length, each a varint): the block is hashed here, so the CID
/// always matches the bytes; whether it is a wanted one is the caller's
/// check.
///
/// # Errors
/// [`IpfsError::Bitswap`] for a malformed prefix;
/// [`IpfsError::UnsupportedHash`] for other hash functions.
pub(crate) fn cid_of(prefix: &[u8], data: &[u8]) -> Result<Cid, IpfsError> {
    let bad = || IpfsError::Bitswap("malformed CID prefix".into());
    let mut fields = [0u64; 4];
    let mut rest = prefix;
    for f in &mut fields {
        (*f, rest) = unsigned_varint::decode::u64(rest).map_err(|_| bad())?;
    }
    let [version, codec, code, len] = fields;
    let digest = digest(code, data, len as usize)
        .ok_or(IpfsError::UnsupportedHash {
            code,
            cid: "(bitswap prefix)".into(),
        })?
        .ok_or_else(bad)?;
    let mh = multihash::Multihash::<64>::wrap(code, &digest).map_err(|_| bad())?;
    match version {
        0 => Cid::new_v0(mh).map_err(|_| bad()),
        1 => Ok(Cid::new_v1(codec, mh)),
        _ => Err(bad()),
    }
}

/// The prefix of `cid` (for tests that play the remote side).
#[cfg(test)]
pub(crate) fn prefix_of(cid: &Cid) -> Vec<u8> {
    let version = if cid.version() == cid::Version::V0 {
        0
    } else {
        1
    };
    let fields = [
        version,
        cid.codec(),
        cid.hash().code(),
        u64::from(cid.hash().size()),
    ];
    let mut out = Vec::new();
    for f in fields {
        out.extend_from_slice(unsigned_varint::encode::u64(
            f,
            &mut unsigned_varint::encode::u64_buffer(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{RAW, parse_cid};

    #[test]
    fn prefixes_name_blocks() {
        let data = b"block bytes";
        let mh = *crate::block::raw_cid(data).hash();
        for cid in [Cid::new_v1(RAW, mh), Cid::new_v0(mh).unwrap()] {
            assert_eq!(cid_of(&prefix_of(&cid), data).unwrap(), cid);
        }
        let v0 = parse_cid("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn").unwrap();
        assert_eq!(prefix_of(&v0), vec![0, 0x70, 0x12, 32]);
        assert!(cid_of(&[1, 0x55], data).is_err());
    }

    #[test]
    fn messages_round_trip() {
        let m = Message::wants(vec![Entry {
            block: Bytes::from_static(b"\x01\x55"),
            priority: 1,
            cancel: false,
            want_type: WantType::Have as i32,
            send_dont_have: true,
        }]);
        let back = Message::decode_bytes(Bytes::from(m.encode_to_vec())).unwrap();
        assert_eq!(back, m);
        assert!(Message::decode_bytes(Bytes::from_static(&[0x0a, 0xff])).is_err());
    }
}
