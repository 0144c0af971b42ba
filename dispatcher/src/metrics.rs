//! Dispatcher metrics. Label values are bounded by the configured listeners; an event for a
//! listener that is not configured is counted as `unknown`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sluice_runtime::metrics::ListenerKey;
use sluice_runtime::retry::FailureKind;

/// What became of one delivery of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventOutcome {
    /// Every selected trigger finished (created, or failed for good and logged).
    Done,
    /// A transient failure: handed back to JetStream for a later delivery.
    Retry,
    /// Retried as often as allowed: given up, logged with the last error.
    GaveUp,
    /// Not an event this dispatcher can read.
    Malformed,
    /// Its listener is no longer configured.
    UnknownListener,
}

/// What became of one trigger for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerOutcome {
    Created,
    /// Will be retried with the event.
    Transient,
    /// Failed for good: binding, template or a refused create; dead-lettered.
    Permanent,
    /// Failed for this event, as Tekton fails a trigger: a `cel` expression that errs on it, a
    /// webhook interceptor refusing it without a decision. Not retried, not dead-lettered.
    Error,
    /// The event names a trigger the listener no longer has.
    Missing,
    /// An interceptor (`cel` filter, webhook) stopped it: nothing to create.
    Filtered,
    /// The ledger says an earlier delivery of the same webhook already ran it.
    Duplicate,
}

impl EventOutcome {
    const ALL: [EventOutcome; 5] = [
        EventOutcome::Done,
        EventOutcome::Retry,
        EventOutcome::GaveUp,
        EventOutcome::Malformed,
        EventOutcome::UnknownListener,
    ];
}

impl TriggerOutcome {
    const ALL: [TriggerOutcome; 7] = [
        TriggerOutcome::Created,
        TriggerOutcome::Transient,
        TriggerOutcome::Permanent,
        TriggerOutcome::Error,
        TriggerOutcome::Missing,
        TriggerOutcome::Filtered,
        TriggerOutcome::Duplicate,
    ];
}

sluice_runtime::label_values!(EventOutcome {
    Done => "done",
    Retry => "retry",
    GaveUp => "gave_up",
    Malformed => "malformed",
    UnknownListener => "unknown_listener",
});

sluice_runtime::label_values!(TriggerOutcome {
    Created => "created",
    Filtered => "filtered",
    Duplicate => "duplicate",
    Transient => "transient",
    Permanent => "permanent",
    Error => "error",
    Missing => "missing",
});

