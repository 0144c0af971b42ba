//! One event, its listener's selected triggers: run the interceptors the edge left to the
//! dispatcher (`cel`, webhooks), resolve bindings, render the template, label the objects as
//! Tekton does, and create them in the trigger's namespace as the trigger's service account.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde_json::{Map, Value};
use sluice_runtime::clock::now_ms;
use sluice_runtime::envelope::{Envelope, EventMeta};
use sluice_triggers::catalogue::{Catalogue, Listener, Trigger};
use sluice_triggers::expr::EventContext;
use sluice_triggers::idempotency;
use sluice_triggers::naming;
use sluice_triggers::plan::{self, Plan, PlanError, object_namespace, service_account_user};
use tracing::Instrument;

use crate::dead_letter::DeadLetters;
use crate::interceptor::{
    EventInfo, EventState, InterceptorError, Interceptors, Passage, runs_at_dispatch,
};
use crate::ledger::{Entry as LedgerEntry, Ledger, RunOutcome};
use crate::metrics::{DispatchMetrics, EventOutcome, TriggerOutcome};
use crate::ratelimit::{Rate, RateLimiter};
use crate::sink::{CONFLICT, Created, FailureKind, Sink, SinkError};
use sluice_runtime::dlq::{self, DeadLetter};
use sluice_runtime::tenants::{Limits, TenantPolicy};

/// Why a trigger did not create its objects.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("{0}")]
    Interceptor(#[from] InterceptorError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Ledger(String),
    #[error("create of object {index} failed: {source}")]
    Create {
        index: usize,
        #[source]
        source: SinkError,
    },
}

impl TriggerError {
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Create { source, .. } => source.kind,
            Self::Interceptor(error) => error.kind,
            Self::Ledger(_) => FailureKind::Transient,
            Self::Plan(_) => FailureKind::Permanent,
        }
    }

    /// The delay the API asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Create { source, .. } => source.retry_after,
            _ => None,
        }
    }
}

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
}

/// The outcome of each trigger group's interceptors for one event: they run once, whatever
/// the number of triggers the group selected.
#[derive(Debug, Default)]
pub struct GroupOutcomes(HashMap<String, Result<Passage, InterceptorError>>);

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
}

