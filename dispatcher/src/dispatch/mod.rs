//! One event through its listener's selected triggers: run the interceptors the edge left
//! to the dispatcher (`cel`, webhooks), resolve bindings, render the template, label the
//! objects as Tekton does, and create them in the trigger's namespace as the trigger's
//! service account — each trigger once, whatever the number of deliveries.
//!
//! - this file: [`Dispatcher::dispatch`], one delivery from its listener to what becomes of
//!   it (ack, retry later, dead letter), trigger by trigger, with the ledger;
//! - [`plan`]: what a trigger makes of an event (shared with `sluice render`);
//! - [`create`]: the planned objects created once, under names derived from the run's key;
//! - [`throttle`]: what an event waits for before it runs;
//! - [`letters`]: dead letters for what failed for good;
//! - [`error`]: why a trigger did not create its objects, and whether to retry.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use sluice_runtime::clock::now_ms;
use sluice_runtime::envelope::{Envelope, EventMeta};
use sluice_runtime::retry::FailureKind;
use sluice_runtime::tenants::TenantPolicy;
use sluice_triggers::catalogue::{Catalogue, Listener, Trigger};
use sluice_triggers::idempotency;
use sluice_triggers::plan::Plan;
use tracing::Instrument;

use crate::interceptor::{EventState, Interceptors};
use crate::ledger::{Entry as LedgerEntry, Ledger, RunOutcome};
use crate::metrics::{DispatchMetrics, EventOutcome, TriggerOutcome};
use crate::ratelimit::RateLimiter;
use crate::sink::{Created, Sink};
use record::Transition;
use sluice_runtime::event_status::{StatusWriter, TriggerRecord};
use sluice_runtime::retry::Backoff;

/// Logs at `$level` with the run's identity first: namespace, listener, trigger and event.
/// Runs carry no span at the default level, so every line names them itself.
macro_rules! run_log {
    ($level:ident, $listener:expr, $trigger:expr, $meta:expr, $($rest:tt)+) => {
        tracing::$level!(
            namespace = %$listener.namespace,
            listener = %$listener.name,
            trigger = %$trigger.name,
            event_id = %$meta.event_id,
            $($rest)+
        )
    };
}

/// Created objects as a log line shows them: `PipelineRun/build-x7k2p, TaskRun/lint-9qz
/// (already there)`, the last one made by an earlier delivery of the same event.
fn objects_text(created: &[Created]) -> String {
    let mut text = String::new();
    for (i, object) in created.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(&object.kind);
        text.push('/');
        text.push_str(&object.name);
        if object.existed {
            text.push_str(" (already there)");
        }
    }
    text
}

mod create;
mod error;
pub mod letters;
mod plan;
mod record;
mod throttle;

#[cfg(test)]
mod tests;

pub use error::TriggerError;
pub use letters::DeadLetters;
pub use plan::{GroupOutcomes, initial_state, plan_trigger};
pub use throttle::Throttle;

/// What should happen to the event's delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Ack: every trigger is done, filtered, or dead-lettered.
    Done,
    /// Hand it back for a later delivery; at least `min_delay` if the API asked for one.
    Retry { min_delay: Option<Duration> },
}

/// One delivery of a stored event.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub envelope: &'a Envelope,
    /// The stored message, as a dead letter keeps it.
    pub raw: &'a Bytes,
    /// 1 for the first delivery.
    pub attempt: u64,
    /// No further delivery is allowed: what is still failing is dead-lettered now.
    pub last: bool,
    /// The event's sequence in the events stream (0 when unknown).
    pub sequence: u64,
}

/// Runs events; shared by every in-flight event of a replica.
pub struct Dispatcher {
    catalogue: Arc<ArcSwap<Catalogue>>,
    sink: Sink,
    metrics: DispatchMetrics,
    interceptors: Interceptors,
    ledger: Ledger,
    dead_letters: DeadLetters,
    policy: Arc<ArcSwap<TenantPolicy>>,
    limiter: RateLimiter,
    /// Where each trigger's state is recorded (`sluice events`).
    status: Arc<StatusWriter>,
    /// The consumer's redelivery backoff, for the time a retrying trigger is tried next.
    retry: Backoff,
}

