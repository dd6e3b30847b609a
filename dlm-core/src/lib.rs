#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod backoff;
pub mod config;
mod control_file;
mod digest;
mod dir_sync;
pub mod docs;
mod engine;
mod error;
mod file_name;
mod listing;
pub mod netrc;
mod open_file_limit;
mod range;
mod range_set;
mod rate_limit;
mod redact;
mod registry;
pub mod scheduler;
mod sink;
mod source;
#[cfg(any(test, feature = "testkit"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
mod tree;

pub use backoff::Backoff;
pub use control_file::{CONTROL_FILE_VERSION, ControlFile, MAX_CONTROL_FILE_BYTES, SourceIdentity};
pub use digest::{Checksum, DigestAlgorithm, MultiHasher};
pub use engine::{
    Completed, Download, DownloadControl, DownloadHandle, DownloadOptions, DownloadState, Event,
    Output, SeedEnd, SeedPolicy, SourceStats, Stats,
};
pub use error::{Error, ErrorKind, Result};
pub use file_name::{safe_file_name, safe_relative_path, stays_inside};
pub use listing::{BoxListing, Entry, Listing};
pub use open_file_limit::raise_open_file_limit;
pub use range::{ByteRange, ReadRange};
pub use range_set::RangeSet;
pub use rate_limit::RateLimiter;
pub use redact::redact_url;
pub use registry::{
    Input, InputUrl, Options, Protocol, ProtocolDyn, ProtocolRegistry, Resolve, Target,
};
pub use scheduler::{
    AdaptiveScheduler, Assignment, Availability, ChunkMap, ConnId, ConnInfo,
    DEFAULT_MIN_SPLIT_BYTES, InFlight, Scheduler, SequentialScheduler,
};
pub use sink::{
    BoxSink, DEFAULT_MAX_OPEN_FILES, DEFAULT_REORDER_BYTES, FileSink, FileSpan, MemorySink,
    MultiFileSink, OrderedSink, Sink, SinkDyn, WRITE_BEHIND_BYTES,
};
pub use source::{
    BodyStream, BoxSource, Capabilities, Context, Description, Probe, Source, SourceDyn, Storage,
    StoredBytes, SwarmStats, limit_body,
};
pub use tree::{TreeDownload, TreeEvent, TreeHandle, TreeProgress, TreeSummary};

/// Re-exported so sources can build [`Context`]s and callers can cancel.
pub use tokio_util::sync::CancellationToken;
