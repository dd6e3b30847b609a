//! The `Source` trait: what a protocol offers for one remote resource.

use std::fmt;
use std::future::Future;
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio_util::sync::CancellationToken;

use crate::scheduler::{Availability, ConnId, Scheduler};
use crate::{BoxSink, ByteRange, Checksum, RangeSet, ReadRange, Result};

/// The bytes of one [`Source::open`] call, in order, as they arrive.
pub type BodyStream = BoxStream<'static, Result<Bytes>>;

/// `body` cut after `len` bytes: the last frame is sliced, and the inner
/// stream is dropped as soon as `len` bytes have passed (for protocols whose
/// transfer runs to the end of the object, like FTP's `RETR` after `REST`,
/// so [`Source::open`] yields exactly the range asked for).
pub fn limit_body(body: BodyStream, len: u64) -> BodyStream {
    use futures::StreamExt as _;
    Box::pin(futures::stream::unfold(
        (Some(body), len),
        |(body, left)| async move {
            let mut body = body?;
            if left == 0 {
                return None;
            }
            match body.next().await? {
                Ok(mut frame) => {
                    if frame.len() as u64 >= left {
                        frame.truncate(left as usize);
                        let n = frame.len() as u64;
                        // Done: the inner stream is dropped now.
                        Some((Ok(frame), (None, left - n)))
                    } else {
                        let n = frame.len() as u64;
                        Some((Ok(frame), (Some(body), left - n)))
                    }
                }
                Err(e) => Some((Err(e), (None, 0))),
            }
        },
    ))
}

/// Per-call context handed to sources.
#[non_exhaustive]
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Cancelled when the download is paused or cancelled; sources should stop
    /// promptly (dropping their futures and streams is always safe too).
    pub cancel: CancellationToken,
    /// The engine connection making the call, when it is one: a swarm source
    /// binds one peer to each connection (see [`Source::availability`]).
    pub conn: Option<ConnId>,
    /// A directory where the source may keep what it learned for a later
    /// run of the same download (a magnet link's metadata, BEP 9): the
    /// directory of the download's control file. `None` when the download
    /// keeps no resume state.
    pub state_dir: Option<std::path::PathBuf>,
}

impl Context {
    /// A context with a fresh cancellation token.
    pub fn new() -> Self {
        Self::default()
    }

    /// A context driven by `cancel`.
    pub fn with_cancel(cancel: CancellationToken) -> Self {
        Self {
            cancel,
            ..Self::default()
        }
    }

    /// This context, with [`Context::state_dir`] set.
    pub fn with_state_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// This context, for calls made by engine connection `conn`.
    pub fn for_conn(mut self, conn: ConnId) -> Self {
        self.conn = Some(conn);
        self
    }
}

/// What a remote offers, as far as the engine needs to plan.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Capabilities {
    /// Byte ranges are honoured (HTTP `206`, FTP `REST`, S3 ranged `GetObject`).
    pub ranges: bool,
    /// The most connections the remote accepts at once, when it says so.
    pub max_connections: Option<NonZeroU32>,
    /// Ranges should start on multiples of this many bytes (e.g. a piece length).
    pub alignment: Option<NonZeroU64>,
    /// The source verifies what it delivers itself (per-piece or per-block hashes).
    pub verifies: bool,
}

impl Capabilities {
    /// Sets [`Capabilities::ranges`].
    pub fn with_ranges(mut self, ranges: bool) -> Self {
        self.ranges = ranges;
        self
    }

    /// Sets [`Capabilities::alignment`].
    pub fn with_alignment(mut self, bytes: Option<NonZeroU64>) -> Self {
        self.alignment = bytes;
        self
    }

    /// Sets [`Capabilities::max_connections`].
    pub fn with_max_connections(mut self, n: Option<NonZeroU32>) -> Self {
        self.max_connections = n;
        self
    }
}

