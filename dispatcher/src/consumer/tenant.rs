//! A diverted tenant's pull loop: a few events at a time from the tenant's own consumer,
//! each started once it has its rate-limit tokens, a place under its tenant's cap and one of
//! the replica's processing slots.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Message};
use sluice_runtime::envelope::Envelope;
use sluice_runtime::retry;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::task::JoinSet;

use super::cap::{CapPermit, TenantCap};
use super::delivery::{InProgress, Received, ack};
use super::pause::{Pause, wait_while_paused};
use super::pulled::{Pull, start};
use super::release::Release;
use super::{BindError, IDLE_PULL_EXPIRY, PULL_EXPIRY, Shared, TENANT_BATCH, bind};
use crate::ratelimit::Take;

/// Pulls one diverted tenant's events until shutdown, a few at a time, each handled once a slot of
/// this replica is free.
pub(super) async fn tenant_loop(shared: Arc<Shared>, namespace: String) {
    let settings = &shared.settings;
    let mut shutdown = shared.shutdown.clone();
    let mut tasks = JoinSet::new();
    let mut consumer: Option<PullConsumer> = None;
    // The tenant's own cap on events in flight in this replica (`maxConcurrentCreates`),
    // shared with the common loop, which may still run some of its events.
    let cap = shared.cap(&namespace);
    // The tenant's backlog as last reported, from the delivered events' own counts of what
    // is still pending after them: measured without a request of its own.
    let mut backlog: Option<u64> = None;
    let mut pause = Pause::default();
    let mut idle = false;
    let mut failing = Failing::default();
    let mut release = Release::default();
    while !*shutdown.borrow() {
        // Given back (by this replica or another): its events are the common consumer's.
        let Some(diversion) = shared.diverted.of(&namespace) else {
            break;
        };
        if consumer.is_none() {
            // Made again at the same start should it be gone (deleted by hand): nothing the
            // common loop passed over is skipped. Not while it is given back.
            let config = settings.consumer_config(&namespace, diversion.start);
            let create = diversion.released_at.is_none();
            match bind(&shared.js, settings, config, create).await {
                Ok(bound) => consumer = Some(bound),
                Err(BindError::Gone(_)) => break,
                Err(error) => {
                    let what = "cannot bind the tenant's consumer";
                    if failing.wait(&namespace, what, &error, &mut shutdown).await {
                        continue;
                    }
                    break;
                }
            }
        }
        // A consumer being given back finishes that first (at most the grace, plus the
        // time to run what it still has): a pause that lands meanwhile holds the tenant's
        // events once they reach its next consumer.
        if diversion.released_at.is_none() && pause.check(&shared, &namespace) {
            // Pull nothing: the tenant's events stay in the stream, undelivered, and are
            // neither redelivered nor given up on while it is paused.
            if let Some(bound) = consumer.as_mut() {
                wait_while_paused(
                    &shared,
                    &namespace,
                    &mut pause,
                    bound,
                    &mut backlog,
                    &mut shutdown,
                )
                .await;
            }
            while tasks.try_join_next().is_some() {}
            idle = false;
            release.paused();
            continue;
        }
        let Some(bound) = consumer.as_ref() else {
            continue;
        };
        let limited = shared.dispatcher.is_limited(&namespace);
        let batch = bound
            .batch()
            .max_messages(if limited { 1 } else { TENANT_BATCH })
            .expires(if idle { IDLE_PULL_EXPIRY } else { PULL_EXPIRY })
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => Pull::new(batch, settings),
            Err(error) => {
                consumer = None;
                if failing
                    .wait(&namespace, PULL_FAILED, &error, &mut shutdown)
                    .await
                {
                    continue;
                }
                break;
            }
        };
        let mut received = 0usize;
        // Nothing may come for a long while after an empty pull: stop waiting at shutdown.
        while let Some(message) = batch.next(&mut shutdown, idle && received == 0).await {
            received += 1;
            if let Ok(info) = message.info() {
                report_backlog(&shared, &namespace, &mut backlog, info.pending);
            }
            let delivered = Received::new(message);
            let mut progress = InProgress::new(settings);
            if limited
                && !tokens_or_hand_back(
                    &shared,
                    &namespace,
                    &delivered,
                    &mut progress,
                    &mut shutdown,
                )
                .await
            {
                continue;
            }
            let acquire = cap_and_slot(&shared, &cap, &namespace, &mut shutdown);
            let Some(hold) = batch.while_reading(acquire).await else {
                // Stopping: this event was not started; hand it back now.
                ack(&delivered.message, AckKind::Nak(None)).await;
                continue;
            };
            start(&mut tasks, &shared, delivered, progress, hold);
        }
        while tasks.try_join_next().is_some() {}
        match batch.failed {
            // Nothing came of it (the consumer gone, its stream without a leader…): bound
            // again, after a wait that grows while it keeps failing.
            Some(error) if received == 0 => {
                consumer = None;
                if !failing
                    .wait(&namespace, PULL_FAILED, &error, &mut shutdown)
                    .await
                {
                    break;
                }
                continue;
            }
            Some(error) => {
                tracing::warn!(%namespace, %error, "{PULL_FAILED}");
                failing.reset();
            }
            None => failing.reset(),
        }
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
        if let Some(bound) = consumer.as_mut()
            && release
                .after_pull(&shared, &namespace, bound, received, !tasks.is_empty())
                .await
        {
            break;
        }
    }
    while tasks.join_next().await.is_some() {}
    if backlog.is_some() {
        shared.dispatcher.metrics().backlog(&namespace, 0);
    }
}

