//! `Bitfield`: which pieces a peer has (BEP 3: high bit first, spare bits 0).

/// A set of piece indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitfield {
    bits: Vec<u8>,
    pieces: usize,
    /// Bits set, kept so [`Bitfield::count`] is O(1): the swarm asks often.
    set: usize,
}

impl Bitfield {
    /// No pieces out of `pieces`.
    pub fn empty(pieces: usize) -> Self {
        Self {
            bits: vec![0; pieces.div_ceil(8)],
            pieces,
            set: 0,
        }
    }

    /// From a `bitfield` message; `None` when its length is wrong or a spare
    /// bit is set (BEP 3 says to drop such peers).
    pub fn from_bytes(bytes: &[u8], pieces: usize) -> Option<Self> {
        if bytes.len() != pieces.div_ceil(8) {
            return None;
        }
        let spare = bytes.len() * 8 - pieces;
        if spare > 0 && bytes.last().is_some_and(|b| b & ((1u8 << spare) - 1) != 0) {
            return None;
        }
        Some(Self {
            bits: bytes.to_vec(),
            pieces,
            set: bytes.iter().map(|b| b.count_ones() as usize).sum(),
        })
    }

    /// Whether piece `i` is set.
    pub fn has(&self, i: usize) -> bool {
        i < self.pieces && self.bits[i / 8] & (0x80 >> (i % 8)) != 0
    }

    /// Sets piece `i` (a `have`); out-of-range indexes are ignored.
    pub fn set(&mut self, i: usize) {
        if i < self.pieces && !self.has(i) {
            self.bits[i / 8] |= 0x80 >> (i % 8);
            self.set += 1;
        }
    }

    /// Sets every piece (a seed).
    pub fn fill(&mut self) {
        for i in 0..self.pieces {
            self.set(i);
        }
    }

    /// Pieces set.
    pub fn count(&self) -> usize {
        self.set
    }

    /// Number of pieces the set ranges over.
    pub fn len(&self) -> usize {
        self.pieces
    }

    /// Whether the set ranges over no pieces.
    pub fn is_empty(&self) -> bool {
        self.pieces == 0
    }

    /// Whether every piece is set.
    pub fn is_full(&self) -> bool {
        self.count() == self.pieces
    }

    /// The message bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_checks_bitfields() {
        let b = Bitfield::from_bytes(&[0b1010_0000, 0b1000_0000], 9).unwrap();
        assert!(b.has(0) && !b.has(1) && b.has(2) && b.has(8));
        assert_eq!(b.count(), 3);
        assert!(
            Bitfield::from_bytes(&[0xff, 0xff], 9).is_none(),
            "spare bits set"
        );
        assert!(Bitfield::from_bytes(&[0xff], 9).is_none(), "too short");
        let mut e = Bitfield::empty(9);
        e.set(8);
        e.set(8);
        e.set(100);
        assert_eq!(e.as_bytes(), &[0, 0x80]);
        assert_eq!(e.count(), 1, "a piece set twice counts once");
        e.fill();
        assert!(e.is_full() && e.count() == 9);
    }
}
