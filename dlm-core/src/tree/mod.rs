//! `TreeDownload`: every file of a [`Listing`] into one local directory,
//! several at a time, sharing one connection budget.
//!
//! Each file is an ordinary [`Download`] to `DIR/relative/path` with its own
//! `.part` and control file, so a tree resumes file by file; a file that is
//! already complete (same length, no resume state) is skipped.

mod events;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{Semaphore, broadcast};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

pub use events::{TreeEvent, TreeProgress, TreeSummary};

use crate::{
    BoxListing, Context, Download, DownloadControl, DownloadOptions, Entry, Error, ErrorKind,
    Output, Result, safe_relative_path,
};

/// Capacity of the event channel.
const EVENT_CAPACITY: usize = 4096;
/// How often progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// A directory download being set up; [`TreeDownload::start`] spawns it.
///
/// `options.connections` is the budget shared by all files (each chunk fetch
/// holds one permit, see [`DownloadOptions::connection_budget`]); up to
/// [`TreeDownload::with_parallel_files`] files run at once (default: the
/// same number), so many small files keep every connection busy and one
/// large file can still use them all.
///
/// # Examples
/// ```no_run
/// # #[allow(dead_code)]
/// # async fn demo(listing: dlm_core::BoxListing) -> dlm_core::Result<()> {
/// use dlm_core::{DownloadOptions, TreeDownload};
/// let tree = TreeDownload::new(listing, "mirror".into())
///     .with_options(DownloadOptions::default().with_connections(4));
/// let summary = tree.start().wait().await?;
/// assert!(summary.is_complete(), "{:?}", summary.failed);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TreeDownload {
    listing: BoxListing,
    dir: PathBuf,
    options: DownloadOptions,
    parallel_files: Option<usize>,
    events: broadcast::Sender<TreeEvent>,
}

impl TreeDownload {
    /// Every file of `listing` into `dir` (created when missing), keeping the
    /// listing's relative paths.
    pub fn new(listing: BoxListing, dir: PathBuf) -> Self {
        Self {
            listing,
            dir,
            options: DownloadOptions::default(),
            parallel_files: None,
            events: broadcast::channel(EVENT_CAPACITY).0,
        }
    }

    /// Options for every file; `connections` is the shared budget.
    pub fn with_options(mut self, options: DownloadOptions) -> Self {
        self.options = options;
        self
    }

    /// Files downloading at once (at least 1; default `options.connections`).
    pub fn with_parallel_files(mut self, n: usize) -> Self {
        self.parallel_files = Some(n.max(1));
        self
    }

    /// Subscribes to events before the download starts.
    pub fn subscribe(&self) -> broadcast::Receiver<TreeEvent> {
        self.events.subscribe()
    }

    /// Spawns the tree download on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(self) -> TreeHandle {
        let cancel = CancellationToken::new();
        let runner = Runner {
            parallel: self
                .parallel_files
                .unwrap_or(self.options.connections.max(1) as usize),
            budget: Arc::new(Semaphore::new(self.options.connections.max(1) as usize)),
            listing: self.listing,
            dir: self.dir,
            options: self.options,
            events: self.events.clone(),
            cancel: cancel.clone(),
            summary: TreeSummary::default(),
            finished_bytes: 0,
            running: HashMap::new(),
            seen: HashSet::new(),
            temporaries: HashSet::new(),
        };
        TreeHandle {
            cancel,
            events: self.events,
            task: tokio::spawn(runner.run()),
        }
    }
}

/// A running tree download.
#[derive(Debug)]
pub struct TreeHandle {
    cancel: CancellationToken,
    events: broadcast::Sender<TreeEvent>,
    task: JoinHandle<Result<TreeSummary>>,
}

impl TreeHandle {
    /// Stops every running file (each keeps its resume state) and the
    /// listing; [`TreeHandle::wait`] then returns a
    /// [`Cancelled`](ErrorKind::Cancelled) error.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// A token that cancels this tree download when cancelled (the same as
    /// [`TreeHandle::cancel`]), for a signal handler while another task waits.
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Subscribes to events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<TreeEvent> {
        self.events.subscribe()
    }

