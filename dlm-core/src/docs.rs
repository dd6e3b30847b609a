//! Design notes: why the engine looks the way it does.
//!
//! Read these before changing the traits; revise them when a protocol proves
//! them wrong.

pub mod engine {
    //! # One byte space, many connections
    //!
    //! Every download is a byte space `[0, len)`: one HTTP/FTP/S3 object, the
    //! concatenation of a torrent's files in metainfo order (BEP 3), or the
    //! bytes of a UnixFS file. A [`Sink`](crate::Sink) maps that space to
    //! storage; protocol crates never open output files, they deliver
    //! `(offset, bytes)`.
    //!
    //! The engine runs N connection workers. Each asks the
    //! [`Scheduler`](crate::Scheduler) for a chunk under one mutex, opens it on
    //! its [`Source`](crate::Source), gathers up to
    //! [`write_buffer_bytes`](crate::DownloadOptions::write_buffer_bytes) and
    //! writes positionally, then records the range as done. A chunk's end is an
    //! atomic: when another connection splits it, the owner sees the new end on
    //! its next frame and stops there (a rare race can make two connections
    //! write the same bytes, which is harmless because they are the same bytes).
    //!
    //! Flow of bytes: `connection → worker buffer → sink.write_at → done
    //! ranges → control file (≥ 1/s and on every chunk completion)` and, in
    //! parallel, `done prefix → hasher (reads back through the sink once)`.
    //!
    //! Back-pressure: a worker awaits its write before reading more, and the
    //! rate limiters sleep after each frame, so a slow disk or a limit slows
    //! the sockets (TCP flow control) instead of growing memory. Memory is
    //! bounded by connections × write buffer.
    //!
    //! Failures: a retryable error frees the chunk (its unfetched part goes
    //! back to the pool) and the worker backs off exponentially with jitter,
    //! never sooner than a `Retry-After`; attempts count only failures without
    //! progress, so a connection that is cut every few MiB still finishes. A
    //! permanent error drops that source if mirrors remain, else fails the
    //! download; `RemoteChanged` from the primary restarts from zero.
    //!
    //! Mirrors: every source is probed; a mirror whose length differs from the
    //! primary's, or that lacks ranges when the primary has them, is dropped.
    //! Validators are compared per source (each source checks its own
    //! `If-Range`), because independent servers give different ETags for the
    //! same bytes; the final digest is the cross-source check.
}

pub mod scheduler {
    //! # Planning per connection
    //!
    //! [`Scheduler::next`](crate::Scheduler::next) receives the asking
    //! connection's [`Availability`](crate::scheduler::Availability) and the
    //! [`ChunkMap`](crate::scheduler::ChunkMap). An HTTP, FTP or S3 connection
    //! has `Whole` availability, so the adaptive scheduler only has to choose
    //! between a free gap and splitting the largest chunk in flight.
    //!
    //! BitTorrent fits the same trait: a peer connection's availability is its
    //! bitfield mapped to byte ranges (`Ranges`), the source's
    //! [`Capabilities::alignment`](crate::Capabilities::alignment) is the piece
    //! length, and a rarest-first picker is another `Scheduler` that counts
    //! availability from [`ChunkEvent`](crate::scheduler::ChunkEvent)s and
    //! returns piece-aligned ranges; endgame is a `Split` of a nearly finished
    //! piece. Verification units (pieces, blocks) are the protocol's business:
    //! a range becomes done only after its unit verifies.
    //!
    //! Schedulers own no I/O and no clock (`now` is passed in), so they are
    //! tested deterministically, including property tests that replay random
    //! interleavings of assignments, progress and failures.
}

pub mod resume {
    //! # Resume and identity
    //!
    //! The control file (`NAME.part.dlm`, [`ControlFile`](crate::ControlFile))
    //! records the source identity (URL without credentials, length,
    //! validator), the done ranges and the settings. It is replaced atomically
    //! (temp file, fsync, rename) at least once a second while bytes flow,
    //! whenever a chunk completes, and on pause, cancel and failure.
    //!
    //! Done ranges only ever include bytes whose `write_at` returned. A killed
    //! process (`kill -9`, a crash) loses no written byte, since the page cache
    //! keeps them, so a restart re-fetches at most what was in flight since
    //! the last save. A power loss or kernel crash can lose unflushed pages,
    //! so the engine also `fdatasync`s the output every 15 s
    //! ([`data_sync_interval`](crate::DownloadOptions::data_sync_interval))
    //! and on pause, cancel and failure, and records those ranges as
    //! *durable*, together with the kernel's boot id. On resume, the same boot
    //! id means only the process died and every done range is trusted; a
    //! different one means the machine restarted and only durable ranges are
    //! trusted. Syncing every second instead would make a large download
    //! disk-bound (measured: a 3 GiB download took 6.8 s instead of 4.8 s).
    //!
    //! On restart the source is probed again. A changed length or validator
    //! (ETag, else Last-Modified) restarts from zero with a `Restarted` event;
    //! a missing validator on either side is not treated as a change. Servers
    //! without ranges cannot resume and start over. A corrupt control file is
    //! ignored with a notice.
}

pub mod trees {
    //! # Collections: directories, prefixes, UnixFS folders
    //!
    //! A download is one byte space; a collection is many. A protocol says an
    //! input names a collection with [`Protocol::is_listing`](crate::Protocol::is_listing)
    //! (`ftp://host/dir/`, later `s3://bucket/prefix/`), and
    //! [`ProtocolRegistry::target`](crate::ProtocolRegistry::target) then
    //! returns a [`Listing`](crate::Listing): a stream of
    //! [`Entry`](crate::Entry)s, each a relative path (as the remote named
    //! it), a length when known, and a [`Source`](crate::Source).
    //!
    //! [`TreeDownload`](crate::TreeDownload) runs one ordinary
    //! [`Download`](crate::Download) per entry, so every file has its own
    //! `.part`, control file and digest, and a tree resumes file by file
    //! (complete files, same length and no control file, are skipped).
    //! Names are checked here, once, for every protocol: a component that
    //! [`safe_relative_path`](crate::safe_relative_path) would change (`..`,
    //! an absolute path, `a/b`, a reserved name) is refused and reported,
    //! never rewritten into something else.
    //!
    //! Concurrency: `connections` is one budget for the whole tree. Each
    //! chunk fetch holds a permit of a shared semaphore
    //! ([`DownloadOptions::connection_budget`](crate::DownloadOptions::connection_budget)),
    //! and up to `connections` files run at once, so 200 small files keep
    //! every connection busy and one large file among them can still use
    //! them all. Protocols with per-server session limits (FTP) also pool
    //! their control connections across the tree's files.
    //!
    //! A remote refusing one more connection (FTP `421 Too many
    //! connections`) marks its error with
    //! [`Error::connection_limit`](crate::Error::connection_limit); the
    //! engine then goes on with the connections it has instead of retrying
    //! into the limit.
}
