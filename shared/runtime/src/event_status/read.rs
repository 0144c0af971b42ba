//! Reading status records back: by event id, by delivery, or a listener's recent events.
//!
//! Each query is a short-lived consumer filtered on the keys it wants (the names in a
//! filter are encoded tokens, so nothing a caller types becomes a wildcard), read up to a
//! bound and deleted. What has no record yet is looked for in the backlog ([`super::backlog`]).

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sluice_triggers::idempotency::stored_delivery_id;

use crate::clock::now_ms;
use crate::subject::encode_token;

use super::backlog::Scope;
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
    pub(super) fn from(error: impl std::fmt::Display) -> Self {
        Self(error.to_string())
    }
}

/// Reads event status through a JetStream context.
#[derive(Clone)]
pub struct StatusReader {
    pub(super) js: jetstream::Context,
    /// The dispatchers' consumer name (`--consumer`): tenant `ns` is consumed by
    /// `<consumer>-<ns>`, whose ack floor tells which events are waiting.
    pub(super) consumer: String,
}

/// Records read by one query at most.
pub(super) const SCAN_BOUND: usize = 10_000;

impl StatusReader {
    /// A reader through `js` of the records of dispatchers named `consumer`.
    pub fn new(js: jetstream::Context, consumer: impl Into<String>) -> Self {
        Self {
            js,
            consumer: consumer.into(),
        }
    }

    /// The event `event_id`, in `namespace` or in any namespace: as recorded, or as it waits
    /// in its tenant's backlog.
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
        if let Some(status) = events.items.into_iter().next() {
            return Ok(Some(status.complete()));
        }
        let scope = Scope {
            namespace,
            listener: None,
        };
        let mut waiting = self
            .waiting(scope, &HashSet::new(), 1, |meta| meta.event_id == event_id)
            .await?;
        Ok(waiting.pop())
    }

    /// The events of one delivery of `namespace`/`listener`, oldest first: the stored one,
    /// any stored again after the duplicate window, and any still waiting in the backlog.
    pub async fn by_delivery(
        &self,
        namespace: &str,
        listener: &str,
        delivery_id: &str,
    ) -> Result<Vec<EventStatus>, ReadError> {
        let token = delivery_token(Some(delivery_id));
        let filter = event_key(Some(namespace), Some(listener), Some(&token), None);
        let mut events: Vec<EventStatus> = self
            .records::<EventStatus>(&filter, DeliverPolicy::LastPerSubject, 100)
            .await?
            .items
            .into_iter()
            .map(EventStatus::complete)
            .collect();
        let recorded = events.iter().map(|e| e.event.event_id.clone()).collect();
        let scope = Scope {
            namespace: Some(namespace),
            listener: Some(listener),
        };
        let waiting = self
            .waiting(scope, &recorded, 100, |meta| {
                stored_delivery_id(&meta.headers) == Some(delivery_id)
            })
            .await?;
        events.extend(waiting);
        events.sort_by(|a, b| a.event.received_at.cmp(&b.event.received_at));
        Ok(events)
    }

    /// The events of `namespace` (of one listener if named) received in the last `since`,
    /// oldest first, at most `limit` of them, with a trigger in `state` if one is given;
    /// events waiting in the backlog come last, `pending`.
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
        let recorded: HashSet<String> = order.iter().cloned().collect();
        let mut items: Vec<EventStatus> = order
            .iter()
            .filter_map(|event_id| latest.remove(event_id))
            .map(EventStatus::complete)
            .filter(|status| state.is_none_or(|state| status.has(state)))
            .collect();
        let mut truncated = events.truncated;
        if state.is_none_or(|state| state == TriggerState::Pending) && items.len() <= limit {
            let since_ms =
                now_ms().saturating_sub(u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
            let scope = Scope {
                namespace: Some(namespace),
                listener,
            };
            // One more than fits, to tell whether the listing was cut.
            let room = limit + 1 - items.len();
            let waiting = self
                .waiting(scope, &recorded, room, |meta| {
                    meta.received_at_ms >= since_ms
                })
                .await?;
            items.extend(waiting);
        }
        truncated |= items.len() > limit;
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
        let mut items = Vec::new();
        let truncated = self
            .scan(stream_name, filter, policy, bound, |message| {
                if let Ok(record) = serde_json::from_slice::<T>(&message.payload) {
                    items.push(record);
                }
                ControlFlow::Continue(())
            })
            .await?;
        Ok(Listing { items, truncated })
    }

    /// Hands the messages on `filter` in `stream_name`, from `policy` on, to `visit` until
    /// `bound` were read or it breaks; whether more matched than were read. Nothing when the
    /// stream does not exist (nothing was ever recorded there).
    pub(super) async fn scan(
        &self,
        stream_name: &str,
        filter: &str,
        policy: DeliverPolicy,
        bound: usize,
        mut visit: impl FnMut(&jetstream::Message) -> ControlFlow<()>,
    ) -> Result<bool, ReadError> {
        let stream = match self.js.get_stream(stream_name).await {
            Ok(stream) => stream,
            Err(error) if stream_not_found(&error) => return Ok(false),
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
        let mut delivered = 0;
        'read: while delivered < wanted {
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
                if visit(&message).is_break() {
                    break 'read;
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
        Ok(pending > bound)
    }
}

pub(super) fn stream_not_found(error: &jetstream::context::GetStreamError) -> bool {
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
