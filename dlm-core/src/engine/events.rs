use std::time::Duration;

use crate::{ByteRange, Checksum, ConnId, ErrorKind};

/// Where a download is in its life.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadState {
    /// Created, not started.
    Queued,
    /// Probing the sources.
    Probing,
    /// Checking data found on disk without resume state
    /// ([`Source::verify_stored`](crate::Source::verify_stored)).
    Checking,
    /// Bytes are flowing.
    Running,
    /// Paused by its owner; resumable.
    Paused,
    /// Verifying and committing.
    Finishing,
    /// Done and committed.
    Completed,
    /// Done and committed; still serving the swarm until its
    /// [`SeedPolicy`](crate::SeedPolicy) says stop.
    Seeding,
    /// Failed; see the error.
    Failed,
    /// Cancelled by its owner; the partial file and control file are kept.
    Cancelled,
}

/// Per-source counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceStats {
    /// The source's identity (no credentials).
    pub source: String,
    /// Bytes received from it this session.
    pub received_bytes: u64,
    /// Failed attempts against it.
    pub errors: u32,
    /// Connections currently open to it.
    pub connections: u32,
    /// Whether it was dropped (disagreeing length or validator, permanent errors).
    pub dropped: bool,
}

/// A cheap snapshot of a download's progress.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Where the download is.
    pub state: DownloadState,
    /// Bytes written to the sink, resumed bytes included.
    pub downloaded_bytes: u64,
    /// Total length in bytes, when known.
    pub total_bytes: Option<u64>,
    /// Bytes whose digest has been computed (the hashed prefix).
    pub verified_bytes: u64,
    /// Receive rate over the last 5 s, bytes/s.
    pub rate_bytes_per_sec: u64,
    /// Estimated time to completion, ms, when the rate and length are known.
    pub eta_ms: Option<u64>,
    /// Connections currently fetching.
    pub connections: u32,
    /// Per-source counters, primary first.
    pub sources: Vec<SourceStats>,
    /// Peers connected now (swarms; 0 for servers, see `connections`).
    pub peers: u32,
    /// Payload bytes uploaded to peers in this session.
    pub uploaded_bytes: u64,
    /// Upload rate over the last 5 s, bytes/s.
    pub upload_rate_bytes_per_sec: u64,
    /// The swarm's own counters (pieces verified, seeds), for swarm sources.
    pub swarm: Option<crate::SwarmStats>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            state: DownloadState::Queued,
            downloaded_bytes: 0,
            total_bytes: None,
            verified_bytes: 0,
            rate_bytes_per_sec: 0,
            eta_ms: None,
            connections: 0,
            sources: Vec::new(),
            peers: 0,
            uploaded_bytes: 0,
            upload_rate_bytes_per_sec: 0,
            swarm: None,
        }
    }
}

/// What a completed download produced.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Completed {
    /// Length in bytes.
    pub bytes: u64,
    /// Bytes fetched in this session (less than `bytes` when resumed).
    pub fetched_bytes: u64,
    /// Wall time of this session in ms.
    pub elapsed_ms: u64,
    /// Digests computed over the whole download (SHA-256 first when verifying).
    pub digests: Vec<Checksum>,
    /// The expected digest that was checked, from the caller or the remote.
    pub verified_against: Option<Checksum>,
    /// The final file, for file outputs.
    pub path: Option<std::path::PathBuf>,
    /// Payload bytes uploaded to peers, seeding included (swarms).
    pub uploaded_bytes: u64,
    /// Why seeding ended, when the download seeded after completing.
    pub seed_end: Option<SeedEnd>,
}

/// Why seeding after completion ended.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedEnd {
    /// The share ratio was reached.
    Ratio,
    /// The seeding time ran out.
    Time,
    /// Paused or cancelled by the owner.
    Stopped,
}

impl std::fmt::Display for SeedEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ratio => "ratio reached",
            Self::Time => "seed time reached",
            Self::Stopped => "stopped",
        })
    }
}

impl Completed {
    /// The SHA-256 digest, when computed.
    pub fn sha256(&self) -> Option<&Checksum> {
        self.digests
            .iter()
            .find(|c| c.algorithm == crate::DigestAlgorithm::Sha256)
    }
}

/// A serialisable event from a download, delivered over a bounded broadcast
/// channel. A subscriber that falls behind gets `Lagged` and should re-read
/// [`DownloadControl::stats`](crate::DownloadControl::stats).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Created, waiting to start.
    Queued,
    /// The primary source answered the probe.
    Probed {
        /// Length in bytes, when known.
        len: Option<u64>,
        /// Whether ranges (and so several connections and resume) are possible.
        ranges: bool,
        /// The file name chosen for a directory output.
        file_name: Option<String>,
    },
    /// Data found on disk without resume state was checked by the source
    /// ([`Source::verify_stored`](crate::Source::verify_stored)); what it
    /// proved is kept, the rest fetched.
    Checked {
        /// Bytes found on disk, in bytes of the byte space.
        stored_bytes: u64,
        /// Bytes of them proven to be the remote's.
        verified_bytes: u64,
    },
    /// Bytes start to flow.
    Started {
        /// Bytes already done from an earlier session.
        resumed_bytes: u64,
        /// Connections the download will run.
        connections: u32,
        /// The output file, for file outputs.
        path: Option<std::path::PathBuf>,
    },
    /// Something the user should know that is not an error (single-stream
    /// fallback, a corrupt control file ignored).
    Notice {
        /// One line.
        message: String,
    },
    /// The download starts over from byte 0.
    Restarted {
        /// Why (the remote changed: new validator or length).
        reason: String,
    },
    /// A mirror stops being used.
    SourceDropped {
        /// Its identity.
        source: String,
        /// Why.
        reason: String,
    },
    /// A connection starts a chunk.
    ChunkStarted {
        /// The connection.
        conn: ConnId,
        /// The chunk.
        range: ByteRange,
    },
    /// A connection finished its chunk.
    ChunkDone {
        /// The connection.
        conn: ConnId,
        /// The chunk (as it ended after any splits).
        range: ByteRange,
    },
    /// A chunk failed; its unfetched bytes go back to the pool.
    ChunkFailed {
        /// The connection.
        conn: ConnId,
        /// What was left unfetched.
        range: ByteRange,
        /// Error kind.
        kind: ErrorKind,
        /// Whether the connection will try again.
        will_retry: bool,
        /// One-line error.
        message: String,
    },
    /// Periodic progress, at most every 500 ms.
    Progress(Stats),
    /// Paused; state saved.
    Paused,
    /// Resumed after a pause.
    Resumed,
    /// Done, verified and committed. A download that seeds afterwards sends
    /// [`Event::SeedingStarted`] next, and ends with [`Event::SeedingEnded`].
    Completed(Completed),
    /// Serving the swarm after completion.
    SeedingStarted {
        /// The share ratio that ends seeding, if any.
        ratio: Option<f64>,
        /// The seeding time that ends it, ms, if any.
        time_ms: Option<u64>,
    },
    /// Seeding ended; the download is over.
    SeedingEnded {
        /// Why.
        reason: SeedEnd,
        /// Payload bytes uploaded in this session.
        uploaded_bytes: u64,
    },
    /// Failed for good.
    Failed {
        /// Error kind.
        kind: ErrorKind,
        /// One-line error.
        message: String,
    },
}

pub(crate) fn as_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
