//! The span each webhook is traced with, when traces are on (`sluice_runtime::telemetry`):
//! a server span naming the listener, the event it became and the status it was answered
//! with. Its context is what [`crate::publish`] writes into the stored message's
//! `traceparent` header, for the dispatcher to continue. A sender's own `traceparent` is
//! linked, never taken as the parent: it comes from outside and is not trusted to place
//! Sluice's spans in someone else's trace.

use axum::http::{HeaderMap, StatusCode};
use sluice_runtime::telemetry::traces::{self, TARGET};
use sluice_triggers::catalogue::Listener;
use tracing::Span;
use tracing::field::Empty;

/// The server span of one webhook to `listener`; disabled (free) when traces are off.
pub fn webhook(listener: &Listener, headers: &HeaderMap) -> Span {
    if !traces::worth_a_root_span() {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: TARGET,
        "webhook",
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = "POST",
        http.response.status_code = Empty,
        sluice.namespace = %listener.namespace,
        sluice.listener = %listener.name,
        sluice.event_id = Empty,
    );
    if !span.is_disabled() {
        let sender = headers.get("traceparent").and_then(|v| v.to_str().ok());
        traces::add_link(&span, sender, "sender");
    }
    span
}

/// Records the event id on the webhook span the caller is in.
pub fn event_id(id: &str) {
    if traces::enabled() {
        Span::current().record("sluice.event_id", id);
    }
}

/// Records the answer on `span`; a 5xx marks it failed.
pub fn answered(span: &Span, status: StatusCode) {
    if span.is_disabled() {
        return;
    }
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
}
