//! The bytes a connection received and has not written yet, gathered into
//! one vectored write.
//!
//! Large frames (an HTTP/1 read of up to 256 KiB, a torrent's piece) are
//! kept as they arrived, by reference; small ones (a slow link's few KiB)
//! are copied into a shared buffer so a write never carries thousands of
//! tiny pieces. The engine writes once the gathered bytes reach the write
//! size: measured on loopback HTTP, 1 MiB writes instead of 256 KiB ones cut
//! the writes, thread hand-offs and wake-ups per GiB by four.

use bytes::{Bytes, BytesMut};

/// Frames at least this long are kept by reference, not copied (bytes).
const DIRECT_FRAME: usize = 32 << 10;
/// Small frames are copied into buffers of this size (bytes).
const SMALL_BUFFER: usize = 64 << 10;

/// Gathered frames, in order, contiguous from the connection's position.
#[derive(Debug, Default)]
pub(crate) struct Gather {
    frames: Vec<Bytes>,
    small: BytesMut,
    len: usize,
}

impl Gather {
    /// Bytes gathered.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Nothing gathered.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `frame`.
    pub(crate) fn push(&mut self, frame: Bytes) {
        if frame.is_empty() {
            return;
        }
        self.len += frame.len();
        if frame.len() >= DIRECT_FRAME {
            self.seal();
            self.frames.push(frame);
            return;
        }
        if self.small.capacity() - self.small.len() < frame.len() {
            self.seal();
            self.small.reserve(SMALL_BUFFER.max(frame.len()));
        }
        self.small.extend_from_slice(&frame);
    }

    /// Moves the small buffer's bytes into the frames.
    fn seal(&mut self) {
        if !self.small.is_empty() {
            self.frames.push(self.small.split().freeze());
        }
    }

    /// Takes everything gathered, in order.
    pub(crate) fn take(&mut self) -> Vec<Bytes> {
        self.seal();
        self.len = 0;
        std::mem::take(&mut self.frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_frames_are_kept_and_small_ones_copied_together_in_order() {
        let mut g = Gather::default();
        let big = Bytes::from(vec![1u8; DIRECT_FRAME]);
        g.push(Bytes::from_static(b"ab"));
        g.push(Bytes::from_static(b"cd"));
        g.push(big.clone());
        g.push(Bytes::new());
        g.push(Bytes::from_static(b"e"));
        assert_eq!(g.len(), DIRECT_FRAME + 5);
        let frames = g.take();
        assert_eq!(frames.len(), 3);
        assert_eq!(&frames[0][..], b"abcd");
        // The large frame is the same memory, not a copy.
        assert_eq!(frames[1].as_ptr(), big.as_ptr());
        assert_eq!(&frames[2][..], b"e");
        assert!(g.is_empty());
        assert!(g.take().is_empty());
    }

    #[test]
    fn small_frames_fill_buffers_of_bounded_size() {
        let mut g = Gather::default();
        for _ in 0..100 {
            g.push(Bytes::from(vec![7u8; 3000]));
        }
        let frames = g.take();
        assert!(frames.iter().all(|f| f.len() <= SMALL_BUFFER));
        assert_eq!(frames.iter().map(Bytes::len).sum::<usize>(), 300_000);
        assert_eq!(
            frames.len(),
            300_000usize.div_ceil(SMALL_BUFFER / 3000 * 3000)
        );
    }
}
