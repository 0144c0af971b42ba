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

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::PullConsumer;
use sluice_runtime::retry;
use tokio::task::JoinSet;

use super::cap::CapPermit;
use super::delivery::{InProgress, Received, ack, handle};
use super::diverted::Diversion;
use super::pulled::{Pull, start};
use super::tenant::{Failing, PULL_FAILED, cap_and_slot, slot, tokens_or_hand_back};
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

/// Where an event goes by its tenant's policy.
enum Route {
    Divert(Why),
    /// Run it here, under its tenant's cap (a place already taken, or to wait for).
    Run(Option<CapPermit>),
}

/// What the common loop does with one delivered event.
enum Decision {
    /// Run it here, under its tenant's cap (a place already taken, or to wait for).
    Run(Option<CapPermit>),
    /// Its tenant's own consumer has it: acknowledge it here.
    Skip,
    /// Hand it back to come round again after the delay.
    HandBack(Duration),
}

/// Pulls from the common consumer until shutdown.
pub(super) async fn common_loop(shared: Arc<Shared>) {
    let settings = &shared.settings;
    let mut shutdown = shared.shutdown.clone();
    let mut tasks = JoinSet::new();
    let mut consumer: Option<PullConsumer> = None;
    let mut failing = Failing::default();
    let mut diverting = retry::Retrying::new(DIVERT_BACKOFF);
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
            Ok(batch) => Pull::new(batch, settings),
            Err(error) => {
                consumer = None;
                if failing.wait(ALL, PULL_FAILED, &error, &mut shutdown).await {
                    continue;
                }
                break;
            }
        };
        let mut received = 0usize;
        let mut skipped = 0usize;
        while let Some(message) = batch.next(&mut shutdown, received == 0).await {
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
            let own = match decide(&shared, &delivered, &namespace, sequence, &mut diverting).await
            {
                Decision::Run(Some(own)) => own,
                Decision::Run(None) => {
                    // Not under its tenant's policy yet (stored before the tenant was
                    // diverted): it waits for its tokens, its place under the cap and a slot
                    // on a task of its own, so that the events behind it are not held.
                    while tasks.try_join_next().is_some() {}
                    tasks.spawn(run_under_policy(shared.clone(), delivered, namespace));
                    continue;
                }
                Decision::Skip => {
                    skipped += 1;
                    ack(&delivered.message, AckKind::Ack).await;
                    continue;
                }
                Decision::HandBack(delay) => {
                    ack(&delivered.message, AckKind::Nak(Some(delay))).await;
                    continue;
                }
            };
            let progress = InProgress::new(settings);
            let acquire = async {
                let permit = slot(&shared, &mut shutdown).await?;
                Some((own, permit))
            };
            let Some(hold) = batch.while_reading(acquire).await else {
                ack(&delivered.message, AckKind::Nak(None)).await;
                continue;
            };
            start(&mut tasks, &shared, delivered, progress, hold);
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
        match batch.failed {
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
const RELEASING_RETRY: Duration = Duration::from_secs(5);

/// How many events a pull asks for while most are a diverted tenant's.
const SKIP_PULL: usize = 4096;

/// What the logs name as the common consumer's tenant.
const ALL: &str = "*";

/// Waits between failed diversions: the event is handed back to come round again.
const DIVERT_BACKOFF: retry::Backoff =
    retry::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));

/// Runs an event once it has its tenant's tokens, a place under its cap and a slot.
async fn run_under_policy(shared: Arc<Shared>, delivered: Received, namespace: String) {
    let mut shutdown = shared.shutdown.clone();
    let mut progress = InProgress::new(&shared.settings);
    if !tokens_or_hand_back(
        &shared,
        &namespace,
        &delivered,
        &mut progress,
        &mut shutdown,
    )
    .await
    {
        return;
    }
    let cap = shared.cap(&namespace);
    let Some(hold) = cap_and_slot(&shared, &cap, &namespace, &mut shutdown).await else {
        ack(&delivered.message, AckKind::Nak(None)).await;
        return;
    };
    let abort = shared.abort.clone();
    handle(
        &shared.dispatcher,
        &shared.settings,
        delivered,
        progress,
        abort,
    )
    .await;
    drop(hold);
}

/// What to do with the event, diverting its tenant first if it must be.
async fn decide(
    shared: &Shared,
    delivered: &Received,
    namespace: &str,
    sequence: u64,
    diverting: &mut retry::Retrying,
) -> Decision {
    let why = match route(shared, delivered, namespace).await {
        Route::Run(own) => return Decision::Run(own),
        Route::Divert(why) => why,
    };
    if shared
        .diverted
        .of(namespace)
        .is_some_and(|diversion| diversion.released_at.is_some())
    {
        // Its consumer is being given back; it can have another once that one is gone.
        return Decision::HandBack(RELEASING_RETRY);
    }
    match divert(shared, namespace, sequence, why).await {
        Ok(diversion) if diversion.owns(sequence) => {
            diverting.reset();
            Decision::Skip
        }
        // Diverted by another replica from a later event (or being given back): this one
        // is the common consumer's to run.
        Ok(_) => Decision::Run(None),
        Err(error) => {
            let next = diverting.failed();
            if next.log {
                tracing::warn!(
                    %namespace,
                    %error,
                    failures = next.failures,
                    "cannot divert the tenant to its own consumer; its event is handed back"
                );
            }
            Decision::HandBack(next.wait)
        }
    }
}

/// Whether the tenant (its event at hand included) holds more than its share of this
/// replica's slots (a quarter) while none is free: a flood, whose backlog would stand in
/// front of everyone else's events.
fn floods(shared: &Shared, namespace: &str) -> bool {
    let share = (shared.settings.concurrency / 4).max(1);
    shared.slots.available_permits() == 0 && shared.cap(namespace).in_flight() > share
}

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
    if floods(shared, namespace) {
        return Route::Divert(Why::Flooding);
    }
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
