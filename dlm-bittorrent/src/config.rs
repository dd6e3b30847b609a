//! `TorrentConfig`: the BitTorrent client's settings.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings of the BitTorrent client.
///
/// # Defaults
/// Peers from the torrent's trackers, at most 50 connected at once; 10 s to
/// connect and handshake; 30 s without a block before a peer counts as
/// stalled; announced port 6881 (incoming connections are not accepted yet).
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct TorrentConfig {
    /// Peers to connect to besides the trackers' (`--peer host:port`).
    pub peers: Vec<SocketAddr>,
    /// Most peers connected at once.
    pub max_peers: usize,
    /// Limit for connecting and handshaking with a peer.
    pub connect_timeout: Duration,
    /// A peer that sends nothing for this long is dropped.
    pub idle_timeout: Duration,
    /// The TCP port announced to trackers.
    pub port: u16,
    /// HTTP settings for HTTP trackers.
    pub http: dlm_http::HttpConfig,
    /// Files to download, by index in the torrent (0-based); `None`: all.
    /// Pieces shared with other files are still fetched whole (to verify
    /// them), but only the selected files appear.
    pub selected: Option<Vec<usize>>,
}

impl Default for TorrentConfig {
    fn default() -> Self {
        Self {
            peers: Vec::new(),
            max_peers: 50,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            port: 6881,
            http: dlm_http::HttpConfig::default(),
            selected: None,
        }
    }
}

impl TorrentConfig {
    /// Adds a peer to connect to.
    pub fn with_peer(mut self, addr: SocketAddr) -> Self {
        self.peers.push(addr);
        self
    }

    /// Sets [`TorrentConfig::http`].
    pub fn with_http(mut self, http: dlm_http::HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// Sets [`TorrentConfig::selected`].
    pub fn with_selected(mut self, files: Option<Vec<usize>>) -> Self {
        self.selected = files;
        self
    }

    /// Sets [`TorrentConfig::idle_timeout`].
    pub fn with_idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = t;
        self
    }
}
