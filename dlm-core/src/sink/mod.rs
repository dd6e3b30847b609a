//! The `Sink` trait and the built-in sinks: where a download's bytes go.
//!
//! A sink maps the download's byte space onto storage. The engine calls
//! [`Sink::write_at`] concurrently for disjoint (rarely, identical-content
//! overlapping) ranges, from several connections.

mod file;
mod memory;
mod multi_file;
mod ordered;

pub use file::{FileSink, WRITE_BEHIND_BYTES};
pub use memory::MemorySink;
pub use multi_file::{DEFAULT_MAX_OPEN_FILES, FileSpan, MultiFileSink};
pub use ordered::{DEFAULT_REORDER_BYTES, OrderedSink};

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::{Checksum, DigestAlgorithm, Error, ErrorKind, Result};

/// Where bytes land.
pub trait Sink: Send + Sync + fmt::Debug + 'static {
    /// Gets storage ready for a download of `len` bytes (pre-allocating when
    /// known). `digests` lists the algorithms the engine wants; only sinks that
    /// [hash in order](Sink::hashes_in_order) use it. Keeps existing bytes:
    /// call [`Sink::reset`] first to start over.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] (disk full included) when storage cannot be prepared.
    fn prepare(
        &self,
        len: Option<u64>,
        digests: &[DigestAlgorithm],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Writes `data` at `offset` bytes from the start of the byte space.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when storage fails.
    fn write_at(&self, offset: u64, data: Bytes) -> impl Future<Output = Result<()>> + Send;

    /// Writes `frames` one after another from `offset`: the same bytes as a
    /// [`Sink::write_at`] of their concatenation, without concatenating them.
    /// The default writes each in turn; [`FileSink`] gathers them into one
    /// `pwritev(2)`, so the engine writes 1 MiB per call without copying the
    /// frames a connection received.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when storage fails (some frames may be written).
    fn write_vectored_at(
        &self,
        offset: u64,
        frames: Vec<Bytes>,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            let mut at = offset;
            for frame in frames {
                let n = frame.len() as u64;
                self.write_at(at, frame).await?;
                at += n;
            }
            Ok(())
        }
    }

    /// Reads `len` bytes at `offset`, for verification and seeding.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] for sinks that cannot read back (the default),
    /// [`ErrorKind::Io`] otherwise.
    fn read_at(&self, offset: u64, len: u32) -> impl Future<Output = Result<Bytes>> + Send {
        let _ = (offset, len);
        async {
            Err(Error::new(
                ErrorKind::Unsupported,
                "this sink cannot read back",
            ))
        }
    }

    /// Reads into `buf` at `offset` on the calling thread, which must be one
    /// that may block (the engine's verifier thread), returning the bytes read
    /// (0 at the end). `None` when the sink can only read asynchronously; the
    /// engine then uses [`Sink::read_at`]. Lets the verifier reuse one buffer
    /// instead of allocating per read.
    ///
    /// # Errors
    /// [`ErrorKind::Io`].
    fn read_at_blocking(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize>> {
        let _ = (offset, buf);
        None
    }

    /// The ranges of the byte space that storage holds from an earlier run,
    /// before [`Sink::prepare`]: a partial file's extent (empty when it is
    /// gone), the extents of a torrent's files found on disk. The engine
    /// trusts no resume state outside them (a `.part` deleted or truncated
    /// behind its control file is fetched again, never committed with
    /// zeros), and without resume state a source that can verify stored
    /// bytes ([`Source::verify_stored`](crate::Source::verify_stored)) checks
    /// them instead of fetching them again. `None`, the default: the sink
    /// cannot tell.
    ///
    /// # Errors
    /// [`ErrorKind::Io`].
    fn stored_ranges(&self) -> impl Future<Output = Result<Option<crate::RangeSet>>> + Send {
        async { Ok(None) }
    }

    /// Which file the bytes are stored in, for the control file to record
    /// and the next run to compare: a `.part` file's device and inode, so
    /// one replaced behind the control file's back (same name and length,
    /// other bytes) is not trusted. `None`, the default, when there is no
    /// such file (yet) or the sink cannot tell.
    fn storage_id(&self) -> Option<String> {
        None
    }

    /// Makes written bytes durable (`fdatasync`); called before the control
    /// file records them as done.
    ///
    /// # Errors
    /// [`ErrorKind::Io`].
    fn sync(&self) -> impl Future<Output = Result<()>> + Send;

    /// Finishes a complete download (e.g. renames `NAME.part` to `NAME`).
    ///
    /// # Errors
    /// [`ErrorKind::Io`].
    fn commit(&self) -> impl Future<Output = Result<()>> + Send;

    /// Throws away everything written, to start over (the remote changed).
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] when bytes already left (a stream that was
    /// written to stdout), [`ErrorKind::Io`] otherwise.
    fn reset(&self) -> impl Future<Output = Result<()>> + Send;

    /// Whether this sink computes the digests itself, in byte order, instead of
    /// letting the engine read bytes back (ordered writers).
    fn hashes_in_order(&self) -> bool {
        false
    }

    /// The digests of everything written so far, for sinks that
    /// [hash in order](Sink::hashes_in_order).
    fn digests(&self) -> Option<Vec<Checksum>> {
        None
    }
}

