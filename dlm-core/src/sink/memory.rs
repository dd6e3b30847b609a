use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use super::Sink;
use crate::{DigestAlgorithm, Error, ErrorKind, Result};

/// A sink that keeps the download in memory, for small objects and tests.
///
/// Cloning shares the buffer.
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    buf: Arc<Mutex<Vec<u8>>>,
    committed: Arc<Mutex<bool>>,
}

impl MemorySink {
    /// An empty memory sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the bytes written so far.
    pub fn to_vec(&self) -> Vec<u8> {
        self.buf
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether [`Sink::commit`] was called.
    pub fn is_committed(&self) -> bool {
        *self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sink for MemorySink {
    async fn prepare(&self, len: Option<u64>, _digests: &[DigestAlgorithm]) -> Result<()> {
        if let Some(len) = len {
            let len = usize::try_from(len)
                .map_err(|_| Error::new(ErrorKind::Io, "object too large for a memory sink"))?;
            let mut buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
            if buf.len() < len {
                buf.resize(len, 0);
            }
        }
        Ok(())
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<()> {
        let start =
            usize::try_from(offset).map_err(|_| Error::new(ErrorKind::Io, "offset too large"))?;
        let mut buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        let end = start + data.len();
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf[start..end].copy_from_slice(&data);
        Ok(())
    }

    async fn read_at(&self, offset: u64, len: u32) -> Result<Bytes> {
        let buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(buf.len());
        let end = start.saturating_add(len as usize).min(buf.len());
        Ok(Bytes::copy_from_slice(&buf[start..end]))
    }

    async fn sync(&self) -> Result<()> {
        Ok(())
    }

    async fn commit(&self) -> Result<()> {
        *self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        Ok(())
    }

    async fn reset(&self) -> Result<()> {
        self.buf
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Ok(())
    }
}
