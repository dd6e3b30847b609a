//! `TorrentError` and its mapping onto `dlm_core::Error`.

use dlm_core::{Error, ErrorKind};

/// What can go wrong with torrents, trackers and peers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorrentError {
    /// The `.torrent` is not valid metainfo (BEP 3).
    #[error("invalid torrent: {0}")]
    InvalidTorrent(String),
    /// A file path in the torrent would leave the download directory.
    #[error("torrent file path {0:?} would leave the download directory")]
    UnsafePath(String),
    /// A tracker answered with an error or an unreadable reply.
    #[error("tracker {tracker}: {message}")]
    Tracker {
        /// The announce URL (without passkeys in the query).
        tracker: String,
        /// What went wrong.
        message: String,
        /// Whether trying later can help (timeouts, 5xx).
        retryable: bool,
    },
    /// Downloading a `.torrent` from a URL failed.
    #[error("fetching {url}: {message}")]
    Fetch {
        /// The URL, credentials removed.
        url: String,
        /// What went wrong.
        message: String,
        /// Whether trying later can help (connection failures, 5xx).
        retryable: bool,
    },
    /// The magnet link is malformed or names no v1 swarm (BEP 9).
    #[error("invalid magnet link: {0}")]
    InvalidMagnet(String),
    /// The torrent's metadata could not be fetched from peers (BEP 9): no
    /// peer found, none had it, or what they sent did not match the
    /// info-hash.
    #[error("metadata for {info_hash}: {message}")]
    Metadata {
        /// The swarm, as 40 hex digits.
        info_hash: String,
        /// What went wrong.
        message: String,
    },
    /// The piece layers of a v2 torrent could not be learned from peers
    /// (BEP 52 hash requests): no peer speaks v2, all rejected the
    /// requests, or their hashes did not prove out to the files' pieces
    /// roots.
    #[error("piece layers for {info_hash}: {message}")]
    PieceLayers {
        /// The swarm, as 40 hex digits.
        info_hash: String,
        /// What went wrong.
        message: String,
    },
    /// The DHT (BEP 5) node could not start, or a lookup or announce
    /// through it failed.
    #[error("DHT: {0}")]
    Dht(String),
    /// Local Service Discovery (BEP 14) could not start: port 6771 or the
    /// multicast group unavailable.
    #[error("LSD: {0}")]
    Lsd(String),
    /// Mapping a port on the NAT gateway failed: none answered, or it
    /// refused (UPnP IGD, NAT-PMP RFC 6886, PCP RFC 6887; see
    /// [`crate::port_mapping`]). Only logged: no download fails for it.
    #[error("port mapping: {0}")]
    PortMapping(String),
    /// Reading a local file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<TorrentError> for Error {
    fn from(e: TorrentError) -> Self {
        let (kind, retry) = match &e {
            TorrentError::InvalidTorrent(_)
            | TorrentError::UnsafePath(_)
            | TorrentError::InvalidMagnet(_) => (ErrorKind::InvalidInput, false),
            // Peers come and go: a later attempt may find one that has it.
            TorrentError::Metadata { .. } | TorrentError::PieceLayers { .. } => {
                (ErrorKind::Network, true)
            }
            TorrentError::Tracker { retryable, .. } => (ErrorKind::Protocol, *retryable),
            TorrentError::Fetch { retryable, .. } => (ErrorKind::Network, *retryable),
            TorrentError::Io { .. } => (ErrorKind::Io, false),
            TorrentError::Dht(_) => (ErrorKind::Network, true),
            TorrentError::Lsd(_) => (ErrorKind::Network, false),
            // A gateway may come back (or be rebooted); tried again later.
            TorrentError::PortMapping(_) => (ErrorKind::Network, true),
        };
        let err = Error::new(kind, e.to_string()).with_source(e);
        if retry { err.retryable() } else { err }
    }
}
