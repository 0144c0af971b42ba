//! The HTTP side: one axum handler for every path, running the API server's request
//! pipeline — record, authenticate, impersonate, resolve, inject faults, authorize — before
//! the resource operation in [`handlers`](super::handlers) (or the review in
//! [`reviews`](super::reviews)).

use std::borrow::Cow;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query as QueryExtractor, Request, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::faults::{Action, Failure, Faults};
use super::handlers;
use super::rbac::{Identity, Impersonation, Rbac};
use super::record::RecordedRequest;
use super::request::{Query, ResourceRequest, resolve};
use super::reviews;
use super::status::ApiError;
use super::store::Store;
use super::validation::FieldError;

/// The API server's limit on request bodies (3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// State shared by the handler and the test API.
#[derive(Debug)]
pub struct Shared {
    pub store: Mutex<Store>,
    pub rbac: Mutex<Rbac>,
    pub faults: Mutex<Faults>,
    pub log: Mutex<Vec<RecordedRequest>>,
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Mutex<Duration>,
    pub shutdown: Shutdown,
}

/// The real API server bookmarks a watch about once a minute.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

impl Shared {
    pub fn new(shutdown: Shutdown) -> Self {
        Shared {
            store: Mutex::default(),
            rbac: Mutex::default(),
            faults: Mutex::default(),
            log: Mutex::default(),
            bookmark_interval: Mutex::new(BOOKMARK_INTERVAL),
            shutdown,
        }
    }
}

/// Locks a mutex; a test that panicked while holding it must not hide later failures.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Resolves when the [`ApiDouble`](super::ApiDouble) is dropped (its sender goes away).
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<()>);

impl Shutdown {
    pub fn new() -> (watch::Sender<()>, Shutdown) {
        let (sender, receiver) = watch::channel(());
        (sender, Shutdown(receiver))
    }

    pub async fn wait(&self) {
        let mut receiver = self.0.clone();
        while receiver.changed().await.is_ok() {}
    }

    /// Sleeps for `duration`, or less if the double shuts down first.
    pub async fn sleep(&self, duration: Duration) {
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            () = self.wait() => {}
        }
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let mut recording = Recording::begin(shared.clone(), &request);
    let response = pipeline(&shared, request, &mut recording).await;
    recording.entry.status = Some(response.status().as_u16());
    recording.entry.answered_at = Some(std::time::SystemTime::now());
    response
}

/// A log entry written at arrival and rewritten when the request ends, even if the client
/// goes away first (the handler future is then dropped).
struct Recording {
    shared: Arc<Shared>,
    index: usize,
    entry: RecordedRequest,
}

impl Recording {
    fn begin(shared: Arc<Shared>, request: &Request) -> Self {
        let entry = RecordedRequest::arrived(
            request.method().clone(),
            request.uri().path(),
            request.uri().query(),
            request
                .headers()
                .get(header::ACCEPT)
                .and_then(|value| value.to_str().ok()),
        );
        let index = {
            let mut log = lock(&shared.log);
            log.push(entry.clone());
            log.len() - 1
        };
        Recording {
            shared,
            index,
            entry,
        }
    }

    /// Publishes what is known so far, so that tests see requests still in flight.
    fn publish(&self) {
        let mut log = lock(&self.shared.log);
        // The log may have been cleared by the test meanwhile.
        if let Some(slot) = log.get_mut(self.index) {
            *slot = self.entry.clone();
        }
    }
}

impl Drop for Recording {
    /// The final publish moves the entry into the log instead of copying it.
    fn drop(&mut self) {
        let mut log = lock(&self.shared.log);
        if let Some(slot) = log.get_mut(self.index) {
            std::mem::swap(slot, &mut self.entry);
        }
    }
}

