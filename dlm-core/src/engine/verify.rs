//! Hashing the contiguous prefix of a download as it grows.

use tokio::sync::watch;

use crate::{BoxSink, DigestAlgorithm, Error, ErrorKind, MultiHasher, Result};

/// Bytes read back from the sink per step.
const READ_BYTES: u32 = 4 << 20;

/// Follows the done prefix (published by the engine as `(prefix, final)`),
/// reads each new byte back from the sink once (normally from the page cache)
/// and hashes it off the async threads. Returns when the prefix is final and
/// fully hashed. Progress is published through `hashed`.
pub(crate) async fn hash_prefix(
    sink: BoxSink,
    mut prefix: watch::Receiver<(u64, bool)>,
    algorithms: Vec<DigestAlgorithm>,
    hashed: watch::Sender<u64>,
) -> Result<MultiHasher> {
    let mut hasher = MultiHasher::new(algorithms);
    let mut at = 0u64;
    loop {
        let (target, last) = *prefix.borrow_and_update();
        while at < target {
            let n = (target - at).min(u64::from(READ_BYTES)) as u32;
            let data = sink.read_at_dyn(at, n).await?;
            if data.is_empty() {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "output ended at byte {at} while {target} bytes are recorded as written"
                    ),
                ));
            }
            at += data.len() as u64;
            hasher = tokio::task::spawn_blocking(move || {
                hasher.update(&data);
                hasher
            })
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("hash task failed: {e}")))?;
            let _ = hashed.send(at);
        }
        if last {
            return Ok(hasher);
        }
        if prefix.changed().await.is_err() {
            return Err(Error::cancelled());
        }
    }
}
