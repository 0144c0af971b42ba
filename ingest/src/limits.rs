//! Hardening limits of the webhook server, and the one place where they are composed.
//!
//! From the socket inwards, each limit sits where it is cheapest to enforce and where the
//! thing it bounds is first visible:
//!
//! | where | limit | answer |
//! | --- | --- | --- |
//! | accept loop ([`crate::server`]) | `--max-connections` | none: the excess waits in the kernel's backlog |
//! | hyper HTTP/1 ([`LimitArgs::http1`]) | `--header-read-timeout` | connection closed |
//! | hyper HTTP/1 ([`LimitArgs::http1`]) | `--max-header-bytes` | 431 |
//! | tower ([`LimitArgs::guard`]) | `--max-concurrent-requests` | 503 `overloaded` |
//! | tower ([`LimitArgs::guard`]) | `--body-read-timeout` | 408 `body_timeout` |
//! | request path ([`crate::app`]) | `--max-body-bytes`, names, signatures, `--publish-timeout` | 413, 404, 401, 503 |
//!
//! The reasons for each position are next to the code that composes them.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use sluice_shared::cli::parse_duration;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::error::Overloaded;

use crate::metrics::{IngestMetrics, Limit};

/// Seconds a shed sender is asked to wait before retrying.
const OVERLOADED_RETRY_AFTER_SECS: &str = "1";

/// hyper refuses read buffers smaller than this.
const MIN_READ_BUFFER: usize = 8 * 1024;

/// The read buffer of a connection: large enough for any accepted request head, small
/// enough that many connections cannot grow memory (hyper's default is ~400 KiB each).
const READ_BUFFER: usize = 64 * 1024;

/// Hardening flags of `sluice-ingest`, flattened into its [`crate::args::Args`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LimitArgs {
    /// Time a client has to send a request's line and headers; the connection is closed
    /// after it. It also bounds how long a keep-alive connection may sit idle.
    #[arg(long, env = "SLUICE_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Time a client has to send a request's whole body, counted from its headers; a slower
    /// body is answered 408 `body_timeout`.
    #[arg(long, env = "SLUICE_BODY_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,

    /// Webhook requests processed at once; a request over the limit is answered 503
    /// `overloaded` at once rather than queued.
    #[arg(long, env = "SLUICE_MAX_CONCURRENT_REQUESTS", default_value_t = 1024, value_parser = at_least_one)]
    pub max_concurrent_requests: usize,

    /// Open connections to the webhook server; further connections wait in the kernel's
    /// accept backlog until one closes.
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS", default_value_t = 4096, value_parser = at_least_one)]
    pub max_connections: usize,

    /// Largest request line plus headers, in bytes; a larger request head is answered 431.
    #[arg(long, env = "SLUICE_MAX_HEADER_BYTES", default_value_t = 32 * 1024, value_parser = at_least_one)]
    pub max_header_bytes: usize,
}

impl Default for LimitArgs {
    /// The flags' defaults (checked against clap's by a test).
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_concurrent_requests: 1024,
            max_connections: 4096,
            max_header_bytes: 32 * 1024,
        }
    }
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(error) => Err(error.to_string()),
    }
}

impl LimitArgs {
    /// hyper's HTTP/1 settings for every connection: the limits that must act before a
    /// request exists, because until its head is parsed there is nothing for a tower layer
    /// to see.
    pub fn http1(&self) -> http1::Builder {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            // Slow-loris on headers: the clock starts with the first read of a request head
            // (and again whenever a keep-alive connection goes idle), so a client can neither
            // trickle headers nor park an idle connection for longer than this.
            .header_read_timeout(self.header_read_timeout)
            // Bounded before the head is buffered in full: 431 and the connection closes.
            .max_header_size(self.max_header_bytes)
            .max_buf_size(READ_BUFFER.max(self.max_header_bytes).max(MIN_READ_BUFFER));
        http
    }

    /// Wraps the webhook routes in the request-level limits. Health routes stay outside so
    /// that a saturated server still answers its probes instead of being restarted.
    pub fn guard(&self, hooks: Router, metrics: IngestMetrics) -> Router {
        let shed_metrics = metrics.clone();
        let deadline = BodyDeadline {
            timeout: self.body_read_timeout,
            metrics,
        };
        hooks.layer(
            ServiceBuilder::new()
                // Outermost: turns the load-shedding error below into a JSON 503, so every
                // refusal, even one made before the request path runs, has a stable `code`.
                .layer(HandleErrorLayer::new(move |error| {
                    let metrics = shed_metrics.clone();
                    async move { shed(&error, &metrics) }
                }))
                // Refuse instead of waiting for a slot: a queue in front of the limit would
                // hold every waiting request (and its connection) in memory, which is the
                // growth the limit exists to stop. A shed request costs no body read and no
                // lookup. Senders retry (GitHub redelivers, `Retry-After` is set).
                .load_shed()
                // Counts requests from their headers until the handler answers, including
                // body reads and the wait for JetStream's ack, which is what uses memory.
                // Global: one semaphore however many times axum applies the layer (once per
                // route and method, or per request for a router whose state comes later).
                .layer(GlobalConcurrencyLimitLayer::new(
                    self.max_concurrent_requests,
                ))
                // Inside the limit: a trickling sender holds its slot for at most this long,
                // so slow bodies cannot pin the whole server. It bounds the body alone, not
                // the publish (`--publish-timeout` bounds that), so a slow JetStream ack is
                // never reported as the sender's fault.
                .layer(middleware::from_fn_with_state(deadline, body_deadline)),
        )
    }
}

fn shed(error: &axum::BoxError, metrics: &IngestMetrics) -> Response {
    if error.is::<Overloaded>() {
        metrics.limited(Limit::Concurrency);
        let body = serde_json::json!({
            "code": "overloaded",
            "message": "too many requests in flight; retry later",
        });
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(OVERLOADED_RETRY_AFTER_SECS),
        );
        return response;
    }
    // The layers below fail only by shedding; anything else is a bug, reported opaquely.
    tracing::error!(%error, "request layer failed");
    let body = serde_json::json!({"code": "internal", "message": "internal error"});
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

#[derive(Clone)]
struct BodyDeadline {
    timeout: Duration,
    metrics: IngestMetrics,
}

/// Gives the request body a deadline. The request path sees an expired body as an
/// unreadable one; the answer becomes 408 `body_timeout` here, where the cause is known.
async fn body_deadline(
    State(deadline): State<BodyDeadline>,
    request: Request,
    next: Next,
) -> Response {
    let expired = Arc::new(AtomicBool::new(false));
    let request =
        request.map(|body| Body::new(DeadlineBody::new(body, deadline.timeout, expired.clone())));
    let response = next.run(request).await;
    if !expired.load(Ordering::Acquire) {
        return response;
    }
    deadline.metrics.limited(Limit::BodyReadTimeout);
    tracing::debug!(timeout = ?deadline.timeout, "request body read timed out");
    let body = serde_json::json!({
        "code": "body_timeout",
        "message": format!("the request body did not arrive within {:?}", deadline.timeout),
    });
    let mut response = (StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response();
    // The rest of the body may still be on its way: the connection cannot be reused.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Why a body ended early: its deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// A body that fails with [`BodyTimeout`] when it is polled past its deadline.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn new(inner: Body, timeout: Duration, expired: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            expired,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.expired.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        // Data that is already there wins over a deadline that passed meanwhile.
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
