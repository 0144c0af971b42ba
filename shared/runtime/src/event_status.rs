//! Event status: what became of each webhook, answered by event id or by the sender's
//! delivery id ("did my push arrive, which trigger ran, why not").
//!
//! Two places in JetStream hold it:
//! - the key-value bucket `SLUICE_STATUS`, kept as long as the events stream keeps events:
//!   one entry per event, `ev.<namespace>.<listener>.<delivery>.<event id>`, holding the
//!   event and each of its triggers' state ([`EventStatus`]), written by the dispatcher at
//!   the end of each delivery of the event (so once for most events); `<delivery>` is
//!   [`delivery_token`] of the sender's delivery id, so one delivery's events are found
//!   together;
//! - the stream `SLUICE_REFUSED`: deliveries ingest did not store ([`RefusedRecord`]:
//!   refused, filtered at the edge, or duplicates within the stream's window), the last
//!   [`REFUSED_PER_LISTENER`] per listener, on `sluice.refused.<namespace>.<listener>`
//!   (`_` for a listener that does not exist in a namespace that has listeners).
//!
//! Ingest writes nothing for an event it stores: one more message per event would cost
//! nats-server a third again of what storing the event does (docs/performance.md). An
//! event still waiting in its tenant's backlog has no record yet; the reader finds it in the
//! events stream itself, past the ack floor of the consumer that owes it, and shows its triggers
//! `pending` (`backlog`): the cost falls on the one asking, not on every event.
//!
//! Every name is one subject token ([`encode_token`]), so no name can reach another's keys.
//! Records are written with plain publishes, never awaited: status is what Sluice tells
//! about its work, not part of it, and a record lost in a NATS outage costs no event.

mod backlog;
mod read;
mod write;

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_triggers::idempotency::stored_delivery_id;

use crate::envelope::EventMeta;
use crate::subject::encode_token;

pub use read::{EventStatus, Listing, ReadError, StatusReader};
pub use write::StatusWriter;

/// The bucket of event and trigger records.
pub const STATUS_BUCKET: &str = "SLUICE_STATUS";
/// The stream of refused deliveries.
pub const REFUSED_STREAM: &str = "SLUICE_REFUSED";
/// Refused deliveries kept per listener.
pub const REFUSED_PER_LISTENER: i64 = 100;

const REFUSED_PREFIX: &str = "sluice.refused";
const KV_PREFIX: &str = "$KV.SLUICE_STATUS";

/// A stored event, as its envelope tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub namespace: String,
    pub event_listener: String,
    /// The sender's delivery id (`X-GitHub-Delivery`…), when it named one.
    #[serde(
        rename = "deliveryID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub delivery_id: Option<String>,
    /// RFC 3339.
    pub received_at: String,
    /// The triggers whose authentication passed: the ones that run.
    #[serde(default)]
    pub selected_triggers: Vec<String>,
    /// The event's sequence in the events stream (`sluice events redeliver` reads it there).
    pub sequence: u64,
}

impl EventRecord {
    /// The record of the event `meta` describes, stored at `sequence`.
    pub fn of(meta: &EventMeta, sequence: u64) -> Self {
        Self {
            event_id: meta.event_id.clone(),
            namespace: meta.namespace.clone(),
            event_listener: meta.listener.clone(),
            delivery_id: stored_delivery_id(&meta.headers).map(str::to_owned),
            received_at: rfc3339(meta.received_at_ms),
            selected_triggers: meta.triggers.clone(),
            sequence,
        }
    }
}

/// Where one trigger stands for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TriggerState {
    /// Selected, not run yet in any delivery (derived: nothing recorded for it).
    Pending,
    Created,
    /// An interceptor stopped it.
    Filtered,
    /// It failed for this event in a way no retry changes (a `cel` error); not retried.
    Error,
    /// It failed for now and will be tried again.
    Retrying,
    /// It failed for good; the event is in the dead-letter stream.
    DeadLettered,
    /// An earlier event of the same delivery already ran it; nothing created.
    Duplicate,
}