    /// Waits for the end.
    ///
    /// # Errors
    /// [`ErrorKind::Cancelled`] after [`TreeHandle::cancel`]; the listing's
    /// error when not a single entry could be listed; [`ErrorKind::Io`] when
    /// the destination directory cannot be created. Failures of single files
    /// are in the [`TreeSummary`], not errors.
    pub async fn wait(self) -> Result<TreeSummary> {
        self.task
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("tree task failed: {e}")))?
    }
}

struct Runner {
    listing: BoxListing,
    dir: PathBuf,
    options: DownloadOptions,
    parallel: usize,
    budget: Arc<Semaphore>,
    events: broadcast::Sender<TreeEvent>,
    cancel: CancellationToken,
    summary: TreeSummary,
    /// Bytes of files that ended (completed or skipped).
    finished_bytes: u64,
    /// Files downloading now, by displayed path.
    running: HashMap<String, DownloadControl>,
    /// Local paths already used: a listing that names a file twice gets it once.
    seen: HashSet<PathBuf>,
    /// The `.part` and control files of the files started: no other entry
    /// may be saved under those names, nor use a started file's name for its own.
    temporaries: HashSet<PathBuf>,
}

impl Runner {
    fn emit(&self, event: TreeEvent) {
        let _ = self.events.send(event);
    }

    async fn run(mut self) -> Result<TreeSummary> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| Error::io(format!("create {}", self.dir.display()), e))?;
        let listing = self.listing.clone();
        let cx = Context::with_cancel(self.cancel.clone());
        let mut entries = listing.entries(&cx);
        let mut files: JoinSet<(String, Result<crate::Completed>)> = JoinSet::new();
        let mut listing_done = false;
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if listing_done && files.is_empty() {
                break;
            }
            tokio::select! {
                () = self.cancel.cancelled() => {
                    for control in self.running.values() {
                        control.cancel();
                    }
                    while files.join_next().await.is_some() {}
                    return Err(Error::cancelled());
                }
                next = entries.next(), if !listing_done && files.len() < self.parallel => match next {
                    None => listing_done = true,
                    Some(Err(e)) => self.listing_failed(e),
                    Some(Ok(entry)) => self.start_file(entry, &mut files).await,
                },
                Some(joined) = files.join_next() => {
                    let (path, result) = joined
                        .map_err(|e| Error::new(ErrorKind::Io, format!("file task failed: {e}")))?;
                    self.running.remove(&path);
                    self.file_ended(path, result);
                }
                _ = tick.tick() => self.emit(TreeEvent::Progress(self.progress(listing_done))),
            }
        }
        if self.summary.progress.files_listed == 0
            && self.summary.refused.is_empty()
            && !self.summary.listing_errors.is_empty()
        {
            // Nothing could be listed at all (the root is missing or refused): that is the download's error.
            return Err(self.summary.listing_errors.swap_remove(0));
        }
        self.summary.progress = self.progress(true);
        self.emit(TreeEvent::Progress(self.summary.progress.clone()));
        Ok(self.summary)
    }

    fn listing_failed(&mut self, e: Error) {
        tracing::warn!(error = %e, "part of the listing failed");
        self.emit(TreeEvent::ListingFailed {
            kind: e.kind(),
            message: e.to_string(),
        });
        self.summary.listing_errors.push(e);
    }

    fn progress(&self, listing_done: bool) -> TreeProgress {
        let mut p = self.summary.progress.clone();
        p.listing_done = listing_done;
        p.bytes_done = self.finished_bytes;
        p.rate_bytes_per_sec = 0;
        for control in self.running.values() {
            let s = control.stats();
            p.bytes_done += s.downloaded_bytes;
            p.rate_bytes_per_sec += s.rate_bytes_per_sec;
        }
        p
    }

    /// Records a listed name that is not downloaded, and why.
    fn refuse(&mut self, path: String, reason: String) {
        tracing::warn!(%path, %reason, "refused");
        self.summary.progress.files_failed += 1;
        self.summary.refused.push((path.clone(), reason.clone()));
        self.emit(TreeEvent::Refused { path, reason });
    }

    async fn start_file(
        &mut self,
        entry: Entry,
        files: &mut JoinSet<(String, Result<crate::Completed>)>,
    ) {
        let shown = entry.display_path();
        let parts: Vec<&str> = entry.path.iter().map(String::as_str).collect();
        let relative = match safe_relative_path(&parts) {
            Ok(p) => p,
            Err(bad) => {
                let reason =
                    format!("unsafe name component {bad:?}: it could leave the destination");
                return self.refuse(shown, reason);
            }
        };
        let local = self.dir.join(&relative);
        let part = crate::FileSink::part_path_for(&local);
        let control = crate::FileSink::control_path_for(&local);
        if self.temporaries.contains(&local)
            || self.seen.contains(&part)
            || self.seen.contains(&control)
        {
            // `x` and `x.part` in one listing: either's bytes would land in the other's file.
            let reason = "its name or partial file's name is another listed file's \
                          partial file or name (NAME and NAME.part listed together)";
            return self.refuse(shown, reason.to_string());
        }
        if !self.seen.insert(local.clone()) {
            return self.refuse(shown, "listed twice".to_string());
        }
        self.temporaries.insert(part);
        self.temporaries.insert(control);
        self.summary.progress.files_listed += 1;
        self.summary.progress.bytes_listed += entry.len.unwrap_or(0);
        self.emit(TreeEvent::Listed {
            path: shown.clone(),
            len: entry.len,
        });
        if let Some(len) = entry.len
            && is_complete(&local, len).await
        {
            self.summary.progress.files_done += 1;
            self.finished_bytes += len;
            self.emit(TreeEvent::Skipped { path: shown });
            return;
        }
        // The file's directories are made by its sink (`FileSink` creates
        // the parent), and a failure there is that file's error.
        let options = self
            .options
            .clone()
            .with_connection_budget(self.budget.clone());
        let handle = Download::new(entry.source, Output::File(local))
            .with_options(options)
            .start();
        self.running.insert(shown.clone(), handle.control());
        self.emit(TreeEvent::FileStarted {
            path: shown.clone(),
        });
        files.spawn(async move { (shown, handle.wait().await) });
    }

    fn file_ended(&mut self, path: String, result: Result<crate::Completed>) {
        match result {
            Ok(completed) => {
                self.summary.progress.files_done += 1;
                self.finished_bytes += completed.bytes;
                self.emit(TreeEvent::FileCompleted { path, completed });
            }
            Err(e) => {
                tracing::warn!(%path, error = %e, "file failed");
                self.summary.progress.files_failed += 1;
                self.emit(TreeEvent::FileFailed {
                    path: path.clone(),
                    kind: e.kind(),
                    message: e.to_string(),
                });
                self.summary.failed.push((path, e));
            }
        }
    }
}

