//! The webhook interceptor client: calls a `ClusterInterceptor`, a namespaced `Interceptor`
//! or a legacy `webhook:` interceptor over HTTP(S) and turns its answer into a decision.
//!
//! - this file: [`WebhookClient::call`], attempts with backoff until a decision or a
//!   failure that another attempt cannot fix;
//! - [`protocol`]: the two protocols spoken (see [`WebhookProtocol`]): Tekton Triggers'
//!   `InterceptorRequest`/`InterceptorResponse` JSON, wire-compatible with interceptors
//!   written against Tekton's Go types, and the legacy form, where the event's body and
//!   headers are forwarded as they are, HTTP 200 continues (its body and headers replace
//!   the event's) and any other 2xx or 4xx stops the trigger;
//! - [`transport`]: pooled connections, plain and TLS, redirects never followed;
//! - [`retry`]: what is worth another attempt. A Tekton interceptor's decision is in its
//!   answer's body: `continue: false` stops the trigger whatever the HTTP status. An answer
//!   without a decision is classified by what went wrong, never by message text: a failure
//!   that may go away by itself (no connection, DNS, a timeout, HTTP 5xx, 408, 429) is
//!   retried with exponential backoff and jitter (`sluice_runtime::retry::Backoff`), and
//!   reported as [`FailureKind::Transient`] when every attempt failed, so that the event is
//!   redelivered later; another 4xx is the interceptor refusing this event
//!   ([`FailureKind::BadInput`]: the trigger fails for it, as Tekton fails a trigger on any
//!   answer but 200); anything the same request would hit again (a refused TLS
//!   certificate, a redirect, an invalid or oversize 200 answer, a bad configuration) is
//!   [`FailureKind::Permanent`];
//! - [`answer`]: reading and quoting answers.
//!
//! Neither errors nor logs ever contain the event body, and the interceptor's URL appears in
//! them without user information or query.

pub(super) mod answer;
mod protocol;
pub(super) mod retry;
pub(super) mod transport;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value};
use sluice_runtime::retry::{Backoff, FailureKind};
use sluice_triggers::catalogue::{WebhookInterceptor, WebhookProtocol};
use sluice_triggers::headers::Headers;

use answer::{read_body, read_snippet, redacted_url, snippet, status_text, with_message};
use protocol::{Prepared, prepare, response_headers, tekton_outcome};
use retry::{Failure, classify_send_error, is_retryable_status, retry_after};
use transport::{Pools, Transport};

/// Backoff never grows past this, whatever the settings.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How the client calls interceptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Limit for one attempt, from connecting to the last byte of the answer. Default 10 s.
    pub timeout: Duration,
    /// Attempts per call, the first included; `0` counts as `1`. Default 3.
    pub attempts: u32,
    /// Wait before the second attempt; doubled before each following one (up to a minute),
    /// and jittered: the actual wait is between half of it and all of it. A `Retry-After`
    /// in seconds on a 429 or 503 answer replaces it, capped at [`Self::timeout`].
    /// Default 200 ms.
    pub backoff: Duration,
    /// Largest response body accepted; a larger one is a permanent failure. Default 10 MiB.
    pub max_response_bytes: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(200),
            max_response_bytes: 10 * 1024 * 1024,
        }
    }
}

/// The event as a webhook interceptor sees it.
///
/// Its `Debug` shows the body's length, not the body.
#[derive(Clone, Copy)]
pub struct WebhookCall<'a> {
    /// The event body, exact bytes.
    pub body: &'a [u8],
    /// The event's headers (credentials already removed by ingest).
    pub headers: &'a Headers,
    /// Extensions added by the interceptors before this one.
    pub extensions: &'a Map<String, Value>,
    /// The URL the event was received on (Tekton's `context.event_url`).
    pub event_url: &'a str,
    /// The event's ID (`context.event_id`).
    pub event_id: &'a str,
    /// `namespaces/NAMESPACE/triggers/NAME` (`context.trigger_id`).
    pub trigger_id: &'a str,
}

