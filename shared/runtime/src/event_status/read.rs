//! Reading status records back: by event id, by delivery, or a listener's recent events.
//!
//! Each query is a short-lived consumer filtered on the keys it wants (the names in a
//! filter are encoded tokens, so nothing a caller types becomes a wildcard), read up to a
//! bound and deleted.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::subject::encode_token;

use super::{
    EventRecord, KV_PREFIX, REFUSED_STREAM, RefusedRecord, STATUS_BUCKET, TriggerRecord,
    TriggerState, delivery_token, event_key, normalise_event_id, refused_subject,
};

/// One event with each of its selected triggers, as stored and as shown: a selected trigger
/// nothing has been recorded for yet is shown `pending`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventStatus {
    #[serde(flatten)]
    pub event: EventRecord,
    #[serde(default)]
    pub triggers: Vec<TriggerRecord>,
}

impl EventStatus {
    /// `event` with `recorded` states, and `pending` for each selected trigger without one.
    pub fn new(event: EventRecord, mut recorded: Vec<TriggerRecord>) -> Self {
        let mut triggers = Vec::with_capacity(event.selected_triggers.len());
        for name in &event.selected_triggers {
            match recorded.iter().position(|t| &t.name == name) {
                Some(index) => triggers.push(recorded.swap_remove(index)),
                None => triggers.push(TriggerRecord {
                    name: name.clone(),
                    state: TriggerState::Pending,
                    attempts: 0,
                    reason: Some("not run yet".to_owned()),
                    error: None,
                    interceptor: None,
                    next_attempt_at: None,
                    duplicate_of: None,
                    objects: Vec::new(),
                    updated_at: event.received_at.clone(),
                }),
            }
        }
        triggers.extend(recorded);
        Self { event, triggers }
    }

    /// With `pending` for each selected trigger nothing is recorded for.
    fn complete(self) -> Self {
        Self::new(self.event, self.triggers)
    }

    /// Whether any trigger is in `state`.
    pub fn has(&self, state: TriggerState) -> bool {
        self.triggers.iter().any(|t| t.state == state)
    }
}

/// What a listing found, and whether it stopped at its bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    /// More matched than the bound let through.
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("event status is unavailable: {0}")]
pub struct ReadError(String);

impl ReadError {
    fn from(error: impl std::fmt::Display) -> Self {
        Self(error.to_string())
    }
}

/// Reads event status through a JetStream context.
#[derive(Clone)]
pub struct StatusReader {
    js: jetstream::Context,
}

/// Records read by one query at most.
const SCAN_BOUND: usize = 10_000;

impl StatusReader {
    pub fn new(js: jetstream::Context) -> Self {
        Self { js }
    }

    /// The event `event_id`, in `namespace` or in any namespace.
    pub async fn event(
        &self,
        namespace: Option<&str>,
        event_id: &str,
    ) -> Result<Option<EventStatus>, ReadError> {
        let event_id = normalise_event_id(event_id);
        let filter = event_key(namespace, None, None, Some(&event_id));
        let events = self
            .records::<EventStatus>(&filter, DeliverPolicy::LastPerSubject, 2)
            .await?;
        Ok(events.items.into_iter().next().map(EventStatus::complete))
    }

    /// The events of one delivery of `namespace`/`listener`, oldest first: the stored one,
    /// and any stored again after the duplicate window.
    pub async fn by_delivery(
        &self,
        namespace: &str,
        listener: &str,
        delivery_id: &str,
    ) -> Result<Vec<EventStatus>, ReadError> {
        let token = delivery_token(Some(delivery_id));
        let filter = event_key(Some(namespace), Some(listener), Some(&token), None);
        let mut events = self
            .records::<EventStatus>(&filter, DeliverPolicy::LastPerSubject, 100)
            .await?
            .items;
        events.sort_by(|a, b| a.event.received_at.cmp(&b.event.received_at));
        Ok(events.into_iter().map(EventStatus::complete).collect())
    }

    /// The events of `namespace` (of one listener if named) received in the last `since`,
    /// oldest first, at most `limit` of them, with a trigger in `state` if one is given.
    pub async fn list(
        &self,
        namespace: &str,
        listener: Option<&str>,
        since: Duration,
        state: Option<TriggerState>,
        limit: usize,
    ) -> Result<Listing<EventStatus>, ReadError> {
        let events = self
            .records::<EventStatus>(&scope(namespace, listener), start_time(since), SCAN_BOUND)
            .await?;
        // Oldest first, each event once with its last record (an event retried is written
        // once per delivery), in the order first seen.
        let mut latest: HashMap<String, EventStatus> = HashMap::new();
        let mut order = Vec::new();
        for status in events.items {
            if !latest.contains_key(&status.event.event_id) {
                order.push(status.event.event_id.clone());
            }
            latest.insert(status.event.event_id.clone(), status);
        }
        let mut items: Vec<EventStatus> = order
            .iter()
            .filter_map(|event_id| latest.remove(event_id))
            .map(EventStatus::complete)
            .filter(|status| state.is_none_or(|state| status.has(state)))
            .collect();
        let truncated = events.truncated || items.len() > limit;
        items.truncate(limit);
        Ok(Listing { items, truncated })
    }

