use std::sync::Arc;
use std::time::Duration;

use crate::{Backoff, Checksum, RateLimiter};

/// Settings of one download.
///
/// # Defaults
/// `connections` 16 with `adaptive_connections` (starting at 1), `min_split_bytes` 1 MiB, `max_chunk_bytes` automatic, `max_retries` 5,
/// `backoff` 250 ms doubling to 10 s, no rate limit, `verify` on (SHA-256),
/// no expected checksum, `save_interval` 1 s, `write_buffer_bytes` 1 MiB,
/// `sequential` off, `sync_data` on every 15 s, `sync_on_commit` off, `overwrite` off, `max_restarts` 3,
/// no seeding.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    /// Connections to run at once (at least 1), or with
    /// `adaptive_connections` the most; capped by what the source allows.
    pub connections: u32,
    /// Start a ranged download from servers with 1 connection and double
    /// them while the measured throughput grows by 15% or more, up to
    /// `connections`; undo a doubling that did not pay (see the engine's
    /// `ramp` module). Off: always `connections`. Swarms (BitTorrent) are
    /// never ramped: their connections are their peers.
    pub adaptive_connections: bool,
    /// Smallest chunk created by splitting, in bytes.
    pub min_split_bytes: u64,
    /// Largest chunk handed out fresh, in bytes; `None` = automatic
    /// (see [`AdaptiveScheduler`](crate::AdaptiveScheduler)).
    pub max_chunk_bytes: Option<u64>,
    /// Consecutive failed attempts without any progress before a connection gives up.
    pub max_retries: u32,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// Limit for this download in bytes/s (`None` = unlimited); changeable
    /// while running through the handle.
    pub rate_limit_bytes_per_sec: Option<u64>,
    /// A limiter shared with other downloads (the global limit).
    pub global_limiter: Option<Arc<RateLimiter>>,
    /// Connections shared with other downloads: each chunk fetch holds one
    /// permit, so downloads that share this semaphore never run more
    /// connections in total than it has permits (a directory or prefix
    /// download shares its `connections` across its files this way).
    pub connection_budget: Option<Arc<tokio::sync::Semaphore>>,
    /// Compute the SHA-256 of the download as it completes.
    pub verify: bool,
    /// Fail with [`ErrorKind::Integrity`](crate::ErrorKind::Integrity) unless the
    /// download has this digest.
    pub checksum: Option<Checksum>,
    /// How often resume state is saved while bytes flow.
    pub save_interval: Duration,
    /// Most bytes a connection gathers before one positional write (shared
    /// out so all connections together gather at most 4 MiB, each at least
    /// 256 KiB).
    pub write_buffer_bytes: usize,
    /// Fetch in offset order with fixed chunks (for streaming sinks).
    pub sequential: bool,
    /// `fdatasync` the output every `data_sync_interval` and on pause, cancel
    /// and failure, recording which ranges are on disk, so a resume after a
    /// power loss or kernel crash trusts only those. (After a process crash
    /// the page cache still holds every written byte and nothing is re-fetched
    /// but the ranges in flight.) Off, a file output never fsyncs, like curl
    /// or aria2, and [`DownloadOptions::sync_on_commit`] is ignored.
    pub sync_data: bool,
    /// With `sync_data`, also fsync the finished file (and its directory
    /// after the rename) before [`Download`](crate::Download) returns. Off
    /// by default, as in curl, wget2 and aria2: the commit's fsync waits for
    /// the disk, which made a 1 GiB download over loopback HTTP take 2.7 s
    /// instead of 1.5 s here (the disk writes 300–600 MB/s). Turn it on when
    /// the file must survive a power loss right after the download ends.
    pub sync_on_commit: bool,
    /// How often the output is made durable while bytes flow.
    pub data_sync_interval: Duration,
    /// Replace an existing final file instead of failing.
    pub overwrite: bool,
    /// Times the download may start over because the remote changed.
    pub max_restarts: u32,
    /// After completion, keep serving the swarm (sources with
    /// [`Source::swarm`](crate::Source::swarm)) until this policy says stop,
    /// or until cancelled. `None`: leave the swarm at once.
    pub seed: Option<SeedPolicy>,
    /// For a byte space of several files ([`Probe::files`](crate::Probe::files),
    /// a torrent's): the files to download, by index (0-based); `None`: all.
    /// Units ([`Capabilities::alignment`](crate::Capabilities::alignment), a
    /// torrent's pieces) that touch no selected file are not fetched; units
    /// shared with a selected file are fetched whole, the other files' bytes
    /// kept aside. Change it by starting the download again with the same
    /// output: what was done is kept.
    pub selected_files: Option<Vec<usize>>,
}

