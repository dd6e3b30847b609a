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
    //! BitTorrent fits the same trait, with three hooks on
    //! [`Source`](crate::Source):
    //!
    //! - **Connections bound to peers.** Every engine connection passes its
    //!   [`ConnId`](crate::ConnId) in the [`Context`](crate::Context); the
    //!   swarm binds one peer to it, and
    //!   [`Source::availability`](crate::Source::availability) answers with
    //!   that peer's bitfield mapped to byte ranges (`Ranges`), re-read on
    //!   every request for work (a `have` grows it; a connection with no
    //!   peer yet sees nothing and asks again 200 ms later). So the engine
    //!   runs one connection per peer it may have (`max_peers`), and peers
    //!   found after the probe (re-announces, incoming connections) are
    //!   picked up by idle connections.
    //! - **The protocol's own picker.**
    //!   [`Source::scheduler`](crate::Source::scheduler) supplies a
    //!   `Scheduler` when the caller set none: the torrent's rarest-first
    //!   picker reads per-piece peer counts kept by the swarm (a shared
    //!   counter array, no I/O) and returns piece-aligned runs of equally
    //!   rare pieces; `sequential` switches it to in-order. Endgame is a
    //!   `Split` of another chunk's tail, and the picker raises a flag that
    //!   makes the source race an idle peer for the last pieces and cancel
    //!   the loser's requests: a duplicate request is a protocol matter the
    //!   engine does not need to know.
    //! - **Storage for uploads.** [`Source::attach`](crate::Source::attach)
    //!   hands over a read-only [`StoredBytes`](crate::StoredBytes) and the
    //!   ranges already done; writing, syncing and committing stay the
    //!   engine's. [`Source::stored`](crate::Source::stored) is called as each
    //!   range the source delivered reaches storage (after `write_at`
    //!   returns, so `read_at` sees it): the swarm offers a piece (`have`) the
    //!   moment its last bytes are stored, with no polling and no second
    //!   hash. [`Source::finish`](crate::Source::finish) says when the
    //!   download ended.
    //! - **Swarm-neutral progress.** [`Source::swarm`](crate::Source::swarm)
    //!   reports peers, bytes uploaded and pieces verified; the engine folds
    //!   them into [`Stats`](crate::Stats) (`peers`, `uploaded_bytes`,
    //!   `upload_rate_bytes_per_sec`, `swarm`), so embeddings show a torrent's
    //!   or a bitswap session's state without knowing the protocol. After
    //!   completion the engine can keep the source serving its swarm
    //!   ([`DownloadOptions::seed`](crate::DownloadOptions::seed)) in the
    //!   [`Seeding`](crate::DownloadState::Seeding) state, until a share
    //!   ratio, a time, or the owner stops it
    //!   ([`SeedEnd`](crate::SeedEnd)).
    //! - **File selection** is the engine's too
    //!   ([`DownloadOptions::selected_files`](crate::DownloadOptions::selected_files)):
    //!   for a byte space of several files it marks them wanted or not and
    //!   skips the alignment units (pieces) that hold no wanted byte.
    //!
    //! Verification stays the protocol's business: the torrent source checks
    //! each piece's SHA-1 before yielding a byte of it
    //! ([`Capabilities::verifies`](crate::Capabilities)), so a range the
    //! engine records as done is verified.
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
    //! ## Fsync discipline, and what it guarantees
    //!
    //! What is flushed, and when (with
    //! [`sync_data`](crate::DownloadOptions::sync_data) on, the default):
    //!
    //! 1. **Data before the ranges that claim it.** A save that makes ranges
    //!    durable first calls [`Sink::sync`](crate::Sink::sync)
    //!    (`fdatasync` on the `.part`; for a multi-file torrent, every file
    //!    written since the last sync, reopening those its open-file pool
    //!    closed, and its side file of shared pieces) and only after it
    //!    returns copies the done ranges it snapshotted *before* the sync
    //!    into `durable`. That happens every `data_sync_interval` (15 s) and
    //!    on pause, cancel and failure; the saves in between record `done`
    //!    only.
    //! 2. **The control file atomically.** Every save writes the whole state
    //!    to `NAME.part.dlm.tmp`, `fdatasync`s it, and renames it over
    //!    `NAME.part.dlm`. A reader sees the old state or the new one, never
    //!    a torn one; a save that fails (a full disk) leaves the previous
    //!    control file as it was. The directory is then fsynced, so the
    //!    rename itself survives a power loss once the save returns.
    //! 3. **The boot id decides what is trusted.** Each save records
    //!    `/proc/sys/kernel/random/boot_id`. On resume, the same id means
    //!    only the process died and the page cache still held every written
    //!    byte: all `done` ranges are trusted. Another id means the machine
    //!    restarted: only `durable` ranges are, the rest is fetched again.
    //!    Either way the ranges are cut to what the `.part` still holds, and
    //!    none is trusted when the `.part` is another file than the one the
    //!    control file recorded (its device and inode,
    //!    [`Sink::storage_id`](crate::Sink::storage_id)).
    //! 4. **Commit.** When every byte is there and the digests match, the
    //!    `.part` is renamed to `NAME` and the control file removed. With
    //!    [`sync_on_commit`](crate::DownloadOptions::sync_on_commit) (`dlm get
    //!    --fsync`) the output is first `fsync`ed (`sync_all`, data and
    //!    length) and the directory fsynced after the rename. That is off by
    //!    default, as in curl, wget2 and aria2: the wait for the disk made a
    //!    1 GiB download over loopback HTTP take 2.7 s instead of 1.5 s on a
    //!    disk writing 300–600 MB/s, and the kernel writes the file out on its
    //!    own within `vm.dirty_expire_centisecs` (30 s by default).
    //!
    //! What that guarantees:
    //!
    //! - **Process crash** (`kill -9`, a panic, OOM): no byte that a range
    //!   in the control file claims is lost, because a range is recorded
    //!   only after its `write_at` returned and the kernel keeps those
    //!   pages. A restart re-fetches what was in flight: per connection the
    //!   bytes not yet written (at most one write buffer, or one unverified
    //!   piece) and those written since the last save (at most one
    //!   `save_interval` of transfer, 1 s). The final file either does not
    //!   exist yet or is complete (rename is atomic). Measured by the
    //!   `chaos` tests and `scripts/chaos`.
    //! - **Power loss or kernel crash:** bytes written since the last data
    //!   sync may be gone, but they are not trusted (the boot id changed),
    //!   so a resume re-fetches at most `data_sync_interval` of transfer plus
    //!   the in-flight window, and never keeps bytes that did not reach the
    //!   disk. That rests on `fdatasync` doing what it promises, which a
    //!   drive with a volatile write cache and no flush support breaks. By
    //!   default a file renamed to its final name is as durable as curl's:
    //!   a power loss before the kernel wrote it out can leave it holding
    //!   zeros. With `sync_on_commit` it had been `fsync`ed first, so it is
    //!   complete, and once commit returned the rename is on disk too; a
    //!   power loss between the rename and the directory's fsync can leave
    //!   a complete `.part` beside its control file, which resumes with
    //!   nothing to fetch (or, without the control file, is fetched again;
    //!   a torrent's is hashed and kept). We cannot simulate a power loss in CI (dropping the page
    //!   cache does not discard dirty pages), so this part is argued from the
    //!   code, not measured.
    //! - **`--no-fsync` (`sync_data` off):** nothing is ever flushed: the
    //!   control file's temp file is not synced, `durable` stays empty, and
    //!   commit only renames, like curl or aria2. A process crash is handled
    //!   exactly as above. After a power loss no range is trusted, so the
    //!   download starts over; a file that was already renamed to its final
    //!   name may be incomplete or hold zeros.
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
    //! A download is one byte space; a collection is many. A protocol
    //! resolves an input that names a collection (`ftp://host/dir/`,
    //! `s3://bucket/prefix/`, an IPFS directory) to
    //! [`Target::Listing`](crate::Target::Listing): a
    //! [`Listing`](crate::Listing), a stream of
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

