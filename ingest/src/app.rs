//! The webhook router and the request path: route → listener → body → authentication →
//! envelope → durable publish → answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post_service;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Serialize;
use sluice_runtime::clock::now_ms;
use sluice_runtime::envelope::{EventMetaRef, RequestHeaders, SCHEMA_VERSION, new_event_id};
use sluice_runtime::event_status::{RefusedRecord, StatusWriter, rfc3339};
use sluice_runtime::ops::{ReadinessCheck, health_routes};
use sluice_runtime::subject::event_subject;
use sluice_triggers::catalogue::{Catalogue, Listener};
use sluice_triggers::idempotency::{delivery_id, event_key, idempotency_key};
use sluice_triggers::names::{is_dns1123_label, is_dns1123_subdomain};
use tracing::Instrument;

use crate::admission::AdmissionLimits;
use crate::error::IngestError;
use crate::limits::LimitArgs;
use crate::metrics::{IngestMetrics, Outcome};
use crate::publish::{Publish, PublishError, Stored};
use crate::{report, trace};
use sluice_triggers::auth::{Admission, admit, is_credential_header, refuses_form_encoding};

/// What the request path needs.
/// The largest body ingest takes, in bytes: `--max-body-bytes`, cut to what one NATS
/// message carries with the envelope once the server's `max_payload` is known (see
/// [`crate::publish::largest_body`]). Shared, so that the connection can set it.
#[derive(Debug, Clone)]
pub struct BodyLimit(Arc<AtomicUsize>);

impl BodyLimit {
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(AtomicUsize::new(bytes)))
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, bytes: usize) {
        self.0.store(bytes, Ordering::Relaxed);
    }
}

impl From<usize> for BodyLimit {
    fn from(bytes: usize) -> Self {
        Self::new(bytes)
    }
}

#[derive(Clone)]
pub struct AppState {
    pub catalogue: Arc<ArcSwap<Catalogue>>,
    /// JetStream's [`crate::publish::Publisher`] in production.
    pub publisher: Arc<dyn Publish>,
    pub metrics: IngestMetrics,
    pub max_body_bytes: BodyLimit,
    /// Per-tenant admission limits; `None`: off.
    pub admission: Option<Arc<AdmissionLimits>>,
    /// Where each stored event and refused delivery is recorded (`sluice events`).
    pub status: Arc<StatusWriter>,
}

/// `POST /hooks/{namespace}/{listener}` behind the request-level limits, plus `/healthz`
/// and `/readyz`. The limits are composed in [`LimitArgs::guard`]; the connection-level
/// ones (header timeout and size, connection cap) are applied by [`crate::server::serve`].
pub fn router(state: AppState, ready: ReadinessCheck, limits: &LimitArgs) -> Router {
    let metrics = state.metrics.clone();
    // Behind one `Arc`: every request takes the state with one reference count.
    let receive = receive.with_state(Arc::new(state));
    Router::new()
        .route(
            "/hooks/{namespace}/{listener}",
            post_service(limits.guard(receive, metrics)),
        )
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

/// Tekton Triggers' answer to an accepted webhook, plus `duplicate: true` for a redelivery.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted<'a> {
    event_listener: &'a str,
    namespace: &'a str,
    #[serde(rename = "eventListenerUID")]
    event_listener_uid: &'a str,
    /// Absent only for a duplicate whose original could not be read back: an invented id
    /// would name an event that does not exist.
    #[serde(rename = "eventID", skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    /// Only sent (as `true`) when the event was already stored and is not stored again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
}

