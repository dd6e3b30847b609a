//! Running one job: its input resolved through the registry, then one byte
//! space downloaded (a file, a torrent's files) or a tree (a directory, a
//! prefix), its progress forwarded to the store, the metrics and the event
//! stream.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dlm_core::{
    ByteRange, CancellationToken, Checksum, Completed, Download, DownloadControl, DownloadOptions,
    Error, ErrorKind, Event, FileSpan, Input, Options, Output, SeedPolicy, Target, TreeDownload,
    TreeEvent, TreeSummary,
};
use dlm_examples::api::{JobEvent, JobFile, JobState};
use tokio::sync::broadcast;

use super::Manager;
use crate::store::JobRow;

/// How often a running job's progress is written to the store.
const STORE_PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Stops a job wherever it is: resolving, downloading or seeding.
#[derive(Clone, Debug, Default)]
pub(crate) struct JobControl {
    cancel: CancellationToken,
    download: Arc<OnceLock<DownloadControl>>,
}

impl JobControl {
    /// Stops the job (its state is saved).
    pub(crate) fn stop(&self) {
        self.cancel.cancel();
        if let Some(d) = self.download.get() {
            d.cancel();
        }
    }

    /// Changes the rate limit of a running single download.
    pub(crate) fn set_rate_limit(&self, bytes_per_sec: Option<u64>) {
        if let Some(d) = self.download.get() {
            d.set_rate_limit(bytes_per_sec);
        }
    }

    fn attach(&self, control: DownloadControl) {
        let _ = self.download.set(control.clone());
        if self.cancel.is_cancelled() {
            control.cancel();
        }
    }
}

/// How a job's download ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// One byte space, complete (and seeded, when asked).
    File(Completed),
    /// A tree; some files may have failed.
    Tree(TreeSummary),
}

/// The input a job names: its URL, or the path of its `.torrent`.
pub(crate) fn job_input(row: &JobRow) -> Input {
    Input::parse(&row.url)
}

/// The job's protocol settings.
pub(crate) fn job_options(row: &JobRow) -> Options {
    dlm_examples::protocols::options_from(&row.options)
}

impl Manager {
    /// Resolves and downloads `row` until it ends or `control` stops it.
    pub(crate) async fn run(
        self: Arc<Self>,
        row: JobRow,
        control: JobControl,
    ) -> Result<Outcome, Error> {
        if !self.dest_policy.absolute {
            let dest = self.download_dir.join(row.dest.as_deref().unwrap_or(""));
            stays_in_after_links(&self.download_dir, &dest)?;
        }
        let input = job_input(&row);
        let options = job_options(&row);
        let target = tokio::select! {
            () = control.cancel.cancelled() => return Err(Error::cancelled()),
            t = self.registry.target(&input, &options) => t?,
        };
        let protocol = self
            .registry
            .protocol(&input)
            .map_or("unknown", |p| p.name_dyn());
        let checksum = row
            .checksum
            .as_deref()
            .map(str::parse::<Checksum>)
            .transpose()?;
        let seed = (row.seed_ratio.is_some() || row.seed_time.is_some())
            .then(|| SeedPolicy::new(row.seed_ratio, row.seed_time.map(Duration::from_secs)));
        let opts = DownloadOptions::default()
            .with_connections(row.connections)
            .with_rate_limit((row.rate_limit > 0).then_some(row.rate_limit))
            .with_checksum(checksum)
            .with_global_limiter(self.global.clone())
            .with_selected_files(row.selected.clone())
            .with_seed(seed);
        match target {
            Target::Source(source) => {
                let files = source.describe_dyn().map(|d| d.files).unwrap_or_default();
                let _ = self.store.set_files(
                    row.id,
                    "file",
                    &span_files(&files, row.selected.as_deref(), None),
                );
                let output = match &row.dest {
                    None => Output::Dir(self.download_dir.clone()),
                    Some(d) if d.ends_with('/') => Output::Dir(self.download_dir.join(d)),
                    Some(d) => Output::File(self.download_dir.join(d)),
                };
                let described = source.clone();
                let mut download = Download::new(source, output).with_options(opts);
                for m in &row.mirrors {
                    download = download
                        .with_mirror(self.registry.source(&Input::parse(m), &options).await?);
                }
                let events = download.subscribe();
                let handle = download.start();
                control.attach(handle.control());
                let forward = self.clone().forward_file(
                    row.id,
                    events,
                    handle.control(),
                    protocol,
                    (files, row.selected.clone(), seed.is_some()),
                    described,
                );
                let (result, ()) = tokio::join!(handle.wait(), forward);
                result.map(Outcome::File)
            }
            Target::Listing(listing) => {
                let name = listing.name().and_then(|n| dlm_core::safe_file_name(&n));
                let dir = match (&row.dest, name) {
                    (Some(d), _) => self.download_dir.join(d),
                    (None, Some(n)) => self.download_dir.join(n),
                    (None, None) => self.download_dir.clone(),
                };
                let _ = self.store.set_files(row.id, "tree", &[]);
                let rel = dir.strip_prefix(&self.download_dir).unwrap_or(&dir);
                let _ = self.store.set_path(row.id, &rel.to_string_lossy());
                let tree = TreeDownload::new(listing, dir).with_options(opts);
                let events = tree.subscribe();
                let handle = tree.start();
                let cancel = handle.cancellation();
                let forward = self.clone().forward_tree(row.id, events, protocol);
                let stop = control.cancel.clone();
                let wait = async move {
                    tokio::select! {
                        r = handle.wait() => r,
                        () = stop.cancelled() => {
                            cancel.cancel();
                            Err(Error::cancelled())
                        }
                    }
                };
                let (result, ()) = tokio::join!(wait, forward);
                result.map(Outcome::Tree)
            }
        }
    }

