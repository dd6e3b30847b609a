use std::sync::Arc;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::events::{Completed, Event, Stats};
use super::shared::Shared;
use crate::{Error, ErrorKind, Result};

/// What the owner wants the engine to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    Run,
    Pause,
    Cancel,
}

/// The owner of one running download: its [`DownloadControl`] (through
/// `Deref`) plus [`DownloadHandle::wait`].
///
/// Dropping the handle does not stop the download; call
/// [`DownloadControl::cancel`] for that.
#[derive(Debug)]
pub struct DownloadHandle {
    control: DownloadControl,
    task: JoinHandle<Result<Completed>>,
}

/// Pauses, resumes, cancels, re-limits and observes a download; cheap to
/// clone and hand to other tasks (a Ctrl-C handler, a REST server).
#[derive(Clone, Debug)]
pub struct DownloadControl {
    control: Arc<watch::Sender<Control>>,
    shared: Arc<Shared>,
}

impl DownloadHandle {
    pub(crate) fn new(
        control: watch::Sender<Control>,
        shared: Arc<Shared>,
        task: JoinHandle<Result<Completed>>,
    ) -> Self {
        Self {
            control: DownloadControl {
                control: Arc::new(control),
                shared,
            },
            task,
        }
    }

    /// A clonable controller for this download.
    pub fn control(&self) -> DownloadControl {
        self.control.clone()
    }

    /// Whether the download has ended (completed, failed or cancelled).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the end of the download.
    ///
    /// # Errors
    /// The download's error: [`ErrorKind::Integrity`] on a digest mismatch,
    /// [`ErrorKind::Cancelled`] after [`DownloadControl::cancel`], and so on.
    ///
    /// # Cancel safety
    /// Dropping the future leaves the download running.
    pub async fn wait(self) -> Result<Completed> {
        self.task
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("download task failed: {e}")))?
    }
}

impl std::ops::Deref for DownloadHandle {
    type Target = DownloadControl;
    fn deref(&self) -> &DownloadControl {
        &self.control
    }
}

impl DownloadControl {
    /// Stops every connection after it flushes what it received, saves resume
    /// state and waits for [`DownloadControl::resume`].
    pub fn pause(&self) {
        self.control.send_if_modified(|c| {
            let change = *c == Control::Run;
            if change {
                *c = Control::Pause;
            }
            change
        });
    }

    /// Continues a paused download.
    pub fn resume(&self) {
        self.control.send_if_modified(|c| {
            let change = *c == Control::Pause;
            if change {
                *c = Control::Run;
            }
            change
        });
    }

    /// Stops the download, saving resume state: [`DownloadHandle::wait`] then
    /// returns an [`ErrorKind::Cancelled`] error, and running the same download
    /// again continues where it stopped.
    pub fn cancel(&self) {
        self.control.send_replace(Control::Cancel);
    }

    /// Changes this download's rate limit while it runs (bytes/s; `None` = unlimited).
    pub fn set_rate_limit(&self, bytes_per_sec: Option<u64>) {
        self.shared.limiter.set_rate(bytes_per_sec);
    }

    /// A snapshot of progress (refreshed every 250 ms).
    pub fn stats(&self) -> Stats {
        self.shared.stats().clone()
    }

    /// The byte ranges done so far: written and, where the source verifies,
    /// verified; ranges skipped for unselected files count as done. A copy,
    /// so call it at a human pace (per second), not per frame.
    pub fn done_ranges(&self) -> crate::RangeSet {
        self.shared.plan().map.done.clone()
    }

    /// Subscribes to events from now on (bounded; a slow reader gets `Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }
}
