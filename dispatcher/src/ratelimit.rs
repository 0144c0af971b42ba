//! Rate limits that hold across every dispatcher replica: token buckets
//! (`sluice_runtime::token_bucket`) kept in the JetStream key-value bucket `SLUICE_RATES`
//! and updated with compare-and-set, so two replicas can never spend the same token.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use sluice_runtime::clock::now_ms;
use sluice_runtime::jetstream::{Bucket, BucketError};
use sluice_runtime::retry::FailureKind;
use sluice_runtime::tenants::Rate;
use sluice_runtime::token_bucket::{Refill, TokenBucket};

/// The bucket holding every token bucket.
pub const RATES_BUCKET: &str = "SLUICE_RATES";
/// Compare-and-set attempts before a take is reported as contended (and retried later).
const CAS_ATTEMPTS: u32 = 16;

/// What taking a token gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Take {
    Granted,
    /// Empty: the next token is there after this long.
    Wait(Duration),
}

/// The shared buckets could not be used; taking is tried again later.
#[derive(Debug, thiserror::Error)]
pub enum RateError {
    #[error("the rate-limit store is unavailable: {0}")]
    Open(#[from] BucketError),
    #[error("the rate-limit store is unavailable: {0}")]
    Read(#[source] kv::EntryError),
    #[error(
        "the rate-limit store is unavailable: bucket {key} stayed contended for {CAS_ATTEMPTS} attempts"
    )]
    Contended { key: String },
}

impl RateError {
    /// Every failure of the shared buckets passes: worth waiting for.
    pub fn kind(&self) -> FailureKind {
        FailureKind::Transient
    }
}

/// The shared buckets, or none (every take is granted).
#[derive(Clone)]
pub struct RateLimiter {
    store: Option<kv::Store>,
}

impl RateLimiter {
    pub fn disabled() -> Self {
        Self { store: None }
    }

    /// Opens `SLUICE_RATES`, creating it when missing. Idle buckets expire after a day; an
    /// expired bucket starts full again, as a new one does.
    pub async fn open(js: &jetstream::Context, replicas: usize) -> Result<Self, RateError> {
        let bucket = Bucket {
            name: RATES_BUCKET,
            description: "Sluice: per-tenant token buckets shared by dispatchers",
            max_age: Duration::from_secs(24 * 3600),
            replicas,
        };
        Ok(Self {
            store: Some(bucket.open(js).await?),
        })
    }

    /// Takes one token from bucket `key` (`[A-Za-z0-9._-]`) of rate `rate`.
    pub async fn take(&self, key: &str, rate: Rate) -> Result<Take, RateError> {
        let Some(store) = &self.store else {
            return Ok(Take::Granted);
        };
        let refill = Refill::per_minute(rate.per_minute, f64::from(rate.burst));
        for _ in 0..CAS_ATTEMPTS {
            let entry = store.entry(key).await.map_err(RateError::Read)?;
            let now = now_ms();
            let (bucket, revision) = match &entry {
                Some(entry) if entry.operation == kv::Operation::Put => (
                    serde_json::from_slice(&entry.value)
                        .unwrap_or_else(|_| TokenBucket::full(refill, now)),
                    Some(entry.revision),
                ),
                Some(entry) => (TokenBucket::full(refill, now), Some(entry.revision)),
                None => (TokenBucket::full(refill, now), None),
            };
            let next = match bucket.take(refill, now) {
                Ok(next) => next,
                Err(wait) => return Ok(Take::Wait(wait)),
            };
            // Two numbers always serialise.
            let value = serde_json::to_vec(&next).unwrap_or_default();
            let written = match revision {
                Some(revision) => store.update(key, value.into(), revision).await.is_ok(),
                None => store.create(key, value.into()).await.is_ok(),
            };
            if written {
                return Ok(Take::Granted);
            }
            // Another replica took a token in between: read again.
        }
        Err(RateError::Contended {
            key: key.to_owned(),
        })
    }
}