async fn pipeline(shared: &Shared, request: Request, recording: &mut Recording) -> Response {
    let entry = &mut recording.entry;
    let (parts, body) = request.into_parts();
    if let Some(response) = non_resource(parts.uri.path()) {
        return response;
    }

    let Some(actor) = lock(&shared.rbac).authenticate(&parts.headers) else {
        return ApiError::unauthorized().into_response();
    };
    entry.authenticated_user = Some(actor.user.clone());
    let impersonation = Impersonation::from_headers(&parts.headers);
    entry.impersonated_user = impersonation.user.clone();
    entry.impersonated_groups = impersonation.groups.clone();
    let identity = match lock(&shared.rbac).effective(&actor, &impersonation) {
        Ok(identity) => identity,
        Err(error) => return error.into_response(),
    };
    entry.user = Some(identity.user.clone());

    let query: Query = match QueryExtractor::try_from_uri(&parts.uri) {
        Ok(QueryExtractor(query)) => query,
        Err(error) => return ApiError::bad_request(error.body_text()).into_response(),
    };
    let request = match resolve(&parts.method, parts.uri.path(), &query) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    entry.verb = Some(request.verb);
    entry.group = Some(request.group.clone());
    entry.resource = Some(request.resource.clone());
    entry.namespace = request.namespace.clone();
    entry.name = request.name.clone();
    entry.subresource = request.subresource.clone();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::too_large(MAX_BODY).into_response();
    };

    if entry.name.is_none() && request.verb == super::request::Verb::Create {
        // A create names its object in the body; record it so tests can follow an object's
        // attempts.
        entry.name = named_in(&body);
    }
    let plan = lock(&shared.faults).plan(request.verb, &request.resource);
    entry.faulted = !plan.delay.is_zero() || plan.outcome.is_some();
    recording.publish();
    if !plan.delay.is_zero() {
        shared.shutdown.sleep(plan.delay).await;
    }
    match plan.outcome {
        Some(Action::Fail(failure)) => {
            return injected(shared, &failure, &request, &identity, &body).into_response();
        }
        Some(Action::Hang(duration)) => {
            shared.shutdown.sleep(duration).await;
            return ApiError::timeout().into_response();
        }
        Some(Action::Delay(_)) | None => {}
    }

    let authorized = lock(&shared.rbac).authorize(
        &identity,
        request.verb,
        &request.group_resource(),
        &request.rbac_resource(),
        request.namespace.as_deref(),
        request.name.as_deref().unwrap_or(""),
    );
    if let Err(error) = authorized {
        return error.into_response();
    }
    if let Some(response) = reviews::serve(shared, &request, &body) {
        return response;
    }
    handlers::serve(shared, &request, &query, &parts.headers, &body)
}

/// `metadata.name` of a JSON object, read without building the object: the request log's
/// name of a create, whose body the handler decodes (and judges) on its own.
fn named_in(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Object<'a> {
        #[serde(borrow)]
        metadata: Option<Metadata<'a>>,
    }
    #[derive(Deserialize)]
    struct Metadata<'a> {
        #[serde(borrow)]
        name: Option<Cow<'a, str>>,
    }
    let object: Object = serde_json::from_slice(body).ok()?;
    object.metadata?.name.map(Cow::into_owned)
}

/// Paths outside the resource API that clients probe.
fn non_resource(path: &str) -> Option<Response> {
    match path {
        "/version" => Some(
            axum::Json(json!({
                "major": "1",
                "minor": "33",
                "gitVersion": "v1.33.0",
                "goVersion": "go1.24.0",
                "platform": "linux/amd64",
            }))
            .into_response(),
        ),
        "/healthz" | "/livez" | "/readyz" => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "ok",
            )
                .into_response(),
        ),
        _ => None,
    }
}

/// The answer an injected failure gives, worded for this request.
fn injected(
    shared: &Shared,
    failure: &Failure,
    request: &ResourceRequest,
    identity: &Identity,
    body: &[u8],
) -> ApiError {
    let resource = request.group_resource();
    let sent: Option<Value> = serde_json::from_slice(body).ok();
    let name = request
        .name
        .clone()
        .or_else(|| {
            let meta = sent.as_ref()?.get("metadata")?;
            meta.get("name")
                .or_else(|| meta.get("generateName"))?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    match failure {
        Failure::InternalError => ApiError::internal("injected fault"),
        Failure::TooManyRequests {
            retry_after_seconds,
        } => ApiError::too_many_requests(*retry_after_seconds),
        Failure::ServiceUnavailable => ApiError::service_unavailable(),
        Failure::Timeout => ApiError::timeout(),
        Failure::Forbidden => ApiError::forbidden(
            &resource,
            &request.rbac_resource(),
            request.name.as_deref().unwrap_or(""),
            &identity.user,
            request.verb.as_str(),
            request.namespace.as_deref(),
        ),
        Failure::AlreadyExists => ApiError::already_exists(&resource, &name),
        Failure::Conflict => ApiError::modified(&resource, &name),
        Failure::Invalid => {
            let kind = lock(&shared.store)
                .kind(&resource)
                .map(str::to_owned)
                .or_else(|| Some(sent.as_ref()?.get("kind")?.as_str()?.to_owned()))
                .unwrap_or_else(|| request.resource.clone());
            ApiError::invalid(
                &request.group,
                &kind,
                &name,
                &[FieldError::invalid(
                    "spec",
                    "object",
                    "rejected by an injected fault",
                )],
            )
        }
    }
}