/// What an event must wait for before it runs: a token from each bucket (one per trigger
/// run, from the trigger's own bucket and the namespace's), and a free create slot of its
/// tenant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Throttle {
    pub buckets: Vec<(String, Rate)>,
    pub max_concurrent: Option<u32>,
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
        }
    }

    /// Enforces the platform's per-tenant limits, with buckets shared through `limiter`.
    pub fn with_limits(mut self, policy: Arc<ArcSwap<TenantPolicy>>, limiter: RateLimiter) -> Self {
        self.policy = policy;
        self.limiter = limiter;
        self
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// A tenant's limits as its listener lowers them (the platform's when the listener is
    /// gone). Annotations that would raise a limit are ignored; `sluice validate` reports
    /// them.
    fn tenant_limits(&self, namespace: &str, listener: &str) -> Limits {
        let limits = self.policy.load().limits(namespace);
        match self.catalogue.load().listener(namespace, listener) {
            Some(listener) if !listener.annotations.is_empty() => {
                limits.lowered_by(&listener.annotations).0
            }
            _ => limits,
        }
    }

    /// What `meta`'s event must wait for before it runs.
    pub fn throttle(&self, meta: &EventMeta) -> Throttle {
        let limits = self.tenant_limits(&meta.namespace, &meta.listener);
        let mut buckets = Vec::new();
        for trigger in &meta.triggers {
            if let Some(rate) = limits.triggers.get(trigger) {
                buckets.push((
                    format!("{}.trigger.{trigger}", meta.namespace),
                    Rate {
                        per_minute: rate.per_minute,
                        burst: rate.burst,
                    },
                ));
            }
            if let Some(rate) = limits.runs {
                buckets.push((
                    meta.namespace.clone(),
                    Rate {
                        per_minute: rate.per_minute,
                        burst: rate.burst,
                    },
                ));
            }
        }
        Throttle {
            buckets,
            max_concurrent: limits.max_concurrent_creates,
        }
    }

    /// Whether any limit applies to `namespace`: its events are then pulled one at a time,
    /// so none waits for a token unseen by JetStream's ack timer.
    pub fn is_limited(&self, namespace: &str) -> bool {
        let limits = self.policy.load().limits(namespace);
        let annotated = self
            .catalogue
            .load()
            .listeners()
            .any(|l| l.namespace == namespace && !l.annotations.is_empty());
        annotated || limits.runs.is_some() || !limits.triggers.is_empty()
    }

    /// The tenant's cap on creates in flight, if any.
    pub fn max_concurrent(&self, namespace: &str) -> Option<u32> {
        self.policy.load().limits(namespace).max_concurrent_creates
    }

    pub fn metrics(&self) -> &DispatchMetrics {
        &self.metrics
    }

    /// The namespaces of the configured listeners: the tenants whose events are consumed.
    pub fn namespaces(&self) -> std::collections::BTreeSet<String> {
        self.catalogue
            .load()
            .listeners()
            .map(|listener| listener.namespace.clone())
            .collect()
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
                .dead_letter_event(delivery, &reason, dlq::FailureKind::Permanent)
                .await;
        };
        let labels = Some((listener.namespace.as_str(), listener.name.as_str()));
        let input = match initial_state(delivery.envelope.body.clone(), meta) {
            Ok(input) => input,
            Err(error) => {
                self.metrics.event(labels, EventOutcome::Malformed);
                let reason = format!("the body is not JSON: {error}");
                return self
                    .dead_letter_event(delivery, &reason, dlq::FailureKind::Permanent)
                    .await;
            }
        };
        let event_key = idempotency::event_key(&meta.idempotency_key, &meta.event_id);
        let mut groups = GroupOutcomes::default();
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
                .trigger_step(delivery, listener, trigger, &event_key, &input, &mut groups)
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
                    dlq::FailureKind::Transient,
                );
                keep |= !self.store_letter(&letter).await;
            }
        }
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
        groups: &mut GroupOutcomes,
    ) -> Step {
        let meta = &delivery.envelope.meta;
        let run_key = idempotency::run_key(event_key, trigger);
        let count = |outcome| {
            self.metrics
                .trigger(&listener.namespace, &listener.name, outcome)
        };
        match self.ledger.get(&run_key).await {
            Ok(Some(entry)) => {
                run_log!(
                    info, listener, trigger, meta,
                    first_event_id = %entry.event_id,
                    objects = ?entry.objects,
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
                    error: TriggerError::Ledger(error.to_string()),
                };
            }
        }
        let outcome = self
            .run_trigger(listener, trigger, meta, input, groups)
            .await;
        let (entry, created) = match outcome {
            Ok(None) => {
                count(TriggerOutcome::Filtered);
                (ledger_entry(meta, RunOutcome::Filtered, &[]), None)
            }
            Ok(Some(created)) => {
                count(TriggerOutcome::Created);
                self.metrics
                    .webhook_to_created(seconds_since(meta.received_at_ms));
                run_log!(
                    info, listener, trigger, meta,
                    created = ?created,
                    "trigger created its objects"
                );
                (
                    ledger_entry(meta, RunOutcome::Created, &created),
                    Some(created),
                )
            }
            Err(error) if error.kind() == FailureKind::Transient => {
                count(TriggerOutcome::Transient);
                run_log!(warn, listener, trigger, meta, %error, "trigger will be retried");
                return Step::Retry {
                    min_delay: error.retry_after(),
                    error,
                };
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
                    dlq::FailureKind::Permanent,
                );
                return if self.store_letter(&letter).await {
                    Step::Finished
                } else {
                    Step::Keep
                };
            }
        };
        if let Err(error) = self.ledger.record(&run_key, &entry).await {
            // The objects exist; a redelivery finds them by name and records again.
            run_log!(
                warn, listener, trigger, meta,
                %error,
                created = ?created,
                "run done but not recorded; the event will be delivered again"
            );
            return Step::Retry {
                min_delay: None,
                error: TriggerError::Ledger(error.to_string()),
            };
        }
        Step::Finished
    }

    /// `None`: an interceptor stopped the trigger (logged here).
    async fn run_trigger(
        &self,
        listener: &Listener,
        trigger: &Trigger,
        meta: &EventMeta,
        input: &EventState,
        groups: &mut GroupOutcomes,
    ) -> Result<Option<Vec<Created>>, TriggerError> {
        let plan = plan_trigger(&self.interceptors, listener, trigger, meta, input, groups).await?;
        let objects = match plan {
            Plan::Create(objects) => objects,
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
                return Ok(None);
            }
        };
        let user = service_account_user(trigger);
        let mut created = Vec::with_capacity(objects.len());
        for (index, object) in objects.iter().enumerate() {
            let span = tracing::debug_span!(
                "create",
                kind = object["kind"].as_str().unwrap_or_default(),
                user = %user,
            );
            let started = Instant::now();
            let result = self
                .create_once(object, object_namespace(object, trigger), &user)
                .instrument(span)
                .await;
            self.metrics
                .create(started.elapsed().as_secs_f64(), result.is_ok());
            created.push(result.map_err(|source| TriggerError::Create { index, source })?);
        }
        Ok(Some(created))
    }

    /// Creates a rendered object under the name its key gives it. A `409` on an object with
    /// the same key means an earlier delivery created it; on another object, the next name.
    async fn create_once(
        &self,
        object: &Value,
        namespace: &str,
        user: &str,
    ) -> Result<Created, SinkError> {
        let key = naming::key_of(object)
            .ok_or_else(|| SinkError::permanent("the object carries no idempotency key"))?;
        let mut renamed;
        for attempt in 0..naming::NAME_ATTEMPTS {
            // The first attempt creates the object as rendered (already stamped); each
            // later one derives its name from it, not from the last try's.
            let (candidate, name) = if attempt == 0 {
                (object, naming::name_of(object))
            } else {
                renamed = object.clone();
                let name = naming::stamp(&mut renamed, key, attempt);
                (&renamed, name)
            };
            let name = name.ok_or_else(|| {
                SinkError::permanent("metadata.name or metadata.generateName is required")
            })?;
            match self.sink.create(candidate, namespace, user).await {
                Ok(created) => return Ok(created),
                Err(error) if error.status == Some(CONFLICT) => {
                    let existing = self.sink.get(candidate, namespace, &name).await?;
                    if existing.as_ref().and_then(naming::key_of) == Some(key) {
                        return Ok(Created {
                            kind: str_kind(candidate),
                            name,
                            existed: true,
                        });
                    }
                    tracing::info!(
                        %namespace,
                        %name,
                        %user,
                        "name taken by another object; trying the next one"
                    );
                }
                Err(error) => return Err(error),
            }
        }
        Err(SinkError::permanent(format!(
            "{} names derived from the event were all taken by other objects",
            naming::NAME_ATTEMPTS
        )))
    }

    /// A dead letter for this delivery.
    fn letter(
        &self,
        delivery: Delivery<'_>,
        trigger: Option<&str>,
        reason: &str,
        kind: dlq::FailureKind,
    ) -> DeadLetter {
        let meta = &delivery.envelope.meta;
        DeadLetter {
            namespace: meta.namespace.clone(),
            listener: meta.listener.clone(),
            trigger: trigger.map(str::to_owned),
            event_id: Some(meta.event_id.clone()),
            reason: reason.to_owned(),
            kind,
            attempts: delivery.attempt,
            failed_at_ms: now_ms(),
            event: delivery.raw.clone(),
        }
    }

    /// Stores a dead letter; `false` when it could not be (logged): keep the event.
    async fn store_letter(&self, letter: &DeadLetter) -> bool {
        match self.dead_letters.publish(letter).await {
            Ok(id) => {
                self.metrics
                    .dead_letter(&letter.namespace, &letter.listener, letter.kind);
                tracing::error!(
                    dead_letter = id,
                    namespace = %letter.namespace,
                    listener = %letter.listener,
                    trigger = letter.trigger.as_deref().unwrap_or("*"),
                    event_id = letter.event_id.as_deref().unwrap_or_default(),
                    kind = letter.kind.as_str(),
                    attempts = letter.attempts,
                    reason = %letter.reason,
                    "dead-lettered: see `sluice dlq show {id}`"
                );
                true
            }
            Err(error) => {
                tracing::error!(
                    namespace = %letter.namespace,
                    listener = %letter.listener,
                    trigger = letter.trigger.as_deref().unwrap_or("*"),
                    event_id = letter.event_id.as_deref().unwrap_or_default(),
                    %error,
                    reason = %letter.reason,
                    "cannot dead-letter; the event stays queued"
                );
                false
            }
        }
    }

    /// The whole event cannot run (its listener is gone, its body unreadable).
    async fn dead_letter_event(
        &self,
        delivery: Delivery<'_>,
        reason: &str,
        kind: dlq::FailureKind,
    ) -> Disposition {
        let letter = self.letter(delivery, None, reason, kind);
        if self.store_letter(&letter).await {
            Disposition::Done
        } else {
            Disposition::Retry { min_delay: None }
        }
    }

    /// A stored message that is not an event this dispatcher can read.
    pub async fn dead_letter_undecodable(
        &self,
        subject: &str,
        raw: &Bytes,
        attempt: u64,
        error: &str,
    ) -> Disposition {
        self.metrics.event(None, EventOutcome::Malformed);
        let mut tokens = subject.split('.').skip(2);
        let letter = DeadLetter {
            namespace: tokens.next().unwrap_or("_").to_owned(),
            listener: tokens.next().unwrap_or("_").to_owned(),
            trigger: None,
            event_id: None,
            reason: format!("the stored message is not a Sluice event: {error}"),
            kind: dlq::FailureKind::Permanent,
            attempts: attempt,
            failed_at_ms: now_ms(),
            event: raw.clone(),
        };
        if self.store_letter(&letter).await {
            Disposition::Done
        } else {
            Disposition::Retry { min_delay: None }
        }
    }
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
    }
}

