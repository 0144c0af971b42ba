//! Ingest metrics. Label values are bounded: a listener that is not configured is counted as
//! `unknown`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sluice_runtime::metrics::ListenerKey;

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Stored in JetStream and answered 202.
    Accepted,
    /// A redelivery of an event JetStream already holds (same idempotency key, within the
    /// duplicate window): answered 202 with the original `eventID`, not stored again.
    Duplicate,
    /// Authentic, but no trigger wanted it: answered 202, not queued.
    Filtered,
    BadRequest,
    Unauthorized,
    /// The listener cannot authenticate webhooks (a Secret is missing…): answered 500.
    Misconfigured,
    NotFound,
    TooLarge,
    /// JetStream did not store it (unreachable, slow, or the stream is full): answered 503.
    Unavailable,
    /// Over its namespace's admission limit: answered 429.
    RateLimited,
}

impl Outcome {
    const ALL: [Outcome; 10] = [
        Outcome::Accepted,
        Outcome::Duplicate,
        Outcome::Filtered,
        Outcome::BadRequest,
        Outcome::Unauthorized,
        Outcome::Misconfigured,
        Outcome::NotFound,
        Outcome::TooLarge,
        Outcome::Unavailable,
        Outcome::RateLimited,
    ];

    /// What each configured listener shows from the start, at zero: what its senders see
    /// go right, and the answers the 5xx alerts are made of. Three series per listener: at
    /// 4,000 listeners a fourth costs ingest about a MiB.
    const FROM_THE_START: [Outcome; 3] = [
        Outcome::Accepted,
        Outcome::Misconfigured,
        Outcome::Unavailable,
    ];
}

sluice_runtime::label_values!(Outcome {
    Accepted => "accepted",
    Duplicate => "duplicate",
    Filtered => "filtered",
    BadRequest => "bad_request",
    Unauthorized => "unauthorized",
    Misconfigured => "misconfigured",
    NotFound => "not_found",
    TooLarge => "too_large",
    Unavailable => "unavailable",
    RateLimited => "rate_limited",
});

sluice_runtime::label_values!(PublishResult {
    Ok => "ok",
    Error => "error",
});

/// A hardening limit that refused a request before the request path answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `--max-concurrent-requests` was reached: answered 503 `overloaded`.
    Concurrency,
    /// The body did not arrive within `--body-read-timeout`: answered 408 `body_timeout`.
    BodyReadTimeout,
}

sluice_runtime::label_values!(Limit {
    Concurrency => "concurrency",
    BodyReadTimeout => "body_read_timeout",
});

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimitLabels {
    limit: Limit,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    namespace: String,
    listener: String,
    outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PublishLabels {
    result: PublishResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PublishResult {
    Ok,
    Error,
}

/// Ingest's metrics; a clone is one reference count (request layers clone it per request).
#[derive(Debug, Clone)]
pub struct IngestMetrics(Arc<Families>);

#[derive(Debug)]
struct Families {
    requests: Family<RequestLabels, Counter>,
    publish_ack: Family<PublishLabels, Histogram>,
    limited: Family<LimitLabels, Counter>,
    connections: Gauge,
    refusals_unrecorded: Counter,
}

impl IngestMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "sluice_ingest_requests",
            "Webhook requests by listener and outcome",
            requests.clone(),
        );
        let publish_ack = Family::<PublishLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        registry.register(
            "sluice_ingest_publish_ack_seconds",
            "Time from publishing an event to JetStream's durable ack (or the failure)",
            publish_ack.clone(),
        );
        let limited = Family::<LimitLabels, Counter>::default();
        // Every limit from the start, at zero: the label set is known.
        for limit in [Limit::Concurrency, Limit::BodyReadTimeout] {
            limited.get_or_create(&LimitLabels { limit }).inc_by(0);
        }
        registry.register(
            "sluice_ingest_limited_requests",
            "Requests refused by a hardening limit (load shedding, body read timeout)",
            limited.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "sluice_ingest_open_connections",
            "Open connections to the webhook server",
            connections.clone(),
        );
        let refusals_unrecorded = Counter::default();
        registry.register(
            "sluice_ingest_refusals_unrecorded",
            "Refused deliveries not kept for `sluice events` because they came faster than its budget",
            refusals_unrecorded.clone(),
        );
        Self(Arc::new(Families {
            requests,
            publish_ack,
            limited,
            connections,
            refusals_unrecorded,
        }))
    }

    /// Refused deliveries the status store did not keep (the counter it increments).
    pub fn refusals_unrecorded(&self) -> Counter {
        self.0.refusals_unrecorded.clone()
    }

    /// Counts a request; pass `None` as `listener` when the listener is not configured.
    pub fn request(&self, listener: Option<(&str, &str)>, outcome: Outcome) {
        let (namespace, listener) = listener.unwrap_or(("unknown", "unknown"));
        self.0
            .requests
            .get_or_create(&RequestLabels {
                namespace: namespace.to_owned(),
                listener: listener.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Starts the counters of `added` listeners at zero ([`Outcome::FROM_THE_START`]) and
    /// drops every series of `removed` ones.
    pub fn listeners_changed(&self, added: &[ListenerKey], removed: &[ListenerKey]) {
        let labels = |(namespace, listener): &ListenerKey, outcome| RequestLabels {
            namespace: namespace.clone(),
            listener: listener.clone(),
            outcome,
        };
        for key in added {
            for outcome in Outcome::FROM_THE_START {
                self.0
                    .requests
                    .get_or_create(&labels(key, outcome))
                    .inc_by(0);
            }
        }
        for key in removed {
            for outcome in Outcome::ALL {
                self.0.requests.remove(&labels(key, outcome));
            }
        }
    }

    /// Counts a request refused by `limit`.
    pub fn limited(&self, limit: Limit) {
        self.0.limited.get_or_create(&LimitLabels { limit }).inc();
    }

    /// Counts an open connection until the guard is dropped.
    pub fn connection(&self) -> ConnectionGuard {
        self.0.connections.inc();
        ConnectionGuard(self.0.connections.clone())
    }

    pub fn publish_ack(&self, seconds: f64, ok: bool) {
        let result = if ok {
            PublishResult::Ok
        } else {
            PublishResult::Error
        };
        self.0
            .publish_ack
            .get_or_create(&PublishLabels { result })
            .observe(seconds);
    }
}

/// Holds one connection in `sluice_ingest_open_connections`; see [`IngestMetrics::connection`].
#[derive(Debug)]
pub struct ConnectionGuard(Gauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposed(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, registry).unwrap();
        text
    }

    #[test]
    fn a_listener_starts_at_zero_and_its_series_leave_with_it() {
        let mut registry = Registry::default();
        let metrics = IngestMetrics::register(&mut registry);
        let github = ("team-a".to_owned(), "github".to_owned());
        metrics.listeners_changed(std::slice::from_ref(&github), &[]);
        let text = exposed(&registry);
        assert!(
            text.contains(
                "sluice_ingest_requests_total{namespace=\"team-a\",listener=\"github\",outcome=\"accepted\"} 0"
            ),
            "{text}"
        );

        metrics.request(Some(("team-a", "github")), Outcome::NotFound);
        metrics.listeners_changed(&[], std::slice::from_ref(&github));
        let text = exposed(&registry);
        assert!(!text.contains("team-a"), "{text}");
    }
}
