//! `IpfsError`: everything dlm-ipfs reports, and its mapping onto
//! [`dlm_core::ErrorKind`].

use dlm_core::{Error, ErrorKind};

/// An IPFS failure. Converts into [`dlm_core::Error`]; malformed input
/// (CIDs, CAR files, dag-pb and UnixFS blocks, IPNS records) is
/// [`ErrorKind::InvalidInput`], a block whose hash does not match its CID is
/// [`ErrorKind::Integrity`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpfsError {
    /// A CID that does not parse (multibase, version, multihash).
    #[error("invalid CID {input:?}: {reason}")]
    InvalidCid {
        /// The text or a hex prefix of the bytes given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// An input that is not `ipfs://CID[/path]`, `ipns://name[/path]`, a
    /// bare CID or an `/ipfs/…` path.
    #[error("invalid IPFS address {input:?}: {reason}")]
    InvalidAddress {
        /// The input.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// A multihash function dlm cannot check (only identity, sha2-256,
    /// sha2-512 and blake3 are supported).
    #[error("unsupported multihash function 0x{code:x} in {cid}")]
    UnsupportedHash {
        /// The multihash code.
        code: u64,
        /// The CID.
        cid: String,
    },
    /// A codec other than raw and dag-pb where file or directory data was
    /// expected.
    #[error(
        "unsupported codec 0x{code:x} in {cid} (only raw and dag-pb UnixFS data can be downloaded)"
    )]
    UnsupportedCodec {
        /// The multicodec code.
        code: u64,
        /// The CID.
        cid: String,
    },
    /// A block whose hash is not the one its CID names.
    #[error("block {cid} does not match its CID's hash (sent by {from})")]
    HashMismatch {
        /// The CID.
        cid: String,
        /// The gateway URL or peer that sent it.
        from: String,
    },
    /// A block over [`MAX_BLOCK_BYTES`](crate::MAX_BLOCK_BYTES).
    #[error("block {cid} is over the {max}-byte block limit")]
    BlockTooLarge {
        /// The CID (or "?" when not known yet).
        cid: String,
        /// The limit, bytes.
        max: usize,
    },
    /// A dag-pb block that does not decode (spec: IPLD dag-pb).
    #[error("malformed dag-pb block {cid}: {reason}")]
    DagPb {
        /// The block's CID.
        cid: String,
        /// What is wrong.
        reason: String,
    },
    /// UnixFS data that does not decode or is inconsistent (spec: UnixFS).
    #[error("malformed UnixFS node {cid}: {reason}")]
    UnixFs {
        /// The node's CID.
        cid: String,
        /// What is wrong.
        reason: String,
    },
    /// A CAR stream that does not parse (spec: CARv1).
    #[error("malformed CAR: {0}")]
    Car(String),
    /// A path segment that is not in its directory.
    #[error("{path}: no such file or directory")]
    NoSuchLink {
        /// The path so far.
        path: String,
    },
    /// A path that goes through a file.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The path so far.
        path: String,
    },
    /// A directory where one file was expected (for example by `dlmd`).
    #[error("{path} is a directory; download it with `dlm get`")]
    IsADirectory {
        /// The address.
        path: String,
    },
    /// A gateway answered something unusable (not a CAR where one was
    /// asked for), or its URL cannot be built.
    #[error("gateway {gateway}: {message}")]
    Gateway {
        /// The gateway's base URL.
        gateway: String,
        /// What happened.
        message: String,
        /// Whether asking again (or another source) may help.
        retryable: bool,
    },
    /// A gateway request failed or got an error status, classified by
    /// dlm-http (404/410 not-found, 401/403 auth, 429/5xx retryable, …).
    #[error("gateway {gateway}: {source}")]
    Http {
        /// The gateway's base URL.
        gateway: String,
        /// dlm-http's error.
        source: dlm_core::Error,
    },
    /// A bitswap failure (no peer answered, a stream failed).
    #[error("bitswap: {0}")]
    Bitswap(String),
    /// Every source was tried and none has the block, or every source was
    /// dropped.
    #[error("no source has {cid}: {reason}")]
    Unavailable {
        /// The block's CID.
        cid: String,
        /// Why the last source failed.
        reason: String,
    },
    /// Every gateway was dropped for sending blocks that do not match their
    /// CIDs, and no peer is configured.
    #[error("no source left for {cid}: every gateway sent blocks that do not match their CIDs")]
    SourcesDropped {
        /// The CID being fetched.
        cid: String,
    },
    /// A bad IPNS name or record (spec: IPNS record validation).
    #[error("IPNS {name}: {reason}")]
    Ipns {
        /// The name.
        name: String,
        /// What is wrong.
        reason: String,
        /// Whether another attempt may help (network failures).
        retryable: bool,
    },
    /// A DNSLink lookup that failed or found no `dnslink=` TXT record.
    #[error("DNSLink {domain}: {reason}")]
    DnsLink {
        /// The domain.
        domain: String,
        /// What happened.
        reason: String,
    },
    /// A multiaddr given with `--peer` that does not parse or lacks `/p2p/`.
    #[error("invalid peer multiaddr {input:?}: {reason}")]
    InvalidPeer {
        /// The input.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// A DAG over a bound (depth, links, directory entries).
    #[error("DAG over a limit: {0}")]
    TooLarge(String),
    /// No gateway and no peer configured.
    #[error("no IPFS source: give --gateway URL or --peer MULTIADDR (or enable the DHT)")]
    NoSources,
}

impl IpfsError {
    fn classify(&self) -> (ErrorKind, bool) {
        match self {
            Self::InvalidCid { .. }
            | Self::InvalidAddress { .. }
            | Self::DagPb { .. }
            | Self::UnixFs { .. }
            | Self::Car(_)
            | Self::InvalidPeer { .. }
            | Self::BlockTooLarge { .. }
            | Self::TooLarge(_) => (ErrorKind::InvalidInput, false),
            Self::UnsupportedHash { .. } | Self::UnsupportedCodec { .. } => {
                (ErrorKind::Unsupported, false)
            }
            Self::IsADirectory { .. } => (ErrorKind::Unsupported, false),
            Self::HashMismatch { .. } => (ErrorKind::Integrity, true),
            Self::SourcesDropped { .. } => (ErrorKind::Integrity, false),
            Self::NoSuchLink { .. } | Self::NotADirectory { .. } => (ErrorKind::NotFound, false),
            Self::Gateway { retryable, .. } => (ErrorKind::Network, *retryable),
            Self::Http { source, .. } => (source.kind(), source.is_retryable()),
            Self::Bitswap(_) => (ErrorKind::Network, true),
            Self::Unavailable { .. } => (ErrorKind::NotFound, false),
            Self::Ipns { retryable, .. } => {
                if *retryable {
                    (ErrorKind::Network, true)
                } else {
                    (ErrorKind::Integrity, false)
                }
            }
            Self::DnsLink { .. } => (ErrorKind::NotFound, false),
            Self::NoSources => (ErrorKind::InvalidInput, false),
        }
    }

    /// Whether another attempt (perhaps from another source) may succeed.
    pub fn is_retryable(&self) -> bool {
        self.classify().1
    }
}

impl From<IpfsError> for Error {
    fn from(e: IpfsError) -> Self {
        let (kind, retry) = e.classify();
        if let IpfsError::Http { source, .. } = e {
            // dlm-http's error as it is: its kind, retry flag and Retry-After.
            return source;
        }
        let err = Error::new(kind, e.to_string()).with_source(e);
        if retry { err.retryable() } else { err }
    }
}
