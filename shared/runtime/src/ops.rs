//! The operations server every binary runs on `--metrics-addr`: Prometheus metrics,
//! liveness and readiness.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;

/// Decides readiness: `Ok` when ready, else the reason it is not.
pub type ReadinessCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Set once a process starts shutting down. From then on its readiness fails, so load
/// balancers and Kubernetes endpoints stop sending it traffic while it finishes what it has.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the process as shutting down; it never becomes ready again.
    pub fn start(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// `check`, except that it fails with "shutting down" once draining has started.
    pub fn readiness(&self, check: ReadinessCheck) -> ReadinessCheck {
        let draining = self.clone();
        Arc::new(move || {
            if draining.is_draining() {
                Err("shutting down".to_owned())
            } else {
                check()
            }
        })
    }
}

/// What a process still has to open before it may be ready: until [`Self::done`], its
/// readiness fails and says which step is under way.
#[derive(Debug, Clone)]
pub struct Starting(Arc<Mutex<Option<&'static str>>>);

impl Starting {
    /// Starting, with `step` under way.
    pub fn new(step: &'static str) -> Self {
        Self(Arc::new(Mutex::new(Some(step))))
    }

    /// Now `step` is under way.
    pub fn step(&self, step: &'static str) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(step);
    }

    /// Everything is open: readiness is `check`'s from now on.
    pub fn done(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// `check`, except that it fails, naming the step, until start-up is done.
    pub fn readiness(&self, check: ReadinessCheck) -> ReadinessCheck {
        let starting = self.clone();
        Arc::new(move || {
            if let Some(step) = *starting.0.lock().unwrap_or_else(PoisonError::into_inner) {
                return Err(format!("starting: {step}"));
            }
            check()
        })
    }
}

/// `check` until it first succeeds, and ready from then on whatever it says. For a server
/// that must stay in its load balancer through an outage of what `check` watches, because it
/// answers for that outage better than a refused connection would (ingest's `503` with
/// `Retry-After` while NATS is down).
pub fn ready_once_reached(check: ReadinessCheck) -> ReadinessCheck {
    let reached = Arc::new(AtomicBool::new(false));
    Arc::new(move || {
        if reached.load(Ordering::Acquire) {
            return Ok(());
        }
        check()?;
        reached.store(true, Ordering::Release);
        Ok(())
    })
}

#[derive(Clone)]
struct OpsState {
    registry: Arc<Registry>,
    ready: ReadinessCheck,
}

/// `/metrics`, `/healthz` and `/readyz`.
pub fn router(registry: Arc<Registry>, ready: ReadinessCheck) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(OpsState { registry, ready })
}

/// Health routes alone, for servers that also answer them on their main port.
pub fn health_routes(ready: ReadinessCheck) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(OpsState {
            registry: Arc::new(Registry::default()),
            ready,
        })
}

/// Binds `addr` and serves the operations router until the process ends.
pub async fn serve(addr: SocketAddr, router: Router) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "operations server listening");
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "operations server stopped");
        }
    });
    Ok(())
}

/// The exposition formats `/metrics` answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// OpenMetrics 1.0, for scrapers that ask for it (Prometheus does, by default).
    OpenMetrics,
    /// Prometheus' text format 0.0.4: what every other scraper and `promtool` read.
    PrometheusText,
}

impl Format {
    /// OpenMetrics only when the `Accept` header names it (with a weight above zero).
    fn negotiate(accept: Option<&str>) -> Format {
        let wants_openmetrics = accept.is_some_and(|accept| {
            accept.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or_default();
                let refused = parts.any(|param| {
                    param
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
            })
        });
        if wants_openmetrics {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }
}

async fn metrics(State(state): State<OpsState>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let mut text = String::new();
    let (encoded, content_type) = match Format::negotiate(accept) {
        Format::OpenMetrics => (
            prometheus_client::encoding::text::encode(&mut text, &state.registry),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        Format::PrometheusText => (
            prometheus_text::encode(&mut text, &state.registry),
            prometheus_text::CONTENT_TYPE,
        ),
    };
    match encoded {
        Ok(()) => ([(header::CONTENT_TYPE, content_type)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<OpsState>) -> Response {
    match (state.ready)() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    termination_signal().await;
    tracing::info!("shutting down");
}

/// Resolves on the next SIGTERM or SIGINT (Ctrl-C) delivered after its first poll; logs
/// nothing, so callers can wait for a second signal during shutdown.
pub async fn termination_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ready_once_reached_stays_ready_after_the_first_success() {
        let up = Arc::new(AtomicBool::new(false));
        let watched = up.clone();
        let ready = ready_once_reached(Arc::new(move || {
            if watched.load(Ordering::Relaxed) {
                Ok(())
            } else {
                Err("not connected to NATS".to_owned())
            }
        }));
        assert_eq!(
            ready(),
            Err("not connected to NATS".to_owned()),
            "not before"
        );
        up.store(true, Ordering::Relaxed);
        assert_eq!(ready(), Ok(()));
        up.store(false, Ordering::Relaxed);
        assert_eq!(ready(), Ok(()), "still ready through the outage");
    }

    use super::*;

    #[test]
    fn starting_fails_readiness_with_its_step_until_done() {
        let starting = Starting::new("opening the ledger");
        let ready = starting.readiness(Arc::new(|| Ok(())));
        assert_eq!(ready(), Err("starting: opening the ledger".to_owned()));
        starting.step("opening the rate-limit buckets");
        assert_eq!(
            ready(),
            Err("starting: opening the rate-limit buckets".to_owned())
        );
        starting.done();
        assert_eq!(ready(), Ok(()));
        let not_ready = starting.readiness(Arc::new(|| Err("no NATS".to_owned())));
        assert_eq!(not_ready(), Err("no NATS".to_owned()));
    }

    #[test]
    fn draining_fails_readiness_whatever_the_check_says() {
        let draining = Draining::new();
        let ready = draining.readiness(Arc::new(|| Ok(())));
        assert_eq!(ready(), Ok(()));
        draining.start();
        assert_eq!(ready(), Err("shutting down".to_owned()));
        let not_ready = draining.readiness(Arc::new(|| Err("no NATS".to_owned())));
        assert_eq!(not_ready(), Err("shutting down".to_owned()));
    }

    #[test]
    fn openmetrics_only_for_scrapers_that_ask_for_it() {
        // What Prometheus 2.x sends by default.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::PrometheusText
        );
        assert_eq!(Format::negotiate(Some("*/*")), Format::PrometheusText);
        assert_eq!(Format::negotiate(None), Format::PrometheusText);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; q=0, text/plain")),
            Format::PrometheusText
        );
    }
}
