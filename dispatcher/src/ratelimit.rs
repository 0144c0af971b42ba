//! Rate limits that hold across every dispatcher replica: token buckets kept in the
//! JetStream key-value bucket `SLUICE_RATES` and updated with compare-and-set, so two
//! replicas can never spend the same token. A bucket refills continuously at its rate up to
//! its burst; taking a token either succeeds or says how long until one is there.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};

use sluice_runtime::clock::now_ms;

/// The bucket holding every token bucket.
pub const RATES_BUCKET: &str = "SLUICE_RATES";
/// Compare-and-set attempts before a take is reported as contended (and retried later).
const CAS_ATTEMPTS: u32 = 16;

/// A rate: `per_minute` tokens a minute, at most `burst` saved up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_minute: f64,
    pub burst: u32,
}

/// What taking a token gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Take {
    Granted,
    /// Empty: the next token is there after this long.
    Wait(Duration),
}

#[derive(Debug, thiserror::Error)]
#[error("the rate-limit store is unavailable: {0}")]
pub struct RateError(String);

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct State {
    tokens: f64,
    at_ms: u64,
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
        let store = match js.get_key_value(RATES_BUCKET).await {
            Ok(store) => store,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: RATES_BUCKET.to_owned(),
                    description: "Sluice: per-tenant token buckets shared by dispatchers"
                        .to_owned(),
                    history: 1,
                    max_age: Duration::from_secs(24 * 3600),
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| RateError(e.to_string()))?,
        };
        Ok(Self { store: Some(store) })
    }

    /// Takes one token from bucket `key` (`[A-Za-z0-9._-]`) of rate `rate`.
    pub async fn take(&self, key: &str, rate: Rate) -> Result<Take, RateError> {
        let Some(store) = &self.store else {
            return Ok(Take::Granted);
        };
        let burst = f64::from(rate.burst.max(1));
        let per_ms = rate.per_minute / 60_000.0;
        for _ in 0..CAS_ATTEMPTS {
            let entry = store
                .entry(key)
                .await
                .map_err(|e| RateError(e.to_string()))?;
            let now = now_ms();
            let (state, revision) = match &entry {
                Some(entry) if entry.operation == kv::Operation::Put => {
                    match serde_json::from_slice::<State>(&entry.value) {
                        Ok(state) => (state, Some(entry.revision)),
                        Err(_) => (full(burst, now), Some(entry.revision)),
                    }
                }
                Some(entry) => (full(burst, now), Some(entry.revision)),
                None => (full(burst, now), None),
            };
            let elapsed = now.saturating_sub(state.at_ms) as f64;
            let tokens = (state.tokens + elapsed * per_ms).min(burst);
            if tokens < 1.0 {
                let wait_ms = ((1.0 - tokens) / per_ms).ceil().max(1.0);
                return Ok(Take::Wait(Duration::from_millis(wait_ms as u64)));
            }
            let next = State {
                tokens: tokens - 1.0,
                at_ms: now,
            };
            let value = serde_json::to_vec(&next).map_err(|e| RateError(e.to_string()))?;
            let written = match revision {
                Some(revision) => store.update(key, value.into(), revision).await.is_ok(),
                None => store.create(key, value.into()).await.is_ok(),
            };
            if written {
                return Ok(Take::Granted);
            }
            // Another replica took a token in between: read again.
        }
        Err(RateError(format!(
            "bucket {key} stayed contended for {CAS_ATTEMPTS} attempts"
        )))
    }
}

fn full(burst: f64, now: u64) -> State {
    State {
        tokens: burst,
        at_ms: now,
    }
}
