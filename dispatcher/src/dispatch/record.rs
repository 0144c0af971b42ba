//! What each trigger's state becomes in the event status store (`sluice events`): the event
//! and every trigger's state, written once at the end of each delivery, saying what a person
//! asking "what happened to my webhook" needs, in words, with the error and the objects.

use std::time::Duration;

use sluice_runtime::clock::now_ms;
use sluice_runtime::event_status::{
    EventRecord, EventStatus, FailureRecord, ObjectRef, TriggerRecord, TriggerState, rfc3339,
};
use sluice_triggers::catalogue::Trigger;

use super::{Delivery, Dispatcher, TriggerError};
use crate::ledger::{Entry as LedgerEntry, RunOutcome};
use crate::sink::Created;

/// A trigger's new state, before it is written.
pub(super) struct Transition {
    state: TriggerState,
    reason: Option<String>,
    error: Option<FailureRecord>,
    interceptor: Option<String>,
    next_attempt_in: Option<Duration>,
    duplicate_of: Option<String>,
    objects: Vec<ObjectRef>,
}

impl Transition {
    fn new(state: TriggerState) -> Self {
        Self {
            state,
            reason: None,
            error: None,
            interceptor: None,
            next_attempt_in: None,
            duplicate_of: None,
            objects: Vec::new(),
        }
    }

    pub fn created(created: &[Created]) -> Self {
        Self {
            objects: created
                .iter()
                .map(|object| ObjectRef {
                    kind: object.kind.clone(),
                    name: object.name.clone(),
                })
                .collect(),
            ..Self::new(TriggerState::Created)
        }
    }

    pub fn filtered(interceptor: &str, reason: &str) -> Self {
        Self {
            interceptor: Some(interceptor.to_owned()),
            reason: Some(reason.to_owned()),
            ..Self::new(TriggerState::Filtered)
        }
    }

    /// What an earlier delivery of the same event did, as the ledger's `entry` has it.
    pub fn from_ledger(entry: &LedgerEntry) -> Self {
        let objects = ledger_objects(entry);
        match entry.outcome {
            RunOutcome::Created => Self {
                objects,
                ..Self::new(TriggerState::Created)
            },
            RunOutcome::Filtered => Self {
                interceptor: entry.interceptor.clone(),
                reason: entry.reason.clone(),
                ..Self::new(TriggerState::Filtered)
            },
            RunOutcome::Error => Self {
                reason: entry.reason.clone(),
                ..Self::new(TriggerState::Error)
            },
        }
    }

    /// An earlier event of the same delivery ran the trigger (the ledger's `entry`).
    pub fn duplicate(entry: &LedgerEntry) -> Self {
        let outcome = match entry.outcome {
            RunOutcome::Created => "created its objects",
            RunOutcome::Filtered => "was filtered",
            RunOutcome::Error => "failed for it",
        };
        Self {
            reason: Some(format!(
                "this delivery already ran the trigger: it {outcome} for event {}; nothing created",
                entry.event_id
            )),
            duplicate_of: Some(entry.event_id.clone()),
            objects: ledger_objects(entry),
            ..Self::new(TriggerState::Duplicate)
        }
    }

    /// Failed for this event, not retried (a `cel` error).
    pub fn error(error: &TriggerError) -> Self {
        Self {
            reason: Some("failed for this event; not retried".to_owned()),
            error: Some(failure(error)),
            ..Self::new(TriggerState::Error)
        }
    }

    pub fn dead_lettered(reason: &str, error: &TriggerError) -> Self {
        Self {
            reason: Some(format!("dead-lettered: {reason}")),
            error: Some(failure(error)),
            ..Self::new(TriggerState::DeadLettered)
        }
    }

    /// Fails for now; tried again after `delay` at the soonest.
    pub fn retrying(error: &TriggerError, delay: Duration) -> Self {
        Self {
            reason: Some("failed for now; the event will be delivered again".to_owned()),
            error: Some(failure(error)),
            next_attempt_in: Some(delay),
            ..Self::new(TriggerState::Retrying)
        }
    }

    /// Done, but the dead letter could not be stored: the event is kept and delivered again.
    pub fn dead_letter_unstored(reason: &str, error: &TriggerError) -> Self {
        Self {
            reason: Some(format!(
                "failed for good ({reason}), but the dead letter could not be stored; the event will be delivered again"
            )),
            error: Some(failure(error)),
            ..Self::new(TriggerState::Retrying)
        }
    }
}

/// The ledger's `Kind/name` objects.
fn ledger_objects(entry: &LedgerEntry) -> Vec<ObjectRef> {
    entry
        .objects
        .iter()
        .filter_map(|object| object.split_once('/'))
        .map(|(kind, name)| ObjectRef {
            kind: kind.to_owned(),
            name: name.to_owned(),
        })
        .collect()
}

fn failure(error: &TriggerError) -> FailureRecord {
    FailureRecord {
        kind: error.kind().as_str().to_owned(),
        status: error.status(),
        message: error.to_string(),
    }
}

impl Transition {
    /// The state of `trigger` after the `attempt`-th delivery.
    pub fn record(self, trigger: &Trigger, attempt: u64) -> TriggerRecord {
        let now = now_ms();
        TriggerRecord {
            name: trigger.name.clone(),
            state: self.state,
            attempts: attempt,
            reason: self.reason,
            error: self.error,
            interceptor: self.interceptor,
            next_attempt_at: self
                .next_attempt_in
                .map(|delay| rfc3339(now + u64::try_from(delay.as_millis()).unwrap_or(0))),
            duplicate_of: self.duplicate_of,
            objects: self.objects,
            updated_at: rfc3339(now),
        }
    }
}

impl Dispatcher {
    /// Records the event with its triggers' states after this delivery, in one write.
    pub(super) async fn write_status(&self, delivery: Delivery<'_>, triggers: Vec<TriggerRecord>) {
        if !self.status.is_enabled() || triggers.is_empty() {
            return;
        }
        let event = EventRecord::of(&delivery.envelope.meta, delivery.sequence);
        self.status.event(&EventStatus::new(event, triggers)).await;
    }

    /// The soonest the `attempt`-th delivery's event comes back after failing, given what the
    /// API asked for: the consumer waits between half the backoff's ceiling and all of it.
    pub(super) fn soonest_retry(&self, attempt: u64, min_delay: Option<Duration>) -> Duration {
        let ceiling = self
            .retry
            .ceiling(u32::try_from(attempt).unwrap_or(u32::MAX));
        (ceiling / 2).max(min_delay.unwrap_or_default())
    }
}
