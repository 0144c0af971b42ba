//! Durable publish: an event counts as accepted only once JetStream has acked it.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use tracing::Instrument;

use crate::metrics::IngestMetrics;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("JetStream did not ack within {0:?}")]
    Timeout(Duration),
    #[error("JetStream refused the event")]
    Refused(#[source] jetstream::context::PublishError),
}

/// Where the request path stores an accepted event.
///
/// [`Publisher`] (JetStream) in production. Router tests and the fuzz targets pass an
/// in-memory store, so the whole request path runs without a NATS server.
pub trait Publish: Send + Sync + 'static {
    /// Stores `payload` under `subject`; resolves with its stream sequence once it is durable.
    fn publish(&self, subject: String, payload: Bytes) -> BoxFuture<'_, Result<u64, PublishError>>;
}

/// Publishes events to JetStream and waits for their acks, bounded by a timeout.
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

    async fn publish_and_wait(&self, subject: String, payload: Bytes) -> Result<u64, PublishError> {
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

impl Publish for Publisher {
    fn publish(&self, subject: String, payload: Bytes) -> BoxFuture<'_, Result<u64, PublishError>> {
        Box::pin(self.publish_and_wait(subject, payload))
    }
}