/// What became of one trigger in one delivery.
enum Step {
    Finished,
    Retry {
        min_delay: Option<Duration>,
        error: TriggerError,
    },
    /// The dead letter could not be stored: keep the event.
    Keep,
}

impl Dispatcher {
    pub fn new(
        catalogue: Arc<ArcSwap<Catalogue>>,
        sink: Sink,
        metrics: DispatchMetrics,
        interceptors: Interceptors,
        ledger: Ledger,
        dead_letters: DeadLetters,
    ) -> Self {
        Self {
            catalogue,
            sink,
            metrics,
            interceptors,
            ledger,
            dead_letters,
            policy: Arc::new(ArcSwap::from_pointee(TenantPolicy::default())),
            limiter: RateLimiter::disabled(),
            status: Arc::new(StatusWriter::disabled()),
            retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        }
    }

    /// Records each trigger's state with `status`; `retry` is the consumer's backoff.
    pub fn with_status(mut self, status: StatusWriter, retry: Backoff) -> Self {
        self.status = Arc::new(status);
        self.retry = retry;
        self
    }

    /// Enforces the platform's per-tenant limits, with buckets shared through `limiter`.
    pub fn with_limits(mut self, policy: Arc<ArcSwap<TenantPolicy>>, limiter: RateLimiter) -> Self {
        self.policy = policy;
        self.limiter = limiter;
        self
    }

    pub fn metrics(&self) -> &DispatchMetrics {
        &self.metrics
    }

    /// Processes one delivery of an event and says what to do with it.
    pub async fn dispatch(&self, delivery: Delivery<'_>) -> Disposition {
        let meta = &delivery.envelope.meta;
        let catalogue = self.catalogue.load();
        let Some(listener) = catalogue.listener(&meta.namespace, &meta.listener) else {
            let reason = format!(
                "EventListener {}/{} is not configured",
                meta.namespace, meta.listener
            );
            self.metrics.event(None, EventOutcome::UnknownListener);
            return self
                .dead_letter_event(delivery, &reason, FailureKind::Permanent)
                .await;
        };
        let labels = Some((listener.namespace.as_str(), listener.name.as_str()));
        let input = initial_state(delivery.envelope.body.clone(), meta);
        let event_key = idempotency::event_key(&meta.idempotency_key, &meta.event_id);
        let mut outcomes = Outcomes {
            groups: GroupOutcomes::default(),
            states: Vec::with_capacity(meta.triggers.len()),
        };
        let mut retries = Vec::new();
        let mut keep = false;
        for name in &meta.triggers {
            let Some(trigger) = listener.triggers.iter().find(|t| &t.name == name) else {
                tracing::warn!(event_id = %meta.event_id, trigger = %name, "trigger no longer configured; skipped");
                self.metrics
                    .trigger(&listener.namespace, &listener.name, TriggerOutcome::Missing);
                continue;
            };
            // Debug level: at the default level a run pays for no span, and every line
            // logged on its way names the trigger and the event itself.
            let span = tracing::debug_span!(
                "trigger",
                namespace = %listener.namespace,
                listener = %listener.name,
                trigger = %trigger.name,
                event_id = %meta.event_id,
            );
            let step = self
                .trigger_step(
                    delivery,
                    listener,
                    trigger,
                    &event_key,
                    &input,
                    &mut outcomes,
                )
                .instrument(span)
                .await;
            match step {
                Step::Finished => {}
                Step::Keep => keep = true,
                Step::Retry { min_delay, error } => retries.push((trigger, min_delay, error)),
            }
        }
        if delivery.last {
            // Out of deliveries: what still fails is given up into the dead-letter stream.
            for (trigger, _, error) in retries.drain(..) {
                let reason = format!("given up after {} deliveries: {error}", delivery.attempt);
                let letter = self.letter(
                    delivery,
                    Some(&trigger.name),
                    &reason,
                    FailureKind::Transient,
                );
                let stored = self.store_letter(&letter).await;
                keep |= !stored;
                let transition = if stored {
                    Transition::dead_lettered(&reason, &error)
                } else {
                    Transition::dead_letter_unstored(&reason, &error)
                };
                outcomes.states.retain(|state| state.name != trigger.name);
                outcomes
                    .states
                    .push(transition.record(trigger, delivery.attempt));
            }
        }
        for (trigger, min_delay, error) in &retries {
            // A run whose objects exist but whose ledger write failed stays `created`.
            if outcomes
                .states
                .iter()
                .any(|state| state.name == trigger.name)
            {
                continue;
            }
            let delay = self.soonest_retry(delivery.attempt, *min_delay);
            outcomes
                .states
                .push(Transition::retrying(error, delay).record(trigger, delivery.attempt));
        }
        self.write_status(delivery, outcomes.states).await;
        let min_delay = retries.iter().map(|(_, delay, _)| *delay).max();
        match (min_delay, keep) {
            (Some(min_delay), _) => {
                self.metrics.event(labels, EventOutcome::Retry);
                Disposition::Retry { min_delay }
            }
            (None, true) => {
                self.metrics.event(labels, EventOutcome::Retry);
                Disposition::Retry { min_delay: None }
            }
            (None, false) => {
                let outcome = if delivery.last && delivery.attempt > 1 {
                    EventOutcome::GaveUp
                } else {
                    EventOutcome::Done
                };
                self.metrics.event(labels, outcome);
                Disposition::Done
            }
        }
    }

