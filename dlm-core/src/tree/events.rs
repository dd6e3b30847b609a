//! What a tree download reports: per-file events, progress, and the summary.

use crate::{Completed, Error, ErrorKind};

/// An event of a [`TreeDownload`](crate::TreeDownload), serialisable for
/// JSON output. Paths are the remote's, `/`-joined, for display.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TreeEvent {
    /// A file was found by the listing.
    Listed {
        /// Its path below the root.
        path: String,
        /// Its length in bytes, when the listing says.
        len: Option<u64>,
    },
    /// A listed name was refused: it would leave the destination (`..`, an
    /// absolute path) or is not a safe file name. Nothing was written for it.
    Refused {
        /// The name as the remote gave it.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file already exists complete (same length, no resume state): skipped.
    Skipped {
        /// Its path below the root.
        path: String,
    },
    /// A file's download starts.
    FileStarted {
        /// Its path below the root.
        path: String,
    },
    /// A file arrived (and verified, when verification is on).
    FileCompleted {
        /// Its path below the root.
        path: String,
        /// What the engine reported.
        completed: Completed,
    },
    /// A file failed; the other files go on.
    FileFailed {
        /// Its path below the root.
        path: String,
        /// Error kind.
        kind: ErrorKind,
        /// One-line message.
        message: String,
    },
    /// Part of the listing could not be read (a subdirectory the server
    /// refuses); the rest goes on.
    ListingFailed {
        /// Error kind.
        kind: ErrorKind,
        /// One-line message.
        message: String,
    },
    /// Periodic totals (every 500 ms while running, and once at the end).
    Progress(TreeProgress),
}

/// Totals of a tree download so far.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TreeProgress {
    /// Files listed so far.
    pub files_listed: u64,
    /// Files completed or skipped.
    pub files_done: u64,
    /// Files that failed or were refused.
    pub files_failed: u64,
    /// Bytes of the listed files whose length is known.
    pub bytes_listed: u64,
    /// Bytes on disk for completed, skipped and running files.
    pub bytes_done: u64,
    /// Receive rate over the running files in bytes/s.
    pub rate_bytes_per_sec: u64,
    /// Whether the listing has ended (then `files_listed` is the total).
    pub listing_done: bool,
}

/// How a tree download ended: it completes even when some files failed or
/// were refused; those are listed here, and the caller decides what that
/// means (the `dlm` CLI exits with 1).
#[non_exhaustive]
#[derive(Debug, Default)]
pub struct TreeSummary {
    /// Final totals.
    pub progress: TreeProgress,
    /// Files that failed, with their errors.
    pub failed: Vec<(String, Error)>,
    /// Names refused as unsafe, with the reason.
    pub refused: Vec<(String, String)>,
    /// Parts of the listing that could not be listed (the files listed
    /// around them were still downloaded).
    pub listing_errors: Vec<Error>,
}

impl TreeSummary {
    /// Whether every listed file arrived and nothing was refused.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.refused.is_empty() && self.listing_errors.is_empty()
    }
}