/// What the interceptor decided.
///
/// Its `Debug` shows the extensions' keys and the replacement body's length, not their
/// content (which may come from the event body).
#[derive(Clone, PartialEq)]
pub enum WebhookOutcome {
    /// The trigger goes on.
    Continue {
        /// Extensions to merge into the chain's (a key set here wins over an earlier one).
        /// Always empty for the legacy protocol.
        extensions: Map<String, Value>,
        /// Legacy protocol only: the body and headers that replace the event's from here on
        /// (response headers describing the connection left out). `None` for Tekton's.
        replaced: Option<(Bytes, Headers)>,
    },
    /// The interceptor stopped the trigger; it does not run for this event.
    Stop {
        /// Why, naming the interceptor and quoting its status and message.
        message: String,
    },
}

impl fmt::Debug for WebhookCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookCall")
            .field("body_len", &self.body.len())
            .field("event_id", &self.event_id)
            .field("trigger_id", &self.trigger_id)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for WebhookOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Continue {
                extensions,
                replaced,
            } => f
                .debug_struct("Continue")
                .field("extension_keys", &extensions.keys().collect::<Vec<_>>())
                .field(
                    "replaced_body_len",
                    &replaced.as_ref().map(|(body, _)| body.len()),
                )
                .finish(),
            Self::Stop { message } => f.debug_struct("Stop").field("message", message).finish(),
        }
    }
}

/// A call that did not get a decision from the interceptor.
///
/// The message names the interceptor and its URL (without user information or query) and
/// says what went wrong; it never contains the event body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WebhookError {
    /// [`FailureKind::Transient`]: every attempt failed for a reason that may go away (the
    /// interceptor unreachable, overloaded or too slow), so redeliver the event later;
    /// [`FailureKind::Permanent`]: the same call would fail again (configuration,
    /// certificate, protocol).
    pub kind: FailureKind,
    pub message: String,
}

impl WebhookError {
    /// Whether redelivering the event later may help.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }
}

/// Calls webhook interceptors. Cheap to clone: clones share their connection pools.
#[derive(Clone)]
pub struct WebhookClient {
    inner: Arc<Inner>,
}

struct Inner {
    settings: WebhookSettings,
    pools: Pools,
}