/// What one [`Source::probe`] round trip learned about the resource.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Probe {
    /// Length in bytes, when the remote states it.
    pub len: Option<u64>,
    /// What the remote can do.
    pub caps: Capabilities,
    /// Strong or weak entity tag, verbatim with quotes (RFC 9110 §8.8.3).
    pub etag: Option<String>,
    /// Last modification time (RFC 9110 §8.8.2; FTP `MDTM`).
    pub last_modified: Option<SystemTime>,
    /// A file name suggested by the remote (`Content-Disposition`, the URL's
    /// last path segment), *not yet sanitised*: use
    /// [`safe_file_name`](crate::safe_file_name) before touching disk.
    pub file_name: Option<String>,
    /// Media type, when known (`Content-Type`).
    pub content_type: Option<String>,
    /// Digests of the whole object that the remote publishes (RFC 9530
    /// `Repr-Digest`, RFC 3230 `Digest`, S3 `x-amz-checksum-*`).
    pub checksums: Vec<Checksum>,
    /// Where the resource was finally found, after redirects, with credentials
    /// and signed query strings removed; for display only.
    pub effective_url: Option<String>,
    /// For a byte space made of several files (a multi-file torrent): the
    /// files, in order from 0 with relative, already sanitised paths. A gap
    /// between two files (or after the last, up to [`Probe::len`]) is
    /// padding (BEP 47 padding files, BEP 52 alignment): zeros, never
    /// stored. An [`Output::Dir`](crate::Output::Dir) download then writes
    /// them with a [`MultiFileSink`](crate::MultiFileSink) under the
    /// directory.
    pub files: Vec<crate::FileSpan>,
    /// Ranges not to fetch (the pieces of a torrent that hold only files the
    /// user did not select): treated as done from the start.
    pub skip: Vec<crate::ByteRange>,
}

impl Probe {
    /// A probe with the given length and capabilities.
    pub fn new(len: Option<u64>, caps: Capabilities) -> Self {
        Self {
            len,
            caps,
            ..Self::default()
        }
    }

    /// The validator that identifies this version of the resource: the ETag,
    /// else Last-Modified as seconds since the Unix epoch.
    pub fn validator(&self) -> Option<String> {
        if let Some(etag) = &self.etag {
            return Some(etag.clone());
        }
        self.last_modified
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| format!("mtime:{}", d.as_secs()))
    }
}

/// A remote object that can be probed and read by byte range.
///
/// Implementors write `async fn`; the engine holds sources as [`BoxSource`]
/// through the blanket [`SourceDyn`] twin.
pub trait Source: Send + Sync + fmt::Debug + 'static {
    /// A short identity for control files and logs, with no credentials
    /// (e.g. the URL without userinfo).
    fn identity(&self) -> String;

    /// One round trip: length, validators, capabilities, suggested name.
    /// Fetches no body bytes beyond what the protocol needs for that.
    ///
    /// # Errors
    /// Any [`ErrorKind`](crate::ErrorKind); retryable ones are retried by the engine.
    fn probe(&self, cx: &Context) -> impl Future<Output = Result<Probe>> + Send;

    /// Opens `range`. The stream yields exactly those bytes (to the end of the
    /// object for [`ReadRange::From`]) or fails; it never yields other bytes.
    /// Once probed, the source checks that the object has not changed
    /// (e.g. HTTP `If-Range`) and fails with
    /// [`ErrorKind::RemoteChanged`](crate::ErrorKind::RemoteChanged) when it has.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) when the remote
    /// ignores ranges; otherwise as for [`Source::probe`].
    ///
    /// # Cancel safety
    /// Dropping the future or the stream abandons the transfer cleanly.
    fn open(
        &self,
        cx: &Context,
        range: ReadRange,
    ) -> impl Future<Output = Result<BodyStream>> + Send;

    /// What engine connection `conn` can serve now. The default,
    /// [`Availability::Whole`], fits a server; a swarm answers with the
    /// pieces of the peer bound to `conn` (empty while none is bound: the
    /// engine asks again a moment later).
    fn availability(&self, conn: ConnId) -> Availability {
        let _ = conn;
        Availability::Whole
    }

    /// A scheduler of the source's own (a swarm's rarest-first piece picker),
    /// asked for after [`Source::probe`] when the caller set none;
    /// `sequential` is the caller's choice of in-order fetching (streaming).
    /// `None`, the default: the engine's [`AdaptiveScheduler`](crate::AdaptiveScheduler)
    /// or [`SequentialScheduler`](crate::SequentialScheduler).
    fn scheduler(&self, sequential: bool) -> Option<Box<dyn Scheduler>> {
        let _ = sequential;
        None
    }

    /// Hands the source a read-only view of the download's storage once it
    /// is prepared, before any fetch: the bytes already done (verified) and
    /// a reader for them (to upload them to other peers). A swarm joins
    /// here, announcing what is left (BEP 3). The default ignores it.
    ///
    /// # Errors
    /// Why the source cannot serve the download (a swarm none of whose
    /// peers can be reached); retryable errors are retried by the engine,
    /// and any error is only a notice when nothing is left to fetch.
    fn attach(&self, storage: Storage) -> impl Future<Output = Result<()>> + Send {
        let _ = storage;
        async { Ok(()) }
    }

    /// Called by the engine each time the bytes of `range` (delivered by this
    /// source earlier) have been written to storage and can be read back
    /// with [`StoredBytes::read_at`]. Ranges arrive in write order, not byte
    /// order, and may split a delivered frame in several parts; they never
    /// repeat. A swarm offers the pieces they complete to its peers. The
    /// default ignores them.
    fn stored(&self, range: ByteRange) {
        let _ = range;
    }

    /// Checks bytes found in storage that no resume state vouches for (files
    /// from an earlier run whose control file is gone, or from another
    /// client), called after [`Source::probe`] and before any fetch.
    /// `ranges` are the byte-space ranges storage holds; returns the part
    /// of them proven to be the remote's bytes, in whole verification units
    /// (a torrent's pieces hashed against its metainfo, BEP 3). The engine
    /// keeps those and fetches the rest instead of starting over. The
    /// default proves nothing: a server's bytes cannot be checked without
    /// fetching them.
    ///
    /// # Errors
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) when storage cannot be read.
    fn verify_stored(
        &self,
        stored: StoredBytes,
        ranges: RangeSet,
    ) -> impl Future<Output = Result<RangeSet>> + Send {
        let _ = (stored, ranges);
        async { Ok(RangeSet::new()) }
    }

    /// The swarm around this source, for sources with peers (BitTorrent,
    /// bitswap): connected peers, bytes uploaded, pieces verified. `None`,
    /// the default, for servers. Cheap: called on every stats refresh.
    fn swarm(&self) -> Option<SwarmStats> {
        None
    }

    /// What resolution learned about the byte space, when the source knows
    /// it without more I/O (a torrent's metainfo, an IPFS file whose root
    /// was fetched to resolve it): `dlm info` shows it instead of probing.
    /// `None`, the default: probe to learn.
    fn describe(&self) -> Option<Description> {
        None
    }

    /// Called once when the download ends: `complete` when every byte
    /// arrived, else it failed, was cancelled or paused. A swarm announces
    /// `completed`/`stopped` here (BEP 3). The default does nothing.
    fn finish(&self, complete: bool) -> impl Future<Output = ()> + Send {
        let _ = complete;
        async {}
    }
}

