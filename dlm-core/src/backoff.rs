//! Exponential back-off with jitter between retries.

use std::time::Duration;

/// Retry policy: how many attempts and how long to wait between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Upper bound for any one delay.
    pub max: Duration,
}

impl Default for Backoff {
    /// 250 ms, doubling, capped at 10 s.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (1-based): `initial · 2^(attempt-1)`,
    /// capped at `max`, with "equal jitter" (uniform in the upper half), and never
    /// shorter than `at_least` (a server's `Retry-After`).
    pub fn delay(&self, attempt: u32, at_least: Option<Duration>) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let base = self.initial.saturating_mul(1 << exp).min(self.max);
        let half = base / 2;
        let jitter = half.mul_f64(fastrand::f64());
        (half + jitter).max(at_least.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_respects_retry_after() {
        let b = Backoff::default();
        for attempt in 1..30 {
            let d = b.delay(attempt, None);
            assert!(d <= b.max);
            let expected = b
                .initial
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(b.max);
            assert!(d >= expected / 2, "{attempt}: {d:?}");
        }
        assert!(b.delay(1, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
    }
}
