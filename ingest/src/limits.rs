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
//! | route service ([`Guard`]) | `--max-concurrent-requests` | 503 `overloaded` |
//! | route service ([`Guard`]) | `--body-read-timeout` | 408 `body_timeout` |
//! | request path ([`crate::app`]) | `--max-body-bytes`, names, signatures, `--publish-timeout` | 413, 404, 401, 503 |
//!
//! The reasons for each position are next to the code that composes them.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use pin_project_lite::pin_project;
use sluice_triggers::duration::parse_duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::Service;

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

    /// Wraps the webhook route's service in the request-level limits. Health routes stay
    /// outside so that a saturated server still answers its probes instead of being
    /// restarted.
    pub fn guard<S>(&self, inner: S, metrics: IngestMetrics) -> Guard<S> {
        Guard {
            inner,
            slots: Arc::new(Semaphore::new(self.max_concurrent_requests)),
            body_read_timeout: self.body_read_timeout,
            metrics,
        }
    }
}

/// The request-level limits, in one service around the webhook route:
///
/// - **`--max-concurrent-requests`.** A request holds a slot from its headers until the
///   handler answers, including the body read and the wait for JetStream's ack, which is
///   what uses memory. Over the limit it is refused at once with 503 `overloaded`, instead
///   of waiting: a queue in front of the limit would hold every waiting request (and its
///   connection) in memory, which is the growth the limit exists to stop. A shed request
///   costs no body read and no lookup; senders retry (GitHub redelivers, `Retry-After` is
///   set). The slots are shared by every clone of the service.
/// - **`--body-read-timeout`.** Inside the limit: a trickling sender holds its slot for at
///   most this long, so slow bodies cannot pin the whole server. It bounds the body alone,
///   not the publish (`--publish-timeout` bounds that), so a slow JetStream ack is never
///   reported as the sender's fault. Its timer starts only if the body is not all there
///   when first read, so a request whose body came with its head pays for no timer.
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    slots: Arc<Semaphore>,
    body_read_timeout: Duration,
    metrics: IngestMetrics,
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            self.metrics.limited(Limit::Concurrency);
            return GuardFuture::Shed {
                response: Some(overloaded()),
            };
        };
        let expired = Arc::new(AtomicBool::new(false));
        // `None` only for a timeout too long to add to the clock: no deadline then.
        let deadline = Instant::now().checked_add(self.body_read_timeout);
        let request =
            request.map(|body| Body::new(DeadlineBody::new(body, deadline, expired.clone())));
        GuardFuture::Admitted {
            inner: self.inner.call(request),
            _slot: slot,
            expired,
            timeout: self.body_read_timeout,
            metrics: self.metrics.clone(),
        }
    }
}

pin_project! {
    /// [`Guard`]'s answer: the refusal, or the route's answer (408 if the body was late).
    #[project = GuardProjection]
    pub enum GuardFuture<F> {
        Shed { response: Option<Response> },
        Admitted {
            #[pin]
            inner: F,
            // Held until the answer is ready.
            _slot: OwnedSemaphorePermit,
            expired: Arc<AtomicBool>,
            timeout: Duration,
            metrics: IngestMetrics,
        },
    }
}

impl<F> Future for GuardFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GuardProjection::Shed { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_else(overloaded)))
            }
            GuardProjection::Admitted {
                inner,
                expired,
                timeout,
                metrics,
                ..
            } => {
                let response = ready!(inner.poll(cx))?;
                if !expired.load(Ordering::Acquire) {
                    return Poll::Ready(Ok(response));
                }
                metrics.limited(Limit::BodyReadTimeout);
                Poll::Ready(Ok(body_timed_out(*timeout)))
            }
        }
    }
}

/// 503 `overloaded`, with `Retry-After`.
fn overloaded() -> Response {
    let body = serde_json::json!({
        "code": "overloaded",
        "message": "too many requests in flight; retry later",
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(OVERLOADED_RETRY_AFTER_SECS),
    );
    response
}

/// 408 `body_timeout`, whatever the route answered about the body it could not finish.
fn body_timed_out(timeout: Duration) -> Response {
    tracing::debug!(?timeout, "request body read timed out");
    let body = serde_json::json!({
        "code": "body_timeout",
        "message": format!("the request body did not arrive within {timeout:?}"),
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

/// A body that fails with [`BodyTimeout`] when it is polled past its deadline, and sets
/// `expired`. The timer is made on the first read that has to wait.
struct DeadlineBody {
    inner: Body,
    deadline: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn new(inner: Body, deadline: Option<Instant>, expired: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            deadline,
            timer: None,
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
        let Some(deadline) = this.deadline else {
            return Poll::Pending;
        };
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
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
