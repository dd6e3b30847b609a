//! A bitswap 1.2.0 client (spec: <https://specs.ipfs.tech/bitswap-protocol/>)
//! on libp2p: TCP, noise, yamux and identify, with bitswap streams through
//! `libp2p-stream` and, when enabled, Kademlia (`/ipfs/kad/1.0.0`) provider
//! lookups.
//!
//! Each connected peer gets one outbound stream for our wantlist; blocks and
//! presences come back on streams the peer opens (`/ipfs/bitswap/1.2.0`,
//! `1.1.0` or `1.0.0`). A block's CID is computed from its bytes and the
//! prefix sent with it, so a peer cannot pass off other bytes as a wanted
//! block. Wants are spread over peers by [`wants::Wants`].

pub(crate) mod message;
mod node;
mod wants;
pub(crate) mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use futures::future::BoxFuture;
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};

use crate::blocks::Blocks;
use crate::{IpfsConfig, IpfsError};
use message::Entry;
use wants::{Sends, Wants};

/// How long a want waits for an answer before it is asked again (another
/// peer, or the same ones).
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// How many times a want is asked again before the get fails (with a
/// retryable error: the engine tries the range again later).
const MAX_RETRIES: u32 = 30;

/// State shared by the swarm task, the stream tasks and callers.
struct Shared {
    wants: Mutex<Wants>,
    /// Each connected peer's outbound stream writer: its number (so a
    /// writer that ends late cannot remove its successor) and its queue.
    outboxes: Mutex<HashMap<PeerId, (u64, mpsc::UnboundedSender<Entry>)>>,
    /// The last writer number handed out.
    writers: std::sync::atomic::AtomicU64,
    commands: mpsc::UnboundedSender<node::Command>,
    dht: bool,
}

impl Shared {
    fn wants(&self) -> std::sync::MutexGuard<'_, Wants> {
        self.wants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues entries on their peers' outbound streams.
    fn send(&self, sends: Sends) {
        if sends.is_empty() {
            return;
        }
        let outboxes = self.outboxes.lock().unwrap_or_else(PoisonError::into_inner);
        for (peer, entry) in sends {
            if let Some((_, tx)) = outboxes.get(&peer) {
                let _ = tx.send(entry);
            }
        }
    }
}

/// A running bitswap client. Dropping it stops its libp2p node.
pub(crate) struct Bitswap {
    shared: Arc<Shared>,
    _task: node::TaskGuard,
}

impl std::fmt::Debug for Bitswap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitswap").finish_non_exhaustive()
    }
}

impl Bitswap {
    /// Starts a libp2p node with a new identity and dials `config.peers`.
    ///
    /// # Errors
    /// [`IpfsError::Bitswap`] when the node cannot be built.
    pub(crate) async fn start(config: &IpfsConfig) -> Result<Self, IpfsError> {
        let (commands, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            wants: Mutex::new(Wants::default()),
            outboxes: Mutex::new(HashMap::new()),
            writers: Default::default(),
            commands,
            dht: config.dht,
        });
        let task = node::spawn(config, shared.clone(), rx)?;
        Ok(Self {
            shared,
            _task: task,
        })
    }

    /// Connected peers that take wants.
    pub(crate) fn peers(&self) -> usize {
        self.shared.wants().peers()
    }

    async fn fetch(&self, cid: &Cid) -> Result<Bytes, IpfsError> {
        let (tx, rx) = oneshot::channel();
        let sends = self.shared.wants().want(*cid, tx);
        self.shared.send(sends);
        let mut pending = Pending {
            shared: &self.shared,
            cid: *cid,
            rx: Some(rx),
        };
        if self.shared.dht && self.shared.wants().stalled(cid) {
            let _ = self
                .shared
                .commands
                .send(node::Command::FindProviders(*cid));
        }
        for _ in 0..=MAX_RETRIES {
            let Some(rx) = pending.rx.as_mut() else { break };
            match tokio::time::timeout(RETRY_AFTER, rx).await {
                Ok(Ok(Ok(data))) => return Ok(data),
                Ok(Ok(Err(reason))) => return Err(IpfsError::Bitswap(format!("{cid}: {reason}"))),
                Ok(Err(_)) => return Err(IpfsError::Bitswap(format!("{cid}: want dropped"))),
                Err(_) => {
                    let sends = self.shared.wants().retry(cid);
                    tracing::debug!(%cid, asked = sends.len(), "bitswap want timed out; asking again");
                    self.shared.send(sends);
                    if self.shared.dht && self.shared.wants().stalled(cid) {
                        let _ = self
                            .shared
                            .commands
                            .send(node::Command::FindProviders(*cid));
                    }
                }
            }
        }
        let peers = self.peers();
        Err(IpfsError::Bitswap(format!(
            "no peer sent {cid} in {} s ({peers} connected)",
            RETRY_AFTER.as_secs() * u64::from(MAX_RETRIES + 1)
        )))
    }
}

/// A want being waited for; when dropped (answered, failed, or the caller
/// stopped waiting), the want is withdrawn unless others still wait for it.
struct Pending<'a> {
    shared: &'a Shared,
    cid: Cid,
    rx: Option<oneshot::Receiver<Result<Bytes, String>>>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        drop(self.rx.take());
        self.shared.wants().forget(&self.cid);
    }
}

impl Blocks for Bitswap {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Bytes, IpfsError>> {
        Box::pin(self.fetch(cid))
    }
}
