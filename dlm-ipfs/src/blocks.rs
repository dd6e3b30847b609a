//! Where blocks come from: one trait over a gateway (a request per block),
//! a gateway's CAR stream for a byte range, and bitswap; and a fan-out over
//! several of them for metadata (path resolution, directory listings).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use cid::Cid;
use dlm_core::BodyStream;
use futures::future::BoxFuture;

use crate::IpfsError;
use crate::block::inline_data;
use crate::car::CarReader;
use crate::gateway::Gateway;

/// Gets blocks by CID. Every implementation returns only bytes that were
/// checked against the CID.
pub(crate) trait Blocks: Send + Sync {
    /// The block `cid`, verified.
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Bytes, IpfsError>>;
}

/// One request per block to a gateway (`?format=raw`).
pub(crate) struct GatewayBlocks(pub(crate) Arc<Gateway>);

impl Blocks for GatewayBlocks {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Bytes, IpfsError>> {
        Box::pin(self.0.block(cid))
    }
}

/// Most bytes of blocks read from a CAR ahead of need.
const STASH_LIMIT: usize = 64 << 20;

/// Blocks read from one CAR response (an `entity-bytes` request for a
/// range). A task reads the CAR as fast as the blocks are taken (at most
/// [`STASH_LIMIT`] ahead), checks each against its CID and files it by CID;
/// gets take from there, in any order. A block the CAR does not hold (the
/// gateway ignored the scope, or the response ended early) is asked for
/// alone with `?format=raw`. The task, not the gets, drives the response:
/// a get that holds the reader while its caller stops polling it (a
/// prefetch in a `buffered` stream) would otherwise stall every other get.
pub(crate) struct CarBlocks {
    gateway: Arc<Gateway>,
    shared: Arc<CarShared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
struct CarShared {
    state: Mutex<CarState>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct CarState {
    blocks: HashMap<Cid, Bytes>,
    bytes: usize,
    /// The CAR ended, failed, or sent a bad block.
    done: bool,
    /// A block that did not match its CID.
    bad: Option<Cid>,
}

impl CarShared {
    fn state(&self) -> std::sync::MutexGuard<'_, CarState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CarBlocks {
    pub(crate) fn new(gateway: Arc<Gateway>, car: Option<CarReader<BodyStream>>) -> Self {
        let shared = Arc::new(CarShared::default());
        let task = match car {
            Some(car) => Some(tokio::spawn(read_car(gateway.clone(), shared.clone(), car))),
            None => {
                shared.state().done = true;
                None
            }
        };
        Self {
            gateway,
            shared,
            task,
        }
    }
}

impl Drop for CarBlocks {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

async fn read_car(gateway: Arc<Gateway>, shared: Arc<CarShared>, mut car: CarReader<BodyStream>) {
    loop {
        loop {
            let room = shared.changed.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if shared.state().bytes <= STASH_LIMIT {
                break;
            }
            room.await;
        }
        let next = car.next_block().await;
        let mut state = shared.state();
        match next {
            Ok(Some((cid, data))) => {
                match gateway.check(&cid, &data) {
                    Err(IpfsError::HashMismatch { .. }) => {
                        state.bad = Some(cid);
                        state.done = true;
                    }
                    // A block dlm cannot check (unknown hash, too large):
                    // what the range needs is asked for with `?format=raw`,
                    // which reports the error itself.
                    Err(_) => state.done = true,
                    Ok(()) => {
                        state.bytes += data.len();
                        state.blocks.insert(cid, data);
                    }
                }
            }
            Ok(None) => state.done = true,
            Err(e) => {
                tracing::debug!(gateway = %gateway.name(), error = %e, "CAR stream failed; asking for the rest one by one");
                state.done = true;
            }
        }
        let done = state.done;
        drop(state);
        shared.changed.notify_waiters();
        if done {
            return;
        }
    }
}

impl Blocks for CarBlocks {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Bytes, IpfsError>> {
        Box::pin(async move {
            loop {
                let changed = self.shared.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                {
                    let mut state = self.shared.state();
                    if let Some(b) = state.blocks.remove(cid) {
                        state.bytes -= b.len();
                        drop(state);
                        self.shared.changed.notify_waiters();
                        return Ok(b);
                    }
                    if let Some(bad) = state.bad {
                        return Err(IpfsError::HashMismatch {
                            cid: bad.to_string(),
                            from: self.gateway.name().to_string(),
                        });
                    }
                    if state.done || state.bytes > STASH_LIMIT {
                        break;
                    }
                }
                changed.await;
            }
            self.gateway.block(cid).await
        })
    }
}

/// Asks several sources for a block at once and takes the first verified
/// answer (for metadata: path resolution, listings, file roots). When all
/// fail, a retryable failure is returned if there was one.
pub(crate) struct AnyBlocks(pub(crate) Vec<Arc<dyn Blocks>>);

impl Blocks for AnyBlocks {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Bytes, IpfsError>> {
        Box::pin(async move {
            if self.0.is_empty() {
                return Err(IpfsError::NoSources);
            }
            let mut attempts: futures::stream::FuturesUnordered<_> =
                self.0.iter().map(|b| b.get(cid)).collect();
            let mut retryable = None;
            let mut last = None;
            while let Some(r) = futures::StreamExt::next(&mut attempts).await {
                match r {
                    Ok(data) => return Ok(data),
                    Err(e) if e.is_retryable() => retryable = Some(e),
                    Err(e) => last = Some(e),
                }
            }
            // A failure another attempt may cure (a 503, a timeout, a bad
            // block from a gateway now dropped) wins over a final one, so
            // the caller retries instead of giving up.
            Err(retryable.unwrap_or_else(|| IpfsError::Unavailable {
                cid: cid.to_string(),
                reason: last.map_or_else(String::new, |e| e.to_string()),
            }))
        })
    }
}

/// Small dag-pb blocks (a file's internal nodes, directories) kept for the
/// session, so the connections that each walk down from the file's root do
/// not ask the network for the same nodes again: some peers (Helia) do not
/// answer a repeated want for a block they already sent until it is asked
/// again.
#[derive(Default)]
pub(crate) struct NodeCache(Mutex<(HashMap<Cid, Bytes>, usize)>);

/// Largest block kept by [`NodeCache`], bytes: a node of 1,024 links.
const CACHED_BLOCK_MAX: usize = 64 * 1024;

/// Most bytes [`NodeCache`] holds.
const CACHE_LIMIT: usize = 32 << 20;

impl NodeCache {
    fn get(&self, cid: &Cid) -> Option<Bytes> {
        if cid.codec() != crate::block::DAG_PB {
            return None;
        }
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .get(cid)
            .cloned()
    }

