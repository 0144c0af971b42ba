//! What an event waits for before it runs: a token from each of its tenant's rate-limit
//! buckets (one per trigger run, from the trigger's own bucket and the namespace's), and a
//! free create slot of its tenant, and its tenant not being paused. The limits are the
//! platform's, as the tenant's listener lowers them.

use sluice_runtime::envelope::EventMeta;
use sluice_runtime::tenants::{Limits, Rate};

use super::Dispatcher;
use crate::ratelimit::RateLimiter;

/// What an event must wait for before it runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Throttle {
    /// The shared buckets to take a token from, by key, with their rates.
    pub buckets: Vec<(String, Rate)>,
    /// The tenant's cap on creates in flight.
    pub max_concurrent: Option<u32>,
}

impl Dispatcher {
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
                buckets.push((format!("{}.trigger.{trigger}", meta.namespace), *rate));
            }
            if let Some(rate) = limits.runs {
                buckets.push((meta.namespace.clone(), rate));
            }
        }
        Throttle {
            buckets,
            max_concurrent: limits.max_concurrent_creates,
        }
    }

    /// Whether a rate limit applies to `namespace`, the platform's or one a listener sets:
    /// its events are then pulled one at a time, so none waits for a token unseen by
    /// JetStream's ack timer.
    pub fn is_limited(&self, namespace: &str) -> bool {
        let limits = self.policy.load().limits(namespace);
        let rated = |limits: &Limits| limits.runs.is_some() || !limits.triggers.is_empty();
        rated(&limits)
            || self.catalogue.load().listeners().any(|listener| {
                listener.namespace == namespace
                    && !listener.annotations.is_empty()
                    && rated(&limits.lowered_by(&listener.annotations).0)
            })
    }

    /// Whether the platform paused `namespace` (`paused: true` in the tenants file): its
    /// events are then left in the stream, not pulled, until it is resumed.
    pub fn is_paused(&self, namespace: &str) -> bool {
        self.policy.load().is_paused(namespace)
    }

    /// The tenant's cap on creates in flight, if any.
    pub fn max_concurrent(&self, namespace: &str) -> Option<u32> {
        self.policy.load().limits(namespace).max_concurrent_creates
    }
}
