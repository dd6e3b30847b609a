//! Announce replies: the bencoded HTTP reply (BEP 3, 7, 23) and the peer
//! list formats shared with UDP (BEP 15).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use serde::Deserialize;

use crate::TorrentError;

/// Largest HTTP announce reply read, in bytes (about 400,000 compact peers).
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// What a tracker answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Seconds until the next regular announce.
    pub interval: u32,
    /// Seconds the tracker wants at least between announces.
    pub min_interval: Option<u32>,
    /// Peers (IPv4 and IPv6), deduplicated.
    pub peers: Vec<SocketAddr>,
    /// Seeders, when reported.
    pub complete: Option<u32>,
    /// Leechers, when reported.
    pub incomplete: Option<u32>,
    /// `tracker id` to send back (BEP 3).
    pub tracker_id: Option<Vec<u8>>,
    /// `warning message`.
    pub warning: Option<String>,
}

/// 6-byte entries: IPv4 address and port, network order (BEP 23).
pub fn parse_compact_v4(bytes: &[u8]) -> Vec<SocketAddr> {
    bytes
        .chunks_exact(6)
        .map(|c| {
            let ip = Ipv4Addr::new(c[0], c[1], c[2], c[3]);
            SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be_bytes([c[4], c[5]])))
        })
        .filter(|a| a.port() != 0)
        .collect()
}

/// 18-byte entries: IPv6 address and port, network order (BEP 7).
pub fn parse_compact_v6(bytes: &[u8]) -> Vec<SocketAddr> {
    bytes
        .chunks_exact(18)
        .map(|c| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&c[..16]);
            let port = u16::from_be_bytes([c[16], c[17]]);
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(a), port, 0, 0))
        })
        .filter(|a| a.port() != 0)
        .collect()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Peers {
    Compact(#[serde(with = "serde_bytes")] Vec<u8>),
    Dicts(Vec<PeerDict>),
}

#[derive(Deserialize)]
struct PeerDict {
    ip: String,
    port: u16,
}

#[derive(Deserialize)]
struct RawReply {
    #[serde(default, rename = "failure reason")]
    failure: Option<String>,
    #[serde(default, rename = "warning message")]
    warning: Option<String>,
    #[serde(default)]
    interval: Option<i64>,
    #[serde(default, rename = "min interval")]
    min_interval: Option<i64>,
    #[serde(default)]
    peers: Option<Peers>,
    #[serde(default, with = "serde_bytes")]
    peers6: Option<Vec<u8>>,
    #[serde(default)]
    complete: Option<i64>,
    #[serde(default)]
    incomplete: Option<i64>,
    #[serde(default, rename = "tracker id", with = "serde_bytes")]
    tracker_id: Option<Vec<u8>>,
}

fn small(v: Option<i64>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

/// Parses an HTTP tracker's bencoded reply from `tracker`.
///
/// # Errors
/// [`TorrentError::Tracker`] for a `failure reason` (not retryable), or a
/// reply that is not a well-formed announce reply.
pub fn parse_http_reply(tracker: &str, body: &[u8]) -> Result<AnnounceResponse, TorrentError> {
    let bad = |message: String| TorrentError::Tracker {
        tracker: tracker.to_string(),
        message,
        retryable: false,
    };
    crate::bencode::validate(body).map_err(|e| bad(format!("reply: {e}")))?;
    let raw: RawReply = serde_bencode::from_bytes(body).map_err(|e| bad(format!("reply: {e}")))?;
    if let Some(f) = raw.failure {
        return Err(bad(format!("failure: {f}")));
    }
    let mut peers = match raw.peers {
        Some(Peers::Compact(b)) => parse_compact_v4(&b),
        Some(Peers::Dicts(d)) => d
            .into_iter()
            .filter_map(|p| Some(SocketAddr::new(p.ip.parse().ok()?, p.port)))
            .filter(|a| a.port() != 0)
            .collect(),
        None => Vec::new(),
    };
    if let Some(b) = raw.peers6 {
        peers.extend(parse_compact_v6(&b));
    }
    Ok(AnnounceResponse {
        interval: small(raw.interval).unwrap_or(1800),
        min_interval: small(raw.min_interval),
        peers: super::dedup(peers),
        complete: small(raw.complete),
        incomplete: small(raw.incomplete),
        tracker_id: raw.tracker_id,
        warning: raw.warning,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_compact_and_dict_replies() {
        let mut body =
            b"d8:completei2e10:incompletei1e8:intervali900e12:min intervali60e5:peers12:".to_vec();
        body.extend_from_slice(&[127, 0, 0, 1, 0x1f, 0x90, 10, 0, 0, 2, 0, 0]);
        body.extend_from_slice(b"6:peers618:");
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1f, 0x91]);
        body.extend_from_slice(b"e");
        let r = parse_http_reply("t", &body).unwrap();
        assert_eq!(r.interval, 900);
        assert_eq!(r.min_interval, Some(60));
        assert_eq!(r.complete, Some(2));
        // The zero-port entry is dropped.
        assert_eq!(
            r.peers,
            vec![
                "127.0.0.1:8080".parse().unwrap(),
                "[::1]:8081".parse().unwrap()
            ]
        );
        let dicts = b"d8:intervali60e5:peersld2:ip9:127.0.0.14:porti6881eeee";
        assert_eq!(
            parse_http_reply("t", dicts).unwrap().peers,
            vec!["127.0.0.1:6881".parse().unwrap()]
        );
    }

    #[test]
    fn failure_reasons_are_errors() {
        let e = parse_http_reply("t", b"d14:failure reason17:unknown info_hashe").unwrap_err();
        assert!(e.to_string().contains("unknown info_hash"), "{e}");
        assert!(parse_http_reply("t", b"<html>").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_http_reply("t", &bytes);
            let _ = parse_compact_v4(&bytes);
            let _ = parse_compact_v6(&bytes);
        }
    }
}
