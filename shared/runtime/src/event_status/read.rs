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
    TriggerState, delivery_token, event_key, normalise_event_id, refused_subject, trigger_key,
};

/// One event with each of its selected triggers: a trigger nothing has been recorded for yet
/// is `pending`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventStatus {
    #[serde(flatten)]
    pub event: EventRecord,
    pub triggers: Vec<TriggerRecord>,
}

impl EventStatus {
    fn new(event: EventRecord, mut recorded: Vec<TriggerRecord>) -> Self {
        let mut triggers = Vec::with_capacity(event.selected_triggers.len());
        for name in &event.selected_triggers {
            match recorded.iter().position(|t| &t.name == name) {
                Some(index) => triggers.push(recorded.swap_remove(index)),
                None => triggers.push(TriggerRecord {
                    name: name.clone(),
                    state: TriggerState::Pending,
                    attempts: 0,
                    reason: Some("stored; not run yet".to_owned()),
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
            .records::<EventRecord>(&filter, DeliverPolicy::LastPerSubject, 2)
            .await?
            .into_items();
        match events.items.into_iter().next() {
            Some(event) => Ok(Some(self.with_triggers(event).await?)),
            None => Ok(None),
        }
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
            .records::<EventRecord>(&filter, DeliverPolicy::LastPerSubject, 100)
            .await?
            .into_items()
            .items;
        events.sort_by(|a, b| a.received_at.cmp(&b.received_at));
        let mut found = Vec::with_capacity(events.len());
        for event in events {
            found.push(self.with_triggers(event).await?);
        }
        Ok(found)
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
        let start = start_time(since);
        let events = self
            .records::<EventRecord>(&scope("ev", namespace, listener), start, SCAN_BOUND)
            .await?;
        let triggers = self
            .records::<TriggerRecord>(&scope("tr", namespace, listener), start, SCAN_BOUND)
            .await?;
        // Oldest first, so a later write of the same key replaces an earlier one.
        let mut recorded: HashMap<String, Vec<TriggerRecord>> = HashMap::new();
        for (key, trigger) in triggers.keyed {
            // tr.<namespace>.<listener>.<event>.<trigger>
            if let Some(event_id) = key.split('.').nth(3) {
                let of_event = recorded.entry(event_id.to_owned()).or_default();
                of_event.retain(|t| t.name != trigger.name);
                of_event.push(trigger);
            }
        }
        let mut latest: HashMap<String, EventRecord> = HashMap::new();
        let mut order = Vec::new();
        for (_, event) in events.keyed {
            if !latest.contains_key(&event.event_id) {
                order.push(event.event_id.clone());
            }
            latest.insert(event.event_id.clone(), event);
        }
        let mut items = Vec::new();
        for event_id in order {
            let Some(event) = latest.remove(&event_id) else {
                continue;
            };
            let status = EventStatus::new(event, recorded.remove(&event_id).unwrap_or_default());
            if state.is_none_or(|state| status.has(state)) {
                items.push(status);
            }
        }
        let truncated = events.truncated || items.len() > limit;
        items.truncate(limit);
        Ok(Listing { items, truncated })
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
        found.items.sort_by(|a, b| a.1.at.cmp(&b.1.at));
        Ok(Listing {
            items: found.items.into_iter().map(|(_, record)| record).collect(),
            truncated: found.truncated,
        })
    }

    async fn with_triggers(&self, event: EventRecord) -> Result<EventStatus, ReadError> {
        let filter = trigger_key(
            &event.namespace,
            Some(&event.event_listener),
            Some(&event.event_id),
            None,
        );
        let recorded = self
            .records::<TriggerRecord>(&filter, DeliverPolicy::LastPerSubject, 1_000)
            .await?
            .into_items()
            .items;
        Ok(EventStatus::new(event, recorded))
    }

    async fn records<T: for<'de> Deserialize<'de>>(
        &self,
        key_filter: &str,
        policy: DeliverPolicy,
        bound: usize,
    ) -> Result<Keyed<T>, ReadError> {
        let found = self
            .read::<T>(
                &format!("KV_{STATUS_BUCKET}"),
                &format!("{KV_PREFIX}.{key_filter}"),
                policy,
                bound,
            )
            .await?;
        let prefix = KV_PREFIX.len() + 1;
        let keyed: Vec<(String, T)> = found
            .items
            .into_iter()
            .map(|(subject, record)| (subject.get(prefix..).unwrap_or_default().to_owned(), record))
            .collect();
        Ok(Keyed {
            truncated: found.truncated,
            keyed,
        })
    }

    /// Up to `bound` records on `filter` in `stream` (subject and record), skipping what
    /// cannot be decoded (a deleted key's marker, a newer layout).
    async fn read<T: for<'de> Deserialize<'de>>(
        &self,
        stream_name: &str,
        filter: &str,
        policy: DeliverPolicy,
        bound: usize,
    ) -> Result<Listing<(String, T)>, ReadError> {
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
                    items.push((message.subject.to_string(), record));
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

struct Keyed<T> {
    keyed: Vec<(String, T)>,
    truncated: bool,
}

impl<T> Keyed<T> {
    fn into_items(self) -> Listing<T> {
        Listing {
            items: self.keyed.into_iter().map(|(_, record)| record).collect(),
            truncated: self.truncated,
        }
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

/// `<kind>.<namespace>.>` or `<kind>.<namespace>.<listener>.>`.
fn scope(kind: &str, namespace: &str, listener: Option<&str>) -> String {
    let mut filter = String::from(kind);
    for part in std::iter::once(namespace).chain(listener) {
        filter.push('.');
        encode_token(part, &mut filter);
    }
    filter.push_str(".>");
    filter
}
