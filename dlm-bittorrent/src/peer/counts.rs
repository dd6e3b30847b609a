//! `PieceCounts`: how many connected peers have each piece, the input of
//! rarest-first picking (BEP 3 recommends it; libtorrent's default).

use std::sync::atomic::{AtomicU16, Ordering};

use super::Bitfield;

/// Per-piece count of connected peers that have the piece.
#[derive(Debug)]
pub struct PieceCounts {
    counts: Vec<AtomicU16>,
}

impl PieceCounts {
    /// Counts for `pieces` pieces, all zero.
    pub fn new(pieces: usize) -> Self {
        Self {
            counts: (0..pieces).map(|_| AtomicU16::new(0)).collect(),
        }
    }

    /// Peers known to have piece `i` (0 past the end).
    pub fn get(&self, i: usize) -> u16 {
        self.counts.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Number of pieces.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether the torrent has no pieces.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// One more peer has piece `i`.
    pub(crate) fn add(&self, i: usize) {
        if let Some(c) = self.counts.get(i) {
            let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_add(1));
        }
    }

    /// One peer fewer has piece `i`.
    pub(crate) fn remove(&self, i: usize) {
        if let Some(c) = self.counts.get(i) {
            let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
        }
    }

    /// Adds (or removes) every piece of `have`.
    pub(crate) fn apply(&self, have: &Bitfield, add: bool) {
        for i in (0..self.counts.len()).filter(|i| have.has(*i)) {
            if add { self.add(i) } else { self.remove(i) }
        }
    }
}
