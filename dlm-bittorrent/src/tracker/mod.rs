//! Trackers: where peers come from (BEP 3 HTTP announces with the compact
//! peer lists of BEP 23 and the IPv6 `peers6` of BEP 7; BEP 15 UDP
//! announces), tried tier by tier as BEP 12 says.

mod http;
mod peer_id;
mod response;
mod tiers;
mod udp;

use std::net::SocketAddr;

pub use self::http::HttpTracker;
pub(crate) use self::http::UNRESERVED;
pub use peer_id::PeerId;
pub use response::{
    AnnounceResponse, MAX_RESPONSE_BYTES, parse_compact_v4, parse_compact_v6, parse_http_reply,
};
pub use tiers::TrackerTiers;
pub use udp::{UdpTiming, UdpTracker, parse_announce_reply, parse_connect_reply};

use crate::InfoHash;

/// The `event` of an announce (BEP 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnounceEvent {
    /// The first announce of a download.
    Started,
    /// The download just completed.
    Completed,
    /// The client is leaving the swarm.
    Stopped,
}

/// What an announce tells the tracker.
#[derive(Clone, Debug)]
pub struct AnnounceRequest {
    /// The swarm.
    pub info_hash: InfoHash,
    /// Who we are.
    pub peer_id: PeerId,
    /// The TCP port we accept peers on.
    pub port: u16,
    /// Bytes uploaded so far this session.
    pub uploaded: u64,
    /// Bytes downloaded so far this session.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// The event, if any.
    pub event: Option<AnnounceEvent>,
    /// Peers wanted (`numwant`); `None` lets the tracker choose.
    pub num_want: Option<u32>,
    /// A random value that identifies this client across IP changes (BEP 3 `key`).
    pub key: u32,
}

/// A tracker of either kind.
#[derive(Debug, Clone)]
pub enum Tracker {
    /// `http://` or `https://` (BEP 3).
    Http(HttpTracker),
    /// `udp://` (BEP 15).
    Udp(UdpTracker),
}

impl Tracker {
    /// The announce URL (query strings, which may carry passkeys, left out).
    pub fn display_url(&self) -> String {
        match self {
            Self::Http(t) => t.display_url(),
            Self::Udp(t) => t.display_url(),
        }
    }

    /// Announces once.
    ///
    /// # Errors
    /// [`TorrentError::Tracker`](crate::TorrentError::Tracker) for a
    /// failure reply, an unreadable reply, or no reply in time.
    pub async fn announce(
        &self,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, crate::TorrentError> {
        match self {
            Self::Http(t) => t.announce(req).await,
            Self::Udp(t) => t.announce(req).await,
        }
    }
}

/// Peers from an announce, deduplicated, in the tracker's order.
pub(crate) fn dedup(peers: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let mut seen = std::collections::HashSet::new();
    peers.into_iter().filter(|p| seen.insert(*p)).collect()
}
