//! Publishing dead letters (see `sluice_runtime::dlq`): a failure is acknowledged only once
//! its dead letter is durable in `SLUICE_DLQ`.

use async_nats::jetstream;
use sluice_runtime::dlq::DeadLetter;

/// The dead letter could not be stored: the caller keeps the event pending.
#[derive(Debug, thiserror::Error)]
#[error("the dead-letter stream did not store the failure: {0}")]
pub struct DeadLetterError(String);

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
        let ack = js
            .publish_with_headers(letter.subject(), letter.headers(), letter.event.clone())
            .await
            .map_err(|e| DeadLetterError(e.to_string()))?
            .await
            .map_err(|e| DeadLetterError(e.to_string()))?;
        Ok(ack.sequence)
    }
}
