//! A token-bucket rate limiter whose rate can change while downloads run.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Burst allowance: this much time's worth of tokens may accumulate while idle.
const BURST: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Bucket {
    rate: Option<u64>,
    /// Tokens available; negative when callers have borrowed ahead.
    tokens: f64,
    last: Instant,
}

/// Limits throughput to a rate in bytes/s, shared by any number of tasks.
///
/// Callers take tokens *after* receiving bytes ([`RateLimiter::acquire`]) and
/// sleep off any deficit, so a socket read pauses and TCP flow control slows
/// the sender. One limiter per download plus one global limiter shared by all
/// downloads give both limits; [`RateLimiter::set_rate`] changes a limit for
/// everyone at once.
#[derive(Debug)]
pub struct RateLimiter {
    bucket: Mutex<Bucket>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(None)
    }
}

impl RateLimiter {
    /// A limiter at `rate` bytes/s; `None` or `Some(0)` means unlimited.
    pub fn new(rate: Option<u64>) -> Self {
        Self {
            bucket: Mutex::new(Bucket {
                rate: rate.filter(|r| *r > 0),
                tokens: 0.0,
                last: Instant::now(),
            }),
        }
    }

    /// The current rate in bytes/s, `None` when unlimited.
    pub fn rate(&self) -> Option<u64> {
        self.bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rate
    }

    /// Changes the rate (bytes/s; `None` or `Some(0)` = unlimited) for every
    /// caller from now on.
    pub fn set_rate(&self, rate: Option<u64>) {
        let mut b = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        b.rate = rate.filter(|r| *r > 0);
        b.tokens = b.tokens.max(0.0);
        b.last = Instant::now();
    }

    /// How long a caller taking `n` bytes must wait now; takes the tokens.
    fn take(&self, n: u64) -> Option<Duration> {
        let mut b = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let rate = b.rate? as f64;
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.last = now;
        let cap = rate * BURST.as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(cap) - n as f64;
        (b.tokens < 0.0).then(|| Duration::from_secs_f64(-b.tokens / rate))
    }

    /// Accounts for `n` bytes just received, sleeping as long as the rate demands.
    ///
    /// # Cancel safety
    /// Cancel-safe: the tokens are taken before the sleep.
    pub async fn acquire(&self, n: u64) {
        if let Some(wait) = self.take(n) {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn limits_to_the_rate_and_changes_live() {
        let l = RateLimiter::new(Some(1000));
        let start = Instant::now();
        for _ in 0..10 {
            l.acquire(500).await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(4800), "{took:?}");
        assert!(took <= Duration::from_millis(5200), "{took:?}");
        l.set_rate(None);
        let start = Instant::now();
        l.acquire(1 << 30).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
