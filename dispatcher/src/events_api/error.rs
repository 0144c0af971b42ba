//! Every answer of the status API that is not the data asked for, with its status and
//! stable JSON `code`. Messages name the cause and the parameter, never a token; 5xx bodies
//! stay generic and the cause is logged here, once.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sluice_runtime::event_status::ReadError;

/// Seconds a client is asked to wait when NATS or the Kubernetes API cannot answer.
const RETRY_AFTER_SECS: &str = "5";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("this API needs a Kubernetes bearer token: Authorization: Bearer <token>")]
    MissingToken,
    #[error("the bearer token was not accepted by the Kubernetes API")]
    InvalidToken,
    #[error(
        "not allowed to read event status in namespace {namespace:?}: it takes `get` on \
         eventlisteners.triggers.tekton.dev there"
    )]
    Forbidden { namespace: String },
    #[error("{parameter}: {reason}")]
    BadParameter {
        parameter: &'static str,
        reason: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("event status cannot be read right now; retry later")]
    StatusUnavailable(#[source] ReadError),
    /// TokenReview or SubjectAccessReview could not be made (API unreachable, slow, or the
    /// dispatcher not allowed to create them); the cause is in `reason`, logged only.
    #[error("the request cannot be authorised right now; retry later")]
    AuthorisationUnavailable { reason: String },
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Serialize)]
struct ErrorBody {
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn bad(parameter: &'static str, reason: impl Into<String>) -> Self {
        Self::BadParameter {
            parameter,
            reason: reason.into(),
        }
    }

    /// A path segment axum could not decode (bad percent-encoding, not UTF-8).
    pub fn from_path(rejection: PathRejection) -> Self {
        Self::bad("path", rejection.body_text())
    }

    /// A query string that does not decode.
    pub fn from_query(rejection: QueryRejection) -> Self {
        Self::bad("query", rejection.body_text())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::BadParameter { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::StatusUnavailable(_) | Self::AuthorisationUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "token_required",
            Self::InvalidToken => "token_invalid",
            Self::Forbidden { .. } => "forbidden",
            Self::BadParameter { .. } => "invalid_parameter",
            Self::NotFound(_) => "not_found",
            Self::StatusUnavailable(_) => "status_unavailable",
            Self::AuthorisationUnavailable { .. } => "authorisation_unavailable",
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        Self::StatusUnavailable(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::StatusUnavailable(error) => {
                tracing::warn!(%error, "event status API: cannot read event status");
            }
            Self::AuthorisationUnavailable { reason } => {
                tracing::warn!(%reason, "event status API: cannot authorise a request");
            }
            _ => {}
        }
        let body = ErrorBody {
            code: self.code(),
            message: self.to_string(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            Self::MissingToken | Self::InvalidToken => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::StatusUnavailable(_) | Self::AuthorisationUnavailable { .. } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        response
    }
}
