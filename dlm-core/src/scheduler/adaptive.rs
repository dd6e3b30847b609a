use std::num::NonZeroU64;
use std::time::Instant;

use super::{Assignment, ChunkMap, ConnInfo, Scheduler, align_up, first_servable};
use crate::ByteRange;

/// Default smallest chunk the adaptive scheduler creates by splitting: 1 MiB.
pub const DEFAULT_MIN_SPLIT_BYTES: u64 = 1 << 20;

/// Smallest automatic chunk cap: 4 MiB.
const MIN_AUTO_CHUNK_BYTES: u64 = 4 << 20;
/// Largest automatic chunk cap: 64 MiB.
const MAX_AUTO_CHUNK_BYTES: u64 = 64 << 20;

/// The default scheduler for ranged sources: hand out missing bytes in
/// offset order, and split the largest remaining chunk whenever a connection
/// is free and nothing is unassigned.
///
/// A free connection takes the lowest unassigned range, capped at a chunk
/// size; when every byte is assigned it takes the upper half of the largest
/// remaining chunk, so connections never idle while another holds a long
/// tail, with no fixed segment count and no connection cap. Splits never
/// leave a piece smaller than `min_split_bytes` and land on `alignment`
/// boundaries.
///
/// The cap keeps the download roughly in offset order, so the done prefix
/// (and the SHA-256 over it) advances at the full download rate instead of
/// jumping at the end. By default it is `len / (4 × connections)` clamped to
/// 4–64 MiB: each connection makes about four requests on its kept-alive
/// connection. With no cap (`with_max_chunk_bytes(u64::MAX)`) the first
/// connection takes everything and the others split it: N equal segments.
#[derive(Clone, Debug)]
pub struct AdaptiveScheduler {
    min_split_bytes: u64,
    alignment: u64,
    max_chunk_bytes: Option<u64>,
    connections: u64,
}

impl Default for AdaptiveScheduler {
    fn default() -> Self {
        Self::new(DEFAULT_MIN_SPLIT_BYTES)
    }
}

impl AdaptiveScheduler {
    /// A scheduler that never makes chunks smaller than `min_split_bytes`
    /// (at least 1) by splitting.
    pub fn new(min_split_bytes: u64) -> Self {
        Self {
            min_split_bytes: min_split_bytes.max(1),
            alignment: 1,
            max_chunk_bytes: None,
            connections: 8,
        }
    }

    /// Sizes the automatic chunk cap for this many connections.
    pub fn with_connections(mut self, connections: u32) -> Self {
        self.connections = u64::from(connections.max(1));
        self
    }

    /// Caps fresh chunks at `bytes` (at least `min_split_bytes`) instead of the
    /// automatic cap; `u64::MAX` disables the cap.
    pub fn with_max_chunk_bytes(mut self, bytes: u64) -> Self {
        self.max_chunk_bytes = Some(bytes.max(self.min_split_bytes));
        self
    }

    fn chunk_cap(&self, len: u64) -> u64 {
        self.max_chunk_bytes.unwrap_or_else(|| {
            let lo = MIN_AUTO_CHUNK_BYTES.max(self.min_split_bytes);
            (len / (4 * self.connections)).clamp(lo, MAX_AUTO_CHUNK_BYTES.max(lo))
        })
    }

    /// Makes split points multiples of `alignment` bytes (e.g. a piece length).
    pub fn with_alignment(mut self, alignment: Option<NonZeroU64>) -> Self {
        self.alignment = alignment.map_or(1, NonZeroU64::get);
        self
    }
}

