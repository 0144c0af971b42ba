//! The webhook router and the request path: route → listener → body → authentication →
//! envelope → durable publish → answer.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sluice_shared::catalogue::{Catalogue, Listener};
use sluice_shared::event::{Envelope, EventMeta, Headers, SCHEMA_VERSION};
use sluice_shared::names::{is_dns1123_label, is_dns1123_subdomain};
use sluice_shared::ops::{ReadinessCheck, health_routes};
use sluice_shared::subject::event_subject;
use tracing::Instrument;

use crate::auth::{Admission, admit, is_credential_header};
use crate::error::IngestError;
use crate::limits::LimitArgs;
use crate::metrics::{IngestMetrics, Outcome};
use crate::publish::Publish;

/// Headers that identify one delivery, in order of preference, for the idempotency key.
const DELIVERY_ID_HEADERS: &[&str] = &[
    "x-github-delivery",
    "x-gitlab-event-uuid",
    "x-request-uuid",
    "idempotency-key",
];

/// What the request path needs.
#[derive(Clone)]
pub struct AppState {
    pub catalogue: Arc<ArcSwap<Catalogue>>,
    /// JetStream's [`crate::publish::Publisher`] in production.
    pub publisher: Arc<dyn Publish>,
    pub metrics: IngestMetrics,
    pub max_body_bytes: usize,
}

/// `POST /hooks/{namespace}/{listener}` behind the request-level limits, plus `/healthz`
/// and `/readyz`. The limits are composed in [`LimitArgs::guard`]; the connection-level
/// ones (header timeout and size, connection cap) are applied by [`crate::server::serve`].
pub fn router(state: AppState, ready: ReadinessCheck, limits: &LimitArgs) -> Router {
    let metrics = state.metrics.clone();
    let hooks = Router::new()
        .route("/hooks/{namespace}/{listener}", post(receive))
        .with_state(state);
    limits
        .guard(hooks, metrics)
        .merge(health_routes(ready))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
}

