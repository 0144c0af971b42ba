//! The pull loops: one per tenant namespace. Every replica binds the same durable consumer
//! per namespace (`<consumer>-<namespace>`, filtered to that namespace's subjects), so
//! JetStream spreads each tenant's events across replicas and redelivers whatever a crashed
//! replica had in flight, and one tenant's backlog never stands in front of another's
//! events: each tenant's loop pulls from its own consumer, and all loops take turns (first
//! come, first served) for this replica's processing slots.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, Message};
use futures_util::StreamExt;
use sluice_runtime::envelope::Envelope;
use sluice_runtime::jetstream::{EVENTS_STREAM, StreamSettings, ensure_events_stream};
use sluice_runtime::subject::encode_token;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use crate::dispatch::{Delivery, Dispatcher, Disposition};
use crate::ratelimit::Take;

/// How events are pulled and retried.
#[derive(Debug, Clone)]
pub struct ConsumeSettings {
    /// Prefix of the durable consumers' names; each tenant's is `<consumer>-<namespace>`.
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

/// Events one tenant's loop holds at most while they wait for a processing slot: small, so
/// that a flooding tenant has few events queued ahead of another's.
const TENANT_BATCH: usize = 8;
/// How long one pull request waits for events when fewer arrive than it asked for.
const PULL_EXPIRY: Duration = Duration::from_secs(2);
/// The same once a pull came back empty. Events are delivered the moment they arrive
/// either way; a long wait only makes an idle tenant cheap (one request per tenant per
/// this period, which matters with thousands of tenants), and is given up at shutdown.
const IDLE_PULL_EXPIRY: Duration = Duration::from_secs(10);
/// How often the set of tenants is compared with the configuration.
const TENANT_SCAN: Duration = Duration::from_secs(2);

impl ConsumeSettings {
    /// The durable consumer of `namespace`'s events.
    pub fn consumer_name(&self, namespace: &str) -> String {
        format!("{}-{namespace}", self.consumer)
    }

