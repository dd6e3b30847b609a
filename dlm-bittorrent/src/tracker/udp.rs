//! UDP trackers (BEP 15): a `connect` exchange for a connection id, then
//! `announce`, each retransmitted after 15 · 2^n seconds (n = 0..=8) as the
//! BEP says, matched by a random transaction id.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use url::Url;

use super::response::{parse_compact_v4, parse_compact_v6};
use super::{AnnounceEvent, AnnounceRequest, AnnounceResponse};
use crate::TorrentError;

/// BEP 15's magic protocol id in `connect` requests.
const PROTOCOL_ID: u64 = 0x0417_2710_1980;
const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_ERROR: u32 = 3;
/// Largest datagram read.
const MAX_DATAGRAM: usize = 64 << 10;

/// Retransmission timing: wait `base` · 2^n, n from 0 to `max_retries`.
/// BEP 15 says 15 s and n up to 8, over two hours for one dead tracker;
/// dlm stops at n = 2 (15 + 30 + 60 s per message), as clients such as
/// libtorrent bound their retries, and moves on to the next tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpTiming {
    /// The first wait (BEP 15: 15 s).
    pub base: Duration,
    /// The largest n (BEP 15: 8, i.e. 3840 s for the last wait; dlm: 2).
    pub max_retries: u32,
}

impl Default for UdpTiming {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(15),
            max_retries: 2,
        }
    }
}

/// A `udp://host:port/…` tracker.
#[derive(Debug, Clone)]
pub struct UdpTracker {
    url: Url,
    timing: UdpTiming,
}

impl UdpTracker {
    /// A tracker at `url` with [`UdpTiming::default`].
    ///
    /// # Errors
    /// [`TorrentError::Tracker`] when the URL has no host or port.
    pub fn new(url: Url) -> Result<Self, TorrentError> {
        if url.host_str().is_none() || url.port().is_none() {
            return Err(TorrentError::Tracker {
                tracker: url.to_string(),
                message: "a UDP tracker URL needs a host and a port".into(),
                retryable: false,
            });
        }
        Ok(Self {
            url,
            timing: UdpTiming::default(),
        })
    }

    /// Replaces the retransmission timing (tests use short waits).
    pub fn with_timing(mut self, timing: UdpTiming) -> Self {
        self.timing = timing;
        self
    }

    /// The announce URL.
    pub fn display_url(&self) -> String {
        let mut u = self.url.clone();
        u.set_query(None);
        u.to_string()
    }

    fn err(&self, message: impl Into<String>, retryable: bool) -> TorrentError {
        TorrentError::Tracker {
            tracker: self.display_url(),
            message: message.into(),
            retryable,
        }
    }

    /// Sends `request` and waits for a reply with `tid`, retransmitting.
    async fn exchange(
        &self,
        socket: &UdpSocket,
        request: &[u8],
        tid: u32,
    ) -> Result<Vec<u8>, TorrentError> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        for n in 0..=self.timing.max_retries {
            socket
                .send(request)
                .await
                .map_err(|e| self.err(format!("send: {e}"), true))?;
            let wait = self.timing.base * 2u32.saturating_pow(n);
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                    Err(_) => break,
                    Ok(Err(e)) => return Err(self.err(format!("receive: {e}"), true)),
                    Ok(Ok(len)) => {
                        let reply = &buf[..len];
                        if len < 8
                            || u32::from_be_bytes(reply[4..8].try_into().expect("4 bytes")) != tid
                        {
                            continue; // a late reply to an earlier attempt, or noise
                        }
                        let action = u32::from_be_bytes(reply[..4].try_into().expect("4 bytes"));
                        if action == ACTION_ERROR {
                            let msg = String::from_utf8_lossy(&reply[8..]).into_owned();
                            return Err(self.err(format!("failure: {msg}"), false));
                        }
                        return Ok(reply.to_vec());
                    }
                }
            }
        }
        Err(self.err(
            format!("no reply after {} attempts", self.timing.max_retries + 1),
            true,
        ))
    }

    /// Announces once: `connect`, then `announce`.
    ///
    /// # Errors
    /// [`TorrentError::Tracker`]: no reply in time (retryable), an error
    /// reply or a malformed one (not retryable).
    pub async fn announce(&self, req: &AnnounceRequest) -> Result<AnnounceResponse, TorrentError> {
        let host = self
            .url
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_string();
        let port = self.url.port().unwrap_or_default();
        let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| self.err(format!("resolve: {e}"), true))?
            .next()
            .ok_or_else(|| self.err("no address", true))?;
        let bind: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse().expect("valid")
        } else {
            "[::]:0".parse().expect("valid")
        };
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|e| self.err(format!("bind: {e}"), true))?;
        socket
            .connect(addr)
            .await
            .map_err(|e| self.err(format!("connect: {e}"), true))?;

        let tid = fastrand::u32(..);
        let mut connect = Vec::with_capacity(16);
        connect.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
        connect.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
        connect.extend_from_slice(&tid.to_be_bytes());
        let reply = self.exchange(&socket, &connect, tid).await?;
        let connection_id = parse_connect_reply(&reply)
            .ok_or_else(|| self.err("malformed connect reply", false))?;

        let tid = fastrand::u32(..);
        let event: u32 = match req.event {
            None => 0,
            Some(AnnounceEvent::Completed) => 1,
            Some(AnnounceEvent::Started) => 2,
            Some(AnnounceEvent::Stopped) => 3,
        };
        let mut a = Vec::with_capacity(98);
        a.extend_from_slice(&connection_id);
        a.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
        a.extend_from_slice(&tid.to_be_bytes());
        a.extend_from_slice(&req.info_hash.0);
        a.extend_from_slice(&req.peer_id.0);
        a.extend_from_slice(&req.downloaded.to_be_bytes());
        a.extend_from_slice(&req.left.to_be_bytes());
        a.extend_from_slice(&req.uploaded.to_be_bytes());
        a.extend_from_slice(&event.to_be_bytes());
        a.extend_from_slice(&0u32.to_be_bytes()); // IP: the sender's
        a.extend_from_slice(&req.key.to_be_bytes());
        let want: i32 = req
            .num_want
            .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX));
        a.extend_from_slice(&want.to_be_bytes());
        a.extend_from_slice(&req.port.to_be_bytes());
        let reply = self.exchange(&socket, &a, tid).await?;
        parse_announce_reply(&reply, addr.is_ipv6())
            .ok_or_else(|| self.err("malformed announce reply", false))
    }
}

