//! The `dlmd` REST API (`/v1`): JSON request and response bodies.
//!
//! Units are in the field names (`_bytes`, `_bytes_per_sec`, `_ms`); times are
//! milliseconds since the Unix epoch.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Largest request body accepted, in bytes (but `POST /v1/jobs`).
pub const MAX_BODY_BYTES: usize = 64 << 10;

/// Largest `POST /v1/jobs` body, in bytes: room for a base64 `.torrent`.
pub const MAX_JOB_BODY_BYTES: usize = 16 << 20;

/// Default and largest page size of `GET /v1/jobs`.
pub const DEFAULT_PAGE: u32 = 100;
/// Largest page size of `GET /v1/jobs`.
pub const MAX_PAGE: u32 = 1000;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker (priority first, then first in, first out).
    Queued,
    /// Downloading.
    Running,
    /// Downloaded and verified; still uploading to the swarm until its
    /// `seed_ratio` or `seed_time` is reached (then `completed`).
    Seeding,
    /// Paused by the user; keeps its partial file.
    Paused,
    /// Done and verified.
    Completed,
    /// Failed; see `error`.
    Failed,
    /// Cancelled by the user.
    Cancelled,
}

impl JobState {
    /// The name stored and shown (`"queued"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Seeding => "seeding",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses [`JobState::as_str`] output.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "seeding" => Self::Seeding,
            "paused" => Self::Paused,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Whether the job will not change any more by itself.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// A local input file sent to the daemon (a `.torrent`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// Its file name; the extension tells the daemon what it is (`x.torrent`).
    pub name: String,
    /// Its bytes, base64 (RFC 4648 §4).
    pub base64: String,
}

/// `POST /v1/jobs`: what to download: a `url`, or an `upload`ed input file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    /// What to download: any input the daemon's protocols take (`https://`,
    /// `ftp://host/dir/`, `s3://bucket/prefix/`, `ipfs://CID`, an
    /// `https://…/x.torrent`), or a path to a `.torrent` inside the download
    /// directory. Empty when `upload` is given.
    #[serde(default)]
    pub url: String,
    /// An input file's bytes instead of `url` (a `.torrent` the daemon
    /// cannot read from its own disk).
    #[serde(default)]
    pub upload: Option<Upload>,
    /// Protocol settings for this job, `SECTION.KEY` → value, as the CLI's
    /// `-O` takes them (`{"bittorrent.max_peers": "80"}`).
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
    /// For a download of several files (a torrent): the files to fetch, by
    /// 0-based index; absent: all.
    #[serde(default)]
    pub files: Option<Vec<usize>>,
    /// Keep uploading after completion until uploaded bytes reach this
    /// multiple of the size (swarms only).
    #[serde(default)]
    pub seed_ratio: Option<f64>,
    /// Keep uploading after completion for this many seconds (swarms only).
    #[serde(default)]
    pub seed_time: Option<u64>,
    /// Other URLs with the same bytes.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Output path relative to the download directory; a trailing `/` names a
    /// directory (file name from the server). Default: the download directory.
    #[serde(default)]
    pub dest: Option<String>,
    /// Connections for this job (1–64; default 8).
    #[serde(default)]
    pub connections: Option<u32>,
    /// Expected digest, `ALGO=HEX` (`sha-256=…`).
    #[serde(default)]
    pub checksum: Option<String>,
    /// Rate limit for this job in bytes/s (0 or absent = unlimited).
    #[serde(default)]
    pub rate_limit: Option<u64>,
    /// Higher runs first (default 0).
    #[serde(default)]
    pub priority: Option<i32>,
}

/// `PATCH /v1/jobs/{id}`: what to change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobPatch {
    /// New priority.
    #[serde(default)]
    pub priority: Option<i32>,
    /// New rate limit in bytes/s (0 = unlimited).
    #[serde(default)]
    pub rate_limit: Option<u64>,
    /// New file selection (0-based indexes; an empty list is refused). A
    /// running job continues with it at once, keeping what it has.
    #[serde(default)]
    pub files: Option<Vec<usize>>,
}

/// One file of a job: of a torrent's byte space, or of a directory tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobFile {
    /// Index (0-based), as `files` selections count.
    pub index: usize,
    /// Path relative to the job's directory.
    pub path: String,
    /// Length in bytes, when known.
    pub length: Option<u64>,
    /// Bytes of it downloaded.
    pub done_bytes: u64,
    /// Whether it is selected.
    pub wanted: bool,
    /// `queued`, `running`, `completed`, `failed` or `refused` (trees);
    /// `wanted`/`skipped` for the files of one byte space.
    pub state: String,
    /// Why it failed or was refused.
    pub error: Option<String>,
}

