//! What a replica knows of the diverted tenants: which have a consumer of their own, from
//! which stream sequence, and which are giving it back.
//!
//! The knowledge is read back whole from JetStream every few seconds. Passing an event over
//! on the common consumer is safe only while the tenant's own consumer will run it, so a
//! replica whose knowledge is older than [`KNOWN_FOR`] passes nothing over (its events run
//! on the common consumer, and the ledger finds a second attempt's first run), and a
//! consumer is deleted only [`RELEASE_GRACE`] after it was marked given back, once it has
//! nothing outstanding: by then every replica that passes events over knows to leave the
//! ones from the mark on to the common consumer.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer;
use sluice_runtime::jetstream::{consumer_released_at, consumer_start};
use sluice_runtime::subject::{namespace_token, token};
use tokio::sync::mpsc;

/// How long what a replica read of the diverted tenants may be relied on to pass events
/// over.
pub(super) const KNOWN_FOR: Duration = Duration::from_secs(10);
/// How long after a tenant's consumer is marked given back it may be deleted.
pub(super) const RELEASE_GRACE: Duration = Duration::from_secs(30);

/// One diverted tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Diversion {
    /// The first stream sequence its own consumer delivers (0: every stored event).
    pub start: u64,
    /// Set while the consumer is given back: the first sequence the common consumer runs
    /// again.
    pub released_at: Option<u64>,
}

impl Diversion {
    pub fn of(config: &consumer::Config) -> Self {
        Self {
            start: consumer_start(config),
            released_at: consumer_released_at(config),
        }
    }

    /// Whether the event at `sequence` is the tenant's own consumer's to run.
    pub fn owns(&self, sequence: u64) -> bool {
        sequence >= self.start && self.released_at.is_none_or(|end| sequence < end)
    }
}

/// The diverted tenants, and the loops running them in this replica.
pub(super) struct Diverted {
    known: Mutex<Known>,
    running: Mutex<HashSet<String>>,
    /// Asks for a tenant's loop to be started.
    start_loop: mpsc::UnboundedSender<String>,
}

#[derive(Default)]
struct Known {
    /// By the namespace's subject token, so that an event is matched by its subject alone.
    by_token: HashMap<String, Diversion>,
    read_at: Option<Instant>,
}

impl Diverted {
    pub fn new(start_loop: mpsc::UnboundedSender<String>) -> Self {
        Self {
            known: Mutex::default(),
            running: Mutex::default(),
            start_loop,
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn of(&self, namespace: &str) -> Option<Diversion> {
        self.known().by_token.get(&token(namespace)).copied()
    }

    /// Whether the event on `subject` at `sequence` is its tenant's own consumer's, as far
    /// as this replica knows recently enough to rely on.
    pub fn passes_over(&self, subject: &str, sequence: u64) -> bool {
        let Some(token) = namespace_token(subject) else {
            return false;
        };
        let known = self.known();
        known.read_at.is_some_and(|at| at.elapsed() < KNOWN_FOR)
            && known
                .by_token
                .get(token)
                .is_some_and(|diversion| diversion.owns(sequence))
    }

    /// Records what this replica did or saw of one tenant, and has its loop started.
    pub fn set(&self, namespace: &str, diversion: Diversion) {
        self.known().by_token.insert(token(namespace), diversion);
        self.ensure_loop(namespace);
    }

    /// Replaces what is known with a whole reading of the tenants' consumers.
    pub fn replace(&self, read: Vec<(String, Diversion)>) {
        let by_token = read
            .iter()
            .map(|(namespace, diversion)| (token(namespace), *diversion))
            .collect();
        *self.known() = Known {
            by_token,
            read_at: Some(Instant::now()),
        };
        for (namespace, _) in &read {
            self.ensure_loop(namespace);
        }
    }

    /// Forgets a tenant whose consumer is gone.
    pub fn forget(&self, namespace: &str) {
        self.known().by_token.remove(&token(namespace));
    }

    fn ensure_loop(&self, namespace: &str) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running.insert(namespace.to_owned()) {
            let _ = self.start_loop.send(namespace.to_owned());
        }
    }

    /// A tenant's loop ended: a later diversion starts another.
    pub fn loop_ended(&self, namespace: &str) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.remove(namespace);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diverted() -> (Diverted, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Diverted::new(tx), rx)
    }

    #[test]
    fn a_diversion_owns_its_events_from_its_start_until_given_back() {
        let open = Diversion {
            start: 10,
            released_at: None,
        };
        assert!(!open.owns(9));
        assert!(open.owns(10) && open.owns(u64::MAX));
        let released = Diversion {
            released_at: Some(20),
            ..open
        };
        assert!(released.owns(19));
        assert!(!released.owns(20));
    }

    #[test]
    fn events_are_passed_over_only_on_knowledge_read_back_recently() {
        let (diverted, mut loops) = diverted();
        let subject = sluice_runtime::subject::event_subject("team.a", "github");
        let diversion = Diversion {
            start: 5,
            released_at: None,
        };
        // Diverted by this replica, but nothing read back yet: not relied on.
        diverted.set("team.a", diversion);
        assert!(!diverted.passes_over(&subject, 7));
        diverted.replace(vec![("team.a".to_owned(), diversion)]);
        assert!(diverted.passes_over(&subject, 7));
        assert!(!diverted.passes_over(&subject, 4));
        let other = sluice_runtime::subject::event_subject("team-a", "github");
        assert!(!diverted.passes_over(&other, 7));
        diverted.known().read_at = Some(Instant::now() - KNOWN_FOR);
        assert!(!diverted.passes_over(&subject, 7), "stale");
        // One loop for the tenant, however often it is seen.
        assert_eq!(loops.try_recv().as_deref(), Ok("team.a"));
        assert!(loops.try_recv().is_err());
        diverted.loop_ended("team.a");
        diverted.set("team.a", diversion);
        assert_eq!(loops.try_recv().as_deref(), Ok("team.a"));
    }

    #[test]
    fn a_reading_forgets_tenants_whose_consumers_are_gone() {
        let (diverted, _loops) = diverted();
        let diversion = Diversion {
            start: 1,
            released_at: None,
        };
        diverted.replace(vec![("team-a".to_owned(), diversion)]);
        assert_eq!(diverted.of("team-a"), Some(diversion));
        diverted.replace(Vec::new());
        assert_eq!(diverted.of("team-a"), None);
    }
}