    /// Forwards a single download's events to the store, metrics and SSE.
    async fn forward_file(
        self: Arc<Self>,
        id: i64,
        mut events: broadcast::Receiver<Event>,
        control: DownloadControl,
        protocol: &'static str,
        (mut spans, selected, seeding): (Vec<FileSpan>, Option<Vec<usize>>, bool),
        source: dlm_core::BoxSource,
    ) {
        let mut last_store = Instant::now() - STORE_PROGRESS_EVERY;
        let mut last_bytes = 0u64;
        let mut sha256 = None;
        let mut last_uploaded = 0u64;
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            match ev {
                // A magnet link knows its files only once its probe fetched the metadata.
                Event::Probed { .. } if spans.is_empty() => {
                    if let Some(d) = source.describe_dyn() {
                        spans = d.files;
                        let _ = self.store.set_files(
                            id,
                            "file",
                            &span_files(&spans, selected.as_deref(), None),
                        );
                    }
                }
                Event::Started { path: Some(p), .. } => {
                    let rel = p.strip_prefix(&self.download_dir).unwrap_or(&p);
                    let _ = self.store.set_path(id, &rel.to_string_lossy());
                }
                Event::Progress(stats) => {
                    self.set_live(id, &stats);
                    self.metrics
                        .add_bytes(protocol, stats.downloaded_bytes.saturating_sub(last_bytes));
                    self.metrics
                        .add_uploaded(stats.uploaded_bytes.saturating_sub(last_uploaded));
                    last_uploaded = last_uploaded.max(stats.uploaded_bytes);
                    last_bytes = last_bytes.max(stats.downloaded_bytes);
                    if last_store.elapsed() >= STORE_PROGRESS_EVERY {
                        last_store = Instant::now();
                        let _ =
                            self.store
                                .set_progress(id, stats.downloaded_bytes, stats.total_bytes);
                        let _ = self.store.set_uploaded(id, stats.uploaded_bytes);
                        if !spans.is_empty() {
                            let done = control.done_ranges();
                            let files = span_files(&spans, selected.as_deref(), Some(&done));
                            let _ = self.store.set_files(id, "file", &files);
                        }
                    }
                    self.emit(JobEvent::Progress {
                        id,
                        downloaded_bytes: stats.downloaded_bytes,
                        total_bytes: stats.total_bytes,
                        rate_bytes_per_sec: stats.rate_bytes_per_sec,
                        peers: stats.peers,
                        uploaded_bytes: stats.uploaded_bytes,
                        upload_rate_bytes_per_sec: stats.upload_rate_bytes_per_sec,
                    });
                }
                Event::Completed(done) => {
                    self.metrics
                        .add_bytes(protocol, done.bytes.saturating_sub(last_bytes));
                    last_bytes = done.bytes;
                    sha256 = done.sha256().map(Checksum::to_hex);
                    if !spans.is_empty() {
                        let ranges = control.done_ranges();
                        let files = span_files(&spans, selected.as_deref(), Some(&ranges));
                        let _ = self.store.set_files(id, "file", &files);
                    }
                    // Seeding follows only for a swarm whose job asked for it.
                    if !seeding || control.stats().swarm.is_none() {
                        return;
                    }
                }
                Event::SeedingStarted { .. } => {
                    let _ = self.store.set_state(id, JobState::Seeding, None);
                    self.emit(JobEvent::Seeding {
                        id,
                        sha256: sha256.clone(),
                    });
                }
                Event::SeedingEnded { uploaded_bytes, .. } => {
                    let _ = self.store.set_uploaded(id, uploaded_bytes);
                    return;
                }
                Event::Failed { .. } => return,
                _ => {}
            }
        }
    }

    /// Forwards a tree download's events: totals and per-file state.
    async fn forward_tree(
        self: Arc<Self>,
        id: i64,
        mut events: broadcast::Receiver<TreeEvent>,
        protocol: &'static str,
    ) {
        let mut files: Vec<JobFile> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut last_store = Instant::now() - STORE_PROGRESS_EVERY;
        let mut last_bytes = 0u64;
        let mut dirty = false;
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            };
            let mut set = |path: String, f: &dyn Fn(&mut JobFile)| {
                let i = *index.entry(path.clone()).or_insert_with(|| {
                    files.push(JobFile {
                        index: files.len(),
                        path,
                        length: None,
                        done_bytes: 0,
                        wanted: true,
                        state: "queued".into(),
                        error: None,
                    });
                    files.len() - 1
                });
                f(&mut files[i]);
                dirty = true;
            };
            match ev {
                TreeEvent::Listed { path, len } => set(path, &|f| f.length = len),
                TreeEvent::Refused { path, reason } => set(path, &|f| {
                    f.state = "refused".into();
                    f.wanted = false;
                    f.error = Some(reason.clone());
                }),
                TreeEvent::Skipped { path } => set(path, &|f| {
                    f.state = "completed".into();
                    f.done_bytes = f.length.unwrap_or(0);
                }),
                TreeEvent::FileStarted { path } => set(path, &|f| f.state = "running".into()),
                TreeEvent::FileCompleted { path, completed } => set(path, &|f| {
                    f.state = "completed".into();
                    f.length = Some(completed.bytes);
                    f.done_bytes = completed.bytes;
                }),
                TreeEvent::FileFailed { path, message, .. } => set(path, &|f| {
                    f.state = "failed".into();
                    f.error = Some(message.clone());
                }),
                TreeEvent::ListingFailed { .. } => {}
                TreeEvent::Progress(p) => {
                    self.set_live_rate(id, p.rate_bytes_per_sec);
                    self.metrics
                        .add_bytes(protocol, p.bytes_done.saturating_sub(last_bytes));
                    last_bytes = last_bytes.max(p.bytes_done);
                    let total = p.listing_done.then_some(p.bytes_listed.max(p.bytes_done));
                    if last_store.elapsed() >= STORE_PROGRESS_EVERY || p.listing_done {
                        last_store = Instant::now();
                        let _ = self.store.set_progress(id, p.bytes_done, total);
                        if dirty {
                            let _ = self.store.set_files(id, "tree", &files);
                            dirty = false;
                        }
                    }
                    self.emit(JobEvent::Progress {
                        id,
                        downloaded_bytes: p.bytes_done,
                        total_bytes: total,
                        rate_bytes_per_sec: p.rate_bytes_per_sec,
                        peers: 0,
                        uploaded_bytes: 0,
                        upload_rate_bytes_per_sec: 0,
                    });
                }
                _ => {}
            }
        }
        if dirty {
            let _ = self.store.set_files(id, "tree", &files);
        }
    }
}