impl TriggerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Created => "created",
            Self::Filtered => "filtered",
            Self::Error => "error",
            Self::Retrying => "retrying",
            Self::DeadLettered => "dead_lettered",
            Self::Duplicate => "duplicate",
        }
    }
}

/// The last failure of a trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureRecord {
    /// `transient`, `permanent` or `bad_input`.
    pub kind: String,
    /// The HTTP status an API or interceptor answered, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub message: String,
}

/// An object a trigger created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
}

/// One trigger's state for one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerRecord {
    pub name: String,
    pub state: TriggerState,
    /// Deliveries of the event that ran this trigger so far.
    pub attempts: u64,
    /// Why it is in this state, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FailureRecord>,
    /// The interceptor that filtered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interceptor: Option<String>,
    /// RFC 3339: when a retrying trigger is tried next, at the earliest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// For a duplicate: the event that ran the trigger.
    #[serde(
        rename = "duplicateOf",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub duplicate_of: Option<String>,
    #[serde(default)]
    pub objects: Vec<ObjectRef>,
    /// RFC 3339.
    pub updated_at: String,
}

/// A delivery ingest refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedRecord {
    pub namespace: String,
    /// The listener asked for (as sent, cut to 64 characters, for an unknown one).
    pub event_listener: String,
    pub status: u16,
    /// The answer's stable code (`signature_invalid`…; `filtered` and `duplicate` for a
    /// `202` that stored nothing).
    pub code: String,
    pub message: String,
    #[serde(
        rename = "deliveryID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub delivery_id: Option<String>,
    /// RFC 3339.
    pub at: String,
}

/// Milliseconds since the epoch as RFC 3339 (`2026-12-05T10:00:00.120Z`), always with three
/// fractional digits, so that times sort as text (records are ordered by them).
pub fn rfc3339(epoch_ms: u64) -> String {
    jiff::Timestamp::from_millisecond(i64::try_from(epoch_ms).unwrap_or(i64::MAX))
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default()
}

/// The key token of a sender's delivery id: 32 hex digits of its SHA-256, or `none`.
pub fn delivery_token(delivery_id: Option<&str>) -> String {
    match delivery_id {
        Some(id) => hex32(&Sha256::digest(id.as_bytes())),
        None => "none".to_owned(),
    }
}