    fn consumer_config(&self, namespace: &str) -> pull::Config {
        let mut filter = String::from("sluice.events.");
        encode_token(namespace, &mut filter);
        filter.push_str(".>");
        pull::Config {
            durable_name: Some(self.consumer_name(namespace)),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            // A tenant's consumer is created when its first listener is configured; events
            // stored before that (ingest reloaded first) are still delivered.
            deliver_policy: DeliverPolicy::All,
            filter_subject: filter,
            // Unlimited at the server: the dispatcher gives up itself, so that giving up is
            // always counted and logged rather than a silent stop of deliveries.
            max_deliver: -1,
            max_ack_pending: 1000,
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

/// What every tenant loop shares.
struct Shared {
    js: jetstream::Context,
    dispatcher: Arc<Dispatcher>,
    settings: ConsumeSettings,
    /// This replica's processing slots, handed out first come, first served.
    slots: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
    /// Turns true `shutdown_timeout` after shutdown: events still in flight go back.
    abort: watch::Receiver<bool>,
}

/// Consumes until `shutdown` turns true: then pulls no more, lets in-flight events finish
/// within `shutdown_timeout`, and hands the rest back to the stream.
pub async fn run(
    js: jetstream::Context,
    dispatcher: Arc<Dispatcher>,
    settings: ConsumeSettings,
    shutdown: watch::Receiver<bool>,
) {
    let (abort_tx, abort) = watch::channel(false);
    let mut deadline = shutdown.clone();
    let timeout = settings.shutdown_timeout;
    tokio::spawn(async move {
        if deadline.wait_for(|stop| *stop).await.is_ok() {
            tokio::time::sleep(timeout).await;
            let _ = abort_tx.send(true);
        }
    });
    let shared = Arc::new(Shared {
        js,
        dispatcher,
        slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
        settings,
        shutdown: shutdown.clone(),
        abort,
    });
    let mut loops = JoinSet::new();
    let mut running = BTreeSet::new();
    // Tenants whose consumers exist from earlier runs keep being served even when no
    // longer configured: their events are dead-lettered, not left to expire unseen.
    let mut tenants = existing_tenants(&shared).await;
    let mut stop = shutdown;
    loop {
        tenants.extend(shared.dispatcher.namespaces());
        for namespace in &tenants {
            if running.insert(namespace.clone()) {
                tracing::info!(%namespace, "consuming the tenant's events");
                loops.spawn(tenant_loop(shared.clone(), namespace.clone()));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TENANT_SCAN) => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    while loops.join_next().await.is_some() {}
    tracing::info!("stopped consuming");
}

/// Namespaces that already have a consumer of this prefix.
async fn existing_tenants(shared: &Shared) -> BTreeSet<String> {
    let prefix = format!("{}-", shared.settings.consumer);
    let mut found = BTreeSet::new();
    let Ok(stream) = shared.js.get_stream(EVENTS_STREAM).await else {
        return found;
    };
    let mut names = stream.consumer_names();
    while let Some(Ok(name)) = names.next().await {
        if let Some(namespace) = name.strip_prefix(&prefix) {
            found.insert(namespace.to_owned());
        }
    }
    found
}

/// Pulls one tenant's events until shutdown, a few at a time, each handled once a slot of
/// this replica is free.
async fn tenant_loop(shared: Arc<Shared>, namespace: String) {
    let settings = &shared.settings;
    let mut shutdown = shared.shutdown.clone();
    let mut tasks = JoinSet::new();
    let mut consumer: Option<PullConsumer> = None;
    // The tenant's own cap on events in flight in this replica (`maxConcurrentCreates`).
    let mut cap = (None, Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)));
    // The tenant's backlog as last reported, from the delivered events' own counts of what
    // is still pending after them: measured without a request of its own.
    let mut backlog: Option<u64> = None;
    let mut idle = false;
    while !*shutdown.borrow() {
        if consumer.is_none() {
            match bind(&shared.js, settings, &namespace).await {
                Ok(bound) => consumer = Some(bound),
                Err(error) => {
                    tracing::warn!(%namespace, %error, "cannot bind the tenant's consumer; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = shutdown.wait_for(|stop| *stop) => break,
                    }
                }
            }
        }
        let Some(bound) = consumer.as_ref() else {
            continue;
        };
        let limited = shared.dispatcher.is_limited(&namespace);
        let max_concurrent = shared.dispatcher.max_concurrent(&namespace);
        if max_concurrent != cap.0 {
            let permits = max_concurrent.map_or(Semaphore::MAX_PERMITS, |n| n.max(1) as usize);
            cap = (max_concurrent, Arc::new(Semaphore::new(permits)));
        }
        let batch = bound
            .batch()
            .max_messages(if limited { 1 } else { TENANT_BATCH })
            .expires(if idle { IDLE_PULL_EXPIRY } else { PULL_EXPIRY })
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%namespace, %error, "cannot pull events; retrying");
                consumer = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut received = 0usize;
        // Delivered events waiting for a slot. The pull is read to its end meanwhile:
        // async-nats ends a pull that is not read from 5 s past its expiry and drops what it
        // had buffered, which JetStream would only hand out again after the ack wait.
        let mut waiting: VecDeque<Message> = VecDeque::new();
        let mut pulled_all = false;
        loop {
            let message = match waiting.pop_front() {
                Some(message) => message,
                None if pulled_all => break,
                None => {
                    let next = if idle && received == 0 {
                        // Nothing may come for a long while: stop waiting at shutdown.
                        tokio::select! {
                            next = batch.next() => next,
                            _ = shutdown.wait_for(|stop| *stop) => None,
                        }
                    } else {
                        batch.next().await
                    };
                    match next {
                        Some(Ok(message)) => message,
                        Some(Err(error)) => {
                            tracing::warn!(%namespace, %error, "pulling events failed");
                            break;
                        }
                        None => break,
                    }
                }
            };
            received += 1;
            if let Ok(info) = message.info() {
                report_backlog(&shared, &namespace, &mut backlog, info.pending);
            }
            if limited && !wait_for_tokens(&shared, &namespace, &message, &mut shutdown).await {
                // Stopping while it waited for its budget: hand it back now.
                ack(&message, AckKind::Nak(None)).await;
                continue;
            }
            let acquire = async {
                let own = cap.1.clone().acquire_owned().await.ok()?;
                let permit = slot(&shared, &mut shutdown).await?;
                Some((own, permit))
            };
            tokio::pin!(acquire);
            let acquired = loop {
                tokio::select! {
                    acquired = &mut acquire => break acquired,
                    next = batch.next(), if !pulled_all => match next {
                        Some(Ok(message)) => waiting.push_back(message),
                        Some(Err(error)) => {
                            tracing::warn!(%namespace, %error, "pulling events failed");
                            pulled_all = true;
                        }
                        None => pulled_all = true,
                    },
                }
            };
            let Some((own, permit)) = acquired else {
                // Stopping: this event was not started; hand it back now.
                ack(&message, AckKind::Nak(None)).await;
                continue;
            };
            // A finished task keeps its allocation until it is joined: join them as they
            // finish, or a tenant's whole backlog would be held until its pull ends.
            while tasks.try_join_next().is_some() {}
            let shared = shared.clone();
            tasks.spawn(async move {
                handle(
                    &shared.dispatcher,
                    &shared.settings,
                    message,
                    shared.abort.clone(),
                )
                .await;
                drop(permit);
                drop(own);
            });
        }
        while tasks.try_join_next().is_some() {}
        idle = received == 0;
        if idle && backlog.is_some_and(|pending| pending > 0) {
            // Nothing came although events were pending: they are in flight elsewhere (or
            // were taken by other replicas). Ask once what is left.
            if let Some(consumer) = consumer.as_mut()
                && let Ok(info) = consumer.info().await
            {
                report_backlog(&shared, &namespace, &mut backlog, info.num_pending);
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Sets the tenant's backlog gauge when the count changed.
fn report_backlog(shared: &Shared, namespace: &str, last: &mut Option<u64>, pending: u64) {
    if *last != Some(pending) {
        *last = Some(pending);
        shared.dispatcher.metrics().backlog(namespace, pending);
    }
}

/// Takes the event's tokens from its tenant's (and triggers') shared buckets, waiting while
/// they are empty: an event over its budget stays in the queue until it may run, never
/// dropped, never refused. JetStream is told the event is in progress meanwhile, so its ack
/// timer does not hand it to another replica. `false` when shutdown came first.
async fn wait_for_tokens(
    shared: &Shared,
    namespace: &str,
    message: &Message,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let Ok(envelope) = Envelope::decode(message.payload.clone()) else {
        return true;
    };
    let throttle = shared.dispatcher.throttle(&envelope.meta);
    let metrics = shared.dispatcher.metrics();
    let progress_every = (shared.settings.ack_wait / 3).max(Duration::from_millis(100));
    let mut last_progress = std::time::Instant::now();
    let mut throttled = false;
    for (key, rate) in &throttle.buckets {
        loop {
            let wait = match shared.dispatcher.limiter().take(key, *rate).await {
                Ok(Take::Granted) => break,
                Ok(Take::Wait(wait)) => wait,
                Err(error) => {
                    tracing::warn!(%namespace, %error, "rate limit unavailable; waiting");
                    Duration::from_secs(1)
                }
            };
            if !throttled {
                throttled = true;
                metrics.throttled(namespace);
            }
            metrics.throttle_delay(namespace, wait.as_secs_f64());
            let pause = wait.min(progress_every);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.wait_for(|stop| *stop) => return false,
            }
            if last_progress.elapsed() >= progress_every {
                last_progress = std::time::Instant::now();
                ack(message, AckKind::Progress).await;
            }
        }
    }
    if throttled {
        metrics.throttle_delay(namespace, 0.0);
    }
    true
}

/// A processing slot, or `None` once shutting down.
async fn slot(
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<OwnedSemaphorePermit> {
    if *shutdown.borrow() {
        return None;
    }
    tokio::select! {
        permit = shared.slots.clone().acquire_owned() => permit.ok(),
        _ = shutdown.wait_for(|stop| *stop) => None,
    }
}

async fn bind(
    js: &jetstream::Context,
    settings: &ConsumeSettings,
    namespace: &str,
) -> anyhow::Result<PullConsumer> {
    let name = settings.consumer_name(namespace);
    let config = settings.consumer_config(namespace);
    // One request per tenant: with thousands of tenants, looking the stream up (or
    // reconciling it) for each would multiply the start-up work. Only when the consumer
    // cannot be had is the stream made sure of, and the bind tried again.
    let stream = js.get_stream_no_info(EVENTS_STREAM).await?;
    if let Ok(consumer) = stream.get_or_create_consumer(&name, config.clone()).await {
        return Ok(consumer);
    }
    let stream = ensure_events_stream(js, &settings.stream).await?;
    let consumer = stream
        .get_or_create_consumer(&name, config)
        .await
        .map_err(|e| anyhow::anyhow!("failed to create consumer {name}: {e}"))?;
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
