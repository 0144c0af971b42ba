//! The pull loop: every replica binds the same durable consumer, so JetStream spreads events
//! across replicas and redelivers whatever a crashed replica had in flight.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, Message};
use futures_util::StreamExt;
use sluice_shared::event::Envelope;
use sluice_shared::jetstream::{StreamSettings, ensure_events_stream};
use sluice_shared::subject::EVENTS_WILDCARD;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::dispatch::{Delivery, Dispatcher, Disposition};

/// How events are pulled and retried.
#[derive(Debug, Clone)]
pub struct ConsumeSettings {
    pub consumer: String,
    pub concurrency: usize,
    pub max_deliver: i64,
    pub ack_wait: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// After a shutdown signal, how long in-flight events may take before they are handed
    /// back to the stream.
    pub shutdown_timeout: Duration,
    pub stream: StreamSettings,
}

impl ConsumeSettings {
    fn consumer_config(&self) -> pull::Config {
        pull::Config {
            durable_name: Some(self.consumer.clone()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            deliver_policy: DeliverPolicy::All,
            filter_subject: EVENTS_WILDCARD.to_owned(),
            // Unlimited at the server: the dispatcher gives up itself, so that giving up is
            // always counted and logged rather than a silent stop of deliveries.
            max_deliver: -1,
            max_ack_pending: (self.concurrency as i64 * 4).max(256),
            ..Default::default()
        }
    }

    /// Exponential backoff with jitter: `base * 2^(delivered-1)`, capped, times 0.5–1.0.
    pub fn retry_delay(&self, delivered: i64) -> Duration {
        let exponent = delivered.clamp(1, 30) as u32 - 1;
        let delay = self
            .retry_base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.retry_max);
        delay.mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

/// How long one pull request waits for events when fewer arrive than it asked for.
const PULL_EXPIRY: Duration = Duration::from_millis(500);

/// Consumes until `shutdown` turns true: then pulls no more, lets in-flight events finish
/// within `shutdown_timeout`, and hands the rest back to the stream.
///
/// Events are pulled in requests of at most as many events as there are free slots, each
/// handed to a task as it arrives, so nothing waits unprocessed in this replica's buffer:
/// at shutdown every event it holds is either finished or handed back at once, never left
/// for JetStream to redeliver after ack-wait.
pub async fn run(
    js: jetstream::Context,
    dispatcher: Arc<Dispatcher>,
    settings: ConsumeSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let settings = Arc::new(settings);
    let (abort_tx, abort) = watch::channel(false);
    let mut deadline = shutdown.clone();
    let timeout = settings.shutdown_timeout;
    tokio::spawn(async move {
        if deadline.wait_for(|stop| *stop).await.is_ok() {
            tokio::time::sleep(timeout).await;
            let _ = abort_tx.send(true);
        }
    });
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut consumer = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let bound = match &consumer {
            Some(bound) => bound,
            None => match bind(&js, &settings).await {
                Ok(bound) => {
                    tracing::info!(consumer = %settings.consumer, "consuming events");
                    consumer.insert(bound)
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot bind the events consumer; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = shutdown.wait_for(|stop| *stop) => break,
                    }
                }
            },
        };
        // Wait for a free slot, then ask for as many events as there are free slots.
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let free = 1 + slots.available_permits();
        let batch = bound
            .batch()
            .max_messages(free)
            .expires(PULL_EXPIRY)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "cannot pull events; retrying");
                consumer = None;
                drop(first);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut first = Some(first);
        while let Some(message) = batch.next().await {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "pulling events failed");
                    break;
                }
            };
            let permit = match first.take() {
                Some(permit) => permit,
                None => match slots.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let dispatcher = dispatcher.clone();
            let settings = settings.clone();
            let abort = abort.clone();
            tasks.spawn(async move {
                handle(&dispatcher, &settings, message, abort).await;
                drop(permit);
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    tracing::info!(
        in_flight = tasks.len(),
        "stopped pulling; finishing events in flight"
    );
    while tasks.join_next().await.is_some() {}
    tracing::info!("stopped consuming");
}

async fn bind(js: &jetstream::Context, settings: &ConsumeSettings) -> anyhow::Result<PullConsumer> {
    let stream = ensure_events_stream(js, &settings.stream).await?;
    let consumer = stream
        .get_or_create_consumer(&settings.consumer, settings.consumer_config())
        .await
        .map_err(|e| anyhow::anyhow!("failed to create consumer {}: {e}", settings.consumer))?;
    Ok(consumer)
}

async fn handle(
    dispatcher: &Dispatcher,
    settings: &ConsumeSettings,
    message: Message,
    mut abort: watch::Receiver<bool>,
) {
    let attempt = message
        .info()
        .map_or(1, |info| info.delivered.max(1) as u64);
    let last = attempt >= settings.max_deliver.max(1) as u64;
    let work = async {
        match Envelope::decode(message.payload.clone()) {
            Ok(envelope) => {
                let delivery = Delivery {
                    envelope: &envelope,
                    raw: &message.payload,
                    attempt,
                    last,
                };
                dispatcher.dispatch(delivery).await
            }
            Err(error) => {
                tracing::error!(%error, subject = %message.subject, "stored message cannot be decoded");
                dispatcher
                    .dead_letter_undecodable(
                        &message.subject,
                        &message.payload,
                        attempt,
                        &error.to_string(),
                    )
                    .await
            }
        }
    };
    let kind = tokio::select! {
        disposition = work => match disposition {
            Disposition::Done => AckKind::Ack,
            Disposition::Retry { min_delay } => {
                let delay = settings
                    .retry_delay(attempt as i64)
                    .max(min_delay.unwrap_or_default());
                AckKind::Nak(Some(delay))
            }
        },
        // Shutting down past the deadline: hand the event back for another replica now
        // rather than after ack-wait. Objects already created are found by name next time.
        _ = abort.wait_for(|abort| *abort) => AckKind::Nak(None),
    };
    ack(&message, kind).await;
}

async fn ack(message: &Message, kind: AckKind) {
    if let Err(error) = message.ack_with(kind).await {
        // The event stays pending and JetStream redelivers it after ack-wait.
        tracing::warn!(%error, "ack failed");
    }
}
