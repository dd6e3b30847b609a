//! The chunk-range engine: drives one download from probe to commit.
//!
//! See [`crate::docs::engine`] for the design. In short: probe the sources,
//! load resume state, run N connection workers that ask the
//! [`Scheduler`](crate::Scheduler) for chunks and write them positionally
//! through the [`Sink`](crate::Sink), save the done ranges at least once a
//! second and whenever a chunk completes, hash the contiguous prefix as it
//! grows, and verify and commit at the end.

mod events;
mod gather;
mod handle;
mod handoff;
mod options;
mod ramp;
mod shared;
#[cfg(test)]
mod skip_tests;
mod verify;
mod worker;

pub use events::{Completed, DownloadState, Event, SeedEnd, SourceStats, Stats};
pub use handle::{DownloadControl, DownloadHandle};
pub use options::{DownloadOptions, SeedPolicy};

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::events::as_ms;
use self::handle::Control;
use self::shared::{Plan, Shared};
use self::verify::Verifier;
use self::worker::{Worker, WorkerExit};
use crate::control_file::{ControlFile, SourceIdentity};
use crate::scheduler::{AdaptiveScheduler, ChunkMap, ConnId, Scheduler, SequentialScheduler};
use crate::{
    BoxSink, BoxSource, Checksum, Context, DigestAlgorithm, Error, ErrorKind, FileSink, Probe,
    RangeSet, RateLimiter, Result, Storage, StoredBytes, safe_file_name,
};

/// Capacity of each download's event channel.
const EVENT_CAPACITY: usize = 1024;
/// How often the engine refreshes stats.
const TICK: Duration = Duration::from_millis(250);
/// How often progress events are sent.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// Window of the moving receive rate.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// File name used when neither the remote nor the URL suggests one.
const FALLBACK_NAME: &str = "index.html";

/// Where a download goes.
#[derive(Debug)]
pub enum Output {
    /// This file (written as `FILE.part`, resume state in `FILE.part.dlm`).
    File(PathBuf),
    /// A file in this directory, named from the remote (`Content-Disposition`,
    /// the URL) after sanitising, else `index.html`.
    Dir(PathBuf),
    /// Any sink, with an optional control file for resume.
    Sink {
        /// The sink.
        sink: BoxSink,
        /// Where to keep resume state; `None` disables resume.
        control_file: Option<PathBuf>,
    },
}

/// A download being set up. [`Download::start`] spawns it on the current
/// tokio runtime and returns its [`DownloadHandle`].
///
/// # Examples
/// ```no_run
/// # #[allow(dead_code)]
/// # async fn demo(source: dlm_core::BoxSource) -> dlm_core::Result<()> {
/// use dlm_core::{Download, DownloadOptions, Output};
/// let download = Download::new(source, Output::Dir(".".into()))
///     .with_options(DownloadOptions::default().with_connections(16));
/// let mut events = download.subscribe();
/// let handle = download.start();
/// tokio::spawn(async move {
///     while let Ok(event) = events.recv().await {
///         println!("{}", serde_json::to_string(&event).unwrap());
///     }
/// });
/// let done = handle.wait().await?;
/// println!("sha-256 {}", done.sha256().unwrap().to_hex());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Download {
    sources: Vec<BoxSource>,
    output: Output,
    options: DownloadOptions,
    scheduler: Option<Box<dyn Scheduler>>,
    events: broadcast::Sender<Event>,
}

impl Download {
    /// A download of `source` into `output` with default options.
    pub fn new(source: BoxSource, output: Output) -> Self {
        Self {
            sources: vec![source],
            output,
            options: DownloadOptions::default(),
            scheduler: None,
            events: broadcast::channel(EVENT_CAPACITY).0,
        }
    }

    /// Adds a mirror: another source of the same bytes. Mirrors whose length
    /// differs from the primary's, or that lack ranges when the primary has
    /// them, are dropped after probing.
    pub fn with_mirror(mut self, mirror: BoxSource) -> Self {
        self.sources.push(mirror);
        self
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: DownloadOptions) -> Self {
        self.options = options;
        self
    }

    /// Replaces the scheduler (default: [`AdaptiveScheduler`], or
    /// [`SequentialScheduler`] with [`DownloadOptions::sequential`]).
    pub fn with_scheduler(mut self, scheduler: impl Scheduler + 'static) -> Self {
        self.scheduler = Some(Box::new(scheduler));
        self
    }

    /// Subscribes to events before the download starts, so none is missed.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Spawns the download on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(self) -> DownloadHandle {
        let custom_scheduler = self.scheduler.is_some();
        let scheduler = self
            .scheduler
            .unwrap_or_else(|| default_scheduler(&self.options, None));
        let plan = Plan {
            map: ChunkMap::default(),
            scheduler,
            slots: HashMap::new(),
            sources: self
                .sources
                .iter()
                .map(|s| SourceStats {
                    source: s.identity_dyn(),
                    ..SourceStats::default()
                })
                .collect(),
        };
        let shared = Arc::new(Shared::new(
            plan,
            RateLimiter::new(self.options.rate_limit_bytes_per_sec),
            self.options.global_limiter.clone(),
            self.events,
        ));
        shared.emit(Event::Queued);
        let (control_tx, control_rx) = watch::channel(Control::Run);
        let engine = Engine {
            sources: self.sources,
            dropped: Vec::new(),
            output: self.output,
            options: self.options,
            shared: shared.clone(),
            control: control_rx,
            started: Instant::now(),
            rate_samples: VecDeque::new(),
            upload_samples: VecDeque::new(),
            durable: RangeSet::new(),
            skip: RangeSet::new(),
            last_data_sync: Instant::now(),
            connection_cap: None,
            custom_scheduler,
        };
        let task = tokio::spawn(engine.run());
        DownloadHandle::new(control_tx, shared, task)
    }
}