    /// One trigger, once: skipped if the ledger says it is done, else run, recorded, or
    /// dead-lettered on a permanent failure.
    async fn trigger_step(
        &self,
        delivery: Delivery<'_>,
        listener: &Listener,
        trigger: &Trigger,
        event_key: &str,
        input: &EventState,
        outcomes: &mut Outcomes,
    ) -> Step {
        let meta = &delivery.envelope.meta;
        let run_key = idempotency::run_key(event_key, trigger);
        let count = |outcome| {
            self.metrics
                .trigger(&listener.namespace, &listener.name, outcome)
        };
        match self.ledger.get(&run_key).await {
            Ok(Some(entry)) => {
                // The same event again (a redelivery, a replay) shows what it did before.
                let transition = if entry.event_id == meta.event_id {
                    Transition::from_ledger(&entry)
                } else {
                    Transition::duplicate(&entry)
                };
                outcomes
                    .states
                    .push(transition.record(trigger, delivery.attempt));
                run_log!(
                    info, listener, trigger, meta,
                    first_event_id = %entry.event_id,
                    objects = %entry.objects.join(", "),
                    "trigger already ran for this delivery; nothing created"
                );
                count(TriggerOutcome::Duplicate);
                return Step::Finished;
            }
            Ok(None) => {}
            Err(error) => {
                count(TriggerOutcome::Transient);
                run_log!(warn, listener, trigger, meta, %error, "trigger will be retried");
                return Step::Retry {
                    min_delay: None,
                    error: TriggerError::Ledger(error),
                };
            }
        }
        let outcome = self
            .run_trigger(
                listener,
                trigger,
                meta,
                &run_key,
                input,
                &mut outcomes.groups,
            )
            .await;
        let (entry, created, transition) = match outcome {
            Ok(Ran::Filtered {
                interceptor,
                reason,
            }) => {
                count(TriggerOutcome::Filtered);
                let transition = Transition::filtered(&interceptor, &reason);
                let mut entry = ledger_entry(meta, RunOutcome::Filtered, &[]);
                entry.interceptor = Some(interceptor);
                entry.reason = Some(reason);
                (entry, None, transition)
            }
            Ok(Ran::Created(created)) => {
                count(TriggerOutcome::Created);
                self.metrics
                    .webhook_to_created(seconds_since(meta.received_at_ms));
                run_log!(
                    info, listener, trigger, meta,
                    created = %objects_text(&created),
                    "trigger created its objects"
                );
                let transition = Transition::created(&created);
                (
                    ledger_entry(meta, RunOutcome::Created, &created),
                    Some(created),
                    transition,
                )
            }
            Err(error) if error.kind().is_transient() => {
                count(TriggerOutcome::Transient);
                run_log!(warn, listener, trigger, meta, %error, "trigger will be retried");
                return Step::Retry {
                    min_delay: error.retry_after(),
                    error,
                };
            }
            Err(error) if error.kind() == FailureKind::BadInput => {
                // As Tekton skips a trigger its `cel` filter errs on: nothing a retry or a
                // replay could create. Recorded, so a redelivery does not run it again.
                count(TriggerOutcome::Error);
                run_log!(
                    warn, listener, trigger, meta,
                    %error,
                    "trigger failed for this event; not retried"
                );
                let transition = Transition::error(&error);
                let mut entry = ledger_entry(meta, RunOutcome::Error, &[]);
                entry.reason = Some(error.to_string());
                (entry, None, transition)
            }
            Err(error) => {
                count(TriggerOutcome::Permanent);
                run_log!(
                    error, listener, trigger, meta,
                    %error,
                    "trigger failed permanently; dead-lettered"
                );
                let reason = error.to_string();
                let letter = self.letter(
                    delivery,
                    Some(&trigger.name),
                    &reason,
                    FailureKind::Permanent,
                );
                return if self.store_letter(&letter).await {
                    let transition = Transition::dead_lettered(&reason, &error);
                    outcomes
                        .states
                        .push(transition.record(trigger, delivery.attempt));
                    Step::Finished
                } else {
                    let transition = Transition::dead_letter_unstored(&reason, &error);
                    outcomes
                        .states
                        .push(transition.record(trigger, delivery.attempt));
                    Step::Keep
                };
            }
        };
        // Recorded whatever the ledger says next: the objects exist.
        outcomes
            .states
            .push(transition.record(trigger, delivery.attempt));
        if let Err(error) = self.ledger.record(&run_key, &entry).await {
            // The objects exist; a redelivery finds them by name and records again.
            run_log!(
                warn, listener, trigger, meta,
                %error,
                created = %created.as_deref().map(objects_text).unwrap_or_default(),
                "run done but not recorded; the event will be delivered again"
            );
            return Step::Retry {
                min_delay: None,
                error: TriggerError::Ledger(error),
            };
        }
        Step::Finished
    }