pub(super) const PULL_FAILED: &str = "pulling events failed";

/// Waits between failed binds and pulls: from 100 ms, doubling, up to 5 s, jittered. An
/// error a pull answers at once (a consumer gone, a stream without a leader) would
/// otherwise be asked again hundreds of times a second.
const PULL_BACKOFF: retry::Backoff =
    retry::Backoff::new(Duration::from_millis(100), Duration::from_secs(5));

/// Failures of one tenant's binds and pulls in a row.
pub(super) struct Failing(retry::Retrying);

impl Default for Failing {
    fn default() -> Self {
        Self(retry::Retrying::new(PULL_BACKOFF))
    }
}

impl Failing {
    pub(super) fn reset(&mut self) {
        self.0.reset();
    }

    /// Counts a failure, logs it as [`retry::Retrying`] says, and waits before the next
    /// try. `false` when shutdown came first.
    pub(super) async fn wait(
        &mut self,
        namespace: &str,
        what: &str,
        error: &(dyn std::fmt::Display + Sync),
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let next = self.0.failed();
        if next.log {
            tracing::warn!(
                %namespace,
                %error,
                failures = next.failures,
                retry_in_ms = next.wait.as_millis() as u64,
                "{what}; retrying"
            );
        }
        tokio::select! {
            () = tokio::time::sleep(next.wait) => true,
            _ = shutdown.wait_for(|stop| *stop) => false,
        }
    }
}

/// Sets the tenant's backlog gauge when the count changed.
pub(super) fn report_backlog(
    shared: &Shared,
    namespace: &str,
    last: &mut Option<u64>,
    pending: u64,
) {
    if *last != Some(pending) {
        *last = Some(pending);
        shared.dispatcher.metrics().backlog(namespace, pending);
    }
}

/// Takes the event's tokens from its tenant's (and triggers') shared buckets, waiting while
/// they are empty: an event over its budget stays in the queue until it may run, never
/// dropped, never refused. JetStream is told the event is in progress meanwhile, so its ack
/// timer does not hand it to another replica. `false` when shutdown came first.
pub(super) async fn wait_for_tokens(
    shared: &Shared,
    namespace: &str,
    envelope: &Envelope,
    message: &Message,
    progress: &mut InProgress,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let throttle = shared.dispatcher.throttle(&envelope.meta);
    let metrics = shared.dispatcher.metrics();
    let mut throttled = false;
    let mut unavailable = retry::Retrying::new(PULL_BACKOFF);
    for (key, rate) in &throttle.buckets {
        loop {
            let wait = match shared.dispatcher.limiter().take(key, *rate).await {
                Ok(Take::Granted) => break,
                Ok(Take::Wait(wait)) => {
                    unavailable.reset();
                    wait
                }
                Err(error) => {
                    let next = unavailable.failed();
                    if next.log {
                        tracing::warn!(
                            %namespace,
                            %error,
                            failures = next.failures,
                            "rate limit unavailable; waiting"
                        );
                    }
                    next.wait
                }
            };
            if !throttled {
                throttled = true;
                metrics.throttled(namespace);
            }
            metrics.throttle_delay(namespace, wait.as_secs_f64());
            let pause = wait.min(progress.due_in().max(Duration::from_millis(1)));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.wait_for(|stop| *stop) => return false,
            }
            progress.report(message).await;
        }
    }
    if throttled {
        metrics.throttle_delay(namespace, 0.0);
    }
    true
}

/// Waits for the event's rate-limit tokens ([`wait_for_tokens`]); `false` when shutdown
/// came first, and the event was handed back. An event that cannot be read needs none.
pub(super) async fn tokens_or_hand_back(
    shared: &Shared,
    namespace: &str,
    delivered: &Received,
    progress: &mut InProgress,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let Ok(envelope) = &delivered.event else {
        return true;
    };
    if wait_for_tokens(
        shared,
        namespace,
        envelope,
        &delivered.message,
        progress,
        shutdown,
    )
    .await
    {
        return true;
    }
    // Stopping while it waited for its budget: hand it back now.
    ack(&delivered.message, AckKind::Nak(None)).await;
    false
}

/// A place under the tenant's `maxConcurrentCreates`, then a processing slot: what an event
/// holds while it runs. `None` once shutting down.
pub(super) async fn cap_and_slot(
    shared: &Shared,
    cap: &Arc<TenantCap>,
    namespace: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(CapPermit, OwnedSemaphorePermit)> {
    let own = cap
        .acquire(|| shared.dispatcher.max_concurrent(namespace))
        .await;
    let permit = slot(shared, shutdown).await?;
    Some((own, permit))
}

/// A processing slot, or `None` once shutting down.
pub(super) async fn slot(
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