/// Fails unless `path` (which may not exist yet) stays inside `base` once
/// the symlinks of its existing part are resolved: a link planted in the
/// download directory must not lead a job's files out of it.
fn stays_in_after_links(base: &std::path::Path, path: &std::path::Path) -> Result<(), Error> {
    let base = std::fs::canonicalize(base)
        .map_err(|e| Error::new(ErrorKind::Io, format!("{}: {e}", base.display())))?;
    let mut existing = path.to_path_buf();
    while !existing.exists() && !existing.is_symlink() {
        if !existing.pop() {
            break;
        }
    }
    let real = std::fs::canonicalize(&existing).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{}: {e} (a dangling link?)", existing.display()),
        )
    })?;
    if real.starts_with(&base) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} leads out of the download directory (through a symbolic link)",
                path.display()
            ),
        ))
    }
}

/// The API view of a byte space's files: selection, and the bytes done of
/// each (from the download's done ranges, when running).
fn span_files(
    spans: &[FileSpan],
    selected: Option<&[usize]>,
    done: Option<&dlm_core::RangeSet>,
) -> Vec<JobFile> {
    let chosen: Option<std::collections::HashSet<usize>> =
        selected.map(|s| s.iter().copied().collect());
    let ranges = done.map_or(&[][..], |d| d.ranges());
    spans
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let wanted = chosen.as_ref().is_none_or(|s| s.contains(&i));
            let range = ByteRange::new(f.offset, f.offset + f.len);
            // Done ranges are sorted and disjoint: only those from the first
            // that ends past the file's start can overlap it.
            let first = ranges.partition_point(|r| r.end <= range.start);
            let done_bytes = if wanted {
                ranges[first..]
                    .iter()
                    .take_while(|r| r.start < range.end)
                    .filter_map(|r| r.intersect(&range))
                    .map(|r| r.len())
                    .sum()
            } else {
                0
            };
            let state = match (wanted, done_bytes == f.len) {
                (false, _) => "skipped",
                (true, true) if done.is_some() => "completed",
                (true, _) => "wanted",
            };
            JobFile {
                index: i,
                path: f.path.display().to_string(),
                length: Some(f.len),
                done_bytes,
                wanted,
                state: state.into(),
                error: None,
            }
        })
        .collect()
}