/// Takes the request whole: its parts are borrowed from here on, never copied.
async fn receive(
    State(state): State<Arc<AppState>>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let catalogue = state.catalogue.load();
    let listener = match find_listener(&catalogue, params.ok().as_ref()) {
        Ok(listener) => listener,
        Err(error) => {
            state.metrics.request(None, error.outcome());
            report::refused(&parts, None, &error);
            // Kept for namespaces that have listeners: a mistyped URL shows up beside them,
            // and nobody can fill the store with names of their choosing.
            if let IngestError::UnknownListener {
                namespace,
                listener,
            } = &error
                && catalogue.has_namespace(namespace)
            {
                state.status.refused(false, || {
                    refused_record(namespace, listener, &parts, &error)
                });
            }
            return error.into_response();
        }
    };
    let labels = Some((listener.namespace.as_str(), listener.name.as_str()));
    // Debug level: at the default level the request path pays for no span. Every line
    // logged on the way names the listener (and the event, once it has one) itself.
    let span = tracing::debug_span!(
        "webhook",
        namespace = %listener.namespace,
        listener = %listener.name,
    );
    // Innermost, so that the publish finds it current whatever the log level.
    let trace = trace::webhook(listener, &parts.headers);
    let response = match accept(&state, listener, &parts, body)
        .instrument(trace.clone())
        .instrument(span)
        .await
    {
        Ok((outcome, response)) => {
            state.metrics.request(labels, outcome);
            response
        }
        Err(error) => {
            state.metrics.request(labels, error.outcome());
            report::refused(&parts, Some(listener), &error);
            state.status.refused(true, || {
                refused_record(&listener.namespace, &listener.name, &parts, &error)
            });
            error.into_response()
        }
    };
    trace::answered(&trace, response.status());
    response
}

/// What `sluice events list --state refused` shows of a refused delivery.
fn refused_record(
    namespace: &str,
    listener: &str,
    request: &Parts,
    error: &IngestError,
) -> RefusedRecord {
    RefusedRecord {
        namespace: namespace.to_owned(),
        event_listener: listener.to_owned(),
        status: error.status().as_u16(),
        code: error.code().to_owned(),
        message: error.to_string(),
        delivery_id: delivery_id(&request.headers).map(str::to_owned),
        at: rfc3339(now_ms()),
    }
}

/// Names that are not valid Kubernetes names (percent-encoded slashes, dots, overlong
/// names…) are refused before any lookup; so is a path whose names are not UTF-8 once
/// percent-decoded (`params` is `None`).
fn find_listener<'c>(
    catalogue: &'c Catalogue,
    params: Option<&RawPathParams>,
) -> Result<&'c Arc<Listener>, IngestError> {
    let param = |key: &str| {
        params
            .and_then(|params| params.iter().find(|(name, _)| *name == key))
            .map_or("", |(_, value)| value)
    };
    let (namespace, name) = (param("namespace"), param("listener"));
    let unknown = || IngestError::UnknownListener {
        namespace: truncate(namespace),
        listener: truncate(name),
    };
    if !is_dns1123_label(namespace) || !is_dns1123_subdomain(name) {
        return Err(unknown());
    }
    catalogue.listener(namespace, name).ok_or_else(unknown)
}

/// Keeps hostile path segments from making error bodies large.
fn truncate(name: &str) -> String {
    name.chars().take(64).collect()
}