async fn not_found() -> Response {
    let body = serde_json::json!({"code": "not_found", "message": "no such route; webhooks are posted to /hooks/{namespace}/{listener}"});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

async fn method_not_allowed() -> Response {
    let body = serde_json::json!({"code": "method_not_allowed", "message": "webhooks are posted: POST /hooks/{namespace}/{listener}"});
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// Tekton Triggers' answer to an accepted webhook.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted<'a> {
    event_listener: &'a str,
    namespace: &'a str,
    #[serde(rename = "eventListenerUID")]
    event_listener_uid: &'a str,
    #[serde(rename = "eventID")]
    event_id: &'a str,
}

async fn receive(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let catalogue = state.catalogue.load();
    let listener = match find_listener(&catalogue, path) {
        Ok(listener) => listener,
        Err(error) => {
            state.metrics.request(None, error.outcome());
            return error.into_response();
        }
    };
    let labels = Some((listener.namespace.as_str(), listener.name.as_str()));
    let span = tracing::info_span!(
        "webhook",
        namespace = %listener.namespace,
        listener = %listener.name,
        event_id = tracing::field::Empty,
    );
    match accept(&state, listener, &uri, &headers, body)
        .instrument(span)
        .await
    {
        Ok((outcome, response)) => {
            state.metrics.request(labels, outcome);
            response
        }
        Err(error) => {
            state.metrics.request(labels, error.outcome());
            if error.status().is_server_error() {
                tracing::warn!(namespace = %listener.namespace, listener = %listener.name, error = %error, "webhook not stored");
            } else {
                tracing::debug!(namespace = %listener.namespace, listener = %listener.name, error = %error, "webhook refused");
            }
            error.into_response()
        }
    }
}

/// Names that are not valid Kubernetes names (percent-encoded slashes, dots, overlong
/// names…) are refused before any lookup.
fn find_listener(
    catalogue: &Catalogue,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<&Arc<Listener>, IngestError> {
    let unknown = |namespace: &str, listener: &str| IngestError::UnknownListener {
        namespace: truncate(namespace),
        listener: truncate(listener),
    };
    let Ok(Path((namespace, name))) = path else {
        return Err(unknown("", ""));
    };
    if !is_dns1123_label(&namespace) || !is_dns1123_subdomain(&name) {
        return Err(unknown(&namespace, &name));
    }
    catalogue
        .listener(&namespace, &name)
        .ok_or_else(|| unknown(&namespace, &name))
}

/// Keeps hostile path segments from making error bodies large.
fn truncate(name: &str) -> String {
    name.chars().take(64).collect()
}

async fn accept(
    state: &AppState,
    listener: &Listener,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Outcome, Response), IngestError> {
    let body = read_body(headers, body, state.max_body_bytes).await?;
    check_json_object(&body)?;
    let triggers = match admit(listener, headers, &body)? {
        Admission::Accepted(triggers) => triggers,
        Admission::Filtered => {
            let event_id = uuid::Uuid::new_v4().to_string();
            return Ok((Outcome::Filtered, accepted(listener, &event_id)));
        }
    };
    let meta = EventMeta {
        schema: SCHEMA_VERSION,
        event_id: uuid::Uuid::new_v4().to_string(),
        namespace: listener.namespace.clone(),
        listener: listener.name.clone(),
        received_at_ms: now_ms(),
        idempotency_key: idempotency_key(listener, headers, &body),
        triggers,
        traceparent: header_str(headers, "traceparent").map(str::to_owned),
        request_url: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers: envelope_headers(listener, headers),
    };
    tracing::Span::current().record("event_id", meta.event_id.as_str());
    let envelope = Envelope { meta, body };
    let subject = event_subject(&listener.namespace, &listener.name);
    state
        .publisher
        .publish(subject, envelope.encode())
        .await
        .map_err(|error| {
            tracing::warn!(error = %error, "publish failed");
            IngestError::QueueUnavailable
        })?;
    Ok((
        Outcome::Accepted,
        accepted(listener, &envelope.meta.event_id),
    ))
}

fn accepted(listener: &Listener, event_id: &str) -> Response {
    let body = Accepted {
        event_listener: &listener.name,
        namespace: &listener.namespace,
        event_listener_uid: &listener.uid,
        event_id,
    };
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

/// Reads the body, refusing it as soon as it passes `limit` so memory stays bounded.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, IngestError> {
    let declared =
        header_str(headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(IngestError::BodyTooLarge { limit });
    }
    let capacity = declared.map_or(8 * 1024, |len| len as usize);
    let mut buffer = BytesMut::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| IngestError::BodyUnreadable)?;
        if buffer.len() + chunk.len() > limit {
            return Err(IngestError::BodyTooLarge { limit });
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

/// Tekton's rule: the body must be a JSON object. Validated without building a tree.
fn check_json_object(body: &[u8]) -> Result<(), IngestError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|error| {
        IngestError::InvalidJson {
            reason: error.to_string(),
        }
    })?;
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        _ => Err(IngestError::NotAnObject),
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Request headers for the envelope; credentials are dropped by [`Headers::append`], and so
/// are the signature headers the listener's hmac interceptors name.
fn envelope_headers(listener: &Listener, headers: &HeaderMap) -> Headers {
    let mut out = Headers::new();
    for (name, value) in headers {
        if is_credential_header(listener, name.as_str()) {
            continue;
        }
        out.append(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
    }
    out
}

/// The provider's delivery id when there is one, else a hash of the body; always scoped to
/// the listener so two tenants can never collide.
fn idempotency_key(listener: &Listener, headers: &HeaderMap, body: &[u8]) -> String {
    let scope = format!("{}/{}", listener.namespace, listener.name);
    let delivery = DELIVERY_ID_HEADERS
        .iter()
        .find_map(|name| header_str(headers, name).filter(|v| !v.is_empty()));
    match delivery {
        Some(id) => format!("{scope}/{id}"),
        None => {
            let digest = Sha256::new()
                .chain_update(scope.as_bytes())
                .chain_update([0])
                .chain_update(body)
                .finalize();
            format!("{scope}/sha256:{}", hex::encode(digest))
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_objects_are_accepted() {
        assert!(check_json_object(b" {\"a\":1} ").is_ok());
        assert!(matches!(
            check_json_object(b"[1]"),
            Err(IngestError::NotAnObject)
        ));
        assert!(matches!(
            check_json_object(b"\"s\""),
            Err(IngestError::NotAnObject)
        ));
        assert!(matches!(
            check_json_object(b"{\"a\":"),
            Err(IngestError::InvalidJson { .. })
        ));
        assert!(matches!(
            check_json_object(b""),
            Err(IngestError::InvalidJson { .. })
        ));
        assert!(matches!(
            check_json_object(b"{} {}"),
            Err(IngestError::InvalidJson { .. })
        ));
    }
}