sluice_runtime::label_values!(CreateResult {
    Ok => "ok",
    Error => "error",
});

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EventLabels {
    namespace: String,
    listener: String,
    outcome: EventOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TriggerLabels {
    namespace: String,
    listener: String,
    outcome: TriggerOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DeadLetterLabels {
    namespace: String,
    listener: String,
    kind: FailureKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TenantLabels {
    namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CreateLabels {
    result: CreateResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CreateResult {
    Ok,
    Error,
}

#[derive(Debug, Clone)]
pub struct DispatchMetrics {
    events: Family<EventLabels, Counter>,
    triggers: Family<TriggerLabels, Counter>,
    dead_letters: Family<DeadLetterLabels, Counter>,
    throttled: Family<TenantLabels, Counter>,
    throttle_delay: Family<TenantLabels, Gauge<f64, AtomicU64>>,
    backlog: Family<TenantLabels, Gauge>,
    common_backlog: Gauge,
    paused: Family<TenantLabels, Gauge>,
    create: Family<CreateLabels, Histogram>,
    webhook_to_created: Histogram,
    ledger_reads: Histogram,
}

impl DispatchMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let events = Family::default();
        registry.register(
            "sluice_dispatch_events",
            "Event deliveries by listener and outcome",
            events.clone(),
        );
        let triggers = Family::default();
        registry.register(
            "sluice_dispatch_triggers",
            "Trigger runs by listener and outcome",
            triggers.clone(),
        );
        let dead_letters = Family::default();
        registry.register(
            "sluice_dispatch_dead_letters",
            "Failures stored in the dead-letter stream, by listener and kind",
            dead_letters.clone(),
        );
        let throttled = Family::default();
        registry.register(
            "sluice_dispatch_throttled_events",
            "Events that waited for their tenant's rate limit, by namespace",
            throttled.clone(),
        );
        let throttle_delay = Family::default();
        registry.register(
            "sluice_dispatch_throttle_delay_seconds",
            "How long the tenant's next event still waits for its rate limit (0: not waiting)",
            throttle_delay.clone(),
        );
        let backlog = Family::default();
        registry.register(
            "sluice_dispatch_backlog_events",
            "Events stored for the tenant and not yet delivered to a dispatcher",
            backlog.clone(),
        );
        let common_backlog = Gauge::default();
        registry.register(
            "sluice_dispatch_common_backlog_events",
            "Events stored and not yet delivered from the common consumer (every tenant not \
             diverted to its own)",
            common_backlog.clone(),
        );
        let paused = Family::default();
        registry.register(
            "sluice_dispatch_tenant_paused",
            "1 while the tenants file pauses the tenant: its events wait in the stream, undispatched",
            paused.clone(),
        );
        let create = Family::<CreateLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register(
            "sluice_dispatch_create_seconds",
            "Time to create one object (Kubernetes API or directory)",
            create.clone(),
        );
        let webhook_to_created = Histogram::new(exponential_buckets(0.001, 2.0, 18));
        registry.register(
            "sluice_webhook_to_created_seconds",
            "Time from ingest receiving a webhook to the last object of a trigger being created",
            webhook_to_created.clone(),
        );
        let ledger_reads = Histogram::new(exponential_buckets(1.0, 2.0, 9));
        registry.register(
            "sluice_dispatch_ledger_reads_per_request",
            "Ledger reads answered by one request to NATS: above 1 when the reads of the events \
             in flight share a batched request",
            ledger_reads.clone(),
        );
        Self {
            events,
            triggers,
            dead_letters,
            throttled,
            throttle_delay,
            backlog,
            common_backlog,
            paused,
            create,
            webhook_to_created,
            ledger_reads,
        }
    }

    /// Starts the counters of `added` listeners at zero (events done, triggers created, dead
    /// letters of every kind: what alerts and dashboards rate) and drops every series of
    /// `removed` ones.
    pub fn listeners_changed(&self, added: &[ListenerKey], removed: &[ListenerKey]) {
        let event = |(namespace, listener): &ListenerKey, outcome| EventLabels {
            namespace: namespace.clone(),
            listener: listener.clone(),
            outcome,
        };
        let trigger = |(namespace, listener): &ListenerKey, outcome| TriggerLabels {
            namespace: namespace.clone(),
            listener: listener.clone(),
            outcome,
        };
        let letter = |(namespace, listener): &ListenerKey, kind| DeadLetterLabels {
            namespace: namespace.clone(),
            listener: listener.clone(),
            kind,
        };
        for key in added {
            self.events
                .get_or_create(&event(key, EventOutcome::Done))
                .inc_by(0);
            self.triggers
                .get_or_create(&trigger(key, TriggerOutcome::Created))
                .inc_by(0);
            for kind in FailureKind::ALL {
                self.dead_letters
                    .get_or_create(&letter(key, kind))
                    .inc_by(0);
            }
        }
        for key in removed {
            for outcome in EventOutcome::ALL {
                self.events.remove(&event(key, outcome));
            }
            for outcome in TriggerOutcome::ALL {
                self.triggers.remove(&trigger(key, outcome));
            }
            for kind in FailureKind::ALL {
                self.dead_letters.remove(&letter(key, kind));
            }
        }
    }

    /// Counts an event delivery; `None` when its listener is not configured.
    pub fn event(&self, listener: Option<(&str, &str)>, outcome: EventOutcome) {
        let (namespace, listener) = listener.unwrap_or(("unknown", "unknown"));
        self.events
            .get_or_create(&EventLabels {
                namespace: namespace.to_owned(),
                listener: listener.to_owned(),
                outcome,
            })
            .inc();
    }

    pub fn trigger(&self, namespace: &str, listener: &str, outcome: TriggerOutcome) {
        self.triggers
            .get_or_create(&TriggerLabels {
                namespace: namespace.to_owned(),
                listener: listener.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Counts a dead letter. Its namespace and listener come from a stored event, which
    /// ingest only accepts for configured listeners.
    pub fn dead_letter(&self, namespace: &str, listener: &str, kind: FailureKind) {
        self.dead_letters
            .get_or_create(&DeadLetterLabels {
                namespace: namespace.to_owned(),
                listener: listener.to_owned(),
                kind,
            })
            .inc();
    }

    /// Counts an event that had to wait for its tenant's budget. Namespaces are those of
    /// stored events, which ingest accepts only for configured listeners.
    pub fn throttled(&self, namespace: &str) {
        self.throttled
            .get_or_create(&TenantLabels {
                namespace: namespace.to_owned(),
            })
            .inc();
    }

    pub fn throttle_delay(&self, namespace: &str, seconds: f64) {
        self.throttle_delay
            .get_or_create(&TenantLabels {
                namespace: namespace.to_owned(),
            })
            .set(seconds);
    }

    pub fn backlog(&self, namespace: &str, pending: u64) {
        self.backlog
            .get_or_create(&TenantLabels {
                namespace: namespace.to_owned(),
            })
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// Sets the common consumer's backlog.
    pub fn common_backlog(&self, pending: u64) {
        self.common_backlog
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// Shows whether the tenant is paused (1) or dispatched (0).
    pub fn paused(&self, namespace: &str, paused: bool) {
        self.paused
            .get_or_create(&TenantLabels {
                namespace: namespace.to_owned(),
            })
            .set(i64::from(paused));
    }

    /// Where the ledger counts the reads each of its requests answered.
    pub fn ledger_reads(&self) -> Histogram {
        self.ledger_reads.clone()
    }

    pub fn create(&self, seconds: f64, ok: bool) {
        let result = if ok {
            CreateResult::Ok
        } else {
            CreateResult::Error
        };
        self.create
            .get_or_create(&CreateLabels { result })
            .observe(seconds);
    }

    pub fn webhook_to_created(&self, seconds: f64) {
        self.webhook_to_created.observe(seconds);
    }
}
