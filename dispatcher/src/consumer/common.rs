//! The common consumer's loop: every replica pulls every tenant's events from it, in the
//! order they were stored, and runs each on one of its processing slots, unless the
//! event's tenant is or must be diverted to a consumer of its own:
//!
//! - already diverted, and the event at or past its consumer's start: acknowledged here
//!   without running (its own consumer delivers it too);
//! - paused: its events must wait in the stream, which only its own consumer can do;
//! - at its cap on creates in flight, or out of rate-limit tokens: its events must wait
//!   without holding the events behind them;
//! - holding more than its share of this replica's slots while none is free: a flood,
//!   whose backlog would otherwise stand in front of every other tenant's events.
//!
//! Diverting creates the tenant's consumer starting at the event at hand; a replica that
//! finds it created already takes its start, runs what comes before it and skips the rest.

use std::collections::VecDeque;
use std::sync::Arc;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Message};
use futures_util::StreamExt;
use sluice_runtime::retry;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;

use super::cap::CapPermit;
use super::delivery::{InProgress, Received, ack, handle};
use super::diverted::Diversion;
use super::tenant::{Failing, PULL_FAILED, slot};
use super::{PULL_EXPIRY, Shared, bind};
use crate::ratelimit::Take;

/// Why a tenant's events leave the common consumer.
#[derive(Debug, Clone, Copy)]
enum Why {
    Paused,
    Capped,
    RateLimited,
    Flooding,
}

impl Why {
    fn as_str(self) -> &'static str {
        match self {
            Why::Paused => "paused",
            Why::Capped => "at its cap on creates in flight",
            Why::RateLimited => "waiting for its rate limit",
            Why::Flooding => "holding more than its share of the processing slots",
        }
    }
}

/// What becomes of one delivered event.
enum Route {
    /// Its tenant's own consumer has it: acknowledge it here.
    Skip,
    Divert(Why),
    /// Run it here, under its tenant's cap (a place already taken, or to wait for).
    Run(Option<CapPermit>),
}

