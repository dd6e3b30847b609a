//! A set of byte offsets kept as sorted, disjoint, non-adjacent ranges.

use crate::ByteRange;

/// A set of byte offsets, stored as sorted, disjoint and non-touching
/// [`ByteRange`]s. The engine keeps the *done* ranges of a download here and
/// the control file persists them.
///
/// Insertion and removal are `O(n)` in the number of stored ranges, which stays
/// small (about one per connection) for ranged sources.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RangeSet {
    ranges: Vec<ByteRange>,
}

impl RangeSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a set from arbitrary (overlapping, unsorted) ranges.
    pub fn from_ranges(ranges: impl IntoIterator<Item = ByteRange>) -> Self {
        let mut set = Self::new();
        for r in ranges {
            set.insert(r);
        }
        set
    }

    /// The stored ranges, sorted and disjoint.
    pub fn ranges(&self) -> &[ByteRange] {
        &self.ranges
    }

    /// Whether no byte is in the set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Total bytes in the set.
    pub fn total_len(&self) -> u64 {
        self.ranges.iter().map(ByteRange::len).sum()
    }

    /// Adds `r`, merging with touching or overlapping ranges.
    pub fn insert(&mut self, r: ByteRange) {
        if r.is_empty() {
            return;
        }
        // First stored range whose end reaches r.start (touching merges).
        let lo = self.ranges.partition_point(|x| x.end < r.start);
        // First stored range that starts after r.end (not touching).
        let hi = self.ranges.partition_point(|x| x.start <= r.end);
        if lo == hi {
            self.ranges.insert(lo, r);
            return;
        }
        let start = r.start.min(self.ranges[lo].start);
        let end = r.end.max(self.ranges[hi - 1].end);
        self.ranges.drain(lo + 1..hi);
        self.ranges[lo] = ByteRange { start, end };
    }

    /// Removes every offset of `r` from the set.
    pub fn remove(&mut self, r: ByteRange) {
        if r.is_empty() {
            return;
        }
        let lo = self.ranges.partition_point(|x| x.end <= r.start);
        let hi = self.ranges.partition_point(|x| x.start < r.end);
        if lo >= hi {
            return;
        }
        let first = self.ranges[lo];
        let last = self.ranges[hi - 1];
        let mut keep = Vec::with_capacity(2);
        if first.start < r.start {
            keep.push(ByteRange::new(first.start, r.start));
        }
        if last.end > r.end {
            keep.push(ByteRange::new(r.end, last.end));
        }
        self.ranges.splice(lo..hi, keep);
    }

    /// Whether every offset of `r` is in the set.
    pub fn contains_range(&self, r: ByteRange) -> bool {
        if r.is_empty() {
            return true;
        }
        let i = self.ranges.partition_point(|x| x.end <= r.start);
        self.ranges
            .get(i)
            .is_some_and(|x| x.start <= r.start && r.end <= x.end)
    }

    /// Whether `offset` is in the set.
    pub fn contains(&self, offset: u64) -> bool {
        self.contains_range(ByteRange::new(offset, offset + 1))
    }

    /// Length of the contiguous run starting at offset 0 (0 when offset 0 is missing).
    pub fn contiguous_prefix(&self) -> u64 {
        match self.ranges.first() {
            Some(r) if r.start == 0 => r.end,
            _ => 0,
        }
    }

    /// The ranges of `[0, len)` not in the set, in order.
    pub fn gaps(&self, len: u64) -> Vec<ByteRange> {
        let mut out = Vec::new();
        let mut at = 0;
        for r in &self.ranges {
            if r.start >= len {
                break;
            }
            if r.start > at {
                out.push(ByteRange::new(at, r.start));
            }
            at = at.max(r.end);
        }
        if at < len {
            out.push(ByteRange::new(at, len));
        }
        out
    }

    /// The offsets in both sets.
    pub fn intersection(&self, other: &RangeSet) -> RangeSet {
        let mut out = RangeSet::new();
        let (mut i, mut j) = (0, 0);
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            if let Some(r) = a.intersect(&b) {
                out.ranges.push(r);
            }
            if a.end <= b.end {
                i += 1;
            } else {
                j += 1;
            }
        }
        out
    }

    /// The offsets of this set that are not in `other`.
    pub fn difference(&self, other: &RangeSet) -> RangeSet {
        let mut out = self.clone();
        for r in other.ranges() {
            out.remove(*r);
        }
        out
    }

    /// Whether `[0, len)` is entirely in the set.
    pub fn covers(&self, len: u64) -> bool {
        self.contains_range(ByteRange::new(0, len))
    }

    /// Whether the invariants hold: each range non-empty and not inverted
    /// (`start < end`; a deserialised set can hold any pair), sorted,
    /// disjoint and non-touching.
    pub fn is_valid(&self) -> bool {
        self.ranges.iter().all(|r| r.start < r.end)
            && self.ranges.windows(2).all(|w| w[0].end < w[1].start)
    }
}

