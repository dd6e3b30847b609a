//! The job queue and its worker pool: at most `max_active` downloads at once
//! and at most `max_per_host` per remote host; the rest wait in priority,
//! then first-in-first-out, order. Jobs are any input the registry takes:
//! files, torrents (by URL, by path, or uploaded), directory trees; see
//! [`runner`] for how one runs.

mod runner;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use dlm_core::{Checksum, ErrorKind, Input, ProtocolRegistry, RateLimiter};
use dlm_examples::api::{Job, JobEvent, JobState, NewJob, Settings, Upload};
use dlm_examples::protocols;
use tokio::sync::broadcast;
use tracing::Instrument;

use self::runner::{JobControl, Outcome, job_input, tree_result};
use crate::metrics::Metrics;
use crate::store::{JobRow, Live, Store};

/// Capacity of the SSE event buffer; a slower client misses events (it is
/// told so) rather than stalling downloads.
const EVENT_CAPACITY: usize = 4096;
/// Largest number of connections a job may ask for.
const MAX_CONNECTIONS: u32 = 64;
/// Largest uploaded input file accepted in a job, bytes (decoded).
const MAX_UPLOAD_BYTES: usize = 8 << 20;

/// Why a running job is being stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopReason {
    Pause,
    Cancel {
        delete_file: bool,
    },
    Shutdown,
    /// The file selection changed: queue it again at once.
    Reselect,
}

#[derive(Debug)]
struct Running {
    control: JobControl,
    host: String,
    stop: Option<StopReason>,
    live: Live,
}

#[derive(Debug)]
struct Inner {
    running: HashMap<i64, Running>,
    max_active: u32,
    max_per_host: u32,
    shutting_down: bool,
}

/// A request the API could not honour.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ManagerError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidDest(String),
    #[error("job {0} not found")]
    NotFound(i64),
    #[error("{0}")]
    Conflict(String),
    #[error("storage: {0}")]
    Store(#[from] rusqlite::Error),
}

/// The daemon's jobs.
#[derive(Debug)]
pub(crate) struct Manager {
    store: Store,
    registry: ProtocolRegistry,
    download_dir: PathBuf,
    /// Where uploaded input files are kept (`STATE_DIR/uploads`).
    uploads_dir: PathBuf,
    dest_policy: DestPolicy,
    global: Arc<RateLimiter>,
    inner: Mutex<Inner>,
    events: broadcast::Sender<JobEvent>,
    pub(crate) metrics: Metrics,
}

/// Which job destinations the operator allows beyond plain relative paths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DestPolicy {
    /// Absolute paths (`--allow-absolute-dest`).
    pub(crate) absolute: bool,
    /// Hidden components such as `.ssh/…` (`--allow-hidden-dest`).
    pub(crate) hidden: bool,
}

/// Checks a destination from the API: relative, no `..`, no root, no
/// hidden component (`.ssh/authorized_keys`), unless the policy allows.
fn check_dest(dest: &str, policy: DestPolicy) -> Result<(), ManagerError> {
    let p = Path::new(dest);
    if dest.is_empty() || dest.contains('\0') {
        return Err(ManagerError::InvalidDest(
            "dest is empty or contains NUL".into(),
        ));
    }
    let hidden = p.components().any(|c| match c {
        Component::Normal(n) => n.to_string_lossy().starts_with('.'),
        _ => false,
    });
    if hidden && !policy.hidden {
        return Err(ManagerError::InvalidDest(format!(
            "dest {dest:?} has a hidden component (allow with --allow-hidden-dest)"
        )));
    }
    if p.is_absolute() && policy.absolute && !p.components().any(|c| c == Component::ParentDir) {
        return Ok(());
    }
    if !dlm_core::stays_inside(p) {
        return Err(ManagerError::InvalidDest(format!(
            "dest {dest:?} must be a relative path inside the download directory (no \"..\", no absolute path)"
        )));
    }
    Ok(())
}