/// Pulls from the common consumer until shutdown.
pub(super) async fn common_loop(shared: Arc<Shared>) {
    let settings = &shared.settings;
    let mut shutdown = shared.shutdown.clone();
    let mut tasks = JoinSet::new();
    let mut consumer: Option<PullConsumer> = None;
    let mut failing = Failing::default();
    let mut diverting = retry::Retrying::new(DIVERT_BACKOFF);
    // A tenant may hold this many of the replica's slots before, with none free, it counts
    // as flooding.
    let share = (settings.concurrency / 4).max(1);
    let batch_size = settings.concurrency.max(16);
    // The size of the next pull: larger while most events are a diverted tenant's, so that
    // a backlog it left here is passed over quickly.
    let mut pull = batch_size;
    // The common consumer's backlog as last reported, from the delivered events' own counts.
    let mut backlog: Option<u64> = None;
    while !*shutdown.borrow() {
        if consumer.is_none() {
            match bind(&shared.js, settings, settings.common_config(), true).await {
                Ok(bound) => consumer = Some(bound),
                Err(error) => {
                    let what = "cannot bind the common consumer";
                    if failing.wait(ALL, what, &error, &mut shutdown).await {
                        continue;
                    }
                    break;
                }
            }
        }
        let Some(bound) = consumer.as_ref() else {
            continue;
        };
        let batch = bound
            .batch()
            .max_messages(pull)
            .expires(PULL_EXPIRY)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                consumer = None;
                if failing.wait(ALL, PULL_FAILED, &error, &mut shutdown).await {
                    continue;
                }
                break;
            }
        };
        let mut failed: Option<String> = None;
        let mut received = 0usize;
        let mut skipped = 0usize;
        // Delivered events waiting for a slot; the pull is read to its end meanwhile, as a
        // tenant's loop does, and they are kept in progress.
        let mut waiting: VecDeque<Message> = VecDeque::new();
        let mut held = InProgress::new(settings);
        let mut pulled_all = false;
        loop {
            let message = match waiting.pop_front() {
                Some(message) => message,
                None if pulled_all => break,
                None => {
                    let next = tokio::select! {
                        next = batch.next() => next,
                        _ = shutdown.wait_for(|stop| *stop), if received == 0 => None,
                    };
                    match next {
                        Some(Ok(message)) => message,
                        Some(Err(error)) => {
                            failed = Some(error.to_string());
                            break;
                        }
                        None => break,
                    }
                }
            };
            received += 1;
            let (sequence, pending) = message
                .info()
                .map_or((0, 0), |info| (info.stream_sequence, info.pending));
            if backlog != Some(pending) {
                backlog = Some(pending);
                shared.dispatcher.metrics().common_backlog(pending);
            }
            // A diverted tenant's event, told by its subject alone.
            if shared
                .diverted
                .passes_over(message.subject.as_str(), sequence)
            {
                skipped += 1;
                ack(&message, AckKind::Ack).await;
                continue;
            }
            let delivered = Received::new(message);
            let namespace = match &delivered.event {
                Ok(envelope) => envelope.meta.namespace.clone(),
                // Dead-lettered where it is.
                Err(_) => String::new(),
            };
            let mut route = route(&shared, &delivered, &namespace).await;
            if let Route::Run(Some(_)) = &route
                && shared.slots.available_permits() == 0
                && !namespace.is_empty()
                && shared.cap(&namespace).in_flight() > share
            {
                route = Route::Divert(Why::Flooding);
            }
            if let Route::Divert(_) = route
                && shared
                    .diverted
                    .of(&namespace)
                    .is_some_and(|diversion| diversion.released_at.is_some())
            {
                // Its consumer is being given back; it can have another once that one is
                // gone. The event comes round again meanwhile.
                ack(&delivered.message, AckKind::Nak(Some(RELEASING_RETRY))).await;
                continue;
            }
            if let Route::Divert(why) = route {
                route = match divert(&shared, &namespace, sequence, why).await {
                    Ok(diversion) if diversion.owns(sequence) => {
                        diverting.reset();
                        skipped += 1;
                        Route::Skip
                    }
                    // Diverted by another replica from a later event (or being given
                    // back): this one is the common consumer's to run.
                    Ok(_) => Route::Run(None),
                    Err(error) => {
                        let next = diverting.failed();
                        if next.log {
                            tracing::warn!(
                                %namespace,
                                %error,
                                failures = next.failures,
                                "cannot divert the tenant to its own consumer; its event is \
                                 handed back"
                            );
                        }
                        ack(&delivered.message, AckKind::Nak(Some(next.wait))).await;
                        continue;
                    }
                };
            }
            let own = match route {
                Route::Skip => {
                    ack(&delivered.message, AckKind::Ack).await;
                    continue;
                }
                Route::Divert(_) => unreachable!("a diversion was resolved above"),
                Route::Run(own) => own,
            };
            let progress = InProgress::new(settings);
            let cap = shared.cap(&namespace);
            let acquire = async {
                let own = match own {
                    Some(own) => own,
                    None => {
                        cap.acquire(|| shared.dispatcher.max_concurrent(&namespace))
                            .await
                    }
                };
                let permit: OwnedSemaphorePermit = slot(&shared, &mut shutdown).await?;
                Some((own, permit))
            };
            tokio::pin!(acquire);
            let acquired = loop {
                tokio::select! {
                    acquired = &mut acquire => break acquired,
                    () = tokio::time::sleep(held.due_in()), if !waiting.is_empty() => {
                        held.report_all(&waiting).await;
                    }
                    next = batch.next(), if !pulled_all => match next {
                        Some(Ok(message)) => waiting.push_back(message),
                        Some(Err(error)) => {
                            failed = Some(error.to_string());
                            pulled_all = true;
                        }
                        None => pulled_all = true,
                    },
                }
            };
            let Some((own, permit)) = acquired else {
                ack(&delivered.message, AckKind::Nak(None)).await;
                continue;
            };
            while tasks.try_join_next().is_some() {}
            let shared = shared.clone();
            tasks.spawn(async move {
                handle(
                    &shared.dispatcher,
                    &shared.settings,
                    delivered,
                    progress,
                    shared.abort.clone(),
                )
                .await;
                drop(permit);
                drop(own);
            });
        }
        while tasks.try_join_next().is_some() {}
        pull = if received > 0 && skipped * 4 >= received * 3 {
            SKIP_PULL
        } else {
            batch_size
        };
        if received == 0
            && backlog.is_some_and(|pending| pending > 0)
            && let Some(consumer) = consumer.as_mut()
            && let Ok(info) = consumer.info().await
        {
            // Nothing came although events were pending: other replicas took them.
            backlog = Some(info.num_pending);
            shared.dispatcher.metrics().common_backlog(info.num_pending);
        }
        match failed {
            Some(error) if received == 0 => {
                consumer = None;
                if !failing.wait(ALL, PULL_FAILED, &error, &mut shutdown).await {
                    break;
                }
            }
            Some(error) => {
                tracing::warn!(%error, "{PULL_FAILED} from the common consumer");
                failing.reset();
            }
            None => failing.reset(),
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// When an event whose tenant's consumer is being given back comes round again.
const RELEASING_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// How many events a pull asks for while most are a diverted tenant's.
const SKIP_PULL: usize = 4096;

/// What the logs name as the common consumer's tenant.
const ALL: &str = "*";

/// Waits between failed diversions: the event is handed back to come round again.
const DIVERT_BACKOFF: retry::Backoff = retry::Backoff::new(
    std::time::Duration::from_millis(200),
    std::time::Duration::from_secs(5),
);

/// Where the event goes, by what is known of its tenant now.
async fn route(shared: &Shared, delivered: &Received, namespace: &str) -> Route {
    let Ok(envelope) = &delivered.event else {
        return Route::Run(None);
    };
    if shared
        .diverted
        .of(namespace)
        .is_some_and(|diversion| diversion.released_at.is_none())
    {
        // Not passed over by its subject: stored before the diversion (or this replica's
        // knowledge of it is too old to rely on), so run here.
        return Route::Run(None);
    }
    let dispatcher = &shared.dispatcher;
    if dispatcher.is_paused(namespace) {
        return Route::Divert(Why::Paused);
    }
    let Some(own) = shared
        .cap(namespace)
        .try_acquire(dispatcher.max_concurrent(namespace))
    else {
        return Route::Divert(Why::Capped);
    };
    // Tokens are taken bucket by bucket, as the tenant's own loop does; one granted before
    // another says wait is spent, so a tenant at its limit runs at most one event fewer.
    for (key, rate) in &dispatcher.throttle(&envelope.meta).buckets {
        match dispatcher.limiter().take(key, *rate).await {
            Ok(Take::Granted) => {}
            Ok(Take::Wait(_)) | Err(_) => return Route::Divert(Why::RateLimited),
        }
    }
    Route::Run(Some(own))
}

/// Gives `namespace` its own consumer starting at `sequence`, or binds the one another
/// replica gave it; what it owns either way.
async fn divert(
    shared: &Shared,
    namespace: &str,
    sequence: u64,
    why: Why,
) -> Result<Diversion, super::BindError> {
    let settings = &shared.settings;
    let config = settings.consumer_config(namespace, sequence);
    let consumer = bind(&shared.js, settings, config, true).await?;
    let diversion = Diversion::of(&consumer.cached_info().config);
    tracing::info!(
        %namespace,
        reason = why.as_str(),
        start = diversion.start,
        "tenant diverted to its own consumer"
    );
    shared.diverted.set(namespace, diversion);
    Ok(diversion)
}