/// What [`Source::describe`] knows of a byte space without I/O.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Description {
    /// Protocol facts as label/value pairs, in display order
    /// (`("info-hash", "…")`, `("cid", "…")`).
    pub fields: Vec<(String, String)>,
    /// Length of the byte space in bytes, when known.
    pub len: Option<u64>,
    /// The files of a byte space made of several (a torrent's), in order
    /// from 0 with sanitised relative paths (gaps are padding, as in
    /// [`Probe::files`]); `wanted` marks the selection.
    pub files: Vec<crate::FileSpan>,
}

impl Description {
    /// A description with these fields.
    pub fn new(fields: Vec<(String, String)>) -> Self {
        Self {
            fields,
            ..Self::default()
        }
    }

    /// Sets [`Description::len`].
    pub fn with_len(mut self, len: Option<u64>) -> Self {
        self.len = len;
        self
    }

    /// Sets [`Description::files`].
    pub fn with_files(mut self, files: Vec<crate::FileSpan>) -> Self {
        self.files = files;
        self
    }
}

/// A download's storage as handed to [`Source::attach`]: read access only.
/// Writing, syncing and committing stay the engine's.
#[derive(Clone, Debug)]
pub struct Storage {
    /// Reads back bytes already written.
    pub reader: StoredBytes,
    /// Bytes already done (verified) when the transfer starts. Bytes the
    /// source delivers later are reported by [`Source::stored`] once written.
    pub done: RangeSet,
    /// Bytes that will not be fetched (files left out of the selection,
    /// [`Probe::skip`]): a swarm counts them neither as had nor as left.
    pub skip: RangeSet,
}

/// Read-only access to a download's stored bytes (its sink's
/// [`read_at`](crate::Sink::read_at)).
#[derive(Clone, Debug)]
pub struct StoredBytes(BoxSink);

impl StoredBytes {
    /// A reader over `sink`.
    pub fn new(sink: BoxSink) -> Self {
        Self(sink)
    }

    /// Reads `len` bytes at `offset` of the byte space.
    ///
    /// # Errors
    /// As [`Sink::read_at`](crate::Sink::read_at): [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported)
    /// for sinks that cannot read back, [`ErrorKind::Io`](crate::ErrorKind::Io).
    pub async fn read_at(&self, offset: u64, len: u32) -> Result<Bytes> {
        self.0.read_at_dyn(offset, len).await
    }
}