pub mod registry {
    //! # From any input to a download
    //!
    //! An embedding (the `dlm` CLI, `dlmd`, an application) names no
    //! protocol. It builds one [`ProtocolRegistry`](crate::ProtocolRegistry),
    //! hands every input to
    //! [`ProtocolRegistry::target`](crate::ProtocolRegistry::target), and
    //! downloads the [`Target`](crate::Target) it gets: a
    //! [`Download`](crate::Download) for a source, a
    //! [`TreeDownload`](crate::TreeDownload) for a listing.
    //!
    //! Which protocol resolves an input:
    //!
    //! 1. the first whose [`Protocol::claims`](crate::Protocol::claims) takes
    //!    it: scheme-less inputs (a `.torrent` path, a bare CID) and URLs of
    //!    another scheme that are recognisably its own
    //!    (`https://host/x.torrent`);
    //! 2. else the owner of the URL scheme.
    //!
    //! Resolution is async because it may need the network: an IPFS path is
    //! walked to its CID to learn file or directory, a `.torrent` is fetched.
    //! A protocol that serves arbitrary bytes (HTTP) may find that they are
    //! another protocol's input: when some registered protocol declares
    //! [`media_types`](crate::Protocol::media_types), HTTP probes the URL
    //! while resolving (the engine reuses that probe, so this costs no extra
    //! round trip) and [hands it off](crate::Resolve::hand_off) when the
    //! `Content-Type` is one of them (`application/x-bittorrent`).
    //!
    //! Settings: every protocol's `XConfig` is serde, and
    //! `section.key = value` strings ([`Options`](crate::Options): the CLI's
    //! `-O`, a `dlmd` job's `options`) are applied to it by
    //! [`config::apply_options`](crate::config::apply_options), which names
    //! unknown keys. The registry's builder applies them once for every
    //! download; a protocol applies its own section again when it resolves,
    //! for settings of one download.
}

