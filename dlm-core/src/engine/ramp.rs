//! How many connections a ranged download runs: as many as make it faster.
//!
//! More connections help when each one is limited on its own (a server's
//! per-connection rate limit, TCP's window over a long round trip, a lossy
//! path), and cost when the client or server is the bottleneck: on a
//! loopback nginx, 16 connections fetched 1 GiB in 1.5 s where 1 or 2 took
//! 1.2 s here, with 30% more CPU, and the SHA-256 verifier read more back
//! from the page cache because fewer bytes arrived in order.
//!
//! So a download starts with [`START`] connection and measures its
//! throughput over windows of [`WINDOW`]. When a window is at least
//! [`GROWTH`] faster than the one before the last change, it doubles the
//! count (up to the maximum); when it is not, it goes back to the count
//! before the last doubling and stays there for [`SETTLE`], then tries
//! again (the path may have changed). Decisions only: no clock or I/O here,
//! so the rules are tested deterministically.

use std::time::{Duration, Instant};

/// Connections a download starts with: one, as curl and wget2 use, which
/// on a fast path is also the cheapest (every byte arrives in order, so the
/// SHA-256 verifier hashes it from memory).
pub(crate) const START: u32 = 1;
/// Length of one throughput measurement.
pub(crate) const WINDOW: Duration = Duration::from_secs(1);
/// A window must be this much faster (a ratio) to count as growth.
pub(crate) const GROWTH: f64 = 1.15;
/// How long a settled count is kept before growing is tried again.
pub(crate) const SETTLE: Duration = Duration::from_secs(30);
/// No connection is added when what is left would arrive sooner than this
/// at the current rate: a new connection's request and slow start would not
/// pay off (measured: a 1 GiB loopback download that grew from 1 to 2
/// connections after its first second took 1.32 s instead of 1.18 s).
pub(crate) const WORTH_GROWING: Duration = Duration::from_secs(3);

/// The connection count of one download, adjusted by measured throughput.
#[derive(Debug)]
pub(crate) struct Ramp {
    max: u32,
    current: u32,
    /// The count before the last doubling: where a doubling that did not
    /// help goes back to.
    previous: u32,
    window_start: Instant,
    window_bytes: u64,
    /// Throughput (bytes/s) of the last window before the last change.
    before_change: Option<f64>,
    /// Settled: no change before this instant.
    settled_until: Option<Instant>,
}

impl Ramp {
    /// A ramp up to `max` connections, starting now with `received` bytes
    /// already counted.
    pub(crate) fn new(max: u32, now: Instant, received: u64) -> Self {
        let current = START.min(max).max(1);
        Self {
            max: max.max(1),
            current,
            previous: current,
            window_start: now,
            window_bytes: received,
            before_change: None,
            settled_until: None,
        }
    }

    /// The connections wanted now.
    pub(crate) fn current(&self) -> u32 {
        self.current
    }

    /// Lowers the maximum (the remote refused more connections).
    pub(crate) fn cap(&mut self, max: u32) {
        self.max = max.max(1);
        self.current = self.current.min(self.max);
        self.previous = self.previous.min(self.max);
    }

    /// Starts a new window (after a pause: the time stopped does not count).
    pub(crate) fn restart(&mut self, now: Instant, received: u64) {
        self.window_start = now;
        self.window_bytes = received;
    }

    /// Called on every tick with the bytes received so far and the bytes
    /// still to fetch (`None`: unknown); returns the new connection count
    /// when it changes.
    pub(crate) fn on_tick(
        &mut self,
        now: Instant,
        received: u64,
        left: Option<u64>,
    ) -> Option<u32> {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < WINDOW {
            return None;
        }
        let rate = received.saturating_sub(self.window_bytes) as f64 / elapsed.as_secs_f64();
        self.window_start = now;
        self.window_bytes = received;
        let worth = left.is_none_or(|left| left as f64 >= rate * WORTH_GROWING.as_secs_f64());
        if !worth {
            // Nearly done: keep the count, and measure growth from here if it goes on.
            self.before_change = Some(rate);
            return None;
        }
        if let Some(until) = self.settled_until {
            if now < until {
                return None;
            }
            self.settled_until = None;
            return self.grow(rate);
        }
        match self.before_change {
            // The first window: how fast the start is.
            None => self.grow(rate),
            Some(before) if rate >= before * GROWTH => self.grow(rate),
            Some(_) => {
                // The last doubling did not pay: back to where it started.
                self.settled_until = Some(now + SETTLE);
                let back = self.previous;
                (back != self.current).then(|| {
                    self.current = back;
                    back
                })
            }
        }
    }

