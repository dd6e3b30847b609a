//! `IpfsConfig`: where blocks come from and how many are in flight.

use dlm_http::HttpConfig;
use libp2p::Multiaddr;
use url::Url;

/// Public trustless gateways used when the caller gives none (all serve
/// `?format=raw` and `?format=car` per the trustless gateway spec). Tests
/// never use them: they pass their own list or none.
pub const DEFAULT_GATEWAYS: &[&str] = &[
    "https://trustless-gateway.link",
    "https://ipfs.io",
    "https://dweb.link",
];

/// Blocks requested at once by one engine connection (default 32).
pub const DEFAULT_WINDOW: usize = 32;

/// Default of [`IpfsConfig::max_tree_entries`]: 1,000,000.
pub const MAX_TREE_ENTRIES: usize = 1_000_000;
/// Default of [`IpfsConfig::max_tree_depth`]: 64 directories.
pub const MAX_TREE_DEPTH: usize = 64;

/// How an IPFS download finds its blocks.
///
/// # Defaults
/// The public [`DEFAULT_GATEWAYS`], no peers, no DHT, [`DEFAULT_WINDOW`]
/// blocks in flight; a directory tree listed to at most
/// [`MAX_TREE_ENTRIES`] entries and [`MAX_TREE_DEPTH`] levels.
#[non_exhaustive]
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct IpfsConfig {
    /// Trustless gateways (base URLs; `/ipfs/…` is appended).
    pub gateways: Vec<Url>,
    /// Bitswap peers to dial: multiaddrs ending in `/p2p/<peer id>`.
    #[serde(with = "multiaddrs")]
    pub peers: Vec<Multiaddr>,
    /// Whether to look up providers in the Kademlia DHT (`/ipfs/kad/1.0.0`)
    /// through the public bootstrap peers and the given peers.
    pub dht: bool,
    /// The HTTP client settings for gateways (TLS, proxies, timeouts).
    pub http: HttpConfig,
    /// Blocks in flight per engine connection.
    pub window: usize,
    /// Most entries (files and directories) one directory tree may list,
    /// and most HAMT shards one directory may span. Blocks are shared
    /// freely in a DAG: a few blocks can name 2^N files, so a listing
    /// over this fails instead of expanding them.
    pub max_tree_entries: usize,
    /// Deepest directory nesting entered below a tree's root.
    pub max_tree_depth: usize,
}

impl Default for IpfsConfig {
    fn default() -> Self {
        Self {
            gateways: DEFAULT_GATEWAYS
                .iter()
                .filter_map(|g| Url::parse(g).ok())
                .collect(),
            peers: Vec::new(),
            dht: false,
            http: HttpConfig::default(),
            window: DEFAULT_WINDOW,
            max_tree_entries: MAX_TREE_ENTRIES,
            max_tree_depth: MAX_TREE_DEPTH,
        }
    }
}

impl IpfsConfig {
    /// Replaces the gateway list (empty: bitswap only).
    pub fn with_gateways(mut self, gateways: Vec<Url>) -> Self {
        self.gateways = gateways;
        self
    }

    /// Sets the bitswap peers.
    pub fn with_peers(mut self, peers: Vec<Multiaddr>) -> Self {
        self.peers = peers;
        self
    }

    /// Enables or disables DHT provider lookups.
    pub fn with_dht(mut self, dht: bool) -> Self {
        self.dht = dht;
        self
    }

    /// Sets the HTTP client settings used for gateways.
    pub fn with_http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// Sets [`IpfsConfig::max_tree_entries`].
    pub fn with_max_tree_entries(mut self, n: usize) -> Self {
        self.max_tree_entries = n;
        self
    }

    /// Sets [`IpfsConfig::max_tree_depth`].
    pub fn with_max_tree_depth(mut self, n: usize) -> Self {
        self.max_tree_depth = n;
        self
    }

    /// Sets the blocks in flight per engine connection (at least 1).
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
    }
}

/// Parses a `--peer` multiaddr: it must name the peer (`/p2p/<peer id>`),
/// e.g. `/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…`.
///
/// # Errors
/// [`IpfsError::InvalidPeer`](crate::IpfsError::InvalidPeer).
pub fn parse_peer(text: &str) -> Result<Multiaddr, crate::IpfsError> {
    let bad = |reason: &str| crate::IpfsError::InvalidPeer {
        input: text.chars().take(200).collect(),
        reason: reason.into(),
    };
    let addr: Multiaddr = text
        .parse()
        .map_err(|e: libp2p::multiaddr::Error| bad(&e.to_string()))?;
    if !addr
        .iter()
        .any(|p| matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
    {
        return Err(bad("no /p2p/<peer id> at the end"));
    }
    Ok(addr)
}

/// `peers` as a list of multiaddr strings.
mod multiaddrs {
    use libp2p::Multiaddr;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[Multiaddr], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Multiaddr>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|a| crate::parse_peer(a).map_err(|e| serde::de::Error::custom(e.to_string())))
            .collect()
    }
}
