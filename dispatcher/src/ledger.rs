//! The dispatch ledger: a JetStream key-value bucket recording, per (event key, trigger),
//! that the trigger's run is done, so that a redelivery days later (GitHub's "Redeliver", a
//! replayed dead letter, a duplicate past the stream's dedup window) creates nothing new even
//! if the objects were deleted since. Entries expire after `--ledger-ttl`.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};
use sluice_runtime::jetstream::{Bucket, BucketError};
use sluice_runtime::retry::FailureKind;

/// The bucket's name.
pub const LEDGER_BUCKET: &str = "SLUICE_LEDGER";

/// What a finished run left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub outcome: RunOutcome,
    pub event_id: String,
    /// `Kind/name` of each object, in template order.
    #[serde(default)]
    pub objects: Vec<String>,
    pub at_ms: u64,
    /// The interceptor that filtered the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interceptor: Option<String>,
    /// Why it was filtered, or how it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    Created,
    Filtered,
    /// The trigger failed for this event (a `cel` error, an interceptor's refusal): running it
    /// again would fail the same way.
    Error,
}

/// The ledger could not be opened, read or written: the caller retries later.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the dispatch ledger is unavailable: {0}")]
    Open(#[from] BucketError),
    #[error("the dispatch ledger is unavailable: {0}")]
    Read(#[source] kv::EntryError),
    #[error("the dispatch ledger is unavailable: {0}")]
    Write(#[source] kv::PutError),
    #[error("the ledger entry cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

impl LedgerError {
    /// NATS unavailable is worth retrying; an entry that cannot be encoded is not.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Open(_) | Self::Read(_) | Self::Write(_) => FailureKind::Transient,
            Self::Encode(_) => FailureKind::Permanent,
        }
    }
}

/// The ledger, or none (offline rendering and unit tests).
#[derive(Clone)]
pub struct Ledger {
    store: Option<kv::Store>,
}

impl Ledger {
    /// A ledger that remembers nothing: every run is new.
    pub fn disabled() -> Self {
        Self { store: None }
    }

    /// Opens the bucket, creating it with `ttl` and `replicas` when it does not exist.
    pub async fn open(
        js: &jetstream::Context,
        ttl: Duration,
        replicas: usize,
    ) -> Result<Self, LedgerError> {
        let bucket = Bucket {
            name: LEDGER_BUCKET,
            description: "Sluice: trigger runs already done, by event key",
            max_age: ttl,
            replicas,
        };
        Ok(Self {
            store: Some(bucket.open(js).await?),
        })
    }

    /// The entry for `key`, if the run is done.
    pub async fn get(&self, key: &str) -> Result<Option<Entry>, LedgerError> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let Some(value) = store.get(key).await.map_err(LedgerError::Read)? else {
            return Ok(None);
        };
        match serde_json::from_slice(&value) {
            Ok(entry) => Ok(Some(entry)),
            Err(error) => {
                // Written by a newer or broken dispatcher: the run happened, whatever it left.
                tracing::warn!(%key, %error, "unreadable ledger entry; the run counts as done");
                Ok(Some(Entry {
                    outcome: RunOutcome::Created,
                    event_id: String::new(),
                    objects: Vec::new(),
                    at_ms: 0,
                    interceptor: None,
                    reason: None,
                }))
            }
        }
    }

    /// Records that the run `key` is done.
    pub async fn record(&self, key: &str, entry: &Entry) -> Result<(), LedgerError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let value = serde_json::to_vec(entry).map_err(LedgerError::Encode)?;
        store
            .put(key, value.into())
            .await
            .map_err(LedgerError::Write)?;
        Ok(())
    }
}