    /// What ingest did not store of one delivery of `namespace`/`listener` (refused,
    /// filtered, a duplicate within the window), among the listener's last
    /// [`super::REFUSED_PER_LISTENER`], oldest first.
    pub async fn not_stored(
        &self,
        namespace: &str,
        listener: &str,
        delivery_id: &str,
    ) -> Result<Vec<RefusedRecord>, ReadError> {
        let mut found = self
            .read::<RefusedRecord>(
                REFUSED_STREAM,
                &refused_subject(namespace, Some(listener)),
                DeliverPolicy::All,
                SCAN_BOUND,
            )
            .await?
            .items;
        found.retain(|record| record.delivery_id.as_deref() == Some(delivery_id));
        found.sort_by(|a, b| a.at.cmp(&b.at));
        Ok(found)
    }

    /// The deliveries ingest refused for `namespace` (one listener if named; `None` also
    /// shows requests for listeners that do not exist), oldest first.
    pub async fn refused(
        &self,
        namespace: &str,
        listener: Option<&str>,
        since: Duration,
        limit: usize,
    ) -> Result<Listing<RefusedRecord>, ReadError> {
        let filter = match listener {
            Some(listener) => refused_subject(namespace, Some(listener)),
            None => refused_subject(namespace, None).replace("._", ".*"),
        };
        let mut found = self
            .read::<RefusedRecord>(REFUSED_STREAM, &filter, start_time(since), limit)
            .await?;
        found.items.sort_by(|a, b| a.at.cmp(&b.at));
        Ok(found)
    }

    async fn records<T: for<'de> Deserialize<'de>>(
        &self,
        key_filter: &str,
        policy: DeliverPolicy,
        bound: usize,
    ) -> Result<Listing<T>, ReadError> {
        self.read::<T>(
            &format!("KV_{STATUS_BUCKET}"),
            &format!("{KV_PREFIX}.{key_filter}"),
            policy,
            bound,
        )
        .await
    }

    /// Up to `bound` records on `filter` in `stream`, skipping what cannot be decoded (a
    /// deleted key's marker, a newer layout).
    async fn read<T: for<'de> Deserialize<'de>>(
        &self,
        stream_name: &str,
        filter: &str,
        policy: DeliverPolicy,
        bound: usize,
    ) -> Result<Listing<T>, ReadError> {
        let stream = match self.js.get_stream(stream_name).await {
            Ok(stream) => stream,
            Err(error) if stream_not_found(&error) => {
                // Nothing was ever recorded.
                return Ok(Listing {
                    items: Vec::new(),
                    truncated: false,
                });
            }
            Err(error) => return Err(ReadError::from(error)),
        };
        let consumer: jetstream::consumer::Consumer<pull::Config> = stream
            .create_consumer(pull::Config {
                filter_subject: filter.to_owned(),
                deliver_policy: policy,
                ack_policy: AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                memory_storage: true,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .map_err(ReadError::from)?;
        let pending = usize::try_from(consumer.cached_info().num_pending).unwrap_or(usize::MAX);
        let wanted = pending.min(bound);
        let mut items = Vec::with_capacity(wanted.min(1_000));
        let mut delivered = 0;
        while delivered < wanted {
            let mut batch = consumer
                .fetch()
                .max_messages((wanted - delivered).min(1_000))
                .expires(Duration::from_secs(2))
                .messages()
                .await
                .map_err(ReadError::from)?;
            let before = delivered;
            while let Some(message) = batch.next().await {
                let message = message.map_err(ReadError::from)?;
                delivered += 1;
                if let Ok(record) = serde_json::from_slice::<T>(&message.payload) {
                    items.push(record);
                }
            }
            if delivered == before {
                break;
            }
        }
        let name = consumer.cached_info().name.clone();
        if let Err(error) = stream.delete_consumer(&name).await {
            tracing::debug!(%error, "status query consumer not deleted; it expires by itself");
        }
        Ok(Listing {
            items,
            truncated: pending > bound,
        })
    }
}

fn stream_not_found(error: &jetstream::context::GetStreamError) -> bool {
    matches!(
        error.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(error)
            if error.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// Records from `since` ago onwards.
fn start_time(since: Duration) -> DeliverPolicy {
    let now = time::OffsetDateTime::now_utc();
    let start = now - time::Duration::try_from(since).unwrap_or(time::Duration::ZERO);
    DeliverPolicy::ByStartTime { start_time: start }
}

/// `ev.<namespace>.>` or `ev.<namespace>.<listener>.>`.
fn scope(namespace: &str, listener: Option<&str>) -> String {
    let mut filter = String::from("ev");
    for part in std::iter::once(namespace).chain(listener) {
        filter.push('.');
        encode_token(part, &mut filter);
    }
    filter.push_str(".>");
    filter
}
