//! Hashing the contiguous prefix of a download as it grows.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::runtime::Handle;
use tokio::sync::watch;

use super::shared::Shared;
use crate::{BoxSink, DigestAlgorithm, Error, ErrorKind, MultiHasher, Result};

/// Bytes read back from the sink per step.
const READ_BYTES: u32 = 1 << 20;

/// Follows the done prefix (published by the engine as `(prefix, final)`),
/// reads each new byte back from the sink once (normally from the page cache)
/// and hashes it. Returns when the prefix is final and fully hashed; progress
/// is published through `shared.hashed`.
///
/// The loop runs on its own blocking thread, not as a task among the
/// connection tasks: on a busy runtime a task would wait behind every socket
/// read and fall far behind, while an OS thread gets its fair share of a core.
pub(crate) async fn hash_prefix(
    sink: BoxSink,
    shared: Arc<Shared>,
    algorithms: Vec<DigestAlgorithm>,
) -> Result<MultiHasher> {
    let handle = Handle::current();
    let prefix = shared.prefix.subscribe();
    tokio::task::spawn_blocking(move || hash_loop(&handle, &sink, prefix, algorithms, &shared))
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("hash task failed: {e}")))?
}

fn hash_loop(
    handle: &Handle,
    sink: &BoxSink,
    mut prefix: watch::Receiver<(u64, bool)>,
    algorithms: Vec<DigestAlgorithm>,
    shared: &Shared,
) -> Result<MultiHasher> {
    let mut hasher = MultiHasher::new(algorithms);
    let mut at = 0u64;
    loop {
        let (target, last) = *prefix.borrow_and_update();
        while at < target {
            let n = (target - at).min(u64::from(READ_BYTES)) as u32;
            let data = handle.block_on(sink.read_at_dyn(at, n))?;
            if data.is_empty() {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "output ended at byte {at} while {target} bytes are recorded as written"
                    ),
                ));
            }
            hasher.update(&data);
            at += data.len() as u64;
            shared.hashed.store(at, Ordering::Release);
            shared.hash_progress.notify_waiters();
        }
        if last {
            return Ok(hasher);
        }
        if handle.block_on(prefix.changed()).is_err() {
            return Err(Error::cancelled());
        }
    }
}
