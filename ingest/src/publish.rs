//! Durable publish: an event counts as accepted only once JetStream has acked it.
//!
//! Every event is published with a `Nats-Msg-Id` derived from its idempotency key
//! ([`sluice_triggers::idempotency::message_id`]). A redelivery within the stream's duplicate window
//! is then not stored again: JetStream acks it as a duplicate with the sequence of the event
//! it already holds, and the publisher reads that event back so the sender can be told the
//! `eventID` it was given the first time.

use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, ErrorCode};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use sluice_runtime::envelope::{Envelope, EventMeta};
use sluice_runtime::jetstream::EVENTS_STREAM;
use sluice_runtime::telemetry::traces::{self, TRACEPARENT_HEADER};
use tracing::Instrument;

use crate::metrics::IngestMetrics;

/// JetStream error codes meaning that the stream (or the account, or the server's storage)
/// is full, so the event was refused rather than stored: `10077` (the store refused the
/// message: maximum messages or bytes exceeded under `discard: new`), `10047` (insufficient
/// storage resources), `10023` (insufficient resources), `10002` (account resources
/// exceeded). Classified by code; the texts are not a stable interface.
const FULL_CODES: &[ErrorCode] = &[
    ErrorCode(10077),
    ErrorCode::STORAGE_RESOURCES_EXCEEDED,
    ErrorCode::INSUFFICIENT_RESOURCES,
    ErrorCode::ACCOUNT_RESOURCES_EXCEEDED,
];

/// Room in one NATS message for what an event carries besides its body: the envelope's
/// fixed metadata (ids, names, the request URL, which is counted in the header limit too) and
/// the `Nats-Msg-Id` header. The request's headers come on top, at most twice their size on
/// the wire once written as JSON (a `"` or `\\` in a value is escaped).
pub const ENVELOPE_FIXED_BYTES: usize = 4 * 1024;

/// The largest body one NATS message can carry with its envelope: `max_payload` (the
/// server's) less the envelope, for requests whose headers are at most `max_header_bytes`.
/// `None` when nothing is left for a body.
pub fn largest_body(max_payload: usize, max_header_bytes: usize) -> Option<usize> {
    let envelope = ENVELOPE_FIXED_BYTES + 2 * max_header_bytes;
    max_payload.checked_sub(envelope).filter(|&room| room > 0)
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("JetStream did not ack within {0:?}")]
    Timeout(Duration),
    /// The stream is at its limits and refuses new events (`discard: new`): nothing stored
    /// was dropped to make room.
    #[error("the events stream is full")]
    Full(#[source] jetstream::context::PublishError),
    #[error("JetStream refused the event")]
    Refused(#[source] jetstream::context::PublishError),
}

impl PublishError {
    /// Sorts a failed publish by its kind and JetStream's error code; `timeout` is the one
    /// the context was built with.
    pub fn classify(error: jetstream::context::PublishError, timeout: Duration) -> Self {
        if error.kind() == PublishErrorKind::TimedOut {
            return Self::Timeout(timeout);
        }
        let code = std::error::Error::source(&error)
            .and_then(|source| source.downcast_ref::<jetstream::Error>())
            .map(jetstream::Error::error_code);
        match code {
            Some(code) if FULL_CODES.contains(&code) => Self::Full(error),
            _ => Self::Refused(error),
        }
    }
}

/// What JetStream did with a published event.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// Stored now, at this stream sequence.
    New { sequence: u64 },
    /// Not stored: the stream already holds an event with the same message id (the same
    /// idempotency key) from within its duplicate window, at `sequence`.
    Duplicate {
        sequence: u64,
        /// The stored event's metadata; `None` when it could not be read back (purged,
        /// deleted, expired meanwhile, or not a Sluice event). Callers must not invent an
        /// event id then.
        original: Option<Box<EventMeta>>,
    },
}