impl Scheduler for AdaptiveScheduler {
    fn next(&mut self, conn: &ConnInfo, map: &ChunkMap, _now: Instant) -> Option<Assignment> {
        if let Some(r) = first_servable(conn, map) {
            let cap = self.chunk_cap(map.len);
            let mut end = r.end.min(r.start.saturating_add(cap));
            if end < r.end && r.end - end < self.min_split_bytes {
                end = r.end; // do not leave a sliver behind
            } else if end < r.end {
                end = align_up(end, self.alignment).min(r.end);
            }
            return Some(Assignment::Range(ByteRange::new(r.start, end)));
        }
        // Split the largest remaining chunk this connection can serve.
        let (victim, rest) = map
            .in_flight
            .iter()
            .filter(|(id, _)| **id != conn.id)
            .filter_map(|(id, f)| {
                conn.availability
                    .servable_prefix(f.remaining())
                    .map(|_| (*id, f.remaining()))
            })
            .max_by_key(|(id, r)| (r.len(), std::cmp::Reverse(*id)))?;
        if rest.len() < 2 * self.min_split_bytes {
            return None;
        }
        let at = align_up(rest.start + rest.len() / 2, self.alignment);
        if at <= rest.start || at.saturating_add(self.min_split_bytes) > rest.end {
            return None;
        }
        let range = ByteRange::new(at, rest.end);
        let range = conn.availability.servable_prefix(range)?;
        if range.end != rest.end {
            // A partial-availability connection cannot take over a tail it does not fully hold.
            return None;
        }
        Some(Assignment::Split { victim, range })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RangeSet;
    use crate::scheduler::{Availability, ConnId, InFlight};
    use proptest::prelude::*;

    fn conn(i: u32) -> ConnInfo {
        ConnInfo {
            id: ConnId(i),
            availability: Availability::Whole,
        }
    }

    /// Applies an assignment to the map as the engine does.
    fn apply(map: &mut ChunkMap, id: ConnId, a: Assignment) {
        if let Assignment::Split { victim, range } = a {
            map.in_flight.get_mut(&victim).unwrap().end = range.start;
        }
        let r = a.range();
        map.in_flight.insert(
            id,
            InFlight {
                start: r.start,
                pos: r.start,
                end: r.end,
            },
        );
    }

    #[test]
    fn four_connections_split_into_quarters() {
        let mut s = AdaptiveScheduler::new(1).with_max_chunk_bytes(u64::MAX);
        let mut map = ChunkMap::new(400, RangeSet::new());
        let now = Instant::now();
        for i in 0..4 {
            let a = s.next(&conn(i), &map, now).unwrap();
            apply(&mut map, ConnId(i), a);
        }
        let mut ranges: Vec<_> = map.in_flight.values().map(|f| (f.start, f.end)).collect();
        ranges.sort();
        assert_eq!(ranges, vec![(0, 100), (100, 200), (200, 300), (300, 400)]);
    }

    #[test]
    fn resumes_holes_first_then_splits() {
        let mut s = AdaptiveScheduler::new(10).with_max_chunk_bytes(u64::MAX);
        let done = RangeSet::from_ranges([ByteRange::new(0, 50), ByteRange::new(60, 100)]);
        let mut map = ChunkMap::new(200, done);
        let now = Instant::now();
        let a = s.next(&conn(0), &map, now).unwrap();
        assert_eq!(a, Assignment::Range(ByteRange::new(50, 60)));
        apply(&mut map, ConnId(0), a);
        let b = s.next(&conn(1), &map, now).unwrap();
        assert_eq!(b, Assignment::Range(ByteRange::new(100, 200)));
        apply(&mut map, ConnId(1), b);
        let c = s.next(&conn(2), &map, now).unwrap();
        assert_eq!(
            c,
            Assignment::Split {
                victim: ConnId(1),
                range: ByteRange::new(150, 200)
            }
        );
    }

    #[test]
    fn caps_fresh_chunks_in_offset_order() {
        let mut s = AdaptiveScheduler::new(10).with_max_chunk_bytes(100);
        let mut map = ChunkMap::new(1000, RangeSet::new());
        let now = Instant::now();
        for i in 0..3 {
            let a = s.next(&conn(i), &map, now).unwrap();
            apply(&mut map, ConnId(i), a);
        }
        let mut ranges: Vec<_> = map.in_flight.values().map(|f| (f.start, f.end)).collect();
        ranges.sort();
        assert_eq!(ranges, vec![(0, 100), (100, 200), (200, 300)]);
        // The automatic cap: len / (4 × connections), clamped.
        let auto = AdaptiveScheduler::new(1).with_connections(16);
        assert_eq!(auto.chunk_cap(1 << 30), 16 << 20);
        assert_eq!(auto.chunk_cap(1 << 20), 4 << 20);
        assert_eq!(auto.chunk_cap(1 << 40), 64 << 20);
    }

    #[test]
    fn never_splits_below_minimum() {
        let mut s = AdaptiveScheduler::new(64);
        let mut map = ChunkMap::new(100, RangeSet::new());
        let now = Instant::now();
        let a = s.next(&conn(0), &map, now).unwrap();
        apply(&mut map, ConnId(0), a);
        assert_eq!(s.next(&conn(1), &map, now), None);
    }

    #[test]
    fn alignment_is_respected() {
        let mut s = AdaptiveScheduler::new(16).with_alignment(NonZeroU64::new(32));
        let mut map = ChunkMap::new(1000, RangeSet::new());
        let now = Instant::now();
        let a = s.next(&conn(0), &map, now).unwrap();
        apply(&mut map, ConnId(0), a);
        let b = s.next(&conn(1), &map, now).unwrap();
        assert_eq!(b.range().start % 32, 0);
    }

    proptest! {
        /// Whatever order connections ask, finish and fail in, assignments
        /// never overlap and the download always completes.
        #[test]
        fn plans_cover_everything_without_overlap(
            len in 1u64..5000,
            min_split in 1u64..300,
            cap in 1u64..3000,
            steps in proptest::collection::vec((0u32..6, 0u8..4, 1u64..400), 1..200),
        ) {
            let mut s = AdaptiveScheduler::new(min_split).with_max_chunk_bytes(cap);
            let mut map = ChunkMap::new(len, RangeSet::new());
            let now = Instant::now();
            let mut guard = 0;
            let mut step_iter = steps.into_iter().cycle();
            while !map.is_complete() {
                guard += 1;
                prop_assert!(guard < 100_000, "no progress");
                let (c, action, amount) = step_iter.next().unwrap();
                let id = ConnId(c);
                match map.in_flight.get(&id).copied() {
                    None => {
                        if let Some(a) = s.next(&conn(c), &map, now) {
                            let r = a.range();
                            prop_assert!(!r.is_empty());
                            for (other, f) in &map.in_flight {
                                if Some(*other) != match a { Assignment::Split { victim, .. } => Some(victim), _ => None } {
                                    prop_assert!(f.remaining().intersect(&r).is_none());
                                }
                            }
                            prop_assert!(!map.done.contains_range(r) || r.is_empty());
                            apply(&mut map, id, a);
                        }
                    }
                    Some(f) => {
                        if action == 0 && guard < 2_000 {
                            // The connection fails: its remaining bytes return to the pool.
                            map.in_flight.remove(&id);
                        } else {
                            let to = (f.pos + amount).min(f.end);
                            map.done.insert(ByteRange::new(f.pos, to));
                            if to >= f.end {
                                map.in_flight.remove(&id);
                            } else {
                                map.in_flight.get_mut(&id).unwrap().pos = to;
                            }
                        }
                    }
                }
            }
        }
    }
}
