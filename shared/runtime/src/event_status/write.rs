//! Writing status records: plain publishes onto the bucket's and the stream's subjects,
//! never awaited for an acknowledgement.

use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use super::{EventStatus, KV_PREFIX, RefusedRecord, event_key, refused_subject};
use crate::clock::now_ms;
use crate::token_bucket::{Refill, TokenBucket};

/// Refused deliveries recorded per second at most, per process, so that a flood of forged
/// or over-limit requests costs NATS little; the rest are only counted.
const REFUSED_PER_SECOND: f64 = 50.0;
const REFUSED_BURST: f64 = 200.0;
/// Refused records that may wait for NATS before more are only counted.
const REFUSED_QUEUE: usize = 1024;

/// Writes status records; a disabled writer writes nothing.
pub struct StatusWriter {
    client: Option<async_nats::Client>,
    refused_budget: Mutex<TokenBucket>,
    /// Refused deliveries over the budget, not recorded.
    refused_unrecorded: Counter,
    /// Refused records on their way to the one task that publishes them, in the order the
    /// deliveries were refused (a task per record could store them in any order).
    refused_queue: OnceLock<mpsc::Sender<(String, Bytes)>>,
}

impl StatusWriter {
    /// Writes through `client` (the bucket and stream exist: see [`super::ensure`]).
    pub fn new(client: async_nats::Client) -> Self {
        Self::with(Some(client))
    }

    /// Writes nothing (`--event-status=false`, offline tools, unit tests).
    pub fn disabled() -> Self {
        Self::with(None)
    }

    fn with(client: Option<async_nats::Client>) -> Self {
        Self {
            client,
            refused_budget: Mutex::new(TokenBucket::full(refill(), now_ms())),
            refused_unrecorded: Counter::default(),
            refused_queue: OnceLock::new(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.client.is_some()
    }

    /// Records an event and its triggers' states, replacing what was recorded before.
    pub async fn event(&self, status: &EventStatus) {
        let Some(client) = &self.client else { return };
        let record = &status.event;
        let delivery = super::delivery_token(record.delivery_id.as_deref());
        let key = event_key(
            Some(&record.namespace),
            Some(&record.event_listener),
            Some(&delivery),
            Some(&record.event_id),
        );
        publish(client, format!("{KV_PREFIX}.{key}"), status).await;
    }

    /// Records a delivery ingest did not store (refused, or filtered at the edge), within
    /// the per-process budget: `record` is only built within it. `listener_exists: false`
    /// files it under the namespace's `_`. Never waits: one task publishes the records in
    /// the order they came, since a refusal may come while NATS is away; past a thousand
    /// waiting, a refusal is only counted.
    pub fn refused(&self, listener_exists: bool, record: impl FnOnce() -> RefusedRecord) {
        let Some(client) = &self.client else { return };
        if !self.take_refused_budget() {
            self.refused_unrecorded.inc();
            return;
        }
        let record = record();
        let subject = refused_subject(
            &record.namespace,
            listener_exists.then_some(record.event_listener.as_str()),
        );
        let Some(payload) = encode(&record) else {
            return;
        };
        let queue = self.refused_queue.get_or_init(|| {
            let (queue, mut queued) = mpsc::channel::<(String, Bytes)>(REFUSED_QUEUE);
            let client = client.clone();
            tokio::spawn(async move {
                while let Some((subject, payload)) = queued.recv().await {
                    if let Err(error) = client.publish(subject, payload).await {
                        tracing::debug!(%error, "status record not written");
                    }
                }
            });
            queue
        });
        if queue.try_send((subject, payload)).is_err() {
            // NATS has been away for a thousand refusals.
            self.refused_unrecorded.inc();
        }
    }

    /// Counts refused deliveries left unrecorded (over the budget) in `counter`.
    pub fn counting_unrecorded(mut self, counter: Counter) -> Self {
        self.refused_unrecorded = counter;
        self
    }

    fn take_refused_budget(&self) -> bool {
        let mut bucket = self
            .refused_budget
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match bucket.take(refill(), now_ms()) {
            Ok(next) => {
                *bucket = next;
                true
            }
            Err(_) => false,
        }
    }
}

fn refill() -> Refill {
    Refill::per_second(REFUSED_PER_SECOND, REFUSED_BURST)
}

async fn publish<T: serde::Serialize>(client: &async_nats::Client, subject: String, record: &T) {
    let Some(payload) = encode(record) else {
        return;
    };
    if let Err(error) = client.publish(subject, payload).await {
        tracing::debug!(%error, "status record not written");
    }
}

fn encode<T: serde::Serialize>(record: &T) -> Option<Bytes> {
    match serde_json::to_vec(record) {
        Ok(payload) => Some(Bytes::from(payload)),
        Err(error) => {
            tracing::warn!(%error, "status record cannot be encoded; not written");
            None
        }
    }
}