/// Where the request path stores an accepted event.
///
/// [`Publisher`] (JetStream) in production. Router tests and the fuzz targets pass an
/// in-memory store, so the whole request path runs without a NATS server.
pub trait Publish: Send + Sync + 'static {
    /// Stores `payload` (an encoded [`Envelope`]) under `subject` unless an event with the
    /// same `message_id` ([`sluice_triggers::idempotency::message_id`] of its idempotency key) is
    /// already stored; resolves once the answer is durable.
    fn publish(
        &self,
        subject: String,
        message_id: String,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<Stored, PublishError>>;
}

/// Publishes events to JetStream and waits for their acks, bounded by a timeout.
#[derive(Clone)]
pub struct Publisher {
    /// Its requests, publish acks included, time out after `timeout`.
    js: jetstream::Context,
    timeout: Duration,
    metrics: IngestMetrics,
}

impl Publisher {
    /// A publisher on its own JetStream context, whose timeout is `timeout`.
    pub fn new(client: async_nats::Client, timeout: Duration, metrics: IngestMetrics) -> Self {
        Self {
            js: sluice_runtime::jetstream::context(client, timeout),
            timeout,
            metrics,
        }
    }

    async fn publish_and_wait(
        &self,
        subject: String,
        message_id: String,
        payload: Bytes,
    ) -> Result<Stored, PublishError> {
        let span = tracing::debug_span!("publish", %subject, sequence = tracing::field::Empty);
        let started = Instant::now();
        let mut message = PublishMessage::build()
            .payload(payload)
            .message_id(&message_id);
        // The webhook's span, continued by the dispatcher; absent when traces are off.
        if let Some(traceparent) = traces::traceparent() {
            message = message.header(TRACEPARENT_HEADER, traceparent.as_str());
        }
        // The context's timeout bounds both the hand-off to the connection and the wait for
        // the ack: no timer of our own.
        let result = async { self.js.send_publish(subject, message).await?.await }
            .instrument(span.clone())
            .await
            .map_err(|error| PublishError::classify(error, self.timeout));
        self.metrics
            .publish_ack(started.elapsed().as_secs_f64(), result.is_ok());
        let ack = result?;
        span.record("sequence", ack.sequence);
        if !ack.duplicate {
            return Ok(Stored::New {
                sequence: ack.sequence,
            });
        }
        let original = self
            .original(ack.sequence)
            .instrument(span)
            .await
            .map(Box::new);
        Ok(Stored::Duplicate {
            sequence: ack.sequence,
            original,
        })
    }

    /// The metadata of the event stored at `sequence`, or `None` (logged) when it cannot be
    /// read. The event is safely stored either way, so this never fails the request.
    async fn original(&self, sequence: u64) -> Option<EventMeta> {
        let read = async {
            let stream = self
                .js
                .get_stream_no_info(EVENTS_STREAM)
                .await
                .map_err(|e| e.to_string())?;
            let message = stream
                .get_raw_message(sequence)
                .await
                .map_err(|e| e.to_string())?;
            Envelope::decode(message.payload)
                .map(|envelope| envelope.meta)
                .map_err(|e| e.to_string())
        };
        let result = match tokio::time::timeout(self.timeout, read).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        };
        result
            .inspect_err(|error| {
                tracing::warn!(sequence, %error, "duplicate delivery: the original event could not be read back, answering without its eventID");
            })
            .ok()
    }
}

impl Publish for Publisher {
    fn publish(
        &self,
        subject: String,
        message_id: String,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<Stored, PublishError>> {
        Box::pin(self.publish_and_wait(subject, message_id, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_taken_from_the_servers_max_payload() {
        // nats-server's default, with ingest's default header limit.
        assert_eq!(
            largest_body(1024 * 1024, 32 * 1024),
            Some(1024 * 1024 - 4096 - 64 * 1024)
        );
        assert_eq!(
            largest_body(8 * 1024 * 1024, 0),
            Some(8 * 1024 * 1024 - 4096)
        );
        assert_eq!(largest_body(68 * 1024, 32 * 1024), None, "no room at all");
        assert_eq!(largest_body(1000, 32 * 1024), None);
    }
}