async fn accept(
    state: &AppState,
    listener: &Listener,
    request: &Parts,
    body: Body,
) -> Result<(Outcome, Response), IngestError> {
    if let Some(admission) = &state.admission
        && let Err(wait) = admission.admit(listener)
    {
        // Refused before the body is read: an over-limit sender costs little.
        return Err(IngestError::RateLimited {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        });
    }
    let headers = &request.headers;
    let body = read_body(headers, body, state.max_body_bytes.get()).await?;
    // Authentication first, over the raw bytes: a sender who cannot sign learns nothing about
    // what the body should have been, and a forged request is counted as one (401).
    let admission = admit(listener, headers, &body)?;
    if refuses_form_encoding(listener, headers) {
        return Err(IngestError::FormEncoded);
    }
    // Tekton's payload validation; with it off (the listener's annotation
    // `tekton.dev/payload-validation: "false"`) any body goes on as it is.
    if listener.payload_validation {
        check_json_object(&body)?;
    }
    let triggers = match admission {
        Admission::Accepted(triggers) => triggers,
        Admission::Filtered => {
            report::filtered(request, listener, &body);
            state
                .status
                .refused(true, || report::filtered_record(request, listener, &body));
            // No `eventID`: nothing was stored, so there is no event to name.
            return Ok((Outcome::Filtered, accepted(listener, None)));
        }
    };
    let event_id = new_event_id();
    trace::event_id(&event_id);
    let idempotency_key = idempotency_key(listener, headers, &body);
    let received_at_ms = now_ms();
    let meta = EventMetaRef {
        schema: SCHEMA_VERSION,
        event_id: &event_id,
        namespace: &listener.namespace,
        listener: &listener.name,
        received_at_ms,
        idempotency_key: &idempotency_key,
        triggers: &triggers,
        traceparent: header_str(headers, "traceparent"),
        request_url: request.uri.path_and_query().map_or("", |p| p.as_str()),
        // Credentials are dropped, and so are the signature headers the listener's hmac
        // interceptors name.
        headers: RequestHeaders::new(headers, |name| is_credential_header(listener, name)),
    };
    let stored = state
        .publisher
        .publish(
            event_subject(&listener.namespace, &listener.name),
            event_key(&idempotency_key, &event_id),
            meta.encode(&body),
        )
        .await
        .map_err(|error| match error {
            PublishError::Full(_) => {
                tracing::warn!(namespace = %listener.namespace, listener = %listener.name, error = %error, "publish refused: the events stream is full");
                IngestError::QueueFull
            }
            PublishError::Timeout(_) | PublishError::Refused(_) => {
                tracing::warn!(namespace = %listener.namespace, listener = %listener.name, error = %error, "publish failed");
                IngestError::QueueUnavailable
            }
        })?;
    match stored {
        Stored::New { .. } => Ok((Outcome::Accepted, accepted(listener, Some(&event_id)))),
        Stored::Duplicate { sequence, original } => {
            // Equal message ids with different keys would be a SHA-256 collision; the check
            // costs nothing and guarantees an answer never names another listener's event.
            let original = original.filter(|o| o.idempotency_key == idempotency_key);
            let original_id = original.as_ref().map(|o| o.event_id.as_str());
            tracing::info!(
                namespace = %listener.namespace,
                listener = %listener.name,
                sequence,
                original_event_id = original_id.unwrap_or("unknown"),
                "duplicate delivery: already stored, not stored again"
            );
            state.status.refused(true, || RefusedRecord {
                namespace: listener.namespace.clone(),
                event_listener: listener.name.clone(),
                status: 202,
                code: "duplicate".to_owned(),
                message: format!(
                    "delivered again within the duplicate window: already stored as event {}; not stored again",
                    original_id.unwrap_or("unknown")
                ),
                delivery_id: delivery_id(headers).map(str::to_owned),
                at: rfc3339(received_at_ms),
            });
            Ok((Outcome::Duplicate, duplicate(listener, original_id)))
        }
    }
}

fn accepted(listener: &Listener, event_id: Option<&str>) -> Response {
    answer(listener, event_id, false)
}

fn duplicate(listener: &Listener, original_event_id: Option<&str>) -> Response {
    answer(listener, original_event_id, true)
}

fn answer(listener: &Listener, event_id: Option<&str>, duplicate: bool) -> Response {
    let body = Accepted {
        event_listener: &listener.name,
        namespace: &listener.namespace,
        event_listener_uid: &listener.uid,
        event_id,
        duplicate,
    };
    // Into a `Vec`, which takes serde_json's many small writes more cheaply than `Json`'s
    // `BytesMut` writer. Strings and a bool always serialise.
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let json = HeaderValue::from_static("application/json");
    (StatusCode::ACCEPTED, [(header::CONTENT_TYPE, json)], body).into_response()
}

/// The first buffer for a body: bodies grow it as they arrive, so that a `Content-Length`
/// (which anyone may send) never makes ingest reserve memory before it has the bytes.
const FIRST_BUFFER: usize = 16 * 1024;