/// Whether `path` is a regular file no longer than the remote the probe
/// describes: one that may hold (part of) its bytes.
fn fits_remote(path: &Path, probe: &Probe) -> bool {
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.is_file() && probe.len.is_some_and(|len| m.len() <= len))
}

/// The refusal to replace data at `path` that no resume state vouches for.
fn already_exists(path: &Path) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "{} already exists (pass overwrite to replace it)",
            path.display()
        ),
    )
}

/// The scheduler a download uses when neither the caller nor the source
/// gives one: sequential when asked for, else adaptive, its split points on
/// multiples of `alignment` bytes.
fn default_scheduler(
    options: &DownloadOptions,
    alignment: Option<std::num::NonZeroU64>,
) -> Box<dyn Scheduler> {
    if options.sequential {
        return Box::new(SequentialScheduler::default());
    }
    let mut s = AdaptiveScheduler::new(options.min_split_bytes)
        .with_connections(options.connections)
        .with_alignment(alignment);
    if let Some(cap) = options.max_chunk_bytes {
        s = s.with_max_chunk_bytes(cap);
    }
    Box::new(s)
}

/// Why a transfer pass stopped early.
enum Stop {
    /// The primary changed: start over.
    Restart(String),
    Fail(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Fail(e)
    }
}

/// The resolved output of a running download.
struct Target {
    sink: BoxSink,
    control_path: Option<PathBuf>,
    final_path: Option<PathBuf>,
    /// Data found at the output that no resume state vouches for.
    found: Found,
}

/// Data found at a download's output without resume state: kept only if
/// the source proves some of it ([`Source::verify_stored`](crate::Source::verify_stored)),
/// never truncated.
#[derive(Debug)]
enum Found {
    /// Nothing of the user's (a `.part` without its control file is ours).
    Nothing,
    /// A torrent's files, checked where they are.
    InPlace(PathBuf),
    /// A finished-looking file moved to its `.part` name to be checked,
    /// moved back if none of it verifies.
    Moved { part: PathBuf, path: PathBuf },
}

struct Engine {
    sources: Vec<BoxSource>,
    dropped: Vec<bool>,
    output: Output,
    options: DownloadOptions,
    shared: Arc<Shared>,
    control: watch::Receiver<Control>,
    started: Instant,
    rate_samples: VecDeque<(Instant, u64)>,
    upload_samples: VecDeque<(Instant, u64)>,
    /// Done ranges as of the last data sync: what survives a power loss.
    durable: RangeSet,
    /// Ranges the probe said not to fetch ([`Probe::skip`]): done for planning,
    /// never saved as done (a resume with another file selection must fetch them).
    skip: RangeSet,
    last_data_sync: Instant,
    /// The most connections the primary accepts, from its probe.
    connection_cap: Option<u32>,
    /// The caller chose the scheduler: the source's own is not asked for.
    custom_scheduler: bool,
}

impl Engine {
    async fn run(mut self) -> Result<Completed> {
        let mut result = self.run_inner().await;
        if let Ok(done) = &mut result {
            self.shared.emit(Event::Completed(done.clone()));
            if let Some(policy) = self.options.seed
                && self.sources[0].swarm_dyn().is_some()
            {
                let reason = self.seed(policy).await;
                done.seed_end = Some(reason);
            }
        }
        for source in &self.sources {
            source.finish_dyn(result.is_ok()).await;
        }
        self.refresh_stats();
        let mut stats = self.shared.stats().clone();
        match &mut result {
            Ok(done) => {
                stats.state = DownloadState::Completed;
                done.uploaded_bytes = stats.uploaded_bytes;
                if let Some(reason) = done.seed_end {
                    self.shared.emit(Event::SeedingEnded {
                        reason,
                        uploaded_bytes: stats.uploaded_bytes,
                    });
                }
            }
            Err(e) => {
                stats.state = if e.kind() == ErrorKind::Cancelled {
                    DownloadState::Cancelled
                } else {
                    DownloadState::Failed
                };
                self.shared.emit(Event::Failed {
                    kind: e.kind(),
                    message: e.to_string(),
                });
            }
        }
        *self.shared.stats() = stats;
        result
    }

