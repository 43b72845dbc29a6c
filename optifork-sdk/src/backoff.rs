//! Exponential backoff with jitter, and jittered intervals.

use std::time::Duration;

/// Capped exponential backoff with "equal jitter": attempt `n` (from 0) waits a random time
/// in `[d/2, d]` where `d = min(max, initial × 2^n)`. The random half spreads a fleet's
/// retries out; the fixed half makes every client slow down.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
}

impl Backoff {
    /// The ceiling for attempt `n`, before jitter.
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay before retry number `attempt` (from 0).
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let d = self.ceiling(attempt);
        d / 2 + d.mul_f64(fastrand::f64() / 2.0)
    }
}

/// `d` moved by up to ±10%, so that clients started together do not stay in step.
pub(crate) fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.9 + fastrand::f64() * 0.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_stay_within_their_jitter_window() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        };
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(10), Duration::from_secs(5));
        assert_eq!(b.ceiling(1000), Duration::from_secs(5));
        for attempt in 0..40 {
            let c = b.ceiling(attempt);
            for _ in 0..50 {
                let d = b.delay(attempt);
                assert!(d >= c / 2 && d <= c, "{d:?} outside [{:?}, {c:?}]", c / 2);
            }
        }
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(30));
            assert!(d >= Duration::from_secs(27) && d <= Duration::from_secs(33));
        }
    }
}
