//! Byte ranges: half-open `[start, end)` offsets in a download's byte space.
//!
//! HTTP's inclusive `bytes=a-b` form (RFC 9110 §14.1.2) appears only at the
//! protocol edge, through [`ByteRange::to_http_inclusive`].

use std::fmt;

/// A half-open range of bytes `[start, end)`, in bytes from the start of the
/// download's byte space. `start <= end` always holds.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ByteRange {
    /// First byte offset in the range.
    pub start: u64,
    /// One past the last byte offset in the range.
    pub end: u64,
}

impl ByteRange {
    /// `[start, end)`; an inverted pair gives the empty range at `start`.
    pub fn new(start: u64, end: u64) -> Self {
        Self {
            start,
            end: end.max(start),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the range holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether `offset` lies inside the range.
    pub fn contains(&self, offset: u64) -> bool {
        self.start <= offset && offset < self.end
    }

    /// The overlap of two ranges, if any.
    pub fn intersect(&self, other: &ByteRange) -> Option<ByteRange> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(ByteRange { start, end })
    }

    /// The inclusive `(first, last)` pair HTTP and FTP use, or `None` when empty.
    pub fn to_http_inclusive(&self) -> Option<(u64, u64)> {
        (!self.is_empty()).then(|| (self.start, self.end - 1))
    }
}

impl From<std::ops::Range<u64>> for ByteRange {
    fn from(r: std::ops::Range<u64>) -> Self {
        Self::new(r.start, r.end)
    }
}

impl fmt::Debug for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// What a [`Source::open`](crate::Source::open) call asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ReadRange {
    /// Exactly these bytes.
    Bounded(ByteRange),
    /// From this offset to the end of the object; `From(0)` is the whole
    /// object and needs no range support.
    From(u64),
}

impl ReadRange {
    /// The whole object.
    pub const FULL: ReadRange = ReadRange::From(0);

    /// The first byte asked for.
    pub fn start(&self) -> u64 {
        match self {
            Self::Bounded(r) => r.start,
            Self::From(s) => *s,
        }
    }

    /// One past the last byte asked for, when bounded.
    pub fn end(&self) -> Option<u64> {
        match self {
            Self::Bounded(r) => Some(r.end),
            Self::From(_) => None,
        }
    }

    /// Whether answering needs range support at the remote.
    pub fn needs_ranges(&self) -> bool {
        self.start() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let r = ByteRange::new(10, 20);
        assert_eq!(r.len(), 10);
        assert!(r.contains(10) && !r.contains(20));
        assert_eq!(r.to_http_inclusive(), Some((10, 19)));
        assert_eq!(ByteRange::new(5, 3), ByteRange::new(5, 5));
        assert_eq!(ByteRange::new(5, 5).to_http_inclusive(), None);
        assert_eq!(
            r.intersect(&ByteRange::new(15, 30)),
            Some(ByteRange::new(15, 20))
        );
        assert_eq!(r.intersect(&ByteRange::new(20, 30)), None);
        assert!(!ReadRange::FULL.needs_ranges());
        assert!(ReadRange::From(1).needs_ranges());
    }
}
