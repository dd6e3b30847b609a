//! `Session`: the sources of one download (or one directory's downloads):
//! the gateways, and the bitswap node once one is needed. Metadata (roots,
//! directories, IPNS) is asked of every live source at once; a file's byte
//! ranges are spread over them, one source per engine connection.

use std::sync::Arc;

use cid::Cid;
use dlm_core::ByteRange;
use dlm_core::scheduler::ConnId;
use dlm_http::HttpClient;

use crate::address::{IpfsAddress, Root};
use crate::bitswap::Bitswap;
use crate::blocks::{AnyBlocks, Blocks, Cached, CarBlocks, GatewayBlocks, NodeCache};
use crate::directory::resolve_path;
use crate::gateway::{DagScope, Gateway};
use crate::unixfs::Node;
use crate::{IpfsConfig, IpfsError, ipns};

/// Where a connection's blocks come from.
#[derive(Clone)]
pub(crate) enum Provider {
    Gateway(Arc<Gateway>),
    Bitswap(Arc<Bitswap>),
}

/// A resolved address: the CID it ends at and that block's node.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub(crate) cid: Cid,
    pub(crate) node: Node,
}

/// The sources shared by the downloads of one input.
pub(crate) struct Session {
    pub(crate) config: IpfsConfig,
    pub(crate) gateways: Vec<Arc<Gateway>>,
    bitswap: tokio::sync::OnceCell<Option<Arc<Bitswap>>>,
    nodes: Arc<NodeCache>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field(
                "gateways",
                &self.gateways.iter().map(|g| g.name()).collect::<Vec<_>>(),
            )
            .field("peers", &self.config.peers)
            .field("dht", &self.config.dht)
            .finish()
    }
}

impl Session {
    /// A session for `config`.
    ///
    /// # Errors
    /// [`IpfsError::NoSources`] with no gateway, no peer and no DHT; the HTTP
    /// client's configuration errors.
    pub(crate) fn new(config: IpfsConfig) -> Result<Arc<Self>, dlm_core::Error> {
        if config.gateways.is_empty() && config.peers.is_empty() && !config.dht {
            return Err(IpfsError::NoSources.into());
        }
        let client = HttpClient::new(config.http.clone())?;
        let gateways = config
            .gateways
            .iter()
            .map(|g| Arc::new(Gateway::new(g.clone(), client.clone())))
            .collect();
        Ok(Arc::new(Self {
            config,
            gateways,
            bitswap: tokio::sync::OnceCell::new(),
            nodes: Arc::default(),
        }))
    }

    /// The bitswap node, started on first use when peers or the DHT are
    /// configured.
    async fn bitswap(&self) -> Result<Option<Arc<Bitswap>>, IpfsError> {
        if self.config.peers.is_empty() && !self.config.dht {
            return Ok(None);
        }
        self.bitswap
            .get_or_try_init(|| async {
                let node = Bitswap::start(&self.config).await?;
                Ok::<_, IpfsError>(Some(Arc::new(node)))
            })
            .await
            .cloned()
    }

    /// The live providers: gateways not dropped, then bitswap.
    pub(crate) async fn providers(&self) -> Result<Vec<Provider>, IpfsError> {
        let mut out: Vec<Provider> = self
            .gateways
            .iter()
            .filter(|g| !g.is_dropped())
            .map(|g| Provider::Gateway(g.clone()))
            .collect();
        if let Some(b) = self.bitswap().await? {
            out.push(Provider::Bitswap(b));
        }
        Ok(out)
    }

    /// Blocks from any live source, the first verified answer winning.
    pub(crate) async fn any_blocks(&self) -> Result<Arc<dyn Blocks>, IpfsError> {
        let providers = self.providers().await?;
        if providers.is_empty() {
            return Err(IpfsError::NoSources);
        }
        let any: Arc<dyn Blocks> = Arc::new(AnyBlocks(
            providers
                .into_iter()
                .map(|p| -> Arc<dyn Blocks> {
                    match p {
                        Provider::Gateway(g) => Arc::new(GatewayBlocks(g)),
                        Provider::Bitswap(b) => b,
                    }
                })
                .collect(),
        ));
        Ok(self.cached(any))
    }

    fn cached(&self, inner: Arc<dyn Blocks>) -> Arc<dyn Blocks> {
        Arc::new(Cached {
            inner,
            cache: self.nodes.clone(),
        })
    }

    /// The blocks for one engine connection's `range` of the file `file`:
    /// the provider picked by the connection number among the live ones; a
    /// gateway streams the range as one CAR (`dag-scope=entity`,
    /// `entity-bytes`).
    pub(crate) async fn range_blocks(
        &self,
        conn: Option<ConnId>,
        file: &Cid,
        range: ByteRange,
    ) -> Result<Arc<dyn Blocks>, IpfsError> {
        let providers = self.providers().await?;
        if providers.is_empty() {
            return Err(IpfsError::SourcesDropped {
                cid: file.to_string(),
            });
        }
        let pick = conn.map_or(0, |c| c.0 as usize) % providers.len();
        let blocks: Arc<dyn Blocks> = match &providers[pick] {
            Provider::Bitswap(b) => b.clone(),
            Provider::Gateway(g) => {
                let car = match g
                    .car(
                        file,
                        DagScope::Entity,
                        Some((range.start, range.end.saturating_sub(1))),
                    )
                    .await
                {
                    Ok(car) => Some(car),
                    Err(e) => {
                        tracing::debug!(gateway = %g.name(), error = %e, "CAR request failed; asking for blocks one by one");
                        None
                    }
                };
                Arc::new(CarBlocks::new(g.clone(), car))
            }
        };
        Ok(self.cached(blocks))
    }

    /// Resolves `address`: IPNS names and DNSLink to a CID, then the path.
    ///
    /// # Errors
    /// As the IPNS resolution, [`resolve_path`] and the fetches.
    pub(crate) async fn resolve(&self, address: &IpfsAddress) -> Result<Resolved, dlm_core::Error> {
        let (root, mut path) = match &address.root {
            Root::Cid(c) => (*c, Vec::new()),
            Root::Ipns(name) => {
                let target = ipns::resolve(self, name).await?;
                (target.root, target.path)
            }
        };
        path.extend(address.path.iter().cloned());
        let blocks = self.any_blocks().await?;
        let (cid, node) = resolve_path(blocks.as_ref(), root, &path).await?;
        Ok(Resolved { cid, node })
    }
}
