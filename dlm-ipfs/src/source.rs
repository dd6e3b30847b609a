//! `IpfsSource`: one UnixFS file as a `dlm_core::Source`. Its byte space is
//! the file; offsets come from the DAG's `blocksizes`, so the engine plans,
//! fetches over several connections, resumes and reports progress as for
//! any ranged source. Every block is checked against its CID before its
//! bytes are delivered (`Capabilities::verifies`).

use std::num::NonZeroU64;
use std::sync::Arc;

use dlm_core::{
    BodyStream, ByteRange, Capabilities, Context, Description, Probe, ReadRange, Result, Source,
    Target,
};
use futures::StreamExt;

use crate::address::IpfsAddress;
use crate::block::MAX_BLOCK_BYTES;
use crate::listing::IpfsListing;
use crate::reader::read_range;
use crate::session::{Resolved, Session};
use crate::unixfs::Node;
use crate::{IpfsConfig, IpfsError};

/// A UnixFS file by address (`ipfs://CID/path`, `ipns://name`).
#[derive(Debug)]
pub struct IpfsSource {
    session: Arc<Session>,
    address: IpfsAddress,
    resolved: tokio::sync::OnceCell<Resolved>,
}

impl IpfsSource {
    /// A source for `address` with its own gateways and bitswap node.
    /// Nothing is fetched until [`Source::probe`].
    ///
    /// # Errors
    /// [`IpfsError::NoSources`] without gateways, peers or DHT; HTTP client
    /// configuration errors.
    pub fn new(address: IpfsAddress, config: IpfsConfig) -> Result<Self> {
        Ok(Self::with_session(Session::new(config)?, address, None))
    }

    pub(crate) fn with_session(
        session: Arc<Session>,
        address: IpfsAddress,
        resolved: Option<Resolved>,
    ) -> Self {
        let cell = tokio::sync::OnceCell::new_with(resolved);
        Self {
            session,
            address,
            resolved: cell,
        }
    }

    /// The address.
    pub fn address(&self) -> &IpfsAddress {
        &self.address
    }

    async fn resolved(&self) -> Result<&Resolved> {
        self.resolved
            .get_or_try_init(|| self.session.resolve(&self.address))
            .await
    }
}

/// The size of a file's leaves when they can serve as chunk alignment:
/// the root's children are all that size (but the last) and small enough
/// to be leaves.
fn leaf_alignment(node: &Node) -> Option<NonZeroU64> {
    let Node::File { data, children } = node else {
        return None;
    };
    let (first, rest) = children.split_first()?;
    let size = first.1;
    let uniform = rest.iter().rev().skip(1).all(|(_, s)| *s == size);
    (data.is_empty() && uniform && size <= MAX_BLOCK_BYTES as u64)
        .then(|| NonZeroU64::new(size))
        .flatten()
}

impl Source for IpfsSource {
    fn identity(&self) -> String {
        self.address.to_string()
    }

    async fn probe(&self, _cx: &Context) -> Result<Probe> {
        let r = self.resolved().await?;
        if r.node.is_directory() {
            return Err(IpfsError::IsADirectory {
                path: self.address.to_string(),
            }
            .into());
        }
        let Some(len) = r.node.file_size() else {
            return Err(IpfsError::UnixFs {
                cid: r.cid.to_string(),
                reason: format!("a {} is not a file", r.node.describe()),
            }
            .into());
        };
        let mut caps = Capabilities::default()
            .with_ranges(true)
            .with_alignment(leaf_alignment(&r.node));
        caps.verifies = true;
        let mut probe = Probe::new(Some(len), caps);
        // The CID is the validator: an IPNS name that now points elsewhere
        // restarts the download instead of mixing two files.
        probe.etag = Some(r.cid.to_string());
        probe.file_name = Some(
            self.address
                .file_name()
                .map_or_else(|| r.cid.to_string(), str::to_string),
        );
        Ok(probe)
    }

    fn describe(&self) -> Option<Description> {
        let r = self.resolved.get()?;
        Some(
            Description::new(crate::inspect::fields(&self.address, &r.cid, &r.node))
                .with_len(r.node.file_size()),
        )
    }

    async fn open(&self, cx: &Context, range: ReadRange) -> Result<BodyStream> {
        let r = self.resolved().await?;
        let len = r.node.file_size().unwrap_or(0);
        let range = ByteRange::new(range.start().min(len), range.end().unwrap_or(len).min(len));
        if let Node::Leaf(data) = &r.node {
            // A one-block file is already here, verified when it was resolved.
            let part = data.slice(range.start as usize..range.end as usize);
            return Ok(futures::stream::iter([Ok(part)]).boxed());
        }
        let blocks = self.session.range_blocks(cx.conn, &r.cid, range).await?;
        let stream = read_range(blocks, r.node.clone(), range, self.session.config.window);
        Ok(stream.map(|r| r.map_err(dlm_core::Error::from)).boxed())
    }
}

/// Resolves an IPFS input to what it names: one file ([`Target::Source`])
/// or a directory tree ([`Target::Listing`]), fetching the root (a CID
/// alone does not say whether it is a directory). What
/// [`IpfsProtocol`](crate::IpfsProtocol) does for the registry.
///
/// # Errors
/// As [`IpfsAddress::parse`] and the resolution (IPNS, path, fetches).
pub async fn resolve_target(input: &str, config: IpfsConfig) -> Result<Target> {
    let (session, address, resolved) = resolve(input, config).await?;
    Ok(target(session, address, resolved))
}

/// Parses `input` and resolves it on a new session.
pub(crate) async fn resolve(
    input: &str,
    config: IpfsConfig,
) -> Result<(Arc<Session>, IpfsAddress, Resolved)> {
    let address = IpfsAddress::parse(input)?;
    let session = Session::new(config)?;
    let resolved = session.resolve(&address).await?;
    Ok((session, address, resolved))
}

/// What a resolved address names: a listing for a directory, else a source.
pub(crate) fn target(session: Arc<Session>, address: IpfsAddress, resolved: Resolved) -> Target {
    if resolved.node.is_directory() {
        Target::Listing(Arc::new(IpfsListing::new(session, address, resolved)))
    } else {
        Target::Source(Arc::new(IpfsSource::with_session(
            session,
            address,
            Some(resolved),
        )))
    }
}