fn str_kind(object: &Value) -> String {
    object["kind"].as_str().unwrap_or_default().to_owned()
}

/// What `trigger` makes of an event: its interceptors that run after the edge (a trigger
/// group's once per event, through `groups`), then bindings and template. Shared by the
/// dispatcher and `sluice render`.
pub async fn plan_trigger(
    interceptors: &Interceptors,
    listener: &Listener,
    trigger: &Trigger,
    meta: &EventMeta,
    input: &EventState,
    groups: &mut GroupOutcomes,
) -> Result<Plan, TriggerError> {
    let trigger_id = format!("namespaces/{}/triggers/{}", trigger.namespace, trigger.name);
    let event = EventInfo {
        event_id: &meta.event_id,
        request_url: &meta.request_url,
        trigger_id: &trigger_id,
    };
    let (group_interceptors, own) = match &trigger.group {
        Some(group) => trigger
            .interceptors
            .split_at(group.interceptors.min(trigger.interceptors.len())),
        None => (&[][..], &trigger.interceptors[..]),
    };
    if trigger.group.is_none() && !own.iter().any(runs_at_dispatch) {
        // Nothing can change the event: the bindings read it as it arrived, uncopied.
        return render_plan(listener, trigger, meta, input);
    }
    let after_group = match &trigger.group {
        Some(group) => {
            if !groups.0.contains_key(&group.name) {
                let outcome = interceptors
                    .run(group_interceptors, input.clone(), event)
                    .await;
                groups.0.insert(group.name.clone(), outcome);
            }
            match groups.0.get(&group.name) {
                Some(outcome) => outcome.clone()?,
                None => Passage::Continue(input.clone()),
            }
        }
        None => Passage::Continue(input.clone()),
    };
    let state = match proceed(after_group) {
        Ok(state) => state,
        Err(filtered) => return Ok(filtered),
    };
    let state = match proceed(interceptors.run(own, state, event).await?) {
        Ok(state) => state,
        Err(filtered) => return Ok(filtered),
    };
    render_plan(listener, trigger, meta, &state)
}

