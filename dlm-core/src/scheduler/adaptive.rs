use std::num::NonZeroU64;
use std::time::Instant;

use super::{Assignment, ChunkMap, ConnInfo, Scheduler, align_up, first_servable};
use crate::ByteRange;

/// Default smallest chunk the adaptive scheduler creates by splitting: 1 MiB.
pub const DEFAULT_MIN_SPLIT_BYTES: u64 = 1 << 20;

/// The default scheduler for ranged sources: split the largest remaining chunk
/// whenever a connection is free.
///
/// The first connection takes the first missing range whole; every further
/// connection takes the upper half of the largest remaining chunk, so the
/// byte space spreads over N connections with no fixed segment count and no
/// connection cap. When a connection finishes early it splits whatever is left
/// elsewhere, so a slow connection never holds a long tail. Splits never leave
/// a piece smaller than `min_split_bytes` and land on `alignment` boundaries.
#[derive(Clone, Debug)]
pub struct AdaptiveScheduler {
    min_split_bytes: u64,
    alignment: u64,
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
        }
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
            return Some(Assignment::Range(r));
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
        let mut s = AdaptiveScheduler::new(1);
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
        let mut s = AdaptiveScheduler::new(10);
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
            steps in proptest::collection::vec((0u32..6, 0u8..4, 1u64..400), 1..200),
        ) {
            let mut s = AdaptiveScheduler::new(min_split);
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