    /// Serves the swarm after completion until `policy` or the owner says
    /// stop (pause and cancel both end seeding: the data is complete).
    async fn seed(&mut self, policy: SeedPolicy) -> SeedEnd {
        self.set_state(DownloadState::Seeding);
        self.shared.emit(Event::SeedingStarted {
            ratio: policy.ratio,
            time_ms: policy.time.map(as_ms),
        });
        let wanted = {
            let plan = self.shared.plan();
            plan.map
                .done
                .total_len()
                .saturating_sub(self.skip.total_len())
        }
        .max(1);
        let started = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_progress = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.refresh_stats();
                    let uploaded = self.shared.stats().uploaded_bytes;
                    if policy.ratio.is_some_and(|r| uploaded as f64 >= r * wanted as f64) {
                        return SeedEnd::Ratio;
                    }
                    if policy.time.is_some_and(|t| started.elapsed() >= t) {
                        return SeedEnd::Time;
                    }
                    if last_progress.elapsed() >= PROGRESS_EVERY {
                        last_progress = Instant::now();
                        let stats = self.shared.stats().clone();
                        self.shared.emit(Event::Progress(stats));
                    }
                }
                changed = self.control.changed() => {
                    if changed.is_err() {
                        // Nobody can stop it any more but the policy.
                        self.control = watch::channel(Control::Run).1;
                        if policy.ratio.is_none() && policy.time.is_none() {
                            return SeedEnd::Stopped;
                        }
                        continue;
                    }
                    if *self.control.borrow_and_update() != Control::Run {
                        return SeedEnd::Stopped;
                    }
                }
            }
        }
    }

    fn set_state(&self, state: DownloadState) {
        self.shared.stats().state = state;
    }

    async fn run_inner(&mut self) -> Result<Completed> {
        self.set_state(DownloadState::Probing);
        let mut probe = self.probe_sources().await?;
        select_files(&mut probe, self.options.selected_files.as_deref())?;
        let ranged = probe.caps.ranges && probe.len.is_some();
        if !self.custom_scheduler {
            // The source's own picker (a swarm's), else the default aligned as the probe says.
            self.shared.plan().scheduler = self.sources[0]
                .scheduler_dyn(self.options.sequential)
                .unwrap_or_else(|| default_scheduler(&self.options, probe.caps.alignment));
        }
        self.connection_cap = probe.caps.max_connections.map(std::num::NonZeroU32::get);
        let target = self.resolve_output(&probe)?;
        self.shared.emit(Event::Probed {
            len: probe.len,
            ranges: ranged,
            file_name: target
                .final_path
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned()),
        });
        if !ranged {
            self.notice(match probe.len {
                Some(_) => "the server does not honour byte ranges: one connection, no resume",
                None => "the server gives no length: one connection, no resume",
            });
        }
        let mut identity = SourceIdentity {
            source: self.sources[0].identity_dyn(),
            len: probe.len,
            validator: probe.validator(),
        };
        let mut done = self
            .load_resume_state(&target, &identity, ranged, probe.caps.verifies)
            .await?;
        let present = done.clone();
        self.skip = RangeSet::from_ranges(probe.skip.iter().copied());
        for r in self.skip.ranges() {
            done.insert(*r);
        }
        let mut algorithms = self.algorithms(&probe);
        target.sink.prepare_dyn(probe.len, &algorithms).await?;
        let complete = probe.len.is_some_and(|len| done.covers(len));
        let storage = Storage {
            reader: StoredBytes::new(target.sink.clone()),
            done: present,
            skip: self.skip.clone(),
        };
        // With every byte here, a source that cannot reach its swarm yet is
        // no reason to wait and retry: one attempt, then a notice.
        let attached = if complete {
            self.sources[0].attach_dyn(storage).await
        } else {
            self.attach_with_retries(storage).await
        };
        if let Err(e) = attached {
            if !complete || e.kind() == ErrorKind::Cancelled {
                return Err(e);
            }
            // Every byte is already here: the swarm is only needed for seeding.
            self.notice(&format!("nothing left to fetch; {e}"));
        }

        let mut restarts = 0;
        loop {
            match self
                .transfer(&target, &identity, done, ranged, &algorithms)
                .await
            {
                Ok(hasher) => return self.finish(&target, &probe, hasher).await,
                Err(Stop::Fail(e)) => return Err(e),
                Err(Stop::Restart(reason)) => {
                    if restarts >= self.options.max_restarts {
                        return Err(Error::new(ErrorKind::RemoteChanged, reason)
                            .with_context("restarts", restarts));
                    }
                    restarts += 1;
                    tracing::warn!(%reason, "remote changed; restarting from zero");
                    self.shared.emit(Event::Restarted { reason });
                    probe = self.probe_with_retries(0).await?;
                    select_files(&mut probe, self.options.selected_files.as_deref())?;
                    // A new length is fine for one source (the sink is re-prepared); mirrors
                    // probed for the old length could no longer be trusted.
                    let mirrors = self.sources.len() > 1;
                    if (mirrors && probe.len != identity.len)
                        || !(probe.caps.ranges && probe.len.is_some())
                    {
                        return Err(Error::new(
                            ErrorKind::RemoteChanged,
                            "the remote changed its length or range support while downloading",
                        ));
                    }
                    identity.len = probe.len;
                    identity.validator = probe.validator();
                    // The new object may publish another digest (a new ETag's MD5).
                    algorithms = self.algorithms(&probe);
                    self.skip = RangeSet::from_ranges(probe.skip.iter().copied());
                    done = self.skip.clone();
                    target.sink.reset_dyn().await?;
                    target.sink.prepare_dyn(probe.len, &algorithms).await?;
                }
            }
        }
    }

    fn notice(&self, message: &str) {
        tracing::info!("{message}");
        self.shared.emit(Event::Notice {
            message: message.to_string(),
        });
    }

    /// Probes the primary (with retries) and the mirrors; drops mirrors that disagree.
    async fn probe_sources(&mut self) -> Result<Probe> {
        self.dropped = vec![false; self.sources.len()];
        let primary = self.probe_with_retries(0).await?;
        let mirrors = futures::future::join_all((1..self.sources.len()).map(|i| {
            let s = self.sources[i].clone();
            async move { (i, s.probe_dyn(&Context::new()).await) }
        }))
        .await;
        for (i, res) in mirrors {
            let reason = match res {
                Err(e) => Some(format!("probe failed: {e}")),
                Ok(p) if p.len != primary.len => Some(format!(
                    "length {:?} differs from the primary's {:?}",
                    p.len, primary.len
                )),
                Ok(p) if primary.caps.ranges && !p.caps.ranges => {
                    Some("does not honour byte ranges".to_string())
                }
                Ok(_) => None,
            };
            if let Some(reason) = reason {
                self.drop_source(i, reason);
            }
        }
        Ok(primary)
    }

    fn drop_source(&mut self, i: usize, reason: String) {
        self.dropped[i] = true;
        let source = self.sources[i].identity_dyn();
        tracing::warn!(%source, %reason, "dropping source");
        if let Some(s) = self.shared.plan().sources.get_mut(i) {
            s.dropped = true;
        }
        self.shared.emit(Event::SourceDropped { source, reason });
    }

    /// Probes source `i`, retrying as [`Self::with_retries`] does; a cancel
    /// ends a probe in flight too (a magnet link's may take minutes).
    async fn probe_with_retries(&self, i: usize) -> Result<Probe> {
        let source = &self.sources[i];
        let state_dir = self.state_dir();
        self.with_retries("probe", || {
            let state_dir = state_dir.clone();
            let mut control = self.control.clone();
            async move {
                let cancel = CancellationToken::new();
                let mut cx = Context::with_cancel(cancel.clone());
                cx.state_dir = state_dir;
                tokio::select! {
                    r = source.probe_dyn(&cx) => r,
                    _ = control.wait_for(|c| *c == Control::Cancel) => {
                        cancel.cancel();
                        Err(Error::cancelled())
                    }
                }
            }
        })
        .await
    }

    /// Where sources may keep state for a later run: the directory the
    /// control file goes to ([`Context::state_dir`]).
    fn state_dir(&self) -> Option<PathBuf> {
        let dir = match &self.output {
            Output::File(p) => p.parent().map(Path::to_path_buf),
            Output::Dir(d) => Some(d.clone()),
            Output::Sink { control_file, .. } => control_file
                .as_ref()
                .and_then(|c| c.parent())
                .map(Path::to_path_buf),
        }?;
        Some(if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        })
    }

    /// Hands the primary its storage ([`Source::attach`](crate::Source::attach)),
    /// retrying retryable failures (a swarm none of whose peers answered yet)
    /// as a probe is retried.
    async fn attach_with_retries(&self, storage: Storage) -> Result<()> {
        let source = &self.sources[0];
        self.with_retries("attach", || source.attach_dyn(storage.clone()))
            .await
    }

    /// Runs `op` until it succeeds, fails for good, or has failed retryably
    /// `max_retries` more times, backing off in between; a cancel ends the wait.
    async fn with_retries<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < self.options.max_retries => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "{what} failed; retrying");
                    let mut control = self.control.clone();
                    tokio::select! {
                        () = tokio::time::sleep(self.options.backoff.delay(attempt, e.retry_after())) => {}
                        _ = control.wait_for(|c| *c == Control::Cancel) => return Err(Error::cancelled()),
                    }
                }
                Err(e) if e.is_retryable() => return Err(e.exhausted(attempt + 1)),
                Err(e) => return Err(e),
            }
        }
    }

    fn resolve_output(&mut self, probe: &Probe) -> Result<Target> {
        let path = match std::mem::replace(&mut self.output, Output::Dir(PathBuf::new())) {
            Output::Sink { sink, control_file } => {
                return Ok(Target {
                    sink,
                    control_path: control_file,
                    final_path: None,
                    found: Found::Nothing,
                });
            }
            Output::File(p) => p,
            Output::Dir(dir) if !probe.files.is_empty() => {
                // A multi-file byte space (a torrent): its files under `dir`,
                // resume state beside them as `.NAME.dlm`.
                let name = probe
                    .file_name
                    .as_deref()
                    .and_then(safe_file_name)
                    .unwrap_or_else(|| FALLBACK_NAME.to_string());
                let mut sink = crate::MultiFileSink::new(dir.clone(), &name, probe.files.clone())?;
                if !(self.options.sync_data && self.options.sync_on_commit) {
                    sink = sink.without_commit_sync();
                }
                if let Some(len) = probe.len {
                    // Padding may follow the last file (BEP 52 alignment).
                    sink = sink.with_len(len);
                }
                let control_path = dir.join(format!(".{name}.dlm"));
                // Without resume state, files already there are someone's data: never truncated
                // unasked, kept where the source can verify them, refused otherwise.
                let mut found = Found::Nothing;
                if !self.options.overwrite && !control_path.exists() {
                    let existing = probe
                        .files
                        .iter()
                        .filter(|f| f.wanted && f.len > 0)
                        .filter_map(|f| {
                            let path = dir.join(&f.path);
                            let len = std::fs::symlink_metadata(&path).ok()?.len();
                            Some((path, len, f.len))
                        })
                        .collect::<Vec<_>>();
                    if let Some((path, _, _)) = existing.first() {
                        if !probe.caps.verifies {
                            return Err(already_exists(path));
                        }
                        if let Some((path, len, want)) = existing
                            .iter()
                            .find(|(p, len, want)| len > want || !p.is_file())
                        {
                            return Err(Error::new(
                                ErrorKind::InvalidInput,
                                format!(
                                    "{} already exists and is not this download's file \
                                     ({len} bytes where {want} are expected; pass overwrite to replace it)",
                                    path.display()
                                ),
                            ));
                        }
                        found = Found::InPlace(path.clone());
                    }
                }
                return Ok(Target {
                    sink: Arc::new(sink),
                    control_path: Some(control_path),
                    final_path: Some(dir.join(name)),
                    found,
                });
            }
            Output::Dir(dir) => {
                let name = probe
                    .file_name
                    .as_deref()
                    .and_then(safe_file_name)
                    .unwrap_or_else(|| FALLBACK_NAME.to_string());
                dir.join(name)
            }
        };
        let control_path = FileSink::control_path_for(&path);
        let mut found = Found::Nothing;
        if path.exists() && !self.options.overwrite && !control_path.exists() {
            // A source that can verify stored bytes (a torrent's pieces) checks the file
            // instead of fetching it again: moved to its `.part` name for that, and back
            // if none of it proves to be the remote's.
            let part = FileSink::part_path_for(&path);
            if !probe.caps.verifies || !fits_remote(&path, probe) || part.exists() {
                return Err(already_exists(&path));
            }
            std::fs::rename(&path, &part).map_err(|e| {
                Error::io(format!("moving {} aside to check it", path.display()), e)
            })?;
            found = Found::Moved {
                part,
                path: path.clone(),
            };
        } else if path.exists() && control_path.exists() {
            // A run that renamed `.part` to its final name at commit and died before
            // removing its control file: the file goes back to its `.part` name and
            // resumes from that state (what the last save missed is fetched again)
            // instead of being fetched whole. Only when the state is this source's
            // and the file is no longer than the remote.
            let part = FileSink::part_path_for(&path);
            let ours = ControlFile::load(&control_path)
                .ok()
                .flatten()
                .is_some_and(|c| c.identity.source == self.sources[0].identity_dyn());
            if ours && fits_remote(&path, probe) && !part.exists() {
                std::fs::rename(&path, &part).map_err(|e| {
                    Error::io(format!("moving {} back to resume it", path.display()), e)
                })?;
            }
        }
        Ok(Target {
            sink: Arc::new(
                match (self.options.sync_data, self.options.sync_on_commit) {
                    (false, _) => FileSink::new(&path).without_fsync(),
                    (true, false) => FileSink::new(&path).without_commit_sync(),
                    (true, true) => FileSink::new(&path),
                },
            ),
            control_path: Some(control_path),
            final_path: Some(path),
            found,
        })
    }

    /// Done ranges from the control file, or from checking what storage
    /// holds when there is none and the source can verify stored bytes, or
    /// a reset sink when neither gives any.
    async fn load_resume_state(
        &self,
        target: &Target,
        identity: &SourceIdentity,
        ranged: bool,
        verifies: bool,
    ) -> Result<RangeSet> {
        let Some(path) = &target.control_path else {
            target.sink.reset_dyn().await?;
            return Ok(RangeSet::new());
        };
        let loaded = match ControlFile::load(path) {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::InvalidInput => {
                self.notice(&format!(
                    "ignoring unreadable resume state ({e}); starting over"
                ));
                None
            }
            Err(e) => return Err(e),
        };
        let mut done = RangeSet::new();
        let unvouched = loaded.is_none();
        if let Some(saved) = loaded {
            if saved.identity.source != identity.source {
                self.notice("resume state belongs to another source; starting over");
            } else if let Some(why) = saved.identity.change_from(identity) {
                let reason = format!("the remote changed since the last run ({why})");
                tracing::warn!(%reason, "restarting from zero");
                self.shared.emit(Event::Restarted { reason });
            } else if !ranged {
                self.notice("cannot resume without byte ranges; starting over");
            } else if saved.storage.is_some()
                && target
                    .sink
                    .storage_id_dyn()
                    .is_some_and(|now| saved.storage.as_ref() != Some(&now))
            {
                self.notice(
                    "the partial file was replaced since the last run (another file under its name); starting over",
                );
            } else if let Some(len) = identity.len {
                let trusted = saved.trusted_done();
                if trusted.total_len() < saved.done.total_len() {
                    self.notice(&format!(
                        "the system restarted since the last run: keeping the {} bytes that were flushed to disk, \
                         fetching the other {} again",
                        trusted.total_len(),
                        saved.done.total_len() - trusted.total_len()
                    ));
                }
                // Only what storage still holds: a partial file deleted or cut
                // behind the control file's back is fetched again.
                let whole = RangeSet::from_ranges([crate::ByteRange::new(0, len)]);
                let held = target
                    .sink
                    .stored_ranges_dyn()
                    .await?
                    .unwrap_or(whole.clone());
                let recorded = trusted.intersection(&whole);
                done = recorded.intersection(&held);
                if done.total_len() < recorded.total_len() {
                    self.notice(&format!(
                        "storage holds {} bytes fewer than its resume state says: fetching them again",
                        recorded.total_len() - done.total_len()
                    ));
                }
            }
        }
        if unvouched && ranged && verifies {
            done = self.check_stored(target, identity.len).await?;
        }
        if done.is_empty() {
            target.sink.reset_dyn().await?;
        }
        Ok(done)
    }

    /// Without resume state: has the source verify what storage holds and
    /// keeps what it proves. Data of the user's ([`Found`]) of which nothing
    /// verifies is left as it was, and the download refused.
    async fn check_stored(&self, target: &Target, len: Option<u64>) -> Result<RangeSet> {
        let Some(len) = len else {
            return Ok(RangeSet::new());
        };
        let whole = RangeSet::from_ranges([crate::ByteRange::new(0, len)]);
        let Some(held) = target.sink.stored_ranges_dyn().await? else {
            return Ok(RangeSet::new());
        };
        let held = held.intersection(&whole);
        if held.is_empty() {
            return Ok(held);
        }
        self.set_state(DownloadState::Checking);
        self.notice(&format!(
            "checking the {} bytes already on disk",
            held.total_len()
        ));
        let stored = StoredBytes::new(target.sink.clone());
        let mut control = self.control.clone();
        let verified = tokio::select! {
            v = self.sources[0].verify_stored_dyn(stored, held.clone()) => v,
            _ = control.wait_for(|c| *c == Control::Cancel) => Err(Error::cancelled()),
        };
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                // The user's file goes back where it was, unchecked.
                if let Found::Moved { part, path } = &target.found {
                    let _ = std::fs::rename(part, path);
                }
                return Err(e);
            }
        };
        // A source may only prove what it was given.
        let verified = verified.intersection(&held);
        self.shared.emit(Event::Checked {
            stored_bytes: held.total_len(),
            verified_bytes: verified.total_len(),
        });
        if verified.is_empty() {
            match &target.found {
                Found::Nothing => {}
                Found::InPlace(path) => return Err(already_exists(path)),
                Found::Moved { part, path } => {
                    std::fs::rename(part, path)
                        .map_err(|e| Error::io(format!("moving {} back", path.display()), e))?;
                    return Err(already_exists(path));
                }
            }
        }
        Ok(verified)
    }

    fn algorithms(&self, probe: &Probe) -> Vec<DigestAlgorithm> {
        let mut algos = Vec::new();
        // A source that verifies every unit itself (a torrent's pieces) needs no
        // second pass over the whole download, and with a file selection the
        // whole byte space is not even on disk.
        if self.options.verify && !probe.caps.verifies {
            algos.push(DigestAlgorithm::Sha256);
        }
        if let Some(c) = &self.options.checksum {
            algos.push(c.algorithm);
        } else if let Some(c) = probe.checksums.first() {
            algos.push(c.algorithm);
        }
        algos.dedup();
        algos
    }

    /// One pass of fetching until every byte is done, a restart is needed, or
    /// the download fails or is cancelled. Returns the running hasher.
    async fn transfer(
        &mut self,
        target: &Target,
        identity: &SourceIdentity,
        done: RangeSet,
        ranged: bool,
        algorithms: &[DigestAlgorithm],
    ) -> Result<Option<Verifier>, Stop> {
        let len = identity.len.unwrap_or(u64::MAX);
        let resumed = done.total_len();
        let prefix = done.contiguous_prefix();
        {
            let mut plan = self.shared.plan();
            plan.map = ChunkMap::new(len, done);
            plan.slots.clear();
        }
        self.shared.prefix.send_replace((prefix, false));
        self.shared.hashed.store(0, Ordering::Release);
        let hashing = !algorithms.is_empty() && !target.sink.hashes_in_order_dyn();
        let hasher = hashing.then(|| {
            Verifier::spawn(
                target.sink.clone(),
                self.shared.clone(),
                algorithms.to_vec(),
            )
        });
        // The remote's own limit (an FTP server's sessions per client) caps the option.
        let cap = self.connection_cap.unwrap_or(u32::MAX).max(1);
        let connections = if ranged && self.sources[0].swarm_dyn().is_some() {
            // A swarm binds one peer to each connection: as many as it may have peers.
            self.connection_cap
                .unwrap_or(self.options.connections)
                .max(1)
        } else if ranged {
            self.options.connections.clamp(1, cap)
        } else {
            1
        };
        self.set_state(DownloadState::Running);
        self.shared.emit(Event::Started {
            resumed_bytes: resumed,
            connections,
            path: target.final_path.clone(),
        });

        let result = self.drive(target, identity, ranged, connections).await;
        match result {
            Ok(()) => Ok(hasher),
            Err(stop) => {
                if let Some(h) = hasher {
                    h.stop().await;
                }
                Err(stop)
            }
        }
    }

    fn spawn_worker(
        &self,
        workers: &mut JoinSet<(usize, WorkerExit)>,
        conn: ConnId,
        cancel: &CancellationToken,
        sink: &BoxSink,
        ranged: bool,
    ) -> bool {
        let active: Vec<usize> = (0..self.sources.len())
            .filter(|i| !self.dropped[*i])
            .collect();
        if active.is_empty() {
            return false;
        }
        let source_index = active[conn.0 as usize % active.len()];
        let worker = Worker {
            conn,
            source_index,
            source: self.sources[source_index].clone(),
            sink: sink.clone(),
            shared: self.shared.clone(),
            cancel: cancel.clone(),
            ranged,
            max_retries: self.options.max_retries,
            backoff: self.options.backoff,
            write_buffer_bytes: self.options.write_buffer_bytes.max(4096),
            budget: self.options.connection_budget.clone(),
        };
        workers.spawn(async move { (source_index, worker.run().await) });
        true
    }

    /// Runs workers until complete; handles pause, cancel, failures and saves.
    async fn drive(
        &mut self,
        target: &Target,
        identity: &SourceIdentity,
        ranged: bool,
        connections: u32,
    ) -> Result<(), Stop> {
        let mut workers = JoinSet::new();
        let mut cancel = CancellationToken::new();
        let mut next_conn = 0u32;
        // A ranged download from servers (not a swarm, whose connections are
        // its peers) finds its connection count by measuring ([`ramp`]).
        let adaptive = self.options.adaptive_connections
            && ranged
            && connections > 1
            && self.sources[0].swarm_dyn().is_none();
        let mut ramp = adaptive.then(|| {
            ramp::Ramp::new(
                connections,
                Instant::now().into_std(),
                self.shared.received.load(Ordering::Relaxed),
            )
        });
        let wanted = ramp.as_ref().map_or(connections, ramp::Ramp::current);
        self.shared.wanted.store(wanted, Ordering::Relaxed);
        for _ in 0..wanted {
            self.spawn_worker(
                &mut workers,
                ConnId(next_conn),
                &cancel,
                &target.sink,
                ranged,
            );
            next_conn += 1;
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_save = Instant::now();
        let mut last_progress = Instant::now();
        let mut last_error: Option<Error> = None;

        loop {
            if workers.is_empty() {
                if self.shared.plan().map.is_complete() {
                    self.save(target, identity, ranged, true).await?;
                    return Ok(());
                }
                let err = last_error
                    .take()
                    .unwrap_or_else(|| Error::new(ErrorKind::Network, "every connection failed"));
                self.save(target, identity, ranged, true).await?;
                return Err(Stop::Fail(err));
            }
            tokio::select! {
                Some(joined) = workers.join_next() => {
                    let (source_index, exit) = joined.map_err(|e| Error::new(ErrorKind::Io, format!("worker task failed: {e}")))?;
                    match exit {
                        WorkerExit::Finished | WorkerExit::Stopped => {}
                        WorkerExit::Exhausted(e) => last_error = Some(e),
                        WorkerExit::Surplus(e) => {
                            let left = u32::try_from(workers.len()).unwrap_or(u32::MAX).max(1);
                            self.connection_cap = Some(left);
                            self.shared.wanted.store(left, Ordering::Relaxed);
                            if let Some(r) = &mut ramp {
                                r.cap(left);
                            }
                            self.notice(&format!(
                                "the server refused another connection ({e}); going on with {left}"
                            ));
                        }
                        WorkerExit::SinkFailed(e) => {
                            stop_workers(&cancel, &mut workers).await;
                            self.save(target, identity, ranged, true).await?;
                            return Err(Stop::Fail(e));
                        }
                        WorkerExit::SourceFailed(e) => {
                            if e.kind() == ErrorKind::RemoteChanged && source_index == 0 {
                                stop_workers(&cancel, &mut workers).await;
                                return Err(Stop::Restart(format!("the remote changed while downloading: {e}")));
                            }
                            if !self.dropped[source_index] {
                                self.drop_source(source_index, e.to_string());
                            }
                            if self.dropped.iter().all(|d| *d) {
                                stop_workers(&cancel, &mut workers).await;
                                self.save(target, identity, ranged, true).await?;
                                return Err(Stop::Fail(e));
                            }
                            self.spawn_worker(&mut workers, ConnId(next_conn), &cancel, &target.sink, ranged);
                            next_conn += 1;
                        }
                    }
                }
                _ = tick.tick() => {
                    self.refresh_stats();
                    if let Some(n) = ramp.as_mut().and_then(|r| {
                        let received = self.shared.received.load(Ordering::Relaxed);
                        let left = {
                            let plan = self.shared.plan();
                            (plan.map.len != u64::MAX).then(|| plan.map.len.saturating_sub(plan.map.done.total_len()))
                        };
                        r.on_tick(Instant::now().into_std(), received, left)
                    }) {
                        tracing::debug!(connections = n, "connection count adjusted to the throughput");
                        self.shared.wanted.store(n, Ordering::Relaxed);
                        let running = u32::try_from(workers.len()).unwrap_or(u32::MAX);
                        // Fewer: the surplus workers stop after their chunk (`Worker::run`).
                        for _ in running..n {
                            self.spawn_worker(&mut workers, ConnId(next_conn), &cancel, &target.sink, ranged);
                            next_conn += 1;
                        }
                    }
                    if last_save.elapsed() >= self.options.save_interval {
                        self.save(target, identity, ranged, false).await?;
                        last_save = Instant::now();
                    }
                    if last_progress.elapsed() >= PROGRESS_EVERY {
                        last_progress = Instant::now();
                        let stats = self.shared.stats().clone();
                        self.shared.emit(Event::Progress(stats));
                    }
                }
                () = self.shared.save_requested.notified() => {
                    self.save(target, identity, ranged, false).await?;
                    last_save = Instant::now();
                }
                changed = self.control.changed() => {
                    if changed.is_err() {
                        // The handle is gone: nobody can pause or cancel any more.
                        self.control = watch::channel(Control::Run).1;
                        continue;
                    }
                    let wanted = *self.control.borrow_and_update();
                    if wanted == Control::Run {
                        continue;
                    }
                    stop_workers(&cancel, &mut workers).await;
                    self.save(target, identity, ranged, true).await?;
                    self.refresh_stats();
                    if wanted == Control::Cancel {
                        return Err(Stop::Fail(Error::cancelled()));
                    }
                    self.set_state(DownloadState::Paused);
                    self.shared.emit(Event::Paused);
                    let resumed = self.control.wait_for(|c| *c != Control::Pause).await.map(|c| *c).ok();
                    if resumed != Some(Control::Run) {
                        return Err(Stop::Fail(Error::cancelled()));
                    }
                    self.set_state(DownloadState::Running);
                    self.shared.emit(Event::Resumed);
                    cancel = CancellationToken::new();
                    if let Some(r) = &mut ramp {
                        r.restart(Instant::now().into_std(), self.shared.received.load(Ordering::Relaxed));
                    }
                    let wanted = self.shared.wanted.load(Ordering::Relaxed);
                    for _ in 0..wanted.min(self.connection_cap.unwrap_or(u32::MAX).max(1)) {
                        self.spawn_worker(&mut workers, ConnId(next_conn), &cancel, &target.sink, ranged);
                        next_conn += 1;
                    }
                }
            }
        }
    }

    /// Saves resume state: snapshot the done ranges, make the data durable
    /// when due (`durable_now`, or every `data_sync_interval`), then replace
    /// the control file atomically. See [`crate::docs::resume`].
    async fn save(
        &mut self,
        target: &Target,
        identity: &SourceIdentity,
        ranged: bool,
        durable_now: bool,
    ) -> Result<()> {
        let Some(path) = target.control_path.clone() else {
            return Ok(());
        };
        if !ranged {
            return Ok(());
        }
        // Every byte is here: the commit makes the file durable and removes the
        // control file, so recording the last ranges would only cost syncs (three
        // per file in a tree of small objects).
        if self.shared.plan().map.is_complete() {
            return Ok(());
        }
        let mut done = self.shared.plan().map.done.clone();
        for r in self.skip.ranges() {
            done.remove(*r);
        }
        if self.options.sync_data
            && (durable_now || self.last_data_sync.elapsed() >= self.options.data_sync_interval)
        {
            target.sink.sync_dyn().await?;
            self.durable = done.clone();
            self.last_data_sync = Instant::now();
        }
        let state = ControlFile::new(identity.clone(), done, self.options.connections)
            .with_durable(self.durable.clone())
            .with_storage(target.sink.storage_id_dyn());
        let sync = self.options.sync_data;
        tokio::task::spawn_blocking(move || state.save_to(&path, sync))
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("save task failed: {e}")))?
    }

    fn refresh_stats(&mut self) {
        let hashed = self.shared.hashed.load(Ordering::Relaxed);
        let now = Instant::now();
        let received = self.shared.received.load(Ordering::Relaxed);
        let rate = moving_rate(&mut self.rate_samples, now, received);
        let swarm = self.sources[0].swarm_dyn();
        let uploaded = swarm.map_or(0, |s| s.uploaded_bytes);
        let upload_rate = moving_rate(&mut self.upload_samples, now, uploaded);
        let (downloaded, len, connections, sources) = {
            let plan = self.shared.plan();
            (
                plan.map.done.total_len(),
                plan.map.len,
                plan.map.in_flight.len() as u32,
                plan.sources.clone(),
            )
        };
        let total = (len != u64::MAX).then_some(len);
        let mut stats = self.shared.stats();
        stats.downloaded_bytes = downloaded;
        stats.total_bytes = total;
        stats.verified_bytes = hashed;
        stats.rate_bytes_per_sec = rate;
        stats.eta_ms = total.filter(|_| rate > 0).map(|t| {
            as_ms(Duration::from_secs_f64(
                t.saturating_sub(downloaded) as f64 / rate as f64,
            ))
        });
        stats.connections = connections;
        stats.sources = sources;
        stats.peers = swarm.map_or(0, |s| s.peers);
        stats.uploaded_bytes = uploaded;
        stats.upload_rate_bytes_per_sec = upload_rate;
        stats.swarm = swarm;
    }

    /// Verifies the digests and commits the output.
    async fn finish(
        &mut self,
        target: &Target,
        probe: &Probe,
        hasher: Option<Verifier>,
    ) -> Result<Completed> {
        self.set_state(DownloadState::Finishing);
        let len = {
            let plan = self.shared.plan();
            plan.map.done.contiguous_prefix()
        };
        self.shared.prefix.send_replace((len, true));
        let digests = match hasher {
            Some(h) => h.finish().await?.finalize(),
            None => target.sink.digests_dyn().unwrap_or_default(),
        };
        let expected = self.options.checksum.clone().or_else(|| {
            probe
                .checksums
                .iter()
                .find(|c| digests.iter().any(|d| d.algorithm == c.algorithm))
                .cloned()
        });
        if let Some(want) = &expected {
            let got = digests.iter().find(|d| d.algorithm == want.algorithm);
            if got.map(|g| &g.value) != Some(&want.value) {
                if let Some(p) = &target.control_path {
                    let _ = ControlFile::remove(p);
                }
                let got = got.map_or_else(|| "nothing".to_string(), Checksum::to_hex);
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "{} mismatch: expected {}, got {got}",
                        want.algorithm,
                        want.to_hex()
                    ),
                )
                .with_context("kept", part_name(target)));
            }
        }
        target.sink.commit_dyn().await?;
        if let Some(p) = &target.control_path {
            ControlFile::remove(p)?;
        }
        self.shared.hashed.store(len, Ordering::Relaxed);
        self.refresh_stats();
        Ok(Completed {
            bytes: len,
            fetched_bytes: self.shared.received.load(Ordering::Relaxed),
            elapsed_ms: as_ms(self.started.elapsed()),
            digests,
            verified_against: expected,
            path: target.final_path.clone(),
            uploaded_bytes: 0,
            seed_end: None,
        })
    }
}

