//! The admission limit (off unless the platform's policy sets `admissionPerSecond`): each
//! tenant namespace may send this many webhooks a second to this ingest replica, with a
//! second's worth saved up; more are answered `429` with `Retry-After`, before the body is
//! read. A tenant's EventListener annotation `sluice.dev/admission-per-second` may lower its
//! own limit, never raise it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use sluice_runtime::tenants::TenantPolicy;
use sluice_runtime::token_bucket::{Refill, TokenBucket};
use sluice_triggers::catalogue::Listener;

/// Token buckets per namespace, refilled at the namespace's admission rate.
pub struct AdmissionLimits {
    policy: Arc<ArcSwap<TenantPolicy>>,
    buckets: Mutex<HashMap<String, TokenBucket>>,
    /// The buckets' clock: milliseconds since this, monotonic.
    epoch: Instant,
}

impl AdmissionLimits {
    pub fn new(policy: Arc<ArcSwap<TenantPolicy>>) -> Self {
        Self {
            policy,
            buckets: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    /// Admits one webhook for `listener`'s namespace, or says how long to wait.
    pub fn admit(&self, listener: &Listener) -> Result<(), Duration> {
        let limits = self.policy.load().limits(&listener.namespace);
        let limits = if listener.annotations.is_empty() {
            limits
        } else {
            limits.lowered_by(&listener.annotations).0
        };
        let Some(rate) = limits.admission_per_second.filter(|r| *r > 0.0) else {
            return Ok(());
        };
        // A second's worth saved up.
        let refill = Refill::per_second(rate, rate);
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets
            .entry(listener.namespace.clone())
            .or_insert_with(|| TokenBucket::full(refill, now_ms));
        *bucket = bucket.take(refill, now_ms)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(namespace: &str) -> Listener {
        Listener {
            namespace: namespace.into(),
            name: "l".into(),
            uid: "u".into(),
            triggers: vec![],
            skipped_triggers: 0,
            annotations: Default::default(),
            payload_validation: true,
        }
    }

    #[test]
    fn only_the_tenant_over_its_rate_waits() {
        let policy = TenantPolicy::parse(
            "tenants.yaml",
            "namespaces:\n  noisy: {admissionPerSecond: 2}\n",
        )
        .unwrap();
        let admission = AdmissionLimits::new(Arc::new(ArcSwap::from_pointee(policy)));
        let (noisy, quiet) = (listener("noisy"), listener("quiet"));
        assert!(admission.admit(&noisy).is_ok());
        assert!(admission.admit(&noisy).is_ok());
        let wait = admission.admit(&noisy).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        for _ in 0..100 {
            assert!(
                admission.admit(&quiet).is_ok(),
                "no limit for other tenants"
            );
        }
        let mut lowered = listener("quiet");
        lowered
            .annotations
            .insert("sluice.dev/admission-per-second".into(), "1".into());
        assert!(admission.admit(&lowered).is_ok());
        assert!(
            admission.admit(&lowered).is_err(),
            "a tenant may lower its own limit"
        );
    }
}
