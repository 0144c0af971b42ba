//! Dead letters: events (or one trigger of an event) that failed for good, kept in the
//! JetStream stream `SLUICE_DLQ` until an operator replays or purges them.
//!
//! A dead letter is one NATS message on `sluice.dlq.<namespace>.<listener>`. Its payload is
//! the original stored event, byte for byte (so a replay publishes exactly what ingest
//! accepted); its headers say what failed and why. Its stream sequence is its ID for
//! `sluice dlq show|replay|purge`.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;

pub use crate::retry::FailureKind;
use crate::subject::encode_token;

/// The stream that holds dead letters.
pub const DLQ_STREAM: &str = "SLUICE_DLQ";
/// Subjects of all dead letters.
pub const DLQ_WILDCARD: &str = "sluice.dlq.>";
const DLQ_PREFIX: &str = "sluice.dlq";

/// The trigger that failed; absent when the whole event failed (its listener is gone, its
/// body cannot be read), in which case a replay runs every trigger the event names.
pub const HEADER_TRIGGER: &str = "Sluice-Trigger";
/// Why, in words: the last error.
pub const HEADER_REASON: &str = "Sluice-Reason";
/// `permanent` (retrying cannot help), `transient` (retries ran out) or `bad_input` (the
/// event itself cannot run): [`FailureKind::as_str`].
pub const HEADER_KIND: &str = "Sluice-Failure-Kind";
/// Deliveries of the event when it was given up.
pub const HEADER_ATTEMPTS: &str = "Sluice-Attempts";
/// The event's ID (`eventID` in the 202), when the event could be decoded.
pub const HEADER_EVENT_ID: &str = "Sluice-Event-Id";
pub const HEADER_NAMESPACE: &str = "Sluice-Namespace";
pub const HEADER_LISTENER: &str = "Sluice-Listener";
/// When it was given up, in milliseconds since the Unix epoch.
pub const HEADER_FAILED_AT: &str = "Sluice-Failed-At";

/// One dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub namespace: String,
    pub listener: String,
    /// `None`: the whole event.
    pub trigger: Option<String>,
    pub event_id: Option<String>,
    pub reason: String,
    pub kind: FailureKind,
    pub attempts: u64,
    pub failed_at_ms: u64,
    /// The event exactly as it was stored in the events stream.
    pub event: Bytes,
}

/// A stored message that is not a dead letter this version understands.
#[derive(Debug, thiserror::Error)]
#[error("not a Sluice dead letter: {0}")]
pub struct NotADeadLetter(String);

impl DeadLetter {
    /// The subject it is published on.
    pub fn subject(&self) -> String {
        dead_letter_subject(&self.namespace, &self.listener)
    }

    /// Its headers; header values are single lines, so line breaks in a reason become spaces.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let line = |text: &str| text.replace(['\r', '\n'], " ");
        headers.insert(HEADER_NAMESPACE, line(&self.namespace).as_str());
        headers.insert(HEADER_LISTENER, line(&self.listener).as_str());
        if let Some(trigger) = &self.trigger {
            headers.insert(HEADER_TRIGGER, line(trigger).as_str());
        }
        if let Some(event_id) = &self.event_id {
            headers.insert(HEADER_EVENT_ID, line(event_id).as_str());
        }
        headers.insert(HEADER_REASON, line(&self.reason).as_str());
        headers.insert(HEADER_KIND, self.kind.as_str());
        headers.insert(HEADER_ATTEMPTS, self.attempts.to_string().as_str());
        headers.insert(HEADER_FAILED_AT, self.failed_at_ms.to_string().as_str());
        headers
    }

    /// Reads a dead letter back from a stored message's headers and payload.
    pub fn from_message(
        headers: Option<&HeaderMap>,
        payload: Bytes,
    ) -> Result<Self, NotADeadLetter> {
        let headers = headers.ok_or_else(|| NotADeadLetter("it has no headers".to_owned()))?;
        let get = |name: &str| headers.get(name).map(|value| value.as_str().to_owned());
        let required = |name: &str| {
            get(name).ok_or_else(|| NotADeadLetter(format!("header {name} is missing")))
        };
        let number = |name: &str| -> Result<u64, NotADeadLetter> {
            required(name)?
                .parse()
                .map_err(|_| NotADeadLetter(format!("header {name} is not a number")))
        };
        let kind = required(HEADER_KIND)?;
        Ok(Self {
            namespace: required(HEADER_NAMESPACE)?,
            listener: required(HEADER_LISTENER)?,
            trigger: get(HEADER_TRIGGER),
            event_id: get(HEADER_EVENT_ID),
            reason: required(HEADER_REASON)?,
            kind: FailureKind::parse(&kind)
                .ok_or_else(|| NotADeadLetter(format!("unknown failure kind `{kind}`")))?,
            attempts: number(HEADER_ATTEMPTS)?,
            failed_at_ms: number(HEADER_FAILED_AT)?,
            event: payload,
        })
    }
}

/// The subject of dead letters for `namespace`/`listener`.
pub fn dead_letter_subject(namespace: &str, listener: &str) -> String {
    let mut subject = String::from(DLQ_PREFIX);
    subject.push('.');
    encode_token(namespace, &mut subject);
    subject.push('.');
    encode_token(listener, &mut subject);
    subject
}

/// How the dead-letter stream is kept.
#[derive(Debug, Clone)]
pub struct DlqSettings {
    /// How long a dead letter is kept before it expires unreplayed.
    pub max_age: Duration,
    pub replicas: usize,
}

impl DlqSettings {
    fn config(&self) -> stream::Config {
        stream::Config {
            name: DLQ_STREAM.to_owned(),
            subjects: vec![DLQ_WILDCARD.to_owned()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            // A full stream refuses the dead letter; the dispatcher then keeps the event
            // pending instead of acknowledging a failure nobody could see.
            discard: stream::DiscardPolicy::New,
            max_age: self.max_age,
            num_replicas: self.replicas,
            allow_direct: true,
            ..Default::default()
        }
    }
}

/// Creates the dead-letter stream if it does not exist and returns it.
pub async fn ensure_dlq_stream(
    js: &jetstream::Context,
    settings: &DlqSettings,
) -> Result<stream::Stream, jetstream::context::CreateStreamError> {
    let stream = js.get_or_create_stream(settings.config()).await?;
    crate::jetstream::follow_replicas(js, DLQ_STREAM, settings.replicas).await;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_survives_its_headers() {
        let letter = DeadLetter {
            namespace: "team-a".into(),
            listener: "github.v2".into(),
            trigger: Some("build".into()),
            event_id: Some("e-1".into()),
            reason: "create of object 0 failed:\nthe API answered 403".into(),
            kind: FailureKind::Permanent,
            attempts: 1,
            failed_at_ms: 1_764_000_000_000,
            event: Bytes::from_static(b"{\"meta\":1}\n{\"body\":true}"),
        };
        assert_eq!(letter.subject(), "sluice.dlq.team-a.github_2Ev2");
        let back = DeadLetter::from_message(Some(&letter.headers()), letter.event.clone()).unwrap();
        assert_eq!(
            back.reason, "create of object 0 failed: the API answered 403",
            "one line"
        );
        assert_eq!(
            DeadLetter {
                reason: letter.reason.replace('\n', " "),
                ..letter
            },
            back
        );
        let mut whole_event = back.clone();
        whole_event.trigger = None;
        let again =
            DeadLetter::from_message(Some(&whole_event.headers()), whole_event.event.clone())
                .unwrap();
        assert_eq!(again.trigger, None);
        assert!(DeadLetter::from_message(None, Bytes::new()).is_err());
    }
}
