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
/// no upload limit; the DHT (BEP 5) on, on UDP port 6881 (else any free
/// one), bootstrapped from `mainline`'s default routers, with no state file;
/// encryption `prefer` (obfuscated MSE handshakes, plaintext payload when
/// the peer allows it: see [`Encryption`]); uTP (BEP 29) on, beside TCP;
/// port mapping on the NAT gateway (UPnP IGD, NAT-PMP, PCP) on.
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

    // --- DHT (BEP 5), see `crate::dht` ---
    /// Find peers through the DHT and announce ourselves there (BEP 5).
    /// Private torrents (BEP 27) never use it, whatever this says.
    pub dht: bool,
    /// DHT bootstrap routers, `host:port` (IPv4 only; names are resolved
    /// when the node starts). From options: `bittorrent.dht_bootstrap=127.0.0.1:6881,…`.
    pub dht_bootstrap: Vec<String>,
    /// The UDP port of the DHT node: this one, else any free one when it is
    /// taken; 0: any free port. Torrents of one process with the same DHT
    /// settings share one node.
    pub dht_port: u16,
    /// Where the DHT node keeps its good nodes between runs (read at
    /// start as extra bootstrap nodes, written every 5 minutes and when the
    /// node stops); `None`: not kept.
    pub dht_state_file: Option<std::path::PathBuf>,
    // Message Stream Encryption (MSE/PE).
    /// When peer connections use Message Stream Encryption
    /// (`bittorrent.encryption=prefer|require|disable`).
    pub encryption: Encryption,
    /// Local Service Discovery (BEP 14): announce our torrents on the LAN
    /// (and loopback) and connect to the peers that announce them
    /// (`bittorrent.lsd=true`, `--lsd`). Off by default, as in aria2 and
    /// Transmission; private torrents (BEP 27) never use it.
    pub lsd: bool,
    /// Connect to peers over uTP (BEP 29) as well as TCP, and accept uTP
    /// connections on the UDP port with the listening TCP port's number
    /// (`bittorrent.utp=false` turns it off). Outgoing: TCP first; uTP
    /// beside it after [`crate::TCP_HEAD_START`] (500 ms), or alone within
    /// [`crate::UTP_FALLBACK_LIMIT`] (1 s) as soon as TCP fails or closes
    /// before the BitTorrent handshake; the first connection to open is
    /// kept. A peer that answers on TCP waits for nothing; one that speaks
    /// neither fails at most 1 s later than over TCP alone.
    pub utp: bool,
    /// Map the listening port (TCP, and UDP for uTP) and the DHT node's UDP
    /// port on the NAT gateway so peers outside can connect: UPnP IGD
    /// (IGD:1/2 WANIPConnection), NAT-PMP (RFC 6886) or PCP (RFC 6887),
    /// in the background; a missing gateway only costs a log line. On by
    /// default, as in libtorrent, qBittorrent and rqbit; private torrents
    /// (BEP 27) map too (it finds no peers, it lets them reach us).
    /// `bittorrent.port_mapping=false`, `--no-port-mapping` turn it off. See
    /// [`crate::port_mapping`].
    pub port_mapping: bool,
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
            dht: true,
            dht_bootstrap: mainline::DEFAULT_BOOTSTRAP_NODES
                .iter()
                .map(ToString::to_string)
                .collect(),
            dht_port: 6881,
            dht_state_file: None,
            encryption: Encryption::default(),
            lsd: false,
            utp: true,
            port_mapping: true,
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

    /// Sets [`TorrentConfig::lsd`].
    pub fn with_lsd(mut self, lsd: bool) -> Self {
        self.lsd = lsd;
        self
    }

    /// Sets [`TorrentConfig::encryption`].
    pub fn with_encryption(mut self, encryption: Encryption) -> Self {
        self.encryption = encryption;
        self
    }

    /// Sets [`TorrentConfig::utp`].
    pub fn with_utp(mut self, utp: bool) -> Self {
        self.utp = utp;
        self
    }

    /// Sets [`TorrentConfig::port_mapping`].
    pub fn with_port_mapping(mut self, port_mapping: bool) -> Self {
        self.port_mapping = port_mapping;
        self
    }

    /// Sets [`TorrentConfig::idle_timeout`].
    pub fn with_idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = t;
        self
    }

    /// Sets [`TorrentConfig::dht`].
    pub fn with_dht(mut self, dht: bool) -> Self {
        self.dht = dht;
        self
    }

    /// Sets [`TorrentConfig::dht_bootstrap`] (`host:port` each).
    pub fn with_dht_bootstrap(mut self, nodes: Vec<String>) -> Self {
        self.dht_bootstrap = nodes;
        self
    }

    /// Sets [`TorrentConfig::dht_port`] (UDP; 0: any).
    pub fn with_dht_port(mut self, port: u16) -> Self {
        self.dht_port = port;
        self
    }

    /// Sets [`TorrentConfig::dht_state_file`].
    pub fn with_dht_state_file(mut self, path: Option<std::path::PathBuf>) -> Self {
        self.dht_state_file = path;
        self
    }
}
