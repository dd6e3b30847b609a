use std::time::Instant;

use super::{Assignment, ChunkMap, ConnInfo, Scheduler, first_servable};
use crate::ByteRange;

/// Default chunk size of the sequential scheduler: 4 MiB.
pub const DEFAULT_SEQUENTIAL_CHUNK_BYTES: u64 = 4 << 20;

/// Hands out fixed-size chunks in offset order, for streaming: the lowest
/// missing bytes are always being fetched, so an
/// [`OrderedSink`](crate::OrderedSink) needs only a small re-order buffer.
/// It never splits chunks.
#[derive(Clone, Debug)]
pub struct SequentialScheduler {
    chunk_bytes: u64,
}

impl Default for SequentialScheduler {
    fn default() -> Self {
        Self::new(DEFAULT_SEQUENTIAL_CHUNK_BYTES)
    }
}

impl SequentialScheduler {
    /// Chunks of `chunk_bytes` (at least 1).
    pub fn new(chunk_bytes: u64) -> Self {
        Self {
            chunk_bytes: chunk_bytes.max(1),
        }
    }
}

impl Scheduler for SequentialScheduler {
    fn next(&mut self, conn: &ConnInfo, map: &ChunkMap, _now: Instant) -> Option<Assignment> {
        let gap = first_servable(conn, map)?;
        let end = gap.end.min(gap.start.saturating_add(self.chunk_bytes));
        Some(Assignment::Range(ByteRange::new(gap.start, end)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RangeSet;
    use crate::scheduler::{Availability, ConnId, InFlight};

    #[test]
    fn hands_out_chunks_in_order() {
        let mut s = SequentialScheduler::new(10);
        let mut map = ChunkMap::new(25, RangeSet::new());
        let now = Instant::now();
        let mut got = Vec::new();
        for i in 0..4 {
            let c = ConnInfo {
                id: ConnId(i),
                availability: Availability::Whole,
            };
            if let Some(a) = s.next(&c, &map, now) {
                let r = a.range();
                map.in_flight.insert(
                    c.id,
                    InFlight {
                        start: r.start,
                        pos: r.start,
                        end: r.end,
                    },
                );
                got.push((r.start, r.end));
            }
        }
        assert_eq!(got, vec![(0, 10), (10, 20), (20, 25)]);
    }
}