impl Manager {
    pub(crate) fn new(
        store: Store,
        registry: ProtocolRegistry,
        (download_dir, uploads_dir): (PathBuf, PathBuf),
        dest_policy: DestPolicy,
        defaults: (u32, u32, u64),
    ) -> Result<Arc<Self>, rusqlite::Error> {
        let setting = |k: &str, d: u64| -> Result<u64, rusqlite::Error> {
            Ok(store.setting(k)?.and_then(|v| v.parse().ok()).unwrap_or(d))
        };
        let max_active = setting("max_active", u64::from(defaults.0))? as u32;
        let max_per_host = setting("max_per_host", u64::from(defaults.1))? as u32;
        let global_rate = setting("global_rate_limit", defaults.2)?;
        // A job still `running` whose output was already committed (the
        // daemon died between the engine's rename and the store update) is
        // complete: the engine renames `.part` only after the bytes verified.
        for row in store.list(Some(JobState::Running), 0, u32::MAX)? {
            let Some(path) = &row.path else { continue };
            let full = download_dir.join(path);
            let committed = full.is_file()
                && !dlm_core::FileSink::part_path_for(&full).exists()
                && !dlm_core::FileSink::control_path_for(&full).exists();
            if committed {
                let len = std::fs::metadata(&full).map_or(0, |m| m.len());
                tracing::info!(id = row.id, "was committed before the restart; completed");
                store.complete(row.id, len, None)?;
            }
        }
        let requeued = store.requeue_running()?;
        if requeued > 0 {
            tracing::info!(
                requeued,
                "jobs that were running continue from their control files"
            );
        }
        Ok(Arc::new(Self {
            store,
            registry,
            download_dir,
            uploads_dir,
            dest_policy,
            global: Arc::new(RateLimiter::new(Some(global_rate))),
            inner: Mutex::new(Inner {
                running: HashMap::new(),
                max_active,
                max_per_host,
                shutting_down: false,
            }),
            events: broadcast::channel(EVENT_CAPACITY).0,
            metrics: Metrics::new(),
        }))
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.events.subscribe()
    }

    fn emit(&self, e: JobEvent) {
        let _ = self.events.send(e);
    }

    fn live(&self, id: i64) -> Live {
        self.inner()
            .running
            .get(&id)
            .map_or_else(Live::default, |r| r.live)
    }

    /// Records a running job's live counters.
    fn set_live(&self, id: i64, stats: &dlm_core::Stats) {
        if let Some(r) = self.inner().running.get_mut(&id) {
            r.live = Live {
                rate_bytes_per_sec: stats.rate_bytes_per_sec,
                peers: stats.peers,
                uploaded_bytes: stats.uploaded_bytes,
                upload_rate_bytes_per_sec: stats.upload_rate_bytes_per_sec,
            };
        }
    }

    /// Records a running tree's receive rate.
    fn set_live_rate(&self, id: i64, rate_bytes_per_sec: u64) {
        if let Some(r) = self.inner().running.get_mut(&id) {
            r.live.rate_bytes_per_sec = rate_bytes_per_sec;
        }
    }

    /// The API view of a job.
    pub(crate) fn job(&self, id: i64) -> Result<Job, ManagerError> {
        let row = self.store.get(id)?.ok_or(ManagerError::NotFound(id))?;
        Ok(row.to_api(self.live(id)))
    }