impl fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookClient")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl WebhookClient {
    /// A client with the given settings. Nothing is connected or read until the first call.
    pub fn new(settings: WebhookSettings) -> Self {
        let pools = Pools::new(settings.timeout);
        Self {
            inner: Arc::new(Inner { settings, pools }),
        }
    }

    /// The settings this client was built with.
    pub fn settings(&self) -> &WebhookSettings {
        &self.inner.settings
    }

    /// Calls `interceptor` for one event and returns its decision.
    ///
    /// Retryable failures are retried up to [`WebhookSettings::attempts`] times in all before
    /// a [`FailureKind::Transient`] error is returned; a permanent failure returns at once. A
    /// stop decision is an [`WebhookOutcome::Stop`], not an error.
    pub async fn call(
        &self,
        interceptor: &WebhookInterceptor,
        call: &WebhookCall<'_>,
    ) -> Result<WebhookOutcome, WebhookError> {
        let target = redacted_url(interceptor);
        let failed = |kind: FailureKind, message: String| WebhookError {
            kind,
            message: format!("interceptor {} ({target}): {message}", interceptor.name),
        };
        let give_up = |failure: Failure| failed(failure.kind, failure.message);
        let prepared = prepare(interceptor, call).map_err(give_up)?;
        let transport = self
            .inner
            .pools
            .for_interceptor(interceptor)
            .await
            .map_err(give_up)?;

        let settings = &self.inner.settings;
        let attempts = settings.attempts.max(1);
        let backoff = Backoff::new(settings.backoff.min(MAX_BACKOFF), MAX_BACKOFF);
        let mut attempt = 1;
        loop {
            let result = tokio::time::timeout(
                settings.timeout,
                self.attempt(&transport, &prepared, interceptor),
            )
            .await
            .unwrap_or_else(|_elapsed| {
                Err(Failure::retryable(format!(
                    "no complete answer within {:?}",
                    settings.timeout
                )))
            });
            let failure = match result {
                Ok(outcome) => return Ok(outcome),
                Err(failure) if !failure.kind.is_transient() => return Err(give_up(failure)),
                Err(failure) => failure,
            };
            if attempt >= attempts {
                let message = format!(
                    "{} (gave up after {attempts} attempt{})",
                    failure.message,
                    if attempts == 1 { "" } else { "s" },
                );
                return Err(failed(FailureKind::Transient, message));
            }
            let delay = failure
                .retry_after
                .map_or_else(|| backoff.delay(attempt), |d| d.min(settings.timeout));
            tracing::debug!(
                interceptor = %interceptor.name,
                attempt,
                failure = %failure.message,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "webhook interceptor attempt failed, retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One request and its answer, without retries or time limit.
    async fn attempt(
        &self,
        transport: &Transport,
        prepared: &Prepared,
        interceptor: &WebhookInterceptor,
    ) -> Result<WebhookOutcome, Failure> {
        let mut request = Request::new(Full::new(prepared.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = prepared.uri.clone();
        *request.headers_mut() = prepared.headers.clone();

        let response = transport
            .request(request)
            .await
            .map_err(|error| classify_send_error(&error))?;
        let (parts, mut body) = response.into_parts();
        let status = parts.status;

        if status == StatusCode::OK {
            let body = read_body(
                &mut body,
                &parts.headers,
                self.inner.settings.max_response_bytes,
            )
            .await?;
            return match interceptor.protocol {
                WebhookProtocol::Tekton => tekton_outcome(interceptor, &body),
                WebhookProtocol::Legacy => Ok(WebhookOutcome::Continue {
                    extensions: Map::new(),
                    replaced: Some((body, response_headers(&parts.headers))),
                }),
            };
        }
        if status.is_redirection() {
            let location = parts
                .headers
                .get(header::LOCATION)
                .map_or_else(|| "no Location".to_owned(), |l| snippet(l.as_bytes()));
            return Err(Failure::permanent(format!(
                "answered {} redirecting to {location}; redirects are not followed",
                status_text(status)
            )));
        }
        // A Tekton interceptor's decision is in its body, whatever the status: one that
        // answers, say, 503 with `continue: false` has refused the event, and asking again
        // would get the same answer. Only an answer without a decision is judged by status.
        let quoted = match interceptor.protocol {
            WebhookProtocol::Tekton => {
                let limit = self.inner.settings.max_response_bytes;
                match read_body(&mut body, &parts.headers, limit).await {
                    Ok(answer) => match tekton_outcome(interceptor, &answer) {
                        Ok(stop @ WebhookOutcome::Stop { .. }) => return Ok(stop),
                        _ => snippet(&answer),
                    },
                    Err(_) => String::new(),
                }
            }
            WebhookProtocol::Legacy => read_snippet(&mut body).await,
        };
        let answered = with_message(format!("answered {}", status_text(status)), &quoted);
        if is_retryable_status(status) {
            return Err(Failure {
                retry_after: retry_after(status, &parts.headers),
                ..Failure::retryable(answered)
            });
        }
        match interceptor.protocol {
            // Tekton's legacy webhook interceptor rejects any answer but 200 this way.
            WebhookProtocol::Legacy if status.is_success() || status.is_client_error() => {
                Ok(WebhookOutcome::Stop {
                    message: format!(
                        "interceptor {}: request rejected; status: {}; message: {quoted}",
                        interceptor.name,
                        status_text(status),
                    ),
                })
            }
            // Refused without a decision: the trigger fails for this event, as Tekton fails
            // it on any answer but 200; it is not retried.
            WebhookProtocol::Tekton if status.is_client_error() => Err(Failure {
                kind: FailureKind::BadInput,
                ..Failure::permanent(answered)
            }),
            _ => Err(Failure::permanent(answered)),
        }
    }
}
