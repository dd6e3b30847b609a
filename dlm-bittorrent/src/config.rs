//! `TorrentConfig`: the BitTorrent client's settings.

use std::net::SocketAddr;
use std::time::Duration;

use crate::mse::Encryption;

/// Settings of the BitTorrent client.
///
/// # Defaults
/// Peers from the torrent's trackers, at most 50 connected at once; 10 s to
/// connect and handshake; 30 s without a requested block before a peer
/// counts as stalled and is dropped (keep-alives do not count); 180 s of
/// total silence (not even a keep-alive) before an idle connection is
/// closed (not configurable); listening for peers on port 6881 (or the next free one up to
/// 6890, else any); 4 upload slots (3 by tit-for-tat, 1 optimistic, BEP 3);
/// no upload limit; encryption `prefer` (obfuscated MSE handshakes,
/// plaintext payload when the peer allows it: see [`Encryption`]).
#[non_exhaustive]
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TorrentConfig {
    /// Peers to connect to besides the trackers' (`--peer host:port`).
    pub peers: Vec<SocketAddr>,
    /// Most peers connected at once.
    pub max_peers: usize,
    /// Limit for connecting and handshaking with a peer.
    #[serde(with = "dlm_core::config::duration")]
    pub connect_timeout: Duration,
    /// A peer asked for a piece that sends none of the blocks we requested
    /// for this long (choking us, or sending only keep-alives or other
    /// messages) is dropped, as libtorrent's `request_timeout` does. A
    /// connection with nothing to exchange is not bound by it: it is closed
    /// only after 180 s without a single byte, keep-alives included (see
    /// the `# Defaults`).
    #[serde(with = "dlm_core::config::duration")]
    pub idle_timeout: Duration,
    /// The TCP port to accept peers on (all interfaces), announced to the
    /// trackers: this one or the next nine, else any free one; `Some(0)`:
    /// any free port; `None`: no listening (outgoing connections only).
    pub listen_port: Option<u16>,
    /// Peers we upload to at once (the optimistic unchoke included).
    pub upload_slots: usize,
    /// Upload limit in bytes/s for this torrent (`None`: unlimited).
    pub upload_limit: Option<u64>,
    /// Fetch pieces in order (for streaming) instead of rarest first.
    pub sequential: bool,
    /// HTTP settings for HTTP trackers.
    pub http: dlm_http::HttpConfig,
    // Message Stream Encryption (MSE/PE).
    /// When peer connections use Message Stream Encryption
    /// (`bittorrent.encryption=prefer|require|disable`).
    pub encryption: Encryption,
}

impl Default for TorrentConfig {
    fn default() -> Self {
        Self {
            peers: Vec::new(),
            max_peers: 50,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            listen_port: Some(6881),
            upload_slots: 4,
            upload_limit: None,
            sequential: false,
            http: dlm_http::HttpConfig::default(),
            encryption: Encryption::default(),
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

    /// Sets [`TorrentConfig::listen_port`].
    pub fn with_listen_port(mut self, port: Option<u16>) -> Self {
        self.listen_port = port;
        self
    }

    /// Sets [`TorrentConfig::upload_limit`] (bytes/s).
    pub fn with_upload_limit(mut self, bytes_per_sec: Option<u64>) -> Self {
        self.upload_limit = bytes_per_sec;
        self
    }

    /// Sets [`TorrentConfig::sequential`].
    pub fn with_sequential(mut self, sequential: bool) -> Self {
        self.sequential = sequential;
        self
    }

    /// Sets [`TorrentConfig::max_peers`].
    pub fn with_max_peers(mut self, n: usize) -> Self {
        self.max_peers = n.max(1);
        self
    }

    /// Sets [`TorrentConfig::encryption`].
    pub fn with_encryption(mut self, encryption: Encryption) -> Self {
        self.encryption = encryption;
        self
    }

    /// Sets [`TorrentConfig::idle_timeout`].
    pub fn with_idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = t;
        self
    }
}