/// A tree's outcome as a job's: complete, or failed with the first reason.
pub(crate) fn tree_result(summary: &TreeSummary) -> Result<(), (ErrorKind, String)> {
    if summary.is_complete() {
        return Ok(());
    }
    let failed = summary.failed.len() + summary.refused.len();
    let kind = if summary
        .failed
        .iter()
        .any(|(_, e)| e.kind() == ErrorKind::Integrity)
    {
        ErrorKind::Integrity
    } else if let Some((_, e)) = summary.failed.first() {
        e.kind()
    } else if !summary.refused.is_empty() {
        ErrorKind::InvalidInput
    } else {
        summary
            .listing_errors
            .first()
            .map_or(ErrorKind::Network, Error::kind)
    };
    let first = summary
        .failed
        .first()
        .map(|(p, e)| format!("{p}: {e}"))
        .or_else(|| summary.refused.first().map(|(p, r)| format!("{p}: {r}")))
        .or_else(|| summary.listing_errors.first().map(ToString::to_string))
        .unwrap_or_default();
    Err((
        kind,
        format!(
            "{failed} of {} files failed or were refused, {} parts could not be listed; first: {first}",
            summary.progress.files_listed,
            summary.listing_errors.len()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(path: &str, offset: u64, len: u64) -> FileSpan {
        FileSpan {
            path: path.into(),
            offset,
            len,
            wanted: true,
        }
    }

    #[test]
    fn file_progress_from_done_ranges_and_selection() {
        let spans = [span("a", 0, 10), span("b", 10, 5), span("c", 15, 20)];
        let done = dlm_core::RangeSet::from_ranges([ByteRange::new(0, 12), ByteRange::new(20, 25)]);
        let files = span_files(&spans, Some(&[0, 2]), Some(&done));
        let got: Vec<_> = files
            .iter()
            .map(|f| (f.done_bytes, f.wanted, f.state.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (10, true, "completed"),
                (0, false, "skipped"),
                (5, true, "wanted")
            ]
        );
        let unknown = span_files(&spans, None, None);
        assert!(
            unknown
                .iter()
                .all(|f| f.state == "wanted" && f.done_bytes == 0)
        );
    }
}