    /// What the trigger did: created its objects, or an interceptor stopped it (logged here).
    async fn run_trigger(
        &self,
        listener: &Listener,
        trigger: &Trigger,
        meta: &EventMeta,
        run_key: &str,
        input: &EventState,
        groups: &mut GroupOutcomes,
    ) -> Result<Ran, TriggerError> {
        let plan = plan_trigger(
            &self.interceptors,
            listener,
            trigger,
            meta,
            run_key,
            input,
            groups,
        )
        .await?;
        match plan {
            Plan::Create(objects) => {
                Ok(Ran::Created(self.create_objects(trigger, &objects).await?))
            }
            Plan::Filtered {
                interceptor,
                reason,
            } => {
                run_log!(
                    info, listener, trigger, meta,
                    %interceptor,
                    %reason,
                    "trigger filtered: an interceptor stopped it"
                );
                Ok(Ran::Filtered {
                    interceptor,
                    reason,
                })
            }
        }
    }
}

/// What one delivery's triggers did so far: the groups' decisions, and each trigger's
/// state for the event status.
struct Outcomes {
    groups: GroupOutcomes,
    states: Vec<TriggerRecord>,
}

/// What a trigger that ran did.
enum Ran {
    Created(Vec<Created>),
    Filtered { interceptor: String, reason: String },
}

fn ledger_entry(meta: &EventMeta, outcome: RunOutcome, created: &[Created]) -> LedgerEntry {
    LedgerEntry {
        outcome,
        event_id: meta.event_id.clone(),
        objects: created
            .iter()
            .map(|c| format!("{}/{}", c.kind, c.name))
            .collect(),
        at_ms: now_ms(),
        interceptor: None,
        reason: None,
    }
}

fn seconds_since(epoch_ms: u64) -> f64 {
    now_ms().saturating_sub(epoch_ms) as f64 / 1000.0
}
