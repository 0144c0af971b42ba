//! Token-bucket arithmetic, the one rate limiter behind ingest's admission limit (a bucket
//! per tenant in each replica's memory) and the dispatcher's run limits (buckets shared by
//! every replica in a JetStream key-value store): a bucket refills continuously at its rate
//! up to its capacity, and taking a token either succeeds or says how long until one is
//! there.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a bucket refills: `per_second` tokens a second, up to `capacity` saved up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refill {
    per_ms: f64,
    capacity: f64,
}

impl Refill {
    /// `per_second` tokens a second, at most `capacity` (at least one) saved up.
    pub fn per_second(per_second: f64, capacity: f64) -> Self {
        Self {
            per_ms: per_second / 1000.0,
            capacity: capacity.max(1.0),
        }
    }

    /// `per_minute` tokens a minute, at most `capacity` (at least one) saved up.
    pub fn per_minute(per_minute: f64, capacity: f64) -> Self {
        Self::per_second(per_minute / 60.0, capacity)
    }
}

/// A bucket's state: the tokens it held at `at_ms` (milliseconds on the caller's clock).
/// Serialised as `{"tokens": …, "at_ms": …}`, the form shared buckets are stored in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TokenBucket {
    tokens: f64,
    at_ms: u64,
}

impl TokenBucket {
    /// A bucket holding all it can, as a new (or expired) one does.
    pub fn full(refill: Refill, now_ms: u64) -> Self {
        Self {
            tokens: refill.capacity,
            at_ms: now_ms,
        }
    }

    /// Takes one token at `now_ms`: the bucket as it is left, or how long until a token is
    /// there (at least a millisecond). A clock that went back refills nothing.
    pub fn take(self, refill: Refill, now_ms: u64) -> Result<Self, Duration> {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64;
        let tokens = (self.tokens + elapsed * refill.per_ms).min(refill.capacity);
        if tokens < 1.0 {
            let wait_ms = ((1.0 - tokens) / refill.per_ms).ceil().max(1.0);
            return Err(Duration::from_millis(wait_ms as u64));
        }
        Ok(Self {
            tokens: tokens - 1.0,
            at_ms: now_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_spends_its_capacity_then_refills_at_its_rate() {
        let refill = Refill::per_second(2.0, 2.0);
        let bucket = TokenBucket::full(refill, 1_000);
        let bucket = bucket.take(refill, 1_000).unwrap();
        let bucket = bucket.take(refill, 1_000).unwrap();
        assert_eq!(bucket.take(refill, 1_000), Err(Duration::from_millis(500)));
        assert_eq!(bucket.take(refill, 1_200), Err(Duration::from_millis(300)));
        let bucket = bucket.take(refill, 1_500).unwrap();
        assert!(bucket.take(refill, 1_500).is_err());
        // Idle for a long while: full again, never more.
        let bucket = bucket.take(refill, 60_000).unwrap();
        let bucket = bucket.take(refill, 60_000).unwrap();
        assert!(bucket.take(refill, 60_000).is_err());
    }

    #[test]
    fn per_minute_rates_and_a_clock_that_goes_back() {
        let refill = Refill::per_minute(60.0, 1.0);
        let bucket = TokenBucket::full(refill, 10_000)
            .take(refill, 10_000)
            .unwrap();
        assert_eq!(bucket.take(refill, 9_000), Err(Duration::from_secs(1)));
        assert!(bucket.take(refill, 11_000).is_ok());
        assert_eq!(
            serde_json::to_value(bucket).unwrap(),
            serde_json::json!({"tokens": 0.0, "at_ms": 10_000})
        );
    }
}