    fn put(&self, cid: Cid, data: &Bytes) {
        if cid.codec() != crate::block::DAG_PB || data.len() > CACHED_BLOCK_MAX {
            return;
        }
        // A copy: `data` may be a slice of a much larger message buffer.
        let data = Bytes::copy_from_slice(data);
        let mut c = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if c.1 + data.len() > CACHE_LIMIT {
            c.0.clear();
            c.1 = 0;
        }
        c.1 += data.len();
        c.0.insert(cid, data);
    }
}

/// Blocks through a [`NodeCache`]; also where inline (identity) CIDs are
/// answered, for every source of a session.
pub(crate) struct Cached {
    pub(crate) inner: Arc<dyn Blocks>,
    pub(crate) cache: Arc<NodeCache>,
}

impl Blocks for Cached {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Bytes, IpfsError>> {
        Box::pin(async move {
            if let Some(d) = inline_data(cid) {
                return Ok(d);
            }
            if let Some(b) = self.cache.get(cid) {
                return Ok(b);
            }
            let b = self.inner.get(cid).await?;
            self.cache.put(*cid, &b);
            Ok(b)
        })
    }
}

/// Blocks held in a map, for unit tests of DAG walks.
#[cfg(test)]
pub(crate) struct MemoryBlocks(pub(crate) HashMap<Cid, Bytes>);

#[cfg(test)]
impl Blocks for MemoryBlocks {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Bytes, IpfsError>> {
        Box::pin(async move {
            self.0.get(cid).cloned().ok_or(IpfsError::Unavailable {
                cid: cid.to_string(),
                reason: "not in memory".into(),
            })
        })
    }
}