/// A swarm's counters, as [`Source::swarm`] reports them.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SwarmStats {
    /// Peers connected now.
    pub peers: u32,
    /// Of those, peers that have every piece.
    pub seeds: u32,
    /// Payload bytes uploaded to peers since the source was created.
    pub uploaded_bytes: u64,
    /// Pieces (BitTorrent) or blocks (IPFS) received and verified against
    /// their hash since the source was created.
    pub verified_pieces: u64,
    /// Pieces verified and held, resumed ones included.
    pub pieces_have: u64,
    /// Pieces in the byte space, when the source counts pieces.
    pub pieces_total: Option<u64>,
}

impl SwarmStats {
    /// Counters with `peers` connected peers and `uploaded_bytes` uploaded.
    pub fn new(peers: u32, uploaded_bytes: u64) -> Self {
        Self {
            peers,
            uploaded_bytes,
            ..Self::default()
        }
    }

    /// Sets the piece counts: verified this session, held, in total.
    pub fn with_pieces(mut self, verified: u64, have: u64, total: Option<u64>) -> Self {
        self.verified_pieces = verified;
        self.pieces_have = have;
        self.pieces_total = total;
        self
    }

    /// Sets [`SwarmStats::seeds`].
    pub fn with_seeds(mut self, seeds: u32) -> Self {
        self.seeds = seeds;
        self
    }
}

/// Object-safe twin of [`Source`], implemented for every `Source`; never
/// implement it by hand.
pub trait SourceDyn: Send + Sync + fmt::Debug {
    /// See [`Source::identity`].
    fn identity_dyn(&self) -> String;
    /// See [`Source::probe`].
    fn probe_dyn<'a>(&'a self, cx: &'a Context) -> BoxFuture<'a, Result<Probe>>;
    /// See [`Source::open`].
    fn open_dyn<'a>(
        &'a self,
        cx: &'a Context,
        range: ReadRange,
    ) -> BoxFuture<'a, Result<BodyStream>>;
    /// See [`Source::availability`].
    fn availability_dyn(&self, conn: ConnId) -> Availability;
    /// See [`Source::scheduler`].
    fn scheduler_dyn(&self, sequential: bool) -> Option<Box<dyn Scheduler>>;
    /// See [`Source::attach`].
    fn attach_dyn(&self, storage: Storage) -> BoxFuture<'_, Result<()>>;
    /// See [`Source::stored`].
    fn stored_dyn(&self, range: ByteRange);
    /// See [`Source::verify_stored`].
    fn verify_stored_dyn(
        &self,
        stored: StoredBytes,
        ranges: RangeSet,
    ) -> BoxFuture<'_, Result<RangeSet>>;
    /// See [`Source::swarm`].
    fn swarm_dyn(&self) -> Option<SwarmStats>;
    /// See [`Source::describe`].
    fn describe_dyn(&self) -> Option<Description>;
    /// See [`Source::finish`].
    fn finish_dyn(&self, complete: bool) -> BoxFuture<'_, ()>;
}

impl<T: Source> SourceDyn for T {
    fn identity_dyn(&self) -> String {
        self.identity()
    }
    fn probe_dyn<'a>(&'a self, cx: &'a Context) -> BoxFuture<'a, Result<Probe>> {
        Box::pin(self.probe(cx))
    }
    fn open_dyn<'a>(
        &'a self,
        cx: &'a Context,
        range: ReadRange,
    ) -> BoxFuture<'a, Result<BodyStream>> {
        Box::pin(self.open(cx, range))
    }
    fn availability_dyn(&self, conn: ConnId) -> Availability {
        self.availability(conn)
    }
    fn scheduler_dyn(&self, sequential: bool) -> Option<Box<dyn Scheduler>> {
        self.scheduler(sequential)
    }
    fn attach_dyn(&self, storage: Storage) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.attach(storage))
    }
    fn stored_dyn(&self, range: ByteRange) {
        self.stored(range)
    }
    fn verify_stored_dyn(
        &self,
        stored: StoredBytes,
        ranges: RangeSet,
    ) -> BoxFuture<'_, Result<RangeSet>> {
        Box::pin(self.verify_stored(stored, ranges))
    }
    fn swarm_dyn(&self) -> Option<SwarmStats> {
        self.swarm()
    }
    fn describe_dyn(&self) -> Option<Description> {
        self.describe()
    }
    fn finish_dyn(&self, complete: bool) -> BoxFuture<'_, ()> {
        Box::pin(self.finish(complete))
    }
}

/// A shared, type-erased source.
pub type BoxSource = Arc<dyn SourceDyn>;