    /// A page of jobs.
    pub(crate) fn list(
        &self,
        state: Option<JobState>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Job>, ManagerError> {
        let rows = self.store.list(state, after, limit)?;
        let inner = self.inner();
        Ok(rows
            .iter()
            .map(|r| {
                r.to_api(
                    inner
                        .running
                        .get(&r.id)
                        .map_or_else(Live::default, |x| x.live),
                )
            })
            .collect())
    }

    /// Validates and queues a job.
    pub(crate) fn add(self: &Arc<Self>, new: NewJob) -> Result<Job, ManagerError> {
        let url = match (&new.upload, new.url.trim()) {
            (Some(_), u) if !u.is_empty() => {
                return Err(ManagerError::BadRequest(
                    "give either url or upload, not both".into(),
                ));
            }
            (Some(up), _) => self.save_upload(up)?,
            (None, "") => return Err(ManagerError::BadRequest("url is empty".into())),
            (None, u) => u.to_string(),
        };
        let input = Input::parse(&url);
        let host = match &input {
            Input::Url(u) => u.host_str().unwrap_or("").to_ascii_lowercase(),
            Input::File(p) => {
                self.check_readable(p)?;
                String::new()
            }
            _ => String::new(),
        };
        self.registry
            .protocol(&input)
            .map_err(|e| ManagerError::BadRequest(e.to_string()))?;
        if let Some(k) = new
            .options
            .keys()
            .find(|k| protocols::is_process_setting(k))
        {
            return Err(ManagerError::BadRequest(format!(
                "{k} is a daemon setting (dlmd -O {k}=…), not a job option"
            )));
        }
        let options = protocols::options_from(&new.options);
        protocols::Settings::from_options(&options)
            .map_err(|e| ManagerError::BadRequest(e.to_string()))?;
        for m in &new.mirrors {
            self.registry
                .protocol(&Input::parse(m))
                .map_err(|e| ManagerError::BadRequest(format!("mirror: {e}")))?;
        }
        if let Some(d) = &new.dest {
            check_dest(d, self.dest_policy)?;
        }
        if let Some(c) = &new.checksum {
            c.parse::<Checksum>()
                .map_err(|e| ManagerError::BadRequest(e.to_string()))?;
        }
        if new.files.as_ref().is_some_and(Vec::is_empty) {
            return Err(ManagerError::BadRequest("files selects no file".into()));
        }
        if new.seed_ratio.is_some_and(|r| !r.is_finite() || r < 0.0) {
            return Err(ManagerError::BadRequest(
                "seed_ratio must be a number ≥ 0".into(),
            ));
        }
        let connections = new.connections.unwrap_or(8);
        if !(1..=MAX_CONNECTIONS).contains(&connections) {
            return Err(ManagerError::BadRequest(format!(
                "connections must be 1 to {MAX_CONNECTIONS}"
            )));
        }
        let row = JobRow {
            mirrors: new.mirrors,
            dest: new.dest,
            connections,
            checksum: new.checksum,
            rate_limit: new.rate_limit.unwrap_or(0),
            priority: new.priority.unwrap_or(0),
            options: new.options,
            selected: new.files,
            seed_ratio: new.seed_ratio,
            seed_time: new.seed_time,
            ..JobRow::queued(url, host)
        };
        let row = self.store.insert(row)?;
        let job = row.to_api(Live::default());
        self.emit(JobEvent::Added {
            job: Box::new(job.clone()),
        });
        self.schedule();
        Ok(job)
    }

    /// Keeps an uploaded input file in the uploads directory, named by its
    /// SHA-256 and the extension it came with; returns its path.
    fn save_upload(&self, up: &Upload) -> Result<String, ManagerError> {
        use sha2::Digest as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(up.base64.trim())
            .map_err(|e| ManagerError::BadRequest(format!("upload is not base64: {e}")))?;
        if bytes.is_empty() || bytes.len() > MAX_UPLOAD_BYTES {
            return Err(ManagerError::BadRequest(format!(
                "upload must be 1 to {MAX_UPLOAD_BYTES} bytes"
            )));
        }
        let ext: String = Path::new(&up.name)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(16)
            .collect();
        let mut name = hex::encode(sha2::Sha256::digest(&bytes));
        if !ext.is_empty() {
            name = format!("{name}.{ext}");
        }
        let path = self.uploads_dir.join(name);
        std::fs::create_dir_all(&self.uploads_dir)
            .and_then(|()| std::fs::write(&path, &bytes))
            .map_err(|e| ManagerError::BadRequest(format!("saving the upload: {e}")))?;
        Ok(path.display().to_string())
    }

    /// A local input must be a file inside the download or uploads directory.
    fn check_readable(&self, p: &Path) -> Result<(), ManagerError> {
        let inside = std::fs::canonicalize(p).is_ok_and(|c| {
            [&self.download_dir, &self.uploads_dir]
                .iter()
                .filter_map(|d| std::fs::canonicalize(d).ok())
                .any(|d| c.starts_with(d))
        });
        if inside {
            Ok(())
        } else {
            Err(ManagerError::BadRequest(format!(
                "{} is not a file inside the download directory",
                p.display()
            )))
        }
    }

    /// Starts queued jobs while the limits allow.
    pub(crate) fn schedule(self: &Arc<Self>) {
        let mut inner = self.inner();
        if inner.shutting_down {
            return;
        }
        let free = inner.max_active.saturating_sub(inner.running.len() as u32);
        if free == 0 {
            return;
        }
        // Look past jobs blocked by their host's limit, but not without bound.
        let candidates = match self.store.queued(free.saturating_mul(8).max(64)) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "reading the queue failed");
                return;
            }
        };
        let mut per_host: HashMap<String, u32> = HashMap::new();
        for r in inner.running.values() {
            *per_host.entry(r.host.clone()).or_default() += 1;
        }
        for row in candidates {
            if inner.running.len() as u32 >= inner.max_active {
                break;
            }
            // Local inputs (an uploaded torrent) have no host to spare.
            let n = per_host.entry(row.host.clone()).or_default();
            if !row.host.is_empty() && *n >= inner.max_per_host {
                continue;
            }
            *n += 1;
            let running = self.start(&row);
            inner.running.insert(row.id, running);
        }
    }

    /// Spawns the job of `row`; it resolves its input first.
    fn start(self: &Arc<Self>, row: &JobRow) -> Running {
        let control = JobControl::default();
        let _ = self.store.set_state(row.id, JobState::Running, None);
        self.emit(JobEvent::Started { id: row.id });
        let me = self.clone();
        let id = row.id;
        let span = tracing::info_span!(parent: None, "job", id, input = %job_input(row));
        let job = row.clone();
        let c = control.clone();
        tokio::spawn(
            async move {
                tracing::info!("started");
                let result = me.clone().run(job, c).await;
                me.finished(id, result);
            }
            .instrument(span),
        );
        Running {
            control,
            host: row.host.clone(),
            stop: None,
            live: Live::default(),
        }
    }

    /// Records how a job ended and starts the next ones.
    fn finished(self: &Arc<Self>, id: i64, result: Result<Outcome, dlm_core::Error>) {
        let stop = self.inner().running.remove(&id).and_then(|r| r.stop);
        let result = match result {
            Ok(Outcome::Tree(summary)) => match tree_result(&summary) {
                Ok(()) => {
                    tracing::info!(files = summary.progress.files_done, "completed");
                    let _ = self.store.complete(id, summary.progress.bytes_done, None);
                    self.emit(JobEvent::Completed { id, sha256: None });
                    self.schedule();
                    return;
                }
                Err((kind, message)) => Err(dlm_core::Error::new(kind, message)),
            },
            Ok(Outcome::File(done)) => Ok(done),
            Err(e) => Err(e),
        };
        match (result, stop) {
            (Ok(done), _) => {
                let sha = done.sha256().map(|c| c.to_hex());
                tracing::info!(
                    bytes = done.bytes,
                    uploaded = done.uploaded_bytes,
                    sha256 = sha.as_deref().unwrap_or(""),
                    "completed"
                );
                let _ = self.store.complete(id, done.bytes, sha.as_deref());
                let _ = self.store.set_uploaded(id, done.uploaded_bytes);
                self.emit(JobEvent::Completed { id, sha256: sha });
            }
            (Err(e), Some(StopReason::Pause)) if e.kind() == ErrorKind::Cancelled => {
                let _ = self.store.set_state(id, JobState::Paused, None);
                self.emit(JobEvent::Paused { id });
            }
            (Err(e), Some(StopReason::Reselect)) if e.kind() == ErrorKind::Cancelled => {
                tracing::info!("continuing with the new file selection");
                let _ = self.store.set_state(id, JobState::Queued, None);
            }
            (Err(e), Some(StopReason::Cancel { delete_file }))
                if e.kind() == ErrorKind::Cancelled =>
            {
                if delete_file {
                    self.delete_partial(id);
                }
                let _ = self.store.set_state(id, JobState::Cancelled, None);
                self.emit(JobEvent::Cancelled { id });
            }
            (Err(e), Some(StopReason::Shutdown)) if e.kind() == ErrorKind::Cancelled => {
                // Stays `running` in the store: the next start resumes it.
                tracing::info!("stopped for shutdown; state saved");
            }
            (Err(e), _) => {
                let kind = e.kind().to_string();
                let message = e.to_string();
                tracing::warn!(%kind, %message, "failed");
                let _ = self
                    .store
                    .set_state(id, JobState::Failed, Some((&kind, &message)));
                self.metrics.failed(&kind);
                self.emit(JobEvent::Failed { id, kind, message });
            }
        }
        self.schedule();
    }

    fn delete_partial(&self, id: i64) {
        let Ok(Some(row)) = self.store.get(id) else {
            return;
        };
        let Some(path) = row.path else { return };
        let full = self.download_dir.join(path);
        let _ = std::fs::remove_file(dlm_core::FileSink::part_path_for(&full));
        let _ = std::fs::remove_file(dlm_core::FileSink::control_path_for(&full));
    }

    /// Pauses a queued or running job; for a running one, waits (up to 5 s)
    /// until its state is saved, so the answer says `paused`.
    pub(crate) async fn pause(self: &Arc<Self>, id: i64) -> Result<Job, ManagerError> {
        let row = self.store.get(id)?.ok_or(ManagerError::NotFound(id))?;
        let stopped = {
            let mut inner = self.inner();
            match inner.running.get_mut(&id) {
                Some(r) => {
                    r.stop = Some(StopReason::Pause);
                    r.control.stop();
                    true
                }
                None => false,
            }
        };
        if stopped {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && self.inner().running.contains_key(&id) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        } else {
            match row.state {
                JobState::Queued => {
                    self.store.set_state(id, JobState::Paused, None)?;
                    self.emit(JobEvent::Paused { id });
                }
                JobState::Paused => {}
                s => {
                    return Err(ManagerError::Conflict(format!(
                        "job {id} is {} and cannot be paused",
                        s.as_str()
                    )));
                }
            }
        }
        self.job(id)
    }

    /// Queues a paused (or failed) job again; it resumes from its control file.
    pub(crate) fn resume(self: &Arc<Self>, id: i64) -> Result<Job, ManagerError> {
        let row = self.store.get(id)?.ok_or(ManagerError::NotFound(id))?;
        match row.state {
            JobState::Paused | JobState::Failed => {
                self.store.set_state(id, JobState::Queued, None)?;
                self.schedule();
            }
            JobState::Queued | JobState::Running => {}
            s => {
                return Err(ManagerError::Conflict(format!(
                    "job {id} is {} and cannot be resumed",
                    s.as_str()
                )));
            }
        }
        self.job(id)
    }

    /// Cancels a job, optionally deleting its partial file.
    pub(crate) fn cancel(
        self: &Arc<Self>,
        id: i64,
        delete_file: bool,
    ) -> Result<Job, ManagerError> {
        let row = self.store.get(id)?.ok_or(ManagerError::NotFound(id))?;
        let stopped = {
            let mut inner = self.inner();
            match inner.running.get_mut(&id) {
                Some(r) => {
                    r.stop = Some(StopReason::Cancel { delete_file });
                    r.control.stop();
                    true
                }
                None => false,
            }
        };
        if !stopped && row.state != JobState::Completed {
            if delete_file {
                self.delete_partial(id);
            }
            self.store.set_state(id, JobState::Cancelled, None)?;
            self.emit(JobEvent::Cancelled { id });
        }
        self.job(id)
    }

    /// Changes priority, rate limit and/or the file selection (a running
    /// job continues at once with the new selection, keeping what it has).
    pub(crate) fn patch(
        self: &Arc<Self>,
        id: i64,
        priority: Option<i32>,
        rate: Option<u64>,
        files: Option<Vec<usize>>,
    ) -> Result<Job, ManagerError> {
        let row = self.store.get(id)?.ok_or(ManagerError::NotFound(id))?;
        if let Some(files) = &files {
            if files.is_empty() {
                return Err(ManagerError::BadRequest("files selects no file".into()));
            }
            if row.kind.as_deref() == Some("tree") {
                return Err(ManagerError::BadRequest(
                    "a tree job's files cannot be selected".into(),
                ));
            }
            if let Some(bad) = files
                .iter()
                .find(|i| !row.files.is_empty() && **i >= row.files.len())
            {
                return Err(ManagerError::BadRequest(format!(
                    "file {bad} is not in the job ({} files)",
                    row.files.len()
                )));
            }
            self.store.set_selected(id, files)?;
            if let Some(r) = self.inner().running.get_mut(&id) {
                r.stop = Some(StopReason::Reselect);
                r.control.stop();
            }
        }
        if let Some(p) = priority {
            self.store.set_priority(id, p)?;
        }
        if let Some(r) = rate {
            self.store.set_rate_limit(id, r)?;
            if let Some(run) = self.inner().running.get(&id) {
                run.control.set_rate_limit((r > 0).then_some(r));
            }
        }
        self.job(id)
    }

    pub(crate) fn settings(&self) -> Settings {
        let inner = self.inner();
        Settings {
            max_active: Some(inner.max_active),
            max_per_host: Some(inner.max_per_host),
            global_rate_limit: Some(self.global.rate().unwrap_or(0)),
        }
    }

    /// Changes the global limits; persisted.
    pub(crate) fn set_settings(self: &Arc<Self>, s: Settings) -> Result<Settings, ManagerError> {
        for (name, v) in [
            ("max_active", s.max_active),
            ("max_per_host", s.max_per_host),
        ] {
            if let Some(v) = v
                && !(1..=1000).contains(&v)
            {
                return Err(ManagerError::BadRequest(format!(
                    "{name} must be 1 to 1000"
                )));
            }
        }
        {
            let mut inner = self.inner();
            if let Some(v) = s.max_active {
                inner.max_active = v;
                self.store.set_setting("max_active", &v.to_string())?;
            }
            if let Some(v) = s.max_per_host {
                inner.max_per_host = v;
                self.store.set_setting("max_per_host", &v.to_string())?;
            }
        }
        if let Some(r) = s.global_rate_limit {
            self.global.set_rate((r > 0).then_some(r));
            self.store
                .set_setting("global_rate_limit", &r.to_string())?;
        }
        self.schedule();
        Ok(self.settings())
    }

    /// Counts for metrics: (running, queued).
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        let (running, rate) = {
            let inner = self.inner();
            (
                inner.running.len() as u64,
                inner
                    .running
                    .values()
                    .map(|r| r.live.rate_bytes_per_sec)
                    .sum(),
            )
        };
        (
            running,
            self.store.count(JobState::Queued).unwrap_or(0),
            rate,
        )
    }

    /// Stops every running job with its state saved and waits (bounded) for
    /// them to finish saving. They stay `running` in the store and resume on
    /// the next start.
    pub(crate) async fn shutdown(self: &Arc<Self>, within: Duration) {
        {
            let mut inner = self.inner();
            inner.shutting_down = true;
            for r in inner.running.values_mut() {
                r.stop = Some(StopReason::Shutdown);
                r.control.stop();
            }
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline && !self.inner().running.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        let plain = DestPolicy::default();
        let absolute = DestPolicy {
            absolute: true,
            hidden: false,
        };
        let hidden = DestPolicy {
            absolute: false,
            hidden: true,
        };
        assert!(check_dest("a/b.iso", plain).is_ok());
        assert!(check_dest("dir/", plain).is_ok());
        assert!(check_dest("../x", plain).is_err());
        assert!(check_dest("a/../../x", plain).is_err());
        assert!(check_dest("/etc/passwd", plain).is_err());
        assert!(check_dest("/srv/x", absolute).is_ok());
        assert!(check_dest("/srv/../x", absolute).is_err());
        assert!(check_dest("", plain).is_err());
        assert!(check_dest(".ssh/authorized_keys", plain).is_err());
        assert!(check_dest("a/.config/x", plain).is_err());
        assert!(check_dest(".ssh/x", hidden).is_ok());
    }
}
