//! What one attempt at calling an interceptor ended with, when not with a decision, and
//! whether another attempt may help: a failure that may go away by itself (no connection,
//! DNS, a timeout, HTTP 5xx, 408, 429) is retried; one the same request would hit again (a
//! refused certificate, an answer that is not HTTP, an unexpected status, an invalid answer)
//! is not. Decided from the error's type and the status code, never from message text.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use http::StatusCode;
use http::header::{self, HeaderMap};
use sluice_runtime::retry::FailureKind;

/// A failure calling an interceptor, classified where it happens: preparing the request,
/// connecting, or reading the answer.
#[derive(Debug, Clone)]
pub(in crate::interceptor) struct Failure {
    pub kind: FailureKind,
    pub message: String,
    /// From `Retry-After` on a 429 or 503.
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Transient,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Permanent,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// Statuses worth another attempt.
pub(in crate::interceptor) fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// `Retry-After` in seconds on a 429 or 503 (an HTTP date is ignored: the backoff applies).
pub(in crate::interceptor) fn retry_after(
    status: StatusCode,
    headers: &HeaderMap,
) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A request that got no answer: a TLS failure (the certificate refused, the server not
/// speaking TLS…) or an answer that is not HTTP is permanent; anything else (connection
/// refused or reset, DNS, the connection closed early) is worth another attempt.
pub(in crate::interceptor) fn classify_send_error(
    error: &hyper_util::client::legacy::Error,
) -> Failure {
    // The outer error only says `client error (Connect)`; its causes say what happened.
    let what = if error.is_connect() {
        "connecting failed"
    } else {
        "the request failed"
    };
    let message = match error.source() {
        Some(source) => format!("{what}: {}", describe(source)),
        None => what.to_owned(),
    };
    for cause in causes(error) {
        if cause.is::<rustls::Error>() {
            return Failure::permanent(format!("TLS failed: {message}"));
        }
        if let Some(hyper_error) = cause.downcast_ref::<hyper::Error>()
            && hyper_error.is_parse()
        {
            return Failure::permanent(format!("the answer is not valid HTTP: {message}"));
        }
    }
    Failure::retryable(message)
}

/// Reading the answer's body failed (the connection was closed or reset): retry.
pub(in crate::interceptor) fn classify_body_error(error: &hyper::Error) -> Failure {
    Failure::retryable(format!("reading the answer failed: {}", describe(error)))
}

/// The causes of an error, outermost first. `io::Error` is looked through with `get_ref`,
/// because its `source` skips the error it wraps.
fn causes<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(
        Some(error),
        |&current: &&'a (dyn StdError + 'static)| match current.downcast_ref::<io::Error>() {
            Some(io_error) => io_error
                .get_ref()
                .map(|inner| inner as &(dyn StdError + 'static)),
            None => current.source(),
        },
    )
}

/// The error's messages along its causes, repeats dropped.
fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in causes(error) {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
    }
    parts.join(": ")
}