    /// Doubles the count (up to the maximum), remembering `rate` as the
    /// throughput before the change; settles when already at the maximum.
    fn grow(&mut self, rate: f64) -> Option<u32> {
        self.before_change = Some(rate);
        if self.current >= self.max {
            return None;
        }
        self.previous = self.current;
        self.current = (self.current * 2).min(self.max);
        Some(self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// Feeds one window at `rate` MiB/s; returns the decision.
    fn window(r: &mut Ramp, now: &mut Instant, received: &mut u64, rate: u64) -> Option<u32> {
        *now += WINDOW;
        *received += rate * MIB;
        r.on_tick(*now, *received, None)
    }

    #[test]
    fn grows_while_throughput_grows_up_to_the_maximum() {
        let mut now = Instant::now();
        let mut got = 0;
        let mut r = Ramp::new(16, now, 0);
        assert_eq!(r.current(), 1);
        // Each connection is limited to 10 MiB/s: every doubling doubles the rate.
        assert_eq!(window(&mut r, &mut now, &mut got, 10), Some(2));
        assert_eq!(window(&mut r, &mut now, &mut got, 20), Some(4));
        assert_eq!(window(&mut r, &mut now, &mut got, 40), Some(8));
        assert_eq!(window(&mut r, &mut now, &mut got, 80), Some(16));
        assert_eq!(window(&mut r, &mut now, &mut got, 160), None);
        assert_eq!(r.current(), 16);
    }

    #[test]
    fn a_doubling_that_does_not_pay_is_undone_and_kept_off_for_a_while() {
        let mut now = Instant::now();
        let mut got = 0;
        let mut r = Ramp::new(16, now, 0);
        assert_eq!(window(&mut r, &mut now, &mut got, 900), Some(2));
        // Loopback: two connections are no faster than one.
        assert_eq!(window(&mut r, &mut now, &mut got, 920), Some(1));
        for _ in 0..29 {
            assert_eq!(window(&mut r, &mut now, &mut got, 900), None);
        }
        // After SETTLE it tries again.
        assert_eq!(window(&mut r, &mut now, &mut got, 900), Some(2));
    }

    #[test]
    fn nothing_changes_within_a_window_and_the_cap_holds() {
        let now = Instant::now();
        let mut r = Ramp::new(16, now, 0);
        assert_eq!(r.on_tick(now + WINDOW / 2, 100 * MIB, None), None);
        r.cap(3);
        assert_eq!(r.current(), 1);
        assert_eq!(r.on_tick(now + WINDOW, 100 * MIB, None), Some(2));
        assert_eq!(r.on_tick(now + 2 * WINDOW, 300 * MIB, None), Some(3));
        assert_eq!(r.on_tick(now + 3 * WINDOW, 600 * MIB, None), None);
        assert_eq!(Ramp::new(1, now, 0).current(), 1);
    }

    #[test]
    fn a_download_nearly_done_gets_no_more_connections() {
        let now = Instant::now();
        let mut r = Ramp::new(16, now, 0);
        // 900 MiB/s with 100 MiB left: done in 0.1 s, not worth a connection.
        assert_eq!(r.on_tick(now + WINDOW, 900 * MIB, Some(100 * MIB)), None);
        // 10 MiB/s with 1 GiB left: worth it.
        let mut r = Ramp::new(16, now, 0);
        assert_eq!(r.on_tick(now + WINDOW, 10 * MIB, Some(1 << 30)), Some(2));
    }
}