/// Whether `local` holds a finished download of `len` bytes: the final file
/// exists with that length and has no resume state beside it.
async fn is_complete(local: &Path, len: u64) -> bool {
    let control = crate::FileSink::control_path_for(local);
    match tokio::fs::metadata(local).await {
        Ok(m) => {
            m.is_file() && m.len() == len && !tokio::fs::try_exists(&control).await.unwrap_or(false)
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use futures::stream::BoxStream;

    use super::*;
    use crate::Listing;

    use crate::testkit::MemorySource;

    #[derive(Debug)]
    struct Names(Vec<Vec<&'static str>>);

    /// A listing whose middle part cannot be read, then a listing that cannot be read at all.
    #[derive(Debug)]
    struct Broken {
        root_fails: bool,
    }

    impl Listing for Broken {
        fn identity(&self) -> String {
            "broken:test".into()
        }
        fn entries<'a>(&'a self, _cx: &'a Context) -> BoxStream<'a, Result<Entry>> {
            if self.root_fails {
                let e = Error::new(ErrorKind::NotFound, "no such directory");
                return futures::stream::iter([Err(e)]).boxed();
            }
            let file = |name: &str| {
                let body = Bytes::from(name.as_bytes().to_vec());
                Ok(Entry::new(
                    vec![name.to_string()],
                    Some(body.len() as u64),
                    Arc::new(MemorySource::new(body)) as crate::BoxSource,
                ))
            };
            let refused = Error::new(ErrorKind::Auth, "550 permission denied");
            futures::stream::iter([file("one"), Err(refused), file("two")]).boxed()
        }
    }

    impl Listing for Names {
        fn identity(&self) -> String {
            "names:test".into()
        }
        fn entries<'a>(&'a self, _cx: &'a Context) -> BoxStream<'a, Result<Entry>> {
            let entries = self.0.iter().map(|parts| {
                let body = Bytes::from(parts.join("/").into_bytes());
                Ok(Entry::new(
                    parts.iter().map(|p| p.to_string()).collect(),
                    Some(body.len() as u64),
                    Arc::new(MemorySource::new(body)),
                ))
            });
            futures::stream::iter(entries).boxed()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_part_that_cannot_be_listed_is_reported_and_the_rest_arrives() {
        let dir = tempfile::tempdir().unwrap();
        let listing: BoxListing = Arc::new(Broken { root_fails: false });
        let summary = TreeDownload::new(listing, dir.path().join("out"))
            .start()
            .wait()
            .await
            .unwrap();
        assert_eq!(summary.progress.files_done, 2);
        assert_eq!(summary.listing_errors.len(), 1);
        assert!(!summary.is_complete());
        let listing: BoxListing = Arc::new(Broken { root_fails: true });
        let err = TreeDownload::new(listing, dir.path().join("none"))
            .start()
            .wait()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_and_one_named_as_its_partial_file_never_share_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        for (names, done) in [
            (
                vec![vec!["a.bin"], vec!["a.bin.part"], vec!["a.bin.part.dlm"]],
                1,
            ),
            // b.bin.part.dlm is no partial file of b.bin.part's (that is b.bin.part.part).
            (
                vec![vec!["b.bin.part"], vec!["b.bin.part.dlm"], vec!["b.bin"]],
                2,
            ),
        ] {
            let listing: BoxListing = Arc::new(Names(names));
            let summary = TreeDownload::new(listing, out.clone())
                .start()
                .wait()
                .await
                .unwrap();
            assert_eq!(summary.progress.files_done, done, "{:?}", summary.refused);
            assert_eq!(
                summary.refused.len() as u64,
                3 - done,
                "{:?}",
                summary.refused
            );
        }
        // The first listed of each pair arrived whole, the others never touched it.
        assert_eq!(std::fs::read(out.join("a.bin")).unwrap(), b"a.bin");
        assert_eq!(
            std::fs::read(out.join("b.bin.part")).unwrap(),
            b"b.bin.part"
        );
        assert_eq!(
            std::fs::read(out.join("b.bin.part.dlm")).unwrap(),
            b"b.bin.part.dlm"
        );
        assert!(!out.join("a.bin.part").exists());
        assert!(!out.join("b.bin").exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_paths_refuses_escapes_and_skips_complete_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let listing: BoxListing = Arc::new(Names(vec![
            vec!["a.txt"],
            vec!["sub", "deeper", "b.txt"],
            vec!["..", "evil"],
            vec!["/abs"],
            vec!["x/../../evil"],
            vec!["a.txt"],
        ]));
        let options = DownloadOptions::default().with_connections(2);
        let tree = TreeDownload::new(listing.clone(), out.clone()).with_options(options.clone());
        let summary = tree.start().wait().await.unwrap();
        assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"a.txt");
        assert_eq!(
            std::fs::read(out.join("sub/deeper/b.txt")).unwrap(),
            b"sub/deeper/b.txt"
        );
        assert_eq!(summary.progress.files_done, 2);
        assert_eq!(summary.refused.len(), 4, "{:?}", summary.refused);
        assert!(!summary.is_complete());
        assert!(!dir.path().join("evil").exists());
        assert!(!Path::new("/abs").exists());

        // A second run finds both files complete and fetches nothing.
        let tree = TreeDownload::new(listing, out).with_options(options);
        let mut events = tree.subscribe();
        let summary = tree.start().wait().await.unwrap();
        assert_eq!(summary.progress.files_done, 2);
        let mut skipped = 0;
        while let Ok(e) = events.try_recv() {
            if matches!(e, TreeEvent::Skipped { .. }) {
                skipped += 1;
            }
        }
        assert_eq!(skipped, 2);
    }
}