/// The objects `trigger` creates from the event as `state` holds it.
fn render_plan(
    listener: &Listener,
    trigger: &Trigger,
    meta: &EventMeta,
    state: &EventState,
) -> Result<Plan, TriggerError> {
    let ctx = EventContext {
        body: &state.body,
        headers: &state.headers,
        extensions: &state.extensions,
        event_id: &meta.event_id,
    };
    let event_key = idempotency::event_key(&meta.idempotency_key, &meta.event_id);
    let run_key = idempotency::run_key(&event_key, trigger);
    Ok(Plan::Create(plan::render(
        listener, trigger, &run_key, &ctx,
    )?))
}

/// The state to go on with, or the plan of a trigger an interceptor stopped.
fn proceed(passage: Passage) -> Result<EventState, Plan> {
    match passage {
        Passage::Continue(state) => Ok(state),
        Passage::Stopped {
            interceptor,
            reason,
        } => Err(Plan::Filtered {
            interceptor,
            reason,
        }),
    }
}

/// The event's state before any interceptor: the body as received, parsed.
pub fn initial_state(body: Bytes, meta: &EventMeta) -> Result<EventState, serde_json::Error> {
    Ok(EventState {
        body: serde_json::from_slice(&body)?,
        body_bytes: body,
        headers: meta.headers.clone(),
        extensions: Map::new(),
    })
}

