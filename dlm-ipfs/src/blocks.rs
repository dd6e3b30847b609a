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
        Box::pin(async move {
            if let Some(d) = inline_data(cid) {
                return Ok(d);
            }
            self.0.block(cid).await
        })
    }
}

/// Most bytes of blocks read ahead of need from a CAR and kept for later.
const STASH_LIMIT: usize = 64 << 20;

/// Blocks read from one CAR response (an `entity-bytes` request for a
/// range), in the order the gateway sends them. A block that is not in the
/// CAR (the gateway ignored the scope, or the response ended early) is
/// asked for alone with `?format=raw`.
pub(crate) struct CarBlocks {
    gateway: Arc<Gateway>,
    car: tokio::sync::Mutex<Option<CarReader<BodyStream>>>,
    stash: Mutex<(HashMap<Cid, Bytes>, usize)>,
}

impl CarBlocks {
    pub(crate) fn new(gateway: Arc<Gateway>, car: Option<CarReader<BodyStream>>) -> Self {
        Self {
            gateway,
            car: tokio::sync::Mutex::new(car),
            stash: Mutex::new((HashMap::new(), 0)),
        }
    }

    fn take_stashed(&self, cid: &Cid) -> Option<Bytes> {
        let mut s = self.stash.lock().unwrap_or_else(PoisonError::into_inner);
        let b = s.0.remove(cid)?;
        s.1 -= b.len();
        Some(b)
    }

    fn stash(&self, cid: Cid, data: Bytes) {
        let mut s = self.stash.lock().unwrap_or_else(PoisonError::into_inner);
        if s.1 + data.len() <= STASH_LIMIT {
            s.1 += data.len();
            s.0.insert(cid, data);
        }
    }
}

impl Blocks for CarBlocks {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Bytes, IpfsError>> {
        Box::pin(async move {
            if let Some(d) = inline_data(cid) {
                return Ok(d);
            }
            if let Some(b) = self.take_stashed(cid) {
                return Ok(b);
            }
            let mut car = self.car.lock().await;
            // Another get may have stashed it while this one waited.
            if let Some(b) = self.take_stashed(cid) {
                return Ok(b);
            }
            while let Some(reader) = car.as_mut() {
                match reader.next_block().await {
                    Ok(Some((got, data))) => {
                        self.gateway.check(&got, &data)?;
                        if got == *cid {
                            return Ok(data);
                        }
                        self.stash(got, data);
                    }
                    Ok(None) => *car = None,
                    Err(e) => {
                        tracing::debug!(gateway = %self.gateway.name(), error = %e, "CAR stream failed; asking for blocks one by one");
                        *car = None;
                    }
                }
            }
            drop(car);
            self.gateway.block(cid).await
        })
    }
}

/// Asks several sources for a block at once and takes the first verified
/// answer (for metadata: path resolution, listings, file roots).
pub(crate) struct AnyBlocks(pub(crate) Vec<Arc<dyn Blocks>>);

impl Blocks for AnyBlocks {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Bytes, IpfsError>> {
        Box::pin(async move {
            if let Some(d) = inline_data(cid) {
                return Ok(d);
            }
            if self.0.is_empty() {
                return Err(IpfsError::NoSources);
            }
            let attempts = self.0.iter().map(|b| b.get(cid));
            match futures::future::select_ok(attempts).await {
                Ok((data, _rest)) => Ok(data),
                Err(e) => Err(IpfsError::Unavailable {
                    cid: cid.to_string(),
                    reason: e.to_string(),
                }),
            }
        })
    }
}