/// Object-safe twin of [`Sink`], implemented for every `Sink`; never implement
/// it by hand.
#[allow(
    missing_docs,
    reason = "each method mirrors the documented Sink method of the same name"
)]
pub trait SinkDyn: Send + Sync + fmt::Debug {
    fn prepare_dyn<'a>(
        &'a self,
        len: Option<u64>,
        digests: &'a [DigestAlgorithm],
    ) -> BoxFuture<'a, Result<()>>;
    fn write_at_dyn(&self, offset: u64, data: Bytes) -> BoxFuture<'_, Result<()>>;
    fn write_vectored_at_dyn(&self, offset: u64, frames: Vec<Bytes>) -> BoxFuture<'_, Result<()>>;
    fn read_at_dyn(&self, offset: u64, len: u32) -> BoxFuture<'_, Result<Bytes>>;
    fn read_at_blocking_dyn(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize>>;
    fn stored_ranges_dyn(&self) -> BoxFuture<'_, Result<Option<crate::RangeSet>>>;
    fn storage_id_dyn(&self) -> Option<String>;
    fn sync_dyn(&self) -> BoxFuture<'_, Result<()>>;
    fn commit_dyn(&self) -> BoxFuture<'_, Result<()>>;
    fn reset_dyn(&self) -> BoxFuture<'_, Result<()>>;
    fn hashes_in_order_dyn(&self) -> bool;
    fn digests_dyn(&self) -> Option<Vec<Checksum>>;
}

impl<T: Sink> SinkDyn for T {
    fn prepare_dyn<'a>(
        &'a self,
        len: Option<u64>,
        digests: &'a [DigestAlgorithm],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.prepare(len, digests))
    }
    fn write_at_dyn(&self, offset: u64, data: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.write_at(offset, data))
    }
    fn write_vectored_at_dyn(&self, offset: u64, frames: Vec<Bytes>) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.write_vectored_at(offset, frames))
    }
    fn read_at_dyn(&self, offset: u64, len: u32) -> BoxFuture<'_, Result<Bytes>> {
        Box::pin(self.read_at(offset, len))
    }
    fn read_at_blocking_dyn(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize>> {
        self.read_at_blocking(offset, buf)
    }
    fn stored_ranges_dyn(&self) -> BoxFuture<'_, Result<Option<crate::RangeSet>>> {
        Box::pin(self.stored_ranges())
    }
    fn storage_id_dyn(&self) -> Option<String> {
        self.storage_id()
    }
    fn sync_dyn(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.sync())
    }
    fn commit_dyn(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.commit())
    }
    fn reset_dyn(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.reset())
    }
    fn hashes_in_order_dyn(&self) -> bool {
        self.hashes_in_order()
    }
    fn digests_dyn(&self) -> Option<Vec<Checksum>> {
        self.digests()
    }
}

/// A shared, type-erased sink.
pub type BoxSink = Arc<dyn SinkDyn>;