fn part_name(target: &Target) -> String {
    target
        .final_path
        .as_deref()
        .map(FileSink::part_path_for)
        .as_deref()
        .map(Path::display)
        .map_or_else(|| "output".to_string(), |d| d.to_string())
}

/// Applies a file selection to a probe: marks the files wanted or not and
/// adds to [`Probe::skip`] the alignment units (pieces) that hold no byte of
/// a selected file. Without a selection from the user, the files the
/// probe itself left unwanted (a magnet link's `so`) are the ones skipped.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for an index past the last file, or a
/// selection of anything but file 0 in a one-file byte space.
fn select_files(probe: &mut Probe, selected: Option<&[usize]>) -> Result<()> {
    let source_selection: Vec<usize>;
    let selected = match selected {
        Some(s) => s,
        None if probe.files.iter().any(|f| !f.wanted) => {
            source_selection = (0..probe.files.len())
                .filter(|&i| probe.files[i].wanted)
                .collect();
            &source_selection
        }
        None => return Ok(()),
    };
    let count = probe.files.len().max(1);
    if let Some(bad) = selected.iter().find(|i| **i >= count) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("file {} is not in the download ({count} files)", bad + 1),
        ));
    }
    if probe.files.is_empty() {
        return Ok(());
    }
    let mut wanted = RangeSet::new();
    for (i, f) in probe.files.iter_mut().enumerate() {
        f.wanted = selected.contains(&i);
        if f.wanted && f.len > 0 {
            wanted.insert(crate::ByteRange::new(f.offset, f.offset + f.len));
        }
    }
    let Some(len) = probe.len else {
        return Ok(());
    };
    let unwanted = RangeSet::from_ranges(wanted.gaps(len));
    let unit = probe
        .caps
        .alignment
        .map_or(len.max(1), std::num::NonZeroU64::get);
    match probe.caps.alignment {
        Some(_) => {
            let mut start = 0;
            while start < len {
                let r = crate::ByteRange::new(start, (start + unit).min(len));
                if unwanted.contains_range(r) {
                    probe.skip.push(r);
                }
                start = r.end;
            }
        }
        None => probe.skip.extend(unwanted.ranges().iter().copied()),
    }
    Ok(())
}

/// Adds the sample `(now, total)` and returns the rate of `total` over the
/// last [`RATE_WINDOW`], bytes/s.
fn moving_rate(samples: &mut VecDeque<(Instant, u64)>, now: Instant, total: u64) -> u64 {
    samples.push_back((now, total));
    while samples
        .front()
        .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
    {
        samples.pop_front();
    }
    match (samples.front(), samples.back()) {
        (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
            (b1.saturating_sub(*b0) as f64 / t1.duration_since(*t0).as_secs_f64()) as u64
        }
        _ => 0,
    }
}

/// Cancels a pass's workers and waits for them to flush and exit.
async fn stop_workers(cancel: &CancellationToken, workers: &mut JoinSet<(usize, WorkerExit)>) {
    cancel.cancel();
    while workers.join_next().await.is_some() {}
}
