//! Dead letters: what failed for good is stored in `SLUICE_DLQ` (see
//! `sluice_runtime::dlq`), and its event acknowledged only once the dead letter is durable;
//! if it cannot be stored, the event stays queued.

use async_nats::jetstream;
use bytes::Bytes;
use sluice_runtime::clock::now_ms;
use sluice_runtime::dlq::{DeadLetter, FailureKind};
use sluice_runtime::envelope::DecodeError;
use sluice_runtime::telemetry::traces::{self, TRACEPARENT_HEADER};

use super::{Delivery, Dispatcher, Disposition};
use crate::metrics::EventOutcome;

/// The dead letter could not be stored: the caller keeps the event pending.
#[derive(Debug, thiserror::Error)]
#[error("the dead-letter stream did not store the failure: {0}")]
pub struct DeadLetterError(#[source] jetstream::context::PublishError);

/// Where dead letters go, or nowhere (unit tests).
#[derive(Clone)]
pub struct DeadLetters {
    js: Option<jetstream::Context>,
}

impl DeadLetters {
    pub fn new(js: jetstream::Context) -> Self {
        Self { js: Some(js) }
    }

    /// Dead letters are only logged.
    pub fn disabled() -> Self {
        Self { js: None }
    }

    /// Stores `letter` and waits for JetStream's ack; returns its ID (stream sequence).
    pub async fn publish(&self, letter: &DeadLetter) -> Result<u64, DeadLetterError> {
        let Some(js) = &self.js else {
            return Ok(0);
        };
        let mut headers = letter.headers();
        // The span that gave the event up, for a replay to link to.
        if let Some(traceparent) = traces::traceparent() {
            headers.insert(TRACEPARENT_HEADER, traceparent.as_str());
        }
        let ack = js
            .publish_with_headers(letter.subject(), headers, letter.event.clone())
            .await
            .map_err(DeadLetterError)?
            .await
            .map_err(DeadLetterError)?;
        Ok(ack.sequence)
    }
}

impl Dispatcher {
    /// A dead letter for this delivery.
    pub(super) fn letter(
        &self,
        delivery: Delivery<'_>,
        trigger: Option<&str>,
        reason: &str,
        kind: FailureKind,
    ) -> DeadLetter {
        let meta = &delivery.envelope.meta;
        DeadLetter {
            namespace: meta.namespace.clone(),
            listener: meta.listener.clone(),
            trigger: trigger.map(str::to_owned),
            event_id: Some(meta.event_id.clone()),
            reason: reason.to_owned(),
            kind,
            attempts: delivery.attempt,
            failed_at_ms: now_ms(),
            event: delivery.raw.clone(),
        }
    }

    /// Stores a dead letter; `false` when it could not be (logged): keep the event.
    pub(super) async fn store_letter(&self, letter: &DeadLetter) -> bool {
        match self.dead_letters.publish(letter).await {
            Ok(id) => {
                self.metrics
                    .dead_letter(&letter.namespace, &letter.listener, letter.kind);
                tracing::error!(
                    dead_letter = id,
                    namespace = %letter.namespace,
                    listener = %letter.listener,
                    trigger = letter.trigger.as_deref().unwrap_or("*"),
                    event_id = letter.event_id.as_deref().unwrap_or_default(),
                    kind = letter.kind.as_str(),
                    attempts = letter.attempts,
                    reason = %letter.reason,
                    "dead-lettered: see `sluice dlq show {id}`"
                );
                true
            }
            Err(error) => {
                tracing::error!(
                    namespace = %letter.namespace,
                    listener = %letter.listener,
                    trigger = letter.trigger.as_deref().unwrap_or("*"),
                    event_id = letter.event_id.as_deref().unwrap_or_default(),
                    %error,
                    reason = %letter.reason,
                    "cannot dead-letter; the event stays queued"
                );
                false
            }
        }
    }

    /// The whole event cannot run (its listener is gone, its body unreadable).
    pub(super) async fn dead_letter_event(
        &self,
        delivery: Delivery<'_>,
        reason: &str,
        kind: FailureKind,
    ) -> Disposition {
        let letter = self.letter(delivery, None, reason, kind);
        self.settle(&letter).await
    }

    /// A stored message that is not an event this dispatcher can read.
    pub async fn dead_letter_undecodable(
        &self,
        subject: &str,
        raw: &Bytes,
        attempt: u64,
        error: &DecodeError,
    ) -> Disposition {
        self.metrics.event(None, EventOutcome::Malformed);
        let mut tokens = subject.split('.').skip(2);
        let letter = DeadLetter {
            namespace: tokens.next().unwrap_or("_").to_owned(),
            listener: tokens.next().unwrap_or("_").to_owned(),
            trigger: None,
            event_id: None,
            reason: format!("the stored message is not a Sluice event: {error}"),
            kind: FailureKind::Permanent,
            attempts: attempt,
            failed_at_ms: now_ms(),
            event: raw.clone(),
        };
        self.settle(&letter).await
    }

    /// Done once `letter` is stored; else the event is kept for a later delivery.
    async fn settle(&self, letter: &DeadLetter) -> Disposition {
        if self.store_letter(letter).await {
            Disposition::Done
        } else {
            Disposition::Retry { min_delay: None }
        }
    }
}
