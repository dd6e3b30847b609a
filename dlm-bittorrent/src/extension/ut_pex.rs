//! `ut_pex` (BEP 11): peers exchange the addresses of the peers they are
//! connected to, in compact form.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::ExtensionError;
use crate::bencode;

/// Most peers in one message's `added` (or `dropped`) list (BEP 11: "at
/// most 50"; more from a peer are ignored past [`MAX_PEX_READ`]).
pub const MAX_PEX_PEERS: usize = 50;

/// Most added peers taken from one received message.
pub const MAX_PEX_READ: usize = 200;

/// `added.f` flag: the peer accepts encrypted connections (MSE).
pub const FLAG_ENCRYPTION: u8 = 0x01;
/// `added.f` flag: the peer is a seed.
pub const FLAG_SEED: u8 = 0x02;
/// `added.f` flag: the peer supports uTP (BEP 29).
pub const FLAG_UTP: u8 = 0x04;
/// `added.f` flag: the peer is reachable (connectable).
pub const FLAG_REACHABLE: u8 = 0x10;

/// A `ut_pex` message: peers connected and disconnected since the last one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Peers the sender connected to, with their `added.f` flags.
    pub added: Vec<(SocketAddr, u8)>,
    /// Peers the sender dropped.
    pub dropped: Vec<SocketAddr>,
}

#[derive(Default, Serialize, Deserialize)]
struct Raw {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    added: Option<ByteBuf>,
    #[serde(default, rename = "added.f", skip_serializing_if = "Option::is_none")]
    added_f: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    added6: Option<ByteBuf>,
    #[serde(default, rename = "added6.f", skip_serializing_if = "Option::is_none")]
    added6_f: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dropped: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dropped6: Option<ByteBuf>,
}

fn compact(bytes: &[u8], v6: bool) -> impl Iterator<Item = SocketAddr> + '_ {
    let size = if v6 { 18 } else { 6 };
    bytes.chunks_exact(size).map(move |c| {
        let ip = if v6 {
            let mut a = [0u8; 16];
            a.copy_from_slice(&c[..16]);
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        };
        SocketAddr::new(ip, u16::from_be_bytes([c[size - 2], c[size - 1]]))
    })
}

fn put(out: &mut Vec<u8>, a: &SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&a.port().to_be_bytes());
}

impl PexMessage {
    /// Parses a message payload (after the extended id). Addresses with
    /// port 0 are skipped; at most [`MAX_PEX_READ`] added peers are kept.
    ///
    /// # Errors
    /// [`ExtensionError`] for malformed bencode or fields of the wrong type.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let bad = |w: String| ExtensionError::new("ut_pex", w);
        bencode::validate(payload).map_err(|e| bad(e.to_string()))?;
        let raw: Raw = serde_bencode::from_bytes(payload).map_err(|e| bad(e.to_string()))?;
        let flags =
            |f: &Option<ByteBuf>, i: usize| f.as_ref().and_then(|f| f.get(i).copied()).unwrap_or(0);
        let mut m = Self::default();
        for (list, f, v6) in [
            (&raw.added, &raw.added_f, false),
            (&raw.added6, &raw.added6_f, true),
        ] {
            if let Some(list) = list {
                for (i, a) in compact(list, v6).enumerate() {
                    if m.added.len() >= MAX_PEX_READ {
                        break;
                    }
                    if a.port() != 0 {
                        m.added.push((a, flags(f, i)));
                    }
                }
            }
        }
        for (list, v6) in [(&raw.dropped, false), (&raw.dropped6, true)] {
            if let Some(list) = list {
                m.dropped
                    .extend(compact(list, v6).take(MAX_PEX_READ.saturating_sub(m.dropped.len())));
            }
        }
        Ok(m)
    }

    /// The payload bytes, at most [`MAX_PEX_PEERS`] of each list.
    pub fn encode(&self) -> Vec<u8> {
        let mut raw = Raw::default();
        let (mut a4, mut f4, mut a6, mut f6) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (a, f) in self.added.iter().take(MAX_PEX_PEERS) {
            if a.is_ipv4() {
                put(&mut a4, a);
                f4.push(*f);
            } else {
                put(&mut a6, a);
                f6.push(*f);
            }
        }
        let (mut d4, mut d6) = (Vec::new(), Vec::new());
        for a in self.dropped.iter().take(MAX_PEX_PEERS) {
            put(if a.is_ipv4() { &mut d4 } else { &mut d6 }, a);
        }
        let some = |v: Vec<u8>| (!v.is_empty()).then(|| ByteBuf::from(v));
        // `added` is always present, empty or not, as libtorrent sends it.
        raw.added = Some(ByteBuf::from(a4));
        raw.added_f = Some(ByteBuf::from(f4));
        raw.added6 = some(a6);
        raw.added6_f = some(f6);
        raw.dropped = Some(ByteBuf::from(d4));
        raw.dropped6 = some(d6);
        serde_bencode::to_bytes(&raw).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_families() {
        let m = PexMessage {
            added: vec![
                ("10.0.0.1:6881".parse().unwrap(), FLAG_SEED),
                ("[::1]:51413".parse().unwrap(), FLAG_UTP),
            ],
            dropped: vec!["10.0.0.2:1".parse().unwrap()],
        };
        let bytes = m.encode();
        assert_eq!(PexMessage::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn decodes_a_hand_written_message_and_skips_port_zero() {
        // added: 127.0.0.1:6881 and 127.0.0.1:0, one flag byte only.
        let mut p = b"d5:added12:".to_vec();
        p.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1, 127, 0, 0, 1, 0, 0]);
        p.extend_from_slice(b"7:added.f1:\x02e");
        let m = PexMessage::decode(&p).unwrap();
        assert_eq!(
            m.added,
            vec![("127.0.0.1:6881".parse().unwrap(), FLAG_SEED)]
        );
        assert!(PexMessage::decode(b"d5:addedi1ee").is_err());
        // A trailing partial address is ignored.
        assert_eq!(PexMessage::decode(b"d5:added3:abce").unwrap().added, vec![]);
    }
}
