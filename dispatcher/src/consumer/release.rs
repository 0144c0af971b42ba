//! Giving a diverted tenant's consumer back once the tenant has gone quiet, so that the
//! consumers a cluster keeps follow the tenants that need one now, not every tenant that
//! ever did.
//!
//! 1. After `--tenant-consumer-idle` without events, and with nothing outstanding, a loop
//!    of the tenant marks its consumer ([`RELEASED_AT`]): events stored from then on are
//!    the common consumer's again. The consumer keeps running everything it delivers, so an
//!    event a replica passed over before it learned of the mark still runs.
//! 2. [`RELEASE_GRACE`] after a loop saw the mark (longer than any replica relies on what
//!    it read), at a moment the consumer has nothing pending or in flight, the consumer is
//!    deleted and the loops end.
//!
//! An event that would divert the tenant again meanwhile is handed back to come round once
//! the consumer is gone.

use std::time::Instant;

use async_nats::jetstream::consumer::{FromConsumer, PullConsumer, pull};
use sluice_runtime::jetstream::{EVENTS_STREAM, RELEASED_AT};

use super::Shared;
use super::diverted::{Diversion, RELEASE_GRACE};

/// Where a tenant's loop is in giving its consumer back.
#[derive(Debug, Default)]
pub(super) struct Release {
    /// Since when the loop has received nothing.
    quiet_since: Option<Instant>,
    /// When the loop first saw its consumer marked.
    marked_seen: Option<Instant>,
}

#[derive(Debug, thiserror::Error)]
enum ReleaseError {
    #[error("cannot read the events stream: {0}")]
    Stream(#[from] async_nats::jetstream::context::GetStreamError),
    #[error("cannot read the tenant's consumer: {0}")]
    Info(#[from] async_nats::jetstream::context::ConsumerInfoError),
    #[error("the tenant's consumer is not a pull consumer: {0}")]
    Kind(async_nats::Error),
    #[error("cannot mark the tenant's consumer: {0}")]
    Mark(#[from] async_nats::jetstream::stream::ConsumerUpdateError),
    #[error("cannot delete the tenant's consumer: {0}")]
    Delete(#[from] async_nats::jetstream::stream::ConsumerError),
}

impl Release {
    /// The tenant is paused: it is not quiet, whatever arrives.
    pub fn paused(&mut self) {
        self.quiet_since = None;
    }

    /// After each pull: takes the next step when it is due. `true` once the consumer is
    /// gone and the loop is to end.
    pub async fn after_pull(
        &mut self,
        shared: &Shared,
        namespace: &str,
        consumer: &mut PullConsumer,
        received: usize,
        in_flight: bool,
    ) -> bool {
        let Some(diversion) = shared.diverted.of(namespace) else {
            return false;
        };
        if diversion.released_at.is_some() {
            self.marked_seen.get_or_insert_with(Instant::now);
        }
        if received > 0 || in_flight {
            self.quiet_since = None;
        }
        let quiet_since = *self.quiet_since.get_or_insert_with(Instant::now);
        let due = match (diversion.released_at, self.marked_seen) {
            (None, _) => quiet_since.elapsed() >= shared.settings.release_after,
            (Some(_), Some(seen)) => seen.elapsed() >= RELEASE_GRACE,
            (Some(_), None) => false,
        };
        if !due {
            return false;
        }
        match self.step(shared, namespace, consumer, diversion).await {
            Ok(gone) => gone,
            Err(error) => {
                tracing::warn!(%namespace, %error, "cannot give the tenant's consumer back yet");
                false
            }
        }
    }

    async fn step(
        &mut self,
        shared: &Shared,
        namespace: &str,
        consumer: &mut PullConsumer,
        diversion: Diversion,
    ) -> Result<bool, ReleaseError> {
        let info = consumer.info().await?.clone();
        if info.num_pending > 0 || info.num_ack_pending > 0 {
            return Ok(false);
        }
        let stream = shared.js.get_stream(EVENTS_STREAM).await?;
        if diversion.released_at.is_none() {
            let end = stream.cached_info().state.last_sequence + 1;
            let mut config = pull::Config::try_from_consumer_config(info.config.clone())
                .map_err(ReleaseError::Kind)?;
            config
                .metadata
                .insert(RELEASED_AT.to_owned(), end.to_string());
            stream.update_consumer(config).await?;
            shared.diverted.set(
                namespace,
                Diversion {
                    released_at: Some(end),
                    ..diversion
                },
            );
            self.marked_seen = Some(Instant::now());
            tracing::info!(
                %namespace,
                from = end,
                "giving the tenant's consumer back: its events go through the common consumer again"
            );
            return Ok(false);
        }
        stream.delete_consumer(&info.name).await?;
        shared.diverted.forget(namespace);
        tracing::info!(%namespace, "tenant's consumer given back");
        Ok(true)
    }
}
