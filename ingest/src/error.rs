//! Every way a webhook can be refused, with its status and stable JSON `code`.
//!
//! Bodies name the cause but never echo a secret, a signature or an expected value; 5xx
//! bodies stay generic and the cause is logged once where it happens.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use sluice_runtime::retry::FailureKind;

use crate::metrics::Outcome;
use sluice_triggers::auth::{AuthFailure, Refusal};

/// Seconds a sender is asked to wait when JetStream is unreachable or slow: outages of a
/// NATS server (a restart, a leader election) are usually over within seconds.
const QUEUE_UNAVAILABLE_RETRY_AFTER_SECS: &str = "5";

/// Seconds a sender is asked to wait when the stream is full. With `limits` retention it
/// frees room only as events age out or an operator raises the limits, so retrying sooner
/// would only add load.
const QUEUE_FULL_RETRY_AFTER_SECS: &str = "30";

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no EventListener {namespace}/{listener}")]
    UnknownListener { namespace: String, listener: String },
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("the request body could not be read")]
    BodyUnreadable,
    /// Tekton's payload validation, which a listener turns off with the annotation
    /// `tekton.dev/payload-validation: "false"`.
    #[error(
        "the request body is not valid JSON: {reason} (this listener validates payloads: only its annotation tekton.dev/payload-validation: \"false\" lets other bodies through)"
    )]
    InvalidJson { reason: String },
    #[error("the request body must be a JSON object")]
    NotAnObject,
    /// GitHub sends a webhook form-encoded when its content type is set so; Tekton's github
    /// interceptor refuses those bodies, and so does Sluice.
    #[error(
        "form-encoded bodies are not supported; set the webhook's content type to application/json"
    )]
    FormEncoded,
    #[error("{0}")]
    Unauthorized(AuthFailure),
    /// The listener cannot authenticate webhooks (a referenced Secret or key is missing,
    /// invalid or empty, or none of its triggers is valid). The cause is logged where it is
    /// found; the sender learns only this.
    #[error(
        "this EventListener is misconfigured and cannot accept webhooks; its operators must fix its configuration"
    )]
    ListenerMisconfigured,
    /// The publish was refused or its ack did not come in time: the event may still have
    /// been stored, so the answer says "not confirmed", never "not stored".
    #[error(
        "the event queue did not confirm the event (it may or may not be stored); retry later: \
         a retry carrying the same delivery id or Idempotency-Key runs at most once"
    )]
    QueueUnavailable,
    /// The events stream is at its configured limits and refuses new events; nothing stored
    /// was dropped to make room.
    #[error("the event queue is full; retry later")]
    QueueFull,
    /// The tenant sends more webhooks than the platform admits for it.
    #[error("this namespace sends webhooks faster than its admission limit; retry later")]
    RateLimited { retry_after_secs: u64 },
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
}

impl IngestError {
    /// Whose the failure is: the request's (4xx), one that passes (503, 429: the sender
    /// retries), or the listener's configuration (500).
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::UnknownListener { .. }
            | Self::BodyTooLarge { .. }
            | Self::BodyUnreadable
            | Self::InvalidJson { .. }
            | Self::NotAnObject
            | Self::FormEncoded
            | Self::Unauthorized(_) => FailureKind::BadInput,
            Self::ListenerMisconfigured => FailureKind::Permanent,
            Self::QueueUnavailable | Self::QueueFull | Self::RateLimited { .. } => {
                FailureKind::Transient
            }
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownListener { .. } => StatusCode::NOT_FOUND,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyUnreadable
            | Self::InvalidJson { .. }
            | Self::NotAnObject
            | Self::FormEncoded => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::ListenerMisconfigured => StatusCode::INTERNAL_SERVER_ERROR,
            Self::QueueUnavailable | Self::QueueFull => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownListener { .. } => "unknown_listener",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyUnreadable => "body_unreadable",
            Self::InvalidJson { .. } => "invalid_json",
            Self::NotAnObject => "body_not_object",
            Self::FormEncoded => "unsupported_content_type",
            Self::Unauthorized(failure) => failure.code().as_str(),
            Self::ListenerMisconfigured => "listener_misconfigured",
            Self::QueueUnavailable => "queue_unavailable",
            Self::QueueFull => "queue_full",
            Self::RateLimited { .. } => "rate_limited",
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            Self::UnknownListener { .. } => Outcome::NotFound,
            Self::BodyTooLarge { .. } => Outcome::TooLarge,
            Self::BodyUnreadable
            | Self::InvalidJson { .. }
            | Self::NotAnObject
            | Self::FormEncoded => Outcome::BadRequest,
            Self::Unauthorized(_) => Outcome::Unauthorized,
            Self::ListenerMisconfigured => Outcome::Misconfigured,
            Self::QueueUnavailable | Self::QueueFull => Outcome::Unavailable,
            Self::RateLimited { .. } => Outcome::RateLimited,
        }
    }
}

impl From<Refusal> for IngestError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Unauthorized(failure) => Self::Unauthorized(failure),
            Refusal::Misconfigured(_) => Self::ListenerMisconfigured,
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code(),
            message: self.to_string(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        let retry_after = match self {
            Self::QueueUnavailable => Some(QUEUE_UNAVAILABLE_RETRY_AFTER_SECS),
            Self::QueueFull => Some(QUEUE_FULL_RETRY_AFTER_SECS),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        if let Self::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_says_whose_the_failure_is_as_the_status_does() {
        let every = [
            IngestError::UnknownListener {
                namespace: "a".into(),
                listener: "b".into(),
            },
            IngestError::BodyTooLarge { limit: 1 },
            IngestError::BodyUnreadable,
            IngestError::InvalidJson { reason: "x".into() },
            IngestError::NotAnObject,
            IngestError::FormEncoded,
            IngestError::ListenerMisconfigured,
            IngestError::QueueUnavailable,
            IngestError::QueueFull,
            IngestError::RateLimited {
                retry_after_secs: 1,
            },
        ];
        for error in every {
            let status = error.status();
            let expected = if status == StatusCode::SERVICE_UNAVAILABLE
                || status == StatusCode::TOO_MANY_REQUESTS
            {
                FailureKind::Transient
            } else if status.is_client_error() {
                FailureKind::BadInput
            } else {
                FailureKind::Permanent
            };
            assert_eq!(error.kind(), expected, "{error}: {status}");
        }
    }
}