/// A job as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// Job id.
    pub id: i64,
    /// `file` (one byte space: a file, or a torrent's files) or `tree` (a
    /// directory or prefix, one download per file), once resolved.
    pub kind: Option<String>,
    /// Protocol settings of this job.
    pub options: std::collections::BTreeMap<String, String>,
    /// The files, for torrents and trees.
    pub files: Vec<JobFile>,
    /// The file selection, when one was made.
    pub selected: Option<Vec<usize>>,
    /// Peers connected now (swarms).
    pub peers: u32,
    /// Payload bytes uploaded to peers (swarms).
    pub uploaded_bytes: u64,
    /// Upload rate, bytes/s (swarms).
    pub upload_rate_bytes_per_sec: u64,
    /// Uploaded bytes over the size.
    pub ratio: f64,
    /// Seeding ends at this ratio.
    pub seed_ratio: Option<f64>,
    /// Seeding ends after this many seconds.
    pub seed_time: Option<u64>,
    /// What is downloaded (credentials removed).
    pub url: String,
    /// Mirrors (credentials removed).
    pub mirrors: Vec<String>,
    /// Destination relative to the download directory, if given.
    pub dest: Option<String>,
    /// Connections.
    pub connections: u32,
    /// Expected digest, if given.
    pub checksum: Option<String>,
    /// Rate limit in bytes/s (0 = unlimited).
    pub rate_limit: u64,
    /// Priority (higher first).
    pub priority: i32,
    /// Lifecycle state.
    pub state: JobState,
    /// Error kind of a failed job (`not-found`, `network`, …).
    pub error_kind: Option<String>,
    /// Error message of a failed job.
    pub error: Option<String>,
    /// Bytes downloaded so far.
    pub downloaded_bytes: u64,
    /// Total length in bytes, when known.
    pub total_bytes: Option<u64>,
    /// Current receive rate, bytes/s (running jobs).
    pub rate_bytes_per_sec: u64,
    /// The file written, relative to the download directory, once known.
    pub path: Option<String>,
    /// SHA-256 of the completed download.
    pub sha256: Option<String>,
    /// Created, ms since the Unix epoch.
    pub created_ms: u64,
    /// Last changed, ms since the Unix epoch.
    pub updated_ms: u64,
}

/// `GET /v1/jobs` query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs in this state.
    #[serde(default)]
    pub state: Option<JobState>,
    /// Page size (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only jobs with an id greater than this (the previous page's `next_after`).
    #[serde(default)]
    pub after: Option<i64>,
}

/// `GET /v1/jobs` response: one page, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobPage {
    /// The jobs.
    pub jobs: Vec<Job>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

/// `GET` and `PATCH /v1/settings`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Jobs running at once (1–1000).
    #[serde(default)]
    pub max_active: Option<u32>,
    /// Jobs running at once per remote host (1–1000).
    #[serde(default)]
    pub max_per_host: Option<u32>,
    /// Limit for all jobs together in bytes/s (0 = unlimited).
    #[serde(default)]
    pub global_rate_limit: Option<u64>,
}

/// `DELETE /v1/jobs/{id}` query.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct CancelQuery {
    /// Also delete the partial file and its resume state.
    #[serde(default)]
    pub delete_file: bool,
}

/// Every error response: `{"error": {"code": …, "message": …}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable code plus a human message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `unauthorized`, `bad_request`, `invalid_dest`,
    /// `not_found`, `method_not_allowed`, `conflict`, `payload_too_large`, `internal`.
    pub code: String,
    /// One line for people.
    pub message: String,
}

/// A Server-Sent Event of `GET /v1/events` (the `data:` JSON; the SSE
/// `event:` field carries `type`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobEvent {
    /// A job was queued.
    Added {
        /// The job.
        job: Box<Job>,
    },
    /// A worker started it.
    Started {
        /// Job id.
        id: i64,
    },
    /// Progress, at most every 500 ms per job.
    Progress {
        /// Job id.
        id: i64,
        /// Bytes done.
        downloaded_bytes: u64,
        /// Total, when known.
        total_bytes: Option<u64>,
        /// Receive rate, bytes/s.
        rate_bytes_per_sec: u64,
        /// Peers connected (swarms).
        peers: u32,
        /// Payload bytes uploaded (swarms).
        uploaded_bytes: u64,
        /// Upload rate, bytes/s (swarms).
        upload_rate_bytes_per_sec: u64,
    },
    /// Downloaded and verified; now seeding.
    Seeding {
        /// Job id.
        id: i64,
        /// SHA-256 of the file (single files).
        sha256: Option<String>,
    },
    /// Paused by the user.
    Paused {
        /// Job id.
        id: i64,
    },
    /// Done and verified.
    Completed {
        /// Job id.
        id: i64,
        /// SHA-256 of the file.
        sha256: Option<String>,
    },
    /// Failed.
    Failed {
        /// Job id.
        id: i64,
        /// Error kind.
        kind: String,
        /// Error message.
        message: String,
    },
    /// Cancelled by the user.
    Cancelled {
        /// Job id.
        id: i64,
    },
}
