//! Frames handed from the connection writing at the hashed prefix's end to
//! the verifier while they are still in memory, so those bytes are hashed
//! without being read back from the output.
//!
//! The verifier hashes the done prefix in order. The connection whose write
//! extends that prefix (the frontier; with one connection, every write) hands
//! it a reference to the frame it just wrote: no copy, only the `Bytes`
//! count. Frames of other connections, written ahead of the prefix, are not
//! kept (that would hold memory without bound): the verifier reads them
//! back, normally from the page cache. Measured on loopback HTTP: the
//! read-back of 1 GiB costs about 0.14 CPU s.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

use crate::ByteRange;

/// Most bytes held for the verifier at once (2 MiB: the verifier is woken
/// per MiB of prefix, and a 4 GiB download at 16 connections must stay
/// under 32 MiB RSS).
pub(crate) const HANDOFF_BYTES: usize = 2 << 20;

/// Contiguous frames waiting for the verifier, in offset order.
#[derive(Debug, Default)]
pub(crate) struct Handoff {
    inner: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    /// Frames and their offsets; each starts where the previous ended.
    frames: VecDeque<(u64, Bytes)>,
    /// Where the last frame ends.
    end: u64,
    /// Bytes held.
    bytes: usize,
}

impl Handoff {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers `data`, just written at `at`. It is kept when it continues
    /// the frames held, or, with none held, when it starts at or before
    /// `prefix` (the done prefix before this write: the frame extends it)
    /// and not before `hashed` (what the verifier has already hashed); and
    /// when the bytes held stay within [`HANDOFF_BYTES`].
    pub(crate) fn offer(&self, at: u64, data: &Bytes, prefix: u64, hashed: u64) {
        let mut q = self.queue();
        let follows = if q.frames.is_empty() {
            at >= hashed && at <= prefix
        } else {
            at == q.end
        };
        if !follows || data.is_empty() || q.bytes + data.len() > HANDOFF_BYTES {
            return;
        }
        q.end = at + data.len() as u64;
        q.bytes += data.len();
        q.frames.push_back((at, data.clone()));
    }

    /// The held bytes from `at` to at most `until`, when a frame covers `at`;
    /// frames wholly before `at` are dropped. `None`: read `at` back (up to
    /// [`Handoff::next_start`]).
    pub(crate) fn take(&self, at: u64, until: u64) -> Option<Bytes> {
        let mut q = self.queue();
        while let Some((start, data)) = q.frames.front() {
            let r = ByteRange::new(*start, *start + data.len() as u64);
            if r.end <= at {
                let n = data.len();
                q.frames.pop_front();
                q.bytes -= n;
                continue;
            }
            if r.start > at || at >= until {
                return None;
            }
            let from = (at - r.start) as usize;
            let to = (until.min(r.end) - r.start) as usize;
            let out = data.slice(from..to);
            if until >= r.end {
                let n = data.len();
                q.frames.pop_front();
                q.bytes -= n;
            }
            return Some(out);
        }
        None
    }

    /// Where the first held frame starts, if any: the read-back stops there.
    pub(crate) fn next_start(&self) -> Option<u64> {
        self.queue().frames.front().map(|(start, _)| *start)
    }

    /// Drops every frame (the verifier stopped or restarted).
    pub(crate) fn clear(&self) {
        *self.queue() = Queue::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; n])
    }

    #[test]
    fn only_frames_extending_the_prefix_are_kept_in_order() {
        let h = Handoff::default();
        // Ahead of the prefix (another connection's chunk): not kept.
        h.offer(1000, &frame(10, 1), 0, 0);
        assert_eq!(h.next_start(), None);
        // At the prefix: kept, and what follows it.
        h.offer(0, &frame(10, 2), 0, 0);
        h.offer(10, &frame(10, 3), 10, 0);
        // A gap: not kept.
        h.offer(30, &frame(10, 4), 20, 0);
        assert_eq!(h.next_start(), Some(0));
        assert_eq!(h.take(0, 20).unwrap(), frame(10, 2));
        // Part of a frame, up to the published prefix.
        assert_eq!(h.take(10, 15).unwrap(), frame(5, 3));
        assert_eq!(h.take(15, 20).unwrap(), frame(5, 3));
        assert_eq!(h.take(20, 30), None);
        assert_eq!(h.next_start(), None);
    }

    #[test]
    fn frames_the_verifier_already_read_back_are_dropped() {
        let h = Handoff::default();
        h.offer(0, &frame(10, 1), 0, 0);
        h.offer(10, &frame(10, 2), 10, 0);
        // The verifier read 0..15 back before it looked here.
        assert_eq!(h.take(15, 20).unwrap(), frame(5, 2));
        assert_eq!(h.next_start(), None);
        // With nothing held, a frame the verifier is already past is refused.
        h.offer(5, &frame(10, 3), 20, 15);
        assert_eq!(h.next_start(), None);
    }

    #[test]
    fn the_bytes_held_are_bounded() {
        let h = Handoff::default();
        let big = frame(HANDOFF_BYTES / 2, 1);
        h.offer(0, &big, 0, 0);
        h.offer(big.len() as u64, &big, big.len() as u64, 0);
        h.offer(2 * big.len() as u64, &frame(1, 1), 2 * big.len() as u64, 0);
        assert_eq!(h.queue().bytes, HANDOFF_BYTES);
        h.clear();
        assert_eq!(h.next_start(), None);
    }
}