/// The connection ID (8 bytes) of a BEP 15 connect reply: `action` (4 bytes,
/// 0 = connect), `transaction_id` (4), `connection_id` (8), big-endian;
/// `None` when `reply` is shorter or another action. The transaction ID is
/// the caller's check.
pub fn parse_connect_reply(reply: &[u8]) -> Option<[u8; 8]> {
    let action = u32::from_be_bytes(reply.get(..4)?.try_into().ok()?);
    if action != ACTION_CONNECT {
        return None;
    }
    reply.get(8..16)?.try_into().ok()
}

/// A BEP 15 announce reply: `action` (4 bytes, 1 = announce),
/// `transaction_id` (4), `interval` (4, seconds), `leechers` (4), `seeders`
/// (4), then compact peers: 6-byte IPv4 entries, or 18-byte IPv6 entries
/// when `ipv6` (the tracker was reached over IPv6, BEP 15's IPv6 extension);
/// a trailing partial entry is ignored. `None` when `reply` is shorter than
/// 20 bytes or another action. The transaction ID is the caller's check.
pub fn parse_announce_reply(reply: &[u8], ipv6: bool) -> Option<AnnounceResponse> {
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_be_bytes(reply.get(i..i + 4)?.try_into().ok()?))
    };
    if reply.len() < 20 || word(0)? != ACTION_ANNOUNCE {
        return None;
    }
    let peers = if ipv6 {
        parse_compact_v6(&reply[20..])
    } else {
        parse_compact_v4(&reply[20..])
    };
    Some(AnnounceResponse {
        interval: word(8)?,
        min_interval: None,
        peers: super::dedup(peers),
        complete: Some(word(16)?),
        incomplete: Some(word(12)?),
        tracker_id: None,
        warning: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_bep15_replies() {
        let mut connect = vec![0, 0, 0, 0, 1, 2, 3, 4];
        connect.extend_from_slice(&[9, 8, 7, 6, 5, 4, 3, 2]);
        assert_eq!(
            parse_connect_reply(&connect),
            Some([9, 8, 7, 6, 5, 4, 3, 2])
        );
        assert_eq!(parse_connect_reply(&connect[..15]), None);
        let mut announce = Vec::new();
        for w in [ACTION_ANNOUNCE, 0x0102_0304, 1800, 2, 3] {
            announce.extend_from_slice(&w.to_be_bytes());
        }
        announce.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1, 9]); // one peer, one stray byte
        let r = parse_announce_reply(&announce, false).unwrap();
        assert_eq!(
            (r.interval, r.incomplete, r.complete),
            (1800, Some(2), Some(3))
        );
        assert_eq!(r.peers, vec!["127.0.0.1:6881".parse().unwrap()]);
        assert!(
            parse_announce_reply(&announce, true)
                .unwrap()
                .peers
                .is_empty()
        );
        assert_eq!(parse_announce_reply(&connect, false), None);
        assert_eq!(parse_announce_reply(&announce[..19], false), None);
    }
}
