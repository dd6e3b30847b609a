//! Planning: which byte range each free connection fetches next.
//!
//! A [`Scheduler`] makes decisions only. It does no I/O and reads no clock
//! (`now` is passed in), so it is tested deterministically. The engine owns
//! the [`ChunkMap`] (done ranges plus the chunk each connection is fetching),
//! asks the scheduler for an [`Assignment`] whenever a connection is free, and
//! applies it. See [`crate::docs::scheduler`] for how BitTorrent's piece
//! picker fits the same trait.

mod adaptive;
mod sequential;

pub use adaptive::{AdaptiveScheduler, DEFAULT_MIN_SPLIT_BYTES};
pub use sequential::{DEFAULT_SEQUENTIAL_CHUNK_BYTES, SequentialScheduler};

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use crate::{ByteRange, RangeSet};

/// Identifies one connection of a download, stable for its lifetime.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ConnId(pub u32);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Which bytes a connection can serve.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Any range of the byte space (an HTTP, FTP or S3 connection, a web seed).
    Whole,
    /// Only the listed ranges (a BitTorrent peer's bitfield mapped to bytes,
    /// a bitswap peer's blocks).
    Ranges(RangeSet),
}

impl Availability {
    /// The part of `r` this connection can serve, starting at `r.start`.
    pub fn servable_prefix(&self, r: ByteRange) -> Option<ByteRange> {
        match self {
            Self::Whole => (!r.is_empty()).then_some(r),
            Self::Ranges(set) => {
                let ranges = set.ranges();
                let i = ranges.partition_point(|x| x.end <= r.start);
                ranges
                    .get(i)
                    .filter(|x| x.contains(r.start))
                    .map(|x| ByteRange::new(r.start, r.end.min(x.end)))
            }
        }
    }

    /// Whether this connection can serve every byte of `r`.
    pub fn covers(&self, r: ByteRange) -> bool {
        match self {
            Self::Whole => true,
            Self::Ranges(set) => set.contains_range(r),
        }
    }
}

/// A connection asking for work.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// Which connection.
    pub id: ConnId,
    /// What it can serve.
    pub availability: Availability,
}

/// A chunk being fetched by one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// Where the chunk began.
    pub start: u64,
    /// Bytes before this offset have been received (written or buffered).
    pub pos: u64,
    /// Where the chunk ends now; a split moves it down.
    pub end: u64,
}

impl InFlight {
    /// Bytes still to fetch, `[pos, end)`.
    pub fn remaining(&self) -> ByteRange {
        ByteRange::new(self.pos, self.end)
    }
}

/// The engine's planning state for one download: its length, the done ranges
/// and the chunk in flight on each connection.
#[derive(Clone, Debug, Default)]
pub struct ChunkMap {
    /// Length of the byte space in bytes.
    pub len: u64,
    /// Bytes written to the sink (and verified, where the source verifies).
    pub done: RangeSet,
    /// The chunk each busy connection is fetching.
    pub in_flight: BTreeMap<ConnId, InFlight>,
}

impl ChunkMap {
    /// A map of `len` bytes with `done` already done and nothing in flight.
    pub fn new(len: u64, done: RangeSet) -> Self {
        Self {
            len,
            done,
            in_flight: BTreeMap::new(),
        }
    }

    /// Missing ranges that no connection is fetching, in offset order. A
    /// chunk in flight covers all of `[start, end)`: bytes before `pos` are
    /// either done or received and about to be written by its connection.
    pub fn unassigned(&self) -> Vec<ByteRange> {
        let mut covered = self.done.clone();
        for f in self.in_flight.values() {
            covered.insert(ByteRange::new(f.start, f.end));
        }
        covered.gaps(self.len)
    }

    /// Whether every byte is done.
    pub fn is_complete(&self) -> bool {
        self.done.covers(self.len)
    }
}

/// What a free connection should fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// Fetch this range, which no other connection holds.
    Range(ByteRange),
    /// Take `range` (the tail `[at, end)`) over from `victim`, whose chunk now
    /// ends at `range.start`.
    Split {
        /// The connection giving up its tail.
        victim: ConnId,
        /// The tail handed over.
        range: ByteRange,
    },
}

impl Assignment {
    /// The range the asking connection gets.
    pub fn range(&self) -> ByteRange {
        match self {
            Self::Range(r) | Self::Split { range: r, .. } => *r,
        }
    }
}

/// What happened to a chunk; schedulers may learn from it (speeds, failures,
/// peer availability).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkEvent {
    /// `conn` finished its chunk; `range` is what it fetched.
    Done {
        /// The connection.
        conn: ConnId,
        /// What it fetched.
        range: ByteRange,
    },
    /// `conn` failed; `range` is what it had not fetched yet (now unassigned).
    Failed {
        /// The connection.
        conn: ConnId,
        /// What is left unfetched.
        range: ByteRange,
    },
}

/// Decides which range each free connection fetches next.
///
/// Decisions only: no I/O and no clock (`now` is passed in), so tests are
/// deterministic. The engine calls [`Scheduler::next`] with its lock held and
/// applies the returned [`Assignment`] before any other connection asks.
pub trait Scheduler: Send + fmt::Debug {
    /// Work for `conn`, or `None` when nothing it can serve is worth taking
    /// now (the engine asks again when the map changes).
    fn next(&mut self, conn: &ConnInfo, map: &ChunkMap, now: Instant) -> Option<Assignment>;

    /// Learns from a chunk's outcome. The default ignores it.
    fn on_event(&mut self, event: &ChunkEvent, now: Instant) {
        let _ = (event, now);
    }
}

impl<S: Scheduler + ?Sized> Scheduler for Box<S> {
    fn next(&mut self, conn: &ConnInfo, map: &ChunkMap, now: Instant) -> Option<Assignment> {
        (**self).next(conn, map, now)
    }
    fn on_event(&mut self, event: &ChunkEvent, now: Instant) {
        (**self).on_event(event, now)
    }
}

/// Rounds `x` up to a multiple of `align` (≥ 1).
fn align_up(x: u64, align: u64) -> u64 {
    x.div_ceil(align).saturating_mul(align)
}

/// The first unassigned range `conn` can serve, as much of it as it can serve.
fn first_servable(conn: &ConnInfo, map: &ChunkMap) -> Option<ByteRange> {
    map.unassigned()
        .into_iter()
        .find_map(|gap| match &conn.availability {
            Availability::Whole => Some(gap),
            Availability::Ranges(set) => set.ranges().iter().find_map(|a| a.intersect(&gap)),
        })
}