fn seconds_since(epoch_ms: u64) -> f64 {
    now_ms().saturating_sub(epoch_ms) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use sluice_runtime::envelope::SCHEMA_VERSION;
    use sluice_triggers::config::load_str;
    use sluice_triggers::headers::Headers;

    use super::*;
    use sluice_triggers::plan::{LABEL_EVENT_ID, LABEL_EVENTLISTENER, LABEL_TRIGGER};

    /// The objects the dispatcher would create for `trigger`, failing as it would.
    fn render_trigger(
        listener: &Listener,
        trigger: &Trigger,
        meta: &EventMeta,
        ctx: &EventContext<'_>,
    ) -> Result<Vec<Value>, TriggerError> {
        let event_key = idempotency::event_key(&meta.idempotency_key, &meta.event_id);
        let run_key = idempotency::run_key(&event_key, trigger);
        Ok(plan::render(listener, trigger, &run_key, ctx)?)
    }

    const CONFIG: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: github, namespace: team-a}
spec:
  serviceAccountName: listener-sa
  triggers:
    - name: build
      bindings: [{name: revision, value: $(body.after)}]
      template:
        spec:
          params: [{name: revision}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata:
                generateName: ci-
                labels: {team: a, triggers.tekton.dev/trigger: spoofed}
              spec: {params: [{name: revision, value: $(tt.params.revision)}]}
    - name: elsewhere
      serviceAccountName: trigger-sa
      template:
        spec:
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {generateName: x-, namespace: team-b}
"#;

    fn meta() -> EventMeta {
        EventMeta {
            schema: SCHEMA_VERSION,
            event_id: "3f0c7e9a-0000-4000-8000-000000000001".into(),
            namespace: "team-a".into(),
            listener: "github".into(),
            received_at_ms: 0,
            idempotency_key: String::new(),
            triggers: vec![],
            traceparent: None,
            request_url: String::new(),
            headers: Headers::new(),
        }
    }

    #[test]
    fn rendered_objects_carry_tektons_labels_and_the_trigger_namespace() {
        let catalogue = load_str("c.yaml", CONFIG);
        let listener = catalogue.listener("team-a", "github").unwrap();
        let body = serde_json::json!({"after": "abc123"});
        let (meta, extensions) = (meta(), Map::new());
        let ctx = EventContext {
            body: &body,
            headers: &meta.headers,
            extensions: &extensions,
            event_id: &meta.event_id,
        };
        let objects = render_trigger(listener, &listener.triggers[0], &meta, &ctx).unwrap();
        let labels = &objects[0]["metadata"]["labels"];
        assert_eq!(labels[LABEL_EVENTLISTENER], "github");
        assert_eq!(
            labels[LABEL_TRIGGER], "build",
            "a template cannot spoof Tekton's labels"
        );
        assert_eq!(labels[LABEL_EVENT_ID], meta.event_id);
        assert_eq!(labels["team"], "a", "the template's own labels stay");
        assert_eq!(objects[0]["metadata"]["namespace"], "team-a");
        assert_eq!(objects[0]["spec"]["params"][0]["value"], "abc123");
        assert_eq!(
            service_account_user(&listener.triggers[0]),
            "system:serviceaccount:team-a:listener-sa"
        );
        assert_eq!(
            service_account_user(&listener.triggers[1]),
            "system:serviceaccount:team-a:trigger-sa"
        );
    }

    #[test]
    fn a_template_naming_another_namespace_is_refused_permanently() {
        let catalogue = load_str("c.yaml", CONFIG);
        let listener = catalogue.listener("team-a", "github").unwrap();
        let body = serde_json::json!({});
        let (meta, extensions) = (meta(), Map::new());
        let ctx = EventContext {
            body: &body,
            headers: &meta.headers,
            extensions: &extensions,
            event_id: &meta.event_id,
        };
        let error = render_trigger(listener, &listener.triggers[1], &meta, &ctx).unwrap_err();
        assert_eq!(error.kind(), FailureKind::Permanent);
        assert!(error.to_string().contains("team-b"), "{error}");
    }

    fn dispatcher(root: &std::path::Path) -> Dispatcher {
        use crate::interceptor::webhook::{WebhookClient, WebhookSettings};
        let catalogue = Arc::new(ArcSwap::from_pointee(load_str("c.yaml", CONFIG)));
        let metrics =
            DispatchMetrics::register(&mut prometheus_client::registry::Registry::default());
        let interceptors = Interceptors::new(
            WebhookClient::new(WebhookSettings::default()),
            sluice_cel::Limits::default(),
        );
        Dispatcher::new(
            catalogue,
            Sink::Dir(crate::sink::dir::DirSink::new(root.to_owned())),
            metrics,
            interceptors,
            Ledger::disabled(),
            DeadLetters::disabled(),
        )
    }

    fn files(root: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join("team-a"))
            .map(|dir| {
                dir.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                    .filter(|name| !name.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_redelivery_finds_its_objects_and_a_foreign_name_moves_the_run() {
        let root = tempfile::tempdir().unwrap();
        let dispatcher = dispatcher(root.path());
        let mut meta = meta();
        meta.idempotency_key = "team-a/github/delivery-1".into();
        meta.triggers = vec!["build".into()];
        let envelope = Envelope {
            meta: meta.clone(),
            body: Bytes::from_static(br#"{"after": "abc123"}"#),
        };
        // Occupy the name this run would take with an object that is not its own.
        let catalogue = load_str("c.yaml", CONFIG);
        let listener = catalogue.listener("team-a", "github").unwrap();
        let body = serde_json::json!({"after": "abc123"});
        let extensions = Map::new();
        let ctx = EventContext {
            body: &body,
            headers: &meta.headers,
            extensions: &extensions,
            event_id: &meta.event_id,
        };
        let planned = render_trigger(listener, &listener.triggers[0], &meta, &ctx).unwrap();
        let taken = planned[0]["metadata"]["name"].as_str().unwrap().to_owned();
        let foreign = serde_json::json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": taken}});
        crate::sink::dir::DirSink::new(root.path().to_owned())
            .create(&foreign, "team-a")
            .await
            .unwrap();

        let raw = envelope.encode();
        for attempt in 1..=3 {
            let delivery = Delivery {
                envelope: &envelope,
                raw: &raw,
                attempt,
                last: false,
            };
            assert_eq!(dispatcher.dispatch(delivery).await, Disposition::Done);
        }
        let files = files(root.path());
        assert_eq!(files.len(), 2, "the foreign object and one run: {files:?}");
        let ours = files
            .iter()
            .find(|f| **f != format!("pipelinerun-{taken}.yaml"))
            .expect("the run under another name");
        let text = std::fs::read_to_string(root.path().join("team-a").join(ours)).unwrap();
        assert!(text.contains(naming::ANNOTATION), "{text}");
    }

    #[test]
    fn a_missing_body_field_is_a_permanent_binding_error() {
        let catalogue = load_str("c.yaml", CONFIG);
        let listener = catalogue.listener("team-a", "github").unwrap();
        let body = serde_json::json!({"before": "x"});
        let (meta, extensions) = (meta(), Map::new());
        let ctx = EventContext {
            body: &body,
            headers: &meta.headers,
            extensions: &extensions,
            event_id: &meta.event_id,
        };
        let error = render_trigger(listener, &listener.triggers[0], &meta, &ctx).unwrap_err();
        assert!(
            matches!(error, TriggerError::Plan(PlanError::Binding(_))),
            "{error}"
        );
        assert_eq!(error.kind(), FailureKind::Permanent);
    }
}