impl std::fmt::Debug for RangeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(&self.ranges).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(a: u64, b: u64) -> ByteRange {
        ByteRange::new(a, b)
    }

    #[test]
    fn intersection_and_difference() {
        let a = RangeSet::from_ranges([r(0, 10), r(20, 30), r(40, 50)]);
        let b = RangeSet::from_ranges([r(5, 25), r(28, 45)]);
        let both = a.intersection(&b);
        assert_eq!(both.ranges(), &[r(5, 10), r(20, 25), r(28, 30), r(40, 45)]);
        assert!(both.is_valid());
        assert_eq!(a.difference(&b).ranges(), &[r(0, 5), r(25, 28), r(45, 50)]);
        assert!(a.intersection(&RangeSet::new()).is_empty());
    }

    #[test]
    fn insert_merges_touching_and_overlapping() {
        let mut s = RangeSet::new();
        s.insert(r(10, 20));
        s.insert(r(30, 40));
        s.insert(r(20, 30));
        assert_eq!(s.ranges(), &[r(10, 40)]);
        s.insert(r(0, 5));
        s.insert(r(3, 12));
        assert_eq!(s.ranges(), &[r(0, 40)]);
        assert_eq!(s.contiguous_prefix(), 40);
        assert!(s.covers(40) && !s.covers(41));
    }

    #[test]
    fn remove_splits() {
        let mut s = RangeSet::from_ranges([r(0, 100)]);
        s.remove(r(10, 20));
        assert_eq!(s.ranges(), &[r(0, 10), r(20, 100)]);
        s.remove(r(5, 30));
        assert_eq!(s.ranges(), &[r(0, 5), r(30, 100)]);
        assert_eq!(s.gaps(120), vec![r(5, 30), r(100, 120)]);
    }

    fn model(ops: &[(bool, u64, u64)]) -> Vec<bool> {
        let mut bits = vec![false; 256];
        for &(add, a, b) in ops {
            for bit in bits.iter_mut().take(b as usize).skip(a as usize) {
                *bit = add;
            }
        }
        bits
    }

    proptest! {
        #[test]
        fn matches_a_bitmap_model(ops in proptest::collection::vec((any::<bool>(), 0u64..256, 0u64..256), 0..40)) {
            let ops: Vec<_> = ops.into_iter().map(|(add, a, b)| (add, a.min(b), a.max(b))).collect();
            let mut s = RangeSet::new();
            for &(add, a, b) in &ops {
                if add { s.insert(r(a, b)) } else { s.remove(r(a, b)) }
                prop_assert!(s.is_valid());
            }
            let bits = model(&ops);
            for (i, &bit) in bits.iter().enumerate() {
                prop_assert_eq!(s.contains(i as u64), bit);
            }
            prop_assert_eq!(s.total_len(), bits.iter().filter(|b| **b).count() as u64);
            let gap_total: u64 = s.gaps(256).iter().map(ByteRange::len).sum();
            prop_assert_eq!(gap_total + s.total_len(), 256);
            let prefix = bits.iter().take_while(|b| **b).count() as u64;
            prop_assert_eq!(s.contiguous_prefix(), prefix);
        }
    }
}