fn hex32(digest: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(32);
    for byte in &digest[..16] {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Event ids are UUIDs written in lower case; one typed in upper case is the same event.
pub fn normalise_event_id(event_id: &str) -> String {
    event_id.trim().to_ascii_lowercase()
}

/// `ev.<namespace>.<listener>.<delivery>.<event>`; `None` parts are `*`.
fn event_key(
    namespace: Option<&str>,
    listener: Option<&str>,
    delivery: Option<&str>,
    event_id: Option<&str>,
) -> String {
    let mut key = String::from("ev");
    for part in [namespace, listener, delivery, event_id] {
        key.push('.');
        match part {
            Some(part) => encode_token(part, &mut key),
            None => key.push('*'),
        }
    }
    key
}

/// The subject of a listener's refused deliveries; `None`: the listener does not exist.
pub fn refused_subject(namespace: &str, listener: Option<&str>) -> String {
    let mut subject = String::from(REFUSED_PREFIX);
    subject.push('.');
    encode_token(namespace, &mut subject);
    subject.push('.');
    match listener {
        Some(listener) => encode_token(listener, &mut subject),
        None => subject.push('_'),
    }
    subject
}

/// How long records are kept and how many copies: those of the events stream.
#[derive(Debug, Clone)]
pub struct StatusSettings {
    pub max_age: Duration,
    pub replicas: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("failed to open the event status bucket {STATUS_BUCKET}: {0}")]
    Bucket(#[source] jetstream::context::CreateKeyValueError),
    #[error("failed to open the refused-deliveries stream {REFUSED_STREAM}: {0}")]
    Stream(#[source] jetstream::context::CreateStreamError),
}

/// Creates the bucket and the stream when they do not exist; existing ones are used as they
/// are.
pub async fn ensure(js: &jetstream::Context, settings: &StatusSettings) -> Result<(), OpenError> {
    if js.get_key_value(STATUS_BUCKET).await.is_ok() {
        crate::jetstream::follow_replicas(js, &format!("KV_{STATUS_BUCKET}"), settings.replicas)
            .await;
    } else {
        js.create_key_value(kv::Config {
            bucket: STATUS_BUCKET.to_owned(),
            description: "Sluice: what became of each event, by trigger".to_owned(),
            history: 1,
            max_age: settings.max_age,
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            ..Default::default()
        })
        .await
        .map_err(OpenError::Bucket)?;
    }
    js.get_or_create_stream(stream::Config {
        name: REFUSED_STREAM.to_owned(),
        description: Some("Sluice: deliveries ingest refused, the last ones per listener".into()),
        subjects: vec![format!("{REFUSED_PREFIX}.>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_messages_per_subject: REFUSED_PER_LISTENER,
        max_age: settings.max_age,
        num_replicas: settings.replicas,
        allow_direct: true,
        ..Default::default()
    })
    .await
    .map_err(OpenError::Stream)?;
    crate::jetstream::follow_replicas(js, REFUSED_STREAM, settings.replicas).await;
    Ok(())
}

/// A writer through `client` once the bucket and stream exist, created in the background
/// (tried again with backoff while NATS refuses); until then records go nowhere. A disabled
/// writer without settings.
pub fn writer(
    client: &async_nats::Client,
    js: &jetstream::Context,
    settings: Option<StatusSettings>,
) -> StatusWriter {
    let Some(settings) = settings else {
        return StatusWriter::disabled();
    };
    let js = js.clone();
    tokio::spawn(async move {
        let mut retrying = crate::retry::Retrying::new(crate::retry::Backoff::new(
            Duration::from_millis(200),
            Duration::from_secs(10),
        ));
        while let Err(error) = ensure(&js, &settings).await {
            let next = retrying.failed();
            if next.log {
                tracing::warn!(%error, failures = next.failures, "cannot open the event status store; retrying");
            }
            tokio::time::sleep(next.wait).await;
        }
    });
    StatusWriter::new(client.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_every_name_in_its_own_token() {
        let id = "0b3f2c9e-1d2a-4e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(
            event_key(Some("team-a"), Some("github.v2"), Some("none"), Some(id)),
            format!("ev.team-a.github_2Ev2.none.{id}")
        );
        // A hostile id typed into a lookup can add neither tokens nor wildcards.
        assert_eq!(
            event_key(Some("team-a"), None, None, Some("x.>")),
            "ev.team-a.*.*.x_2E_3E"
        );
        assert_eq!(refused_subject("team-a", None), "sluice.refused.team-a._");
        assert_eq!(
            refused_subject("team-a", Some("_")),
            "sluice.refused.team-a._5F"
        );
    }

    #[test]
    fn delivery_tokens_are_fixed_size_and_distinct() {
        let a = delivery_token(Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
        let b = delivery_token(Some("72d3162e-cc78-11e3-81ab-4c9367dc0959"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(delivery_token(None), "none");
    }

    #[test]
    fn states_are_written_as_the_documented_words() {
        for state in [
            TriggerState::Pending,
            TriggerState::Created,
            TriggerState::Filtered,
            TriggerState::Error,
            TriggerState::Retrying,
            TriggerState::DeadLettered,
            TriggerState::Duplicate,
        ] {
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::String(state.as_str().to_owned())
            );
        }
    }

    #[test]
    fn times_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(1_764_928_800_123), "2025-12-05T10:00:00.123Z");
    }

    #[test]
    fn times_sort_as_text_in_time_order() {
        let times: Vec<String> = [1_764_928_800_000, 1_764_928_800_100, 1_764_928_800_120]
            .map(rfc3339)
            .into();
        assert_eq!(times[0], "2025-12-05T10:00:00.000Z");
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(sorted, times);
    }
}
