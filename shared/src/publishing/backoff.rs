//! When a retryable failure is tried again: exponential backoff with jitter, later when the
//! platform's rate-limit reset says so.

use jiff::SignedDuration;
use sha2::{Digest, Sha256};

/// Exponential backoff with "equal jitter": retry `n` waits between half and all of
/// `first × 2ⁿ⁻¹` (capped), so the first retry comes within `first` and deliveries that
/// failed together do not come back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The longest wait before the first retry (the shortest is half of it).
    pub first: SignedDuration,
    /// The longest computed wait.
    pub cap: SignedDuration,
    /// A platform's requested wait is honoured up to this long (a reset hours away is
    /// more likely a misread header than a plan).
    pub max_platform_wait: SignedDuration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: SignedDuration::from_secs(20),
            cap: SignedDuration::from_mins(15),
            max_platform_wait: SignedDuration::from_hours(6),
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (1 = the first retry). `platform_wait` is what
    /// the platform asked for (`Retry-After`, a rate-limit reset); the wait is never shorter
    /// than that. `seed` (the delivery id) makes the jitter deterministic per delivery.
    pub fn delay(
        &self,
        retry: u32,
        platform_wait: Option<SignedDuration>,
        seed: &str,
    ) -> SignedDuration {
        let exponent = retry.saturating_sub(1).min(20);
        let base = self
            .first
            .checked_mul(1i32 << exponent)
            .unwrap_or(self.cap)
            .min(self.cap);
        let fraction = jitter_fraction(seed, retry);
        let half = base / 2;
        let jittered = half + half.mul_f64(fraction);
        match platform_wait {
            Some(wait) if wait > SignedDuration::ZERO => {
                // Everyone rate-limited together sees the same reset: spread them after it.
                let after = wait.min(self.max_platform_wait) + self.first.mul_f64(fraction);
                after.max(jittered)
            }
            _ => jittered,
        }
    }
}

/// A number in `[0, 1)` derived from `seed` and `retry`: the same inputs always give the
/// same jitter, different deliveries spread evenly.
pub fn jitter_fraction(seed: &str, retry: u32) -> f64 {
    let mut hasher = Sha256::new();
    hasher.update(b"hark/backoff/v1\0");
    hasher.update(seed.as_bytes());
    hasher.update(retry.to_be_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits: exactly representable in an f64 mantissa.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_first_retry_then_it_comes_within_the_first_wait_and_not_before_half_of_it() {
        let b = Backoff::default();
        for i in 0..200 {
            let d = b.delay(1, None, &format!("delivery-{i}"));
            assert!(
                d >= SignedDuration::from_secs(10) && d <= SignedDuration::from_secs(20),
                "{d:?}"
            );
        }
    }

    #[test]
    fn given_more_retries_then_waits_grow_and_stay_under_the_cap() {
        let b = Backoff::default();
        let waits: Vec<i64> = (1..=12).map(|n| b.delay(n, None, "d").as_secs()).collect();
        assert!(waits[3] > waits[0], "{waits:?}");
        assert!(waits.iter().all(|w| *w <= 15 * 60), "{waits:?}");
        assert!(waits[11] >= 15 * 60 / 2, "the cap is reached: {waits:?}");
    }

    #[test]
    fn given_a_platform_reset_then_the_wait_is_at_least_that_and_spread_after_it() {
        let b = Backoff::default();
        let reset = SignedDuration::from_secs(300);
        let waits: Vec<SignedDuration> = (0..50)
            .map(|i| b.delay(1, Some(reset), &format!("d{i}")))
            .collect();
        assert!(waits.iter().all(|w| *w >= reset && *w < reset + b.first));
        let distinct: std::collections::BTreeSet<i64> =
            waits.iter().map(|w| w.as_millis() as i64).collect();
        assert!(
            distinct.len() > 40,
            "deliveries do not all come back at once"
        );
        let absurd = b.delay(1, Some(SignedDuration::from_hours(100)), "d");
        assert!(absurd <= b.max_platform_wait + b.first);
    }

    #[test]
    fn given_the_same_seed_then_the_jitter_is_the_same() {
        assert_eq!(jitter_fraction("a", 1), jitter_fraction("a", 1));
        assert_ne!(jitter_fraction("a", 1), jitter_fraction("a", 2));
        let f = jitter_fraction("anything", 7);
        assert!((0.0..1.0).contains(&f));
    }
}