/// How much of an oversized body is read and thrown away before the `413` is sent, and for
/// how long at most, as a web server's lingering close does: a sender that writes its whole
/// body before reading the answer then reads the `413` instead of a reset connection. Past
/// either bound the connection is closed.
const DRAIN_MAX_BYTES: usize = 16 * 1024 * 1024;
const DRAIN_MAX_TIME: Duration = Duration::from_secs(5);

/// Reads the body, refusing it as soon as it passes `limit` so memory stays bounded.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, IngestError> {
    let declared =
        header_str(headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    if declared.is_some_and(|len| len > limit as u64) {
        // A sender waiting for `100 Continue` has sent nothing and gets the answer at once.
        if !expects_continue(headers) {
            drain(&mut stream, 0).await;
        }
        return Err(IngestError::BodyTooLarge { limit });
    }
    let capacity = declared.map_or(FIRST_BUFFER, |len| (len as usize).min(FIRST_BUFFER));
    let mut buffer = BytesMut::with_capacity(capacity);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| IngestError::BodyUnreadable)?;
        if buffer.len() + chunk.len() > limit {
            drain(&mut stream, buffer.len() + chunk.len()).await;
            return Err(IngestError::BodyTooLarge { limit });
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Reads and discards what is left of a refused body, `read` bytes of it already seen,
/// within [`DRAIN_MAX_BYTES`] and [`DRAIN_MAX_TIME`]. Nothing is kept.
async fn drain(stream: &mut axum::body::BodyDataStream, mut read: usize) {
    let deadline = tokio::time::Instant::now() + DRAIN_MAX_TIME;
    while read < DRAIN_MAX_BYTES {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => read += chunk.len(),
            // The end of the body, a broken one, or time is up.
            _ => return,
        }
    }
}

/// Tekton's rule: the body must be a JSON object, or empty (`$(body)` is then `null`, as
/// Tekton reads an empty body). Validated without building a tree.
fn check_json_object(body: &[u8]) -> Result<(), IngestError> {
    if body.is_empty() {
        return Ok(());
    }
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use futures_util::future::BoxFuture;
    use prometheus_client::registry::Registry;
    use sluice_runtime::envelope::Envelope;
    use tower::ServiceExt;

    use super::*;

    /// Stores events in memory and de-duplicates them by message id, as JetStream does
    /// within its duplicate window. `forget` drops the stored originals (as a purge would)
    /// but keeps the ids.
    #[derive(Default)]
    struct MemoryPublisher {
        by_id: Mutex<HashMap<String, u64>>,
        events: Mutex<Vec<Bytes>>,
        purged: Mutex<bool>,
    }

    impl Publish for MemoryPublisher {
        fn publish(
            &self,
            _subject: String,
            message_id: String,
            payload: Bytes,
        ) -> BoxFuture<'_, Result<Stored, PublishError>> {
            Box::pin(async move {
                let mut events = self.events.lock().unwrap();
                let mut by_id = self.by_id.lock().unwrap();
                if let Some(&sequence) = by_id.get(&message_id) {
                    let original = if *self.purged.lock().unwrap() {
                        None
                    } else {
                        let payload = events[(sequence - 1) as usize].clone();
                        Some(Box::new(Envelope::decode(payload).unwrap().meta))
                    };
                    return Ok(Stored::Duplicate { sequence, original });
                }
                events.push(payload);
                let sequence = events.len() as u64;
                by_id.insert(message_id, sequence);
                Ok(Stored::New { sequence })
            })
        }
    }

    const OPEN_LISTENER: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: run, namespace: team-a}
spec:
  resourcetemplates:
    - {apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {generateName: run-}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: open, namespace: team-a, uid: open-uid}
spec:
  triggers:
    - name: anyone
      template: {ref: run}