pub mod adding_a_protocol {
    //! # Adding a protocol
    //!
    //! A protocol is a crate `dlm-x` beside the others, depending on
    //! `dlm-core` (and on `dlm-http` when it is layered on HTTP, and on
    //! `dlm-tls` when it speaks TLS itself). Inside it, the same file set as
    //! the others:
    //!
    //! - `config.rs`: `XConfig`, `#[non_exhaustive]`, `Default`, serde with
    //!   `#[serde(default)]`, durations through
    //!   [`config::duration`](crate::config::duration); its field names are
    //!   the `x.*` setting keys.
    //! - `error.rs`: `XError` (thiserror), `From<XError> for dlm_core::Error`
    //!   with a kind and a retry flag decided where the error arises.
    //! - `source.rs`: a [`Source`](crate::Source): `probe` (one round trip:
    //!   length, validator, capabilities) and `open` (exactly the range
    //!   asked, or an error). A swarm also answers `availability`,
    //!   `scheduler`, `attach`/`stored` (to upload) and `swarm` (peers,
    //!   uploaded bytes).
    //! - `listing.rs` when the protocol has directories: a
    //!   [`Listing`](crate::Listing).
    //! - `protocol.rs`: a [`Protocol`](crate::Protocol) (`name`, `schemes`,
    //!   maybe `claims` and `media_types`, and `async fn resolve` applying its
    //!   settings section to its config), `pub const SECTION`, and
    //!   `register_with(&mut ProtocolRegistry, XConfig)`.
    //! - `lib.rs`: the crate doc (`#![doc = include_str!("../README.md")]`)
    //!   with a runnable example.
    //!
    //! Its conformance is checked by [`testkit`](crate::testkit) (feature
    //! `testkit`) against a real server.
    //!
    //! Outside the crate, a protocol touches four places, and nothing in the
    //! engine, the CLI's commands or the daemon:
    //!
    //! 1. the workspace `Cargo.toml` (member and `[workspace.dependencies]`);
    //! 2. the shared registry builder, `examples/src/protocols/`:
    //!    `register_with` in `Settings::registry`, its config in `Settings`,
    //!    and any convenience flag in `flags.rs`;
    //! 3. the tests' peer launcher for its real server (`tests/src/…`) and its
    //!    installer line in `scripts/test`;
    //! 4. the README's table of protocols.
}
