//! Hashing the contiguous prefix of a download as it grows.
//!
//! What the connection at the prefix's end just wrote is handed over in
//! memory ([`super::handoff`]); the rest is read back from the sink.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use crate::{BoxSink, DigestAlgorithm, Error, ErrorKind, MultiHasher, Result};

/// Bytes read back from the sink per step.
const READ_BYTES: u32 = 1 << 20;

/// Follows the done prefix (published by the engine as `(prefix, final)`)
/// and hashes each new byte once: from the frame handed over when there is
/// one, else read back from the sink (normally from the page cache). Returns when the prefix is final and fully hashed; progress
/// is published through `shared.hashed`.
///
/// The loop runs on its own blocking thread, not as a task among the
/// connection tasks: on a busy runtime a task would wait behind every socket
/// read and fall far behind, while an OS thread gets its fair share of a core.
///
/// Dropping the [`Verifier`] or calling [`Verifier::stop`] ends the thread:
/// it must never outlive the pass that started it (it would keep the runtime
/// alive, and after a restart it would read the new bytes with the old state).
#[derive(Debug)]
pub(crate) struct Verifier {
    cancel: CancellationToken,
    thread: Option<JoinHandle<Result<MultiHasher>>>,
}

impl Verifier {
    /// Starts hashing the prefix published in `shared.prefix`.
    pub(crate) fn spawn(
        sink: BoxSink,
        shared: Arc<Shared>,
        algorithms: Vec<DigestAlgorithm>,
    ) -> Self {
        let handle = Handle::current();
        let prefix = shared.prefix.subscribe();
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        shared.handoff.clear();
        shared.hashing.store(true, Ordering::Release);
        let thread = tokio::task::spawn_blocking(move || {
            let hashed = hash_loop(&handle, &sink, prefix, algorithms, &shared, &token);
            shared.hashing.store(false, Ordering::Release);
            shared.handoff.clear();
            hashed
        });
        Self {
            cancel,
            thread: Some(thread),
        }
    }

    /// Waits for the digest of the whole (final) prefix.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when reading back fails.
    pub(crate) async fn finish(mut self) -> Result<MultiHasher> {
        let thread = self.thread.take().expect("verifier joined once");
        thread
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("hash task failed: {e}")))?
    }

    /// Stops the thread and waits until it no longer touches the sink.
    pub(crate) async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.await;
        }
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn hash_loop(
    handle: &Handle,
    sink: &BoxSink,
    mut prefix: watch::Receiver<(u64, bool)>,
    algorithms: Vec<DigestAlgorithm>,
    shared: &Shared,
    cancel: &CancellationToken,
) -> Result<MultiHasher> {
    let mut hasher = MultiHasher::new(algorithms);
    let mut at = 0u64;
    // One buffer for the whole download: the sink reads into it on this
    // thread when it can ([`Sink::read_at_blocking`](crate::Sink::read_at_blocking)).
    let mut buf = vec![0u8; READ_BYTES as usize];
    loop {
        let (target, last) = *prefix.borrow_and_update();
        while at < target {
            if cancel.is_cancelled() {
                return Err(Error::cancelled());
            }
            // Bytes the connection at the prefix handed over: hashed from memory.
            if let Some(data) = shared.handoff.take(at, target) {
                hasher.update(&data);
                at += data.len() as u64;
                shared.hashed.store(at, Ordering::Release);
                continue;
            }
            // Otherwise read back, up to the next handed-over frame.
            let until = shared
                .handoff
                .next_start()
                .filter(|s| *s > at)
                .map_or(target, |s| s.min(target));
            let n = (until - at).min(u64::from(READ_BYTES)) as usize;
            let read = match sink.read_at_blocking_dyn(at, &mut buf[..n]) {
                Some(r) => {
                    let got = r?;
                    hasher.update(&buf[..got]);
                    got
                }
                None => {
                    let data = handle.block_on(sink.read_at_dyn(at, n as u32))?;
                    hasher.update(&data);
                    data.len()
                }
            };
            if read == 0 {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "output ended at byte {at} while {target} bytes are recorded as written"
                    ),
                ));
            }
            at += read as u64;
            shared.hashed.store(at, Ordering::Release);
        }
        if last {
            return Ok(hasher);
        }
        let changed = handle.block_on(async {
            tokio::select! {
                () = cancel.cancelled() => false,
                r = prefix.changed() => r.is_ok(),
            }
        });
        if !changed {
            return Err(Error::cancelled());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use sha2::Digest as _;

    use crate::{DigestAlgorithm, Download, Error, ErrorKind, MemorySink, Output, Result, Sink};

    use crate::testkit::MemorySource;

    /// A sink that can only be read back through `read_at_blocking`: the
    /// verifier must use it (one reused buffer), never the allocating
    /// `read_at`.
    #[derive(Debug, Default)]
    struct BlockingOnly(MemorySink);

    impl Sink for BlockingOnly {
        async fn prepare(&self, len: Option<u64>, d: &[DigestAlgorithm]) -> Result<()> {
            self.0.prepare(len, d).await
        }
        async fn write_at(&self, offset: u64, data: Bytes) -> Result<()> {
            self.0.write_at(offset, data).await
        }
        async fn read_at(&self, _offset: u64, _len: u32) -> Result<Bytes> {
            Err(Error::new(
                ErrorKind::Io,
                "the verifier must read with read_at_blocking",
            ))
        }
        fn read_at_blocking(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize>> {
            let all = self.0.to_vec();
            let start = (offset as usize).min(all.len());
            let n = buf.len().min(all.len() - start);
            buf[..n].copy_from_slice(&all[start..start + n]);
            Some(Ok(n))
        }
        async fn sync(&self) -> Result<()> {
            Ok(())
        }
        async fn commit(&self) -> Result<()> {
            self.0.commit().await
        }
        async fn reset(&self) -> Result<()> {
            self.0.reset().await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_verifier_reads_back_through_the_blocking_path() {
        let data: Vec<u8> = (0..(5u32 << 20) + 77)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let want = hex::encode(sha2::Sha256::digest(&data));
        let output = Output::Sink {
            sink: Arc::new(BlockingOnly::default()),
            control_file: None,
        };
        let done = Download::new(Arc::new(MemorySource::new(Bytes::from(data))), output)
            .start()
            .wait()
            .await
            .unwrap();
        assert_eq!(done.sha256().unwrap().to_hex(), want);
    }
}
