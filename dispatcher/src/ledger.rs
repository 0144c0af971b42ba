//! The dispatch ledger: a JetStream key-value bucket recording, per (event key, trigger),
//! that the trigger's run is done, so that a redelivery days later (GitHub's "Redeliver", a
//! replayed dead letter, a duplicate past the stream's dedup window) creates nothing new even
//! if the objects were deleted since. Entries expire after `--ledger-ttl`.
//!
//! Every run reads the ledger before it creates anything. The reads of the events in flight
//! are gathered by one task and sent as one batched request while the previous one is
//! answered ([`sluice_runtime::kv_batch`]): a busy replica asks once for many keys rather
//! than once per key, and an idle one sends each read at once, alone. A server that cannot
//! read in batches is read key by key.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::future::join_all;
use prometheus_client::metrics::histogram::Histogram;
use serde::{Deserialize, Serialize};
use sluice_runtime::jetstream::{Bucket, BucketError};
use sluice_runtime::kv_batch::{self, BatchReadError};
use sluice_runtime::retry::FailureKind;
use tokio::sync::{mpsc, oneshot};

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
    BatchRead(#[source] BatchReadError),
    #[error("the dispatch ledger is unavailable: {0}")]
    Write(#[source] kv::PutError),
    #[error("the ledger entry cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

impl LedgerError {
    /// NATS unavailable is worth retrying; an entry that cannot be encoded is not.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Open(_) | Self::Read(_) | Self::BatchRead(_) | Self::Write(_) => {
                FailureKind::Transient
            }
            Self::Encode(_) => FailureKind::Permanent,
        }
    }
}

/// Reads waiting for the reader task, at most; a run waits for room beyond that.
const READ_QUEUE: usize = 1024;
/// Keys in one batched read, at most.
const BATCH_KEYS: usize = 256;
/// How long a batched read may take before its reads fail (their events are retried): as
/// long as the dispatcher's other JetStream requests.
const BATCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The ledger, or none (offline rendering and unit tests).
#[derive(Clone)]
pub struct Ledger {
    store: Option<kv::Store>,
    /// The reader task's queue.
    reads: Option<mpsc::Sender<Read>>,
}

/// A read for the reader task: the key, and where its value goes.
struct Read {
    key: String,
    answer: oneshot::Sender<Result<Option<Bytes>, LedgerError>>,
}

impl Ledger {
    /// A ledger that remembers nothing: every run is new.
    pub fn disabled() -> Self {
        Self {
            store: None,
            reads: None,
        }
    }

    /// Opens the bucket, creating it with `ttl` and `replicas` when it does not exist;
    /// `per_request` counts the reads each request to NATS answers.
    pub async fn open(
        js: &jetstream::Context,
        ttl: Duration,
        replicas: usize,
        per_request: Histogram,
    ) -> Result<Self, LedgerError> {
        let bucket = Bucket {
            name: LEDGER_BUCKET,
            description: "Sluice: trigger runs already done, by event key",
            max_age: ttl,
            replicas,
        };
        let store = bucket.open(js).await?;
        let (reads, queue) = mpsc::channel(READ_QUEUE);
        tokio::spawn(read_in_batches(
            js.client(),
            store.clone(),
            queue,
            per_request,
        ));
        Ok(Self {
            store: Some(store),
            reads: Some(reads),
        })
    }

    /// The entry for `key`, if the run is done.
    pub async fn get(&self, key: &str) -> Result<Option<Entry>, LedgerError> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let value = match &self.reads {
            Some(reads) => {
                let (answer, answered) = oneshot::channel();
                let read = Read {
                    key: key.to_owned(),
                    answer,
                };
                match reads.send(read).await {
                    Ok(()) => answered.await.unwrap_or_else(|_| {
                        Err(LedgerError::BatchRead(BatchReadError::Failed(
                            "the ledger's reader stopped".to_owned(),
                        )))
                    })?,
                    // The reader is gone (the runtime is shutting down): read it here.
                    Err(_) => read_one(store, key).await?,
                }
            }
            None => read_one(store, key).await?,
        };
        let Some(value) = value else {
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

async fn read_one(store: &kv::Store, key: &str) -> Result<Option<Bytes>, LedgerError> {
    store.get(key).await.map_err(LedgerError::Read)
}

/// The reader task: takes every read waiting, answers them with one batched request (one
/// alone, or all one by one once the server has said it cannot batch), and again.
async fn read_in_batches(
    client: async_nats::Client,
    store: kv::Store,
    mut queue: mpsc::Receiver<Read>,
    per_request: Histogram,
) {
    let mut batched = true;
    let mut reads = Vec::with_capacity(BATCH_KEYS);
    while queue.recv_many(&mut reads, BATCH_KEYS).await > 0 {
        if reads.len() == 1 || !batched {
            one_by_one(&store, &mut reads, &per_request).await;
            continue;
        }
        let keys: Vec<&str> = reads.iter().map(|read| read.key.as_str()).collect();
        match kv_batch::last_values(&client, LEDGER_BUCKET, &keys, BATCH_TIMEOUT).await {
            Ok(values) => {
                per_request.observe(reads.len() as f64);
                // The same key may be read twice (two events with one idempotency key).
                for read in reads.drain(..) {
                    let _ = read.answer.send(Ok(values.get(&read.key).cloned()));
                }
            }
            Err(BatchReadError::Unsupported(why)) => {
                tracing::warn!(%why, "the ledger is read key by key: the server does not read keys in batches");
                batched = false;
                one_by_one(&store, &mut reads, &per_request).await;
            }
            Err(error) => {
                for read in reads.drain(..) {
                    let _ = read.answer.send(Err(LedgerError::BatchRead(error.clone())));
                }
            }
        }
    }
}

/// Answers each of `reads` with a read of its own, all at once.
async fn one_by_one(store: &kv::Store, reads: &mut Vec<Read>, per_request: &Histogram) {
    let answers = join_all(reads.iter().map(|read| read_one(store, &read.key))).await;
    for (read, answer) in reads.drain(..).zip(answers) {
        if answer.is_ok() {
            per_request.observe(1.0);
        }
        let _ = read.answer.send(answer);
    }
}
