//! `ExtendedHandshake`: extended message 0 (BEP 10).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::ExtensionError;
use crate::bencode;

/// Largest extended handshake read, in bytes (libtorrent sends ~300).
pub const MAX_EXTENDED_HANDSHAKE: usize = 64 << 10;

/// Most extension names kept from one handshake.
const MAX_EXTENSIONS: usize = 64;

/// The extended handshake (BEP 10): the extensions a peer supports and the
/// message ids it wants them sent with, plus facts about it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendedHandshake {
    /// `m`: extension name → the id the sender receives it on (1..=255;
    /// 0 disables it).
    #[serde(default)]
    pub m: BTreeMap<String, i64>,
    /// `metadata_size`: bytes of the info dictionary (BEP 9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_size: Option<i64>,
    /// `p`: the sender's listening TCP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<i64>,
    /// `v`: the sender's client name and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<ByteBuf>,
    /// `reqq`: requests the sender queues at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reqq: Option<i64>,
    /// `yourip`: the address the sender sees us at (4 or 16 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yourip: Option<ByteBuf>,
}

impl ExtendedHandshake {
    /// Parses a handshake payload (after the extended id 0).
    ///
    /// # Errors
    /// [`ExtensionError`] for a payload over [`MAX_EXTENDED_HANDSHAKE`],
    /// malformed bencode, or fields of the wrong type.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let bad = |w: String| ExtensionError::new("handshake", w);
        if payload.len() > MAX_EXTENDED_HANDSHAKE {
            return Err(bad(format!("{} bytes", payload.len())));
        }
        bencode::validate(payload).map_err(|e| bad(e.to_string()))?;
        let mut h: Self = serde_bencode::from_bytes(payload).map_err(|e| bad(e.to_string()))?;
        if h.m.len() > MAX_EXTENSIONS {
            h.m = h.m.into_iter().take(MAX_EXTENSIONS).collect();
        }
        Ok(h)
    }

    /// The payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        // Plain maps, integers and byte strings always serialize.
        serde_bencode::to_bytes(self).unwrap_or_default()
    }

    /// The id to send extension `name` with, when the peer supports it.
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.m
            .get(name)
            .and_then(|&id| u8::try_from(id).ok())
            .filter(|&id| id != 0)
    }

    /// `metadata_size` when it is a plausible size (1..=`max` bytes).
    pub fn metadata_size(&self, max: usize) -> Option<usize> {
        self.metadata_size
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > 0 && n <= max)
    }

    /// `p` when it is a port.
    pub fn port(&self) -> Option<u16> {
        self.p
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
    }

    /// `v` as text.
    pub fn client(&self) -> Option<String> {
        self.v
            .as_ref()
            .map(|v| String::from_utf8_lossy(v).chars().take(64).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_sorted_keys() {
        let mut h = ExtendedHandshake::default();
        h.m.insert("ut_pex".into(), 2);
        h.m.insert("ut_metadata".into(), 1);
        h.metadata_size = Some(31_235);
        h.p = Some(6881);
        h.v = Some(ByteBuf::from(b"dlm 0.1".to_vec()));
        let bytes = h.encode();
        assert_eq!(
            bytes,
            b"d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei31235e1:pi6881e1:v7:dlm 0.1e"
        );
        assert_eq!(ExtendedHandshake::decode(&bytes).unwrap(), h);
        assert_eq!(h.id_of("ut_metadata"), Some(1));
        assert_eq!(h.id_of("lt_donthave"), None);
    }

    #[test]
    fn ignores_unknown_keys_and_refuses_bad_types() {
        let h = ExtendedHandshake::decode(b"d1:md6:ut_pexi0ee4:zzzzli1eee").unwrap();
        assert_eq!(h.id_of("ut_pex"), None);
        assert!(ExtendedHandshake::decode(b"d1:mi5ee").is_err());
        assert!(ExtendedHandshake::decode(b"d1:m").is_err());
        assert!(
            ExtendedHandshake::decode(b"d13:metadata_sizei-5ee")
                .unwrap()
                .metadata_size(1 << 20)
                .is_none()
        );
    }
}
