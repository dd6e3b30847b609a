use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex as StdMutex, PoisonError};

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, Notify};

use super::Sink;
use crate::{Checksum, DigestAlgorithm, Error, ErrorKind, MultiHasher, Result};

/// Default bytes an [`OrderedSink`] holds out of order: 8 MiB.
pub const DEFAULT_REORDER_BYTES: usize = 8 << 20;

struct State<W> {
    writer: W,
    /// Next offset the writer expects.
    next: u64,
    /// Out-of-order writes waiting for the gap before them to fill.
    pending: BTreeMap<u64, Bytes>,
    pending_bytes: usize,
}

/// A sink that emits bytes strictly in order to any `AsyncWrite` (stdout, a
/// pipe, a socket), holding out-of-order writes in a bounded re-order buffer.
///
/// A write past the buffer's capacity waits until the gap before it fills, so
/// a slow head connection slows the others rather than growing memory. The
/// write at the current frontier never waits, so progress is always possible.
/// Pair it with [`SequentialScheduler`](crate::SequentialScheduler) to keep the
/// buffer small. It hashes what it emits ([`Sink::hashes_in_order`]).
pub struct OrderedSink<W> {
    state: Mutex<State<W>>,
    hasher: StdMutex<Option<MultiHasher>>,
    capacity: usize,
    drained: Notify,
}

impl<W> fmt::Debug for OrderedSink<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderedSink")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> OrderedSink<W> {
    /// An ordered sink over `writer` with a re-order buffer of
    /// [`DEFAULT_REORDER_BYTES`].
    pub fn new(writer: W) -> Self {
        Self::with_capacity(writer, DEFAULT_REORDER_BYTES)
    }

    /// An ordered sink holding at most `capacity` bytes out of order.
    pub fn with_capacity(writer: W, capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                writer,
                next: 0,
                pending: BTreeMap::new(),
                pending_bytes: 0,
            }),
            hasher: StdMutex::new(None),
            capacity,
            drained: Notify::new(),
        }
    }

    async fn emit(&self, st: &mut State<W>, data: Bytes) -> Result<()> {
        st.writer
            .write_all(&data)
            .await
            .map_err(|e| Error::io("writing output stream", e))?;
        st.next += data.len() as u64;
        if let Some(h) = self
            .hasher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            h.update(&data);
        }
        Ok(())
    }
}

/// Drops the part of `data` (at `offset`) that lies before `next`.
fn trim_before(offset: u64, data: Bytes, next: u64) -> Option<Bytes> {
    let end = offset + data.len() as u64;
    if end <= next {
        return None;
    }
    let skip = next.saturating_sub(offset) as usize;
    Some(data.slice(skip..))
}

impl<W: AsyncWrite + Unpin + Send + 'static> Sink for OrderedSink<W> {
    async fn prepare(&self, _len: Option<u64>, digests: &[DigestAlgorithm]) -> Result<()> {
        let mut h = self.hasher.lock().unwrap_or_else(PoisonError::into_inner);
        if h.is_none() {
            *h = Some(MultiHasher::new(digests.iter().copied()));
        }
        Ok(())
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<()> {
        loop {
            let mut st = self.state.lock().await;
            let Some(data) = trim_before(offset, data.clone(), st.next) else {
                return Ok(());
            };
            let offset = offset.max(st.next);
            if offset == st.next {
                self.emit(&mut st, data).await?;
                while let Some((&at, _)) = st.pending.first_key_value() {
                    if at > st.next {
                        break;
                    }
                    let (at, chunk) = st.pending.pop_first().expect("first entry exists");
                    st.pending_bytes -= chunk.len();
                    if let Some(rest) = trim_before(at, chunk, st.next) {
                        self.emit(&mut st, rest).await?;
                    }
                }
                self.drained.notify_waiters();
                return Ok(());
            }
            if st.pending_bytes + data.len() <= self.capacity || st.pending.is_empty() {
                st.pending_bytes += data.len();
                if let Some(old) = st.pending.insert(offset, data) {
                    st.pending_bytes -= old.len();
                }
                return Ok(());
            }
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            drop(st);
            drained.await;
        }
    }

    async fn sync(&self) -> Result<()> {
        let mut st = self.state.lock().await;
        st.writer
            .flush()
            .await
            .map_err(|e| Error::io("flushing output stream", e))
    }

    async fn commit(&self) -> Result<()> {
        let mut st = self.state.lock().await;
        if !st.pending.is_empty() {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("stream has a gap at byte {}", st.next),
            ));
        }
        st.writer
            .flush()
            .await
            .map_err(|e| Error::io("flushing output stream", e))
    }

    async fn reset(&self) -> Result<()> {
        let mut st = self.state.lock().await;
        if st.next > 0 {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "cannot restart a download whose bytes were already streamed out",
            ));
        }
        st.pending.clear();
        st.pending_bytes = 0;
        Ok(())
    }

    fn hashes_in_order(&self) -> bool {
        true
    }

    fn digests(&self) -> Option<Vec<Checksum>> {
        let h = self
            .hasher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        Some(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn reorders_and_bounds_memory() {
        let sink = Arc::new(OrderedSink::with_capacity(Vec::new(), 4));
        sink.prepare(Some(8), &[DigestAlgorithm::Sha256])
            .await
            .unwrap();
        sink.write_at(4, Bytes::from_static(b"EFGH")).await.unwrap();
        // The buffer is full: this write must wait until the head arrives.
        let s2 = sink.clone();
        let late = tokio::spawn(async move { s2.write_at(6, Bytes::from_static(b"GHIJ")).await });
        tokio::task::yield_now().await;
        assert!(!late.is_finished());
        sink.write_at(0, Bytes::from_static(b"ABCD")).await.unwrap();
        late.await.unwrap().unwrap();
        sink.commit().await.unwrap();
        let st = sink.state.lock().await;
        assert_eq!(&st.writer[..], b"ABCDEFGHIJ");
        drop(st);
        let d = sink.digests().unwrap();
        assert_eq!(d[0].algorithm, DigestAlgorithm::Sha256);
    }
}