"#;

    fn app(publisher: Arc<MemoryPublisher>) -> Router {
        let catalogue = sluice_triggers::config::load_str("test.yaml", OPEN_LISTENER);
        assert!(catalogue.issues().is_empty(), "{:?}", catalogue.issues());
        let state = AppState {
            catalogue: Arc::new(ArcSwap::from_pointee(catalogue)),
            publisher,
            metrics: IngestMetrics::register(&mut Registry::default()),
            max_body_bytes: 1024.into(),
            admission: None,
            status: Arc::new(StatusWriter::disabled()),
        };
        router(state, Arc::new(|| Ok(())), &LimitArgs::default())
    }

    async fn post_delivery(
        app: &Router,
        delivery: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let request = Request::post("/hooks/team-a/open")
            .header("X-GitHub-Delivery", delivery)
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_redelivery_is_answered_202_with_the_original_event_id_and_not_stored() {
        let publisher = Arc::new(MemoryPublisher::default());
        let app = app(publisher.clone());
        let (status, first) = post_delivery(&app, "d-1", r#"{"n":1}"#).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(first.get("duplicate"), None, "{first}");
        let event_id = first["eventID"].as_str().unwrap();
        assert_eq!(event_id.len(), 36);

        // GitHub redelivers the same delivery id (the body is the same; even if it were not).
        let (status, again) = post_delivery(&app, "d-1", r#"{"n":1}"#).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            again,
            serde_json::json!({
                "eventListener": "open",
                "namespace": "team-a",
                "eventListenerUID": "open-uid",
                "eventID": event_id,
                "duplicate": true,
            })
        );
        assert_eq!(publisher.events.lock().unwrap().len(), 1);

        let (_, other) = post_delivery(&app, "d-2", r#"{"n":1}"#).await;
        assert_ne!(other["eventID"], event_id);
        assert_eq!(publisher.events.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_duplicate_whose_original_is_gone_gets_no_invented_event_id() {
        let publisher = Arc::new(MemoryPublisher::default());
        let app = app(publisher.clone());
        let (status, _) = post_delivery(&app, "d-1", "{}").await;
        assert_eq!(status, StatusCode::ACCEPTED);
        *publisher.purged.lock().unwrap() = true;
        let (status, again) = post_delivery(&app, "d-1", "{}").await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            again,
            serde_json::json!({
                "eventListener": "open",
                "namespace": "team-a",
                "eventListenerUID": "open-uid",
                "duplicate": true,
            })
        );
    }

    /// A Slack app's listener as Tekton's docs write it: payload validation off (Slack posts
    /// forms), the slack interceptor with `requestedFields`; and a listener that keeps the
    /// default validation.
    const SLACK_LISTENERS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: slack, namespace: team-a}
stringData: {signing-secret: slack-signing-secret}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: run, namespace: team-a}
spec:
  resourcetemplates:
    - {apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {generateName: run-}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata:
  name: slack
  namespace: team-a
  annotations: {tekton.dev/payload-validation: "false"}
spec:
  triggers:
    - name: slash-command
      interceptors:
        - ref: {name: slack}
          params:
            - {name: secretRef, value: {secretName: slack, secretKey: signing-secret}}
            - {name: requestedFields, value: [text, user_id]}
      template: {ref: run}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: validating, namespace: team-a}
spec:
  triggers:
    - name: anyone
      template: {ref: run}
"#;

    const SLASH_COMMAND: &str =
        "token=t0k&team_id=T1&user_id=U2&command=%2Fbuild&text=main+%24%28params.x%29";

    fn slack_app(publisher: Arc<MemoryPublisher>) -> Router {
        let catalogue = sluice_triggers::config::load_str("test.yaml", SLACK_LISTENERS);
        assert!(catalogue.issues().is_empty(), "{:?}", catalogue.issues());
        let state = AppState {
            catalogue: Arc::new(ArcSwap::from_pointee(catalogue)),
            publisher,
            metrics: IngestMetrics::register(&mut Registry::default()),
            max_body_bytes: 4096.into(),
            admission: None,
            status: Arc::new(StatusWriter::disabled()),
        };
        router(state, Arc::new(|| Ok(())), &LimitArgs::default())
    }

    /// `v0=<hex HMAC-SHA256 of v0:<timestamp>:<body>>`, as Slack signs.
    fn slack_signature(secret: &str, timestamp: &str, body: &str) -> String {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{timestamp}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    async fn post(
        app: &Router,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = Request::post(path);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(Body::from(body.to_owned())).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn slack_headers(signature: String) -> Vec<(&'static str, String)> {
        let now = now_ms() / 1000;
        vec![
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("X-Slack-Request-Timestamp", now.to_string()),
            ("X-Slack-Signature", signature),
        ]
    }

    #[tokio::test]
    async fn a_signed_slash_command_form_is_stored_byte_for_byte_without_its_signature() {
        let publisher = Arc::new(MemoryPublisher::default());
        let app = slack_app(publisher.clone());
        let now = (now_ms() / 1000).to_string();
        let signature = slack_signature("slack-signing-secret", &now, SLASH_COMMAND);
        let (status, answer) = post(
            &app,
            "/hooks/team-a/slack",
            &slack_headers(signature),
            SLASH_COMMAND,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        let events = publisher.events.lock().unwrap();
        let stored = Envelope::decode(events[0].clone()).unwrap();
        assert_eq!(stored.body, SLASH_COMMAND.as_bytes());
        assert_eq!(stored.meta.triggers, ["slash-command"]);
        assert_eq!(
            stored.meta.headers.get_all("content-type").unwrap(),
            ["application/x-www-form-urlencoded"]
        );
        assert!(stored.meta.headers.get_all("x-slack-signature").is_none());
    }

    #[tokio::test]
    async fn a_slash_command_form_with_a_bad_signature_is_401() {
        let publisher = Arc::new(MemoryPublisher::default());
        let app = slack_app(publisher.clone());
        let now = (now_ms() / 1000).to_string();
        let signature = slack_signature("another-secret", &now, SLASH_COMMAND);
        let (status, answer) = post(
            &app,
            "/hooks/team-a/slack",
            &slack_headers(signature),
            SLASH_COMMAND,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer["code"], "signature_invalid");
        assert!(publisher.events.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn without_payload_validation_any_body_is_stored_as_it_came() {
        let publisher = Arc::new(MemoryPublisher::default());
        let app = slack_app(publisher.clone());
        for body in ["plain text, not JSON", "<test>xml</test>", "[1, 2]", ""] {
            let now = (now_ms() / 1000).to_string();
            let mut headers = slack_headers(slack_signature("slack-signing-secret", &now, body));
            headers[0].1 = "text/plain".to_owned();
            let (status, answer) = post(&app, "/hooks/team-a/slack", &headers, body).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body:?}: {answer}");
            let events = publisher.events.lock().unwrap();
            let stored = Envelope::decode(events.last().unwrap().clone()).unwrap();
            assert_eq!(stored.body, body.as_bytes());
        }
    }

    #[tokio::test]
    async fn by_default_a_body_that_is_not_json_is_400_naming_the_cause() {
        let publisher = Arc::new(MemoryPublisher::default());
        let app = slack_app(publisher.clone());
        let form = vec![(
            "Content-Type",
            "application/x-www-form-urlencoded".to_owned(),
        )];
        let (status, answer) = post(&app, "/hooks/team-a/validating", &form, SLASH_COMMAND).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["code"], "invalid_json");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains("not valid JSON"), "{message}");
        assert!(
            message.contains("tekton.dev/payload-validation"),
            "names the way out: {message}"
        );
        assert!(!message.contains("t0k"), "no body in the answer: {message}");
        assert!(publisher.events.lock().unwrap().is_empty());
    }

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
        assert!(
            check_json_object(b"").is_ok(),
            "an empty body is Tekton's null"
        );
        assert!(matches!(
            check_json_object(b"  "),
            Err(IngestError::InvalidJson { .. })
        ));
        assert!(matches!(
            check_json_object(b"{} {}"),
            Err(IngestError::InvalidJson { .. })
        ));
    }
}
