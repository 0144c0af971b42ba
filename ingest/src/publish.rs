//! Durable publish: an event counts as accepted only once JetStream has acked it.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use tracing::Instrument;

use crate::metrics::IngestMetrics;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("JetStream did not ack within {0:?}")]
    Timeout(Duration),
    #[error("JetStream refused the event")]
    Refused(#[source] jetstream::context::PublishError),
}

/// Publishes events and waits for their acks, bounded by a timeout.
#[derive(Clone)]
pub struct Publisher {
    js: jetstream::Context,
    timeout: Duration,
    metrics: IngestMetrics,
}

impl Publisher {
    pub fn new(js: jetstream::Context, timeout: Duration, metrics: IngestMetrics) -> Self {
        Self {
            js,
            timeout,
            metrics,
        }
    }

    /// Returns the stream sequence of the stored event.
    pub async fn publish(&self, subject: String, payload: Bytes) -> Result<u64, PublishError> {
        let span = tracing::info_span!("publish", %subject, sequence = tracing::field::Empty);
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, async {
            self.js.publish(subject, payload).await?.await
        })
        .instrument(span.clone())
        .await;
        let result = match result {
            Ok(Ok(ack)) => Ok(ack.sequence),
            Ok(Err(error)) => Err(PublishError::Refused(error)),
            Err(_) => Err(PublishError::Timeout(self.timeout)),
        };
        self.metrics
            .publish_ack(started.elapsed().as_secs_f64(), result.is_ok());
        if let Ok(sequence) = &result {
            span.record("sequence", sequence);
        }
        result
    }
}