/// When seeding after a completed download ends: at the first limit
/// reached, or when the download is paused or cancelled. With neither
/// limit, it seeds until stopped.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeedPolicy {
    /// Stop once bytes uploaded reach this multiple of the bytes wanted
    /// (the share ratio, as in Transmission and qBittorrent).
    pub ratio: Option<f64>,
    /// Stop after seeding this long.
    pub time: Option<Duration>,
}

impl SeedPolicy {
    /// Seeds until `ratio` or `time`, whichever comes first (`None`: no such limit).
    pub fn new(ratio: Option<f64>, time: Option<Duration>) -> Self {
        Self { ratio, time }
    }
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            connections: 16,
            adaptive_connections: true,
            min_split_bytes: crate::DEFAULT_MIN_SPLIT_BYTES,
            max_chunk_bytes: None,
            max_retries: 5,
            backoff: Backoff::default(),
            rate_limit_bytes_per_sec: None,
            global_limiter: None,
            connection_budget: None,
            verify: true,
            checksum: None,
            save_interval: Duration::from_secs(1),
            write_buffer_bytes: 1 << 20,
            sequential: false,
            sync_data: true,
            sync_on_commit: false,
            data_sync_interval: Duration::from_secs(15),
            overwrite: false,
            max_restarts: 3,
            seed: None,
            selected_files: None,
        }
    }
}

impl DownloadOptions {
    /// Runs exactly `n` connections (at least 1; capped by the source):
    /// sets [`DownloadOptions::connections`] and turns
    /// [`DownloadOptions::adaptive_connections`] off.
    pub fn with_connections(mut self, n: u32) -> Self {
        self.adaptive_connections = false;
        self.connections = n.max(1);
        self
    }
    /// Sets [`DownloadOptions::rate_limit_bytes_per_sec`].
    pub fn with_rate_limit(mut self, bytes_per_sec: Option<u64>) -> Self {
        self.rate_limit_bytes_per_sec = bytes_per_sec;
        self
    }
    /// Sets [`DownloadOptions::global_limiter`].
    pub fn with_global_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.global_limiter = Some(limiter);
        self
    }
    /// Shares a connection budget with other downloads
    /// ([`DownloadOptions::connection_budget`]).
    pub fn with_connection_budget(mut self, budget: Arc<tokio::sync::Semaphore>) -> Self {
        self.connection_budget = Some(budget);
        self
    }

    /// Sets [`DownloadOptions::checksum`].
    pub fn with_checksum(mut self, checksum: Option<Checksum>) -> Self {
        self.checksum = checksum;
        self
    }
    /// Sets [`DownloadOptions::verify`].
    pub fn with_verify(mut self, verify: bool) -> Self {
        self.verify = verify;
        self
    }
    /// Sets [`DownloadOptions::min_split_bytes`].
    pub fn with_min_split_bytes(mut self, bytes: u64) -> Self {
        self.min_split_bytes = bytes.max(1);
        self
    }
    /// Sets [`DownloadOptions::max_chunk_bytes`].
    pub fn with_max_chunk_bytes(mut self, bytes: Option<u64>) -> Self {
        self.max_chunk_bytes = bytes;
        self
    }
    /// Sets [`DownloadOptions::max_retries`].
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }
    /// Sets [`DownloadOptions::backoff`].
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
    /// Sets [`DownloadOptions::sequential`].
    pub fn with_sequential(mut self, sequential: bool) -> Self {
        self.sequential = sequential;
        self
    }
    /// Sets [`DownloadOptions::sync_data`].
    pub fn with_sync_data(mut self, sync: bool) -> Self {
        self.sync_data = sync;
        self
    }
    /// Ramps the connection count from 1 up to at most `max` by measured
    /// throughput ([`DownloadOptions::adaptive_connections`]).
    pub fn with_adaptive_connections(mut self, max: u32) -> Self {
        self.adaptive_connections = true;
        self.connections = max.max(1);
        self
    }
    /// Sets [`DownloadOptions::sync_on_commit`].
    pub fn with_sync_on_commit(mut self, sync: bool) -> Self {
        self.sync_on_commit = sync;
        self
    }
    /// Sets [`DownloadOptions::overwrite`].
    pub fn with_overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }
    /// Sets [`DownloadOptions::seed`].
    pub fn with_seed(mut self, policy: Option<SeedPolicy>) -> Self {
        self.seed = policy;
        self
    }
    /// Sets [`DownloadOptions::selected_files`].
    pub fn with_selected_files(mut self, files: Option<Vec<usize>>) -> Self {
        self.selected_files = files;
        self
    }
    /// Sets [`DownloadOptions::save_interval`].
    pub fn with_save_interval(mut self, every: Duration) -> Self {
        self.save_interval = every;
        self
    }
}
