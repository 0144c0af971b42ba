//! The resource operations — create, get, list, watch, delete, and (in `write.rs`) update
//! and patch — on an authorized request, with the API server's decoding, defaulting,
//! validation and storage rules, and its metadata-only answers.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::request::{Query, ResourceRequest, Verb};
use super::selector::{FieldSelector, LabelSelector};
use super::server::{Shared, Shutdown, lock};
use super::status::ApiError;
use super::store::{Event, ObjectKey, Store};
use super::validation::{FieldError, validate_object_meta};
use super::write::{self, Written};

/// The characters the API server draws `generateName` suffixes from.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// The random suffix of a generated name.
const NAME_SUFFIX_LEN: usize = 5;
/// Longest `generateName` prefix kept, so that prefix and suffix fit in 63 characters.
const NAME_PREFIX_MAX: usize = 63 - NAME_SUFFIX_LEN;
/// The API server retries a generated name that is taken this many times.
const NAME_ATTEMPTS: usize = 8;

/// The `apiVersion` of metadata-only answers.
const META_API_VERSION: &str = "meta.k8s.io/v1";

/// Serves an authorized resource request.
pub fn serve(
    shared: &Shared,
    request: &ResourceRequest,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let result = negotiate(headers, request.verb).and_then(|form| {
        let one = |status: StatusCode, object: &Value| {
            (status, axum::Json(form.present(object, request))).into_response()
        };
        let written = |written: Written| match written {
            Written::Created(object) => one(StatusCode::CREATED, &object),
            Written::Stored(object) => one(StatusCode::OK, &object),
        };
        match request.verb {
            Verb::Create => {
                create(shared, request, query, body).map(|object| one(StatusCode::CREATED, &object))
            }
            Verb::Get => get(shared, request).map(|object| one(StatusCode::OK, &object)),
            Verb::List => list(shared, request, query, form).map(|l| axum::Json(l).into_response()),
            Verb::Delete => {
                delete(shared, request, query).map(|object| one(StatusCode::OK, &object))
            }
            Verb::Watch => watch(shared, request, query, form),
            Verb::Update => {
                write::update(&mut lock(&shared.store), request, query, headers, body).map(written)
            }
            Verb::Patch => {
                write::patch(&mut lock(&shared.store), request, query, headers, body).map(written)
            }
        }
    });
    result.unwrap_or_else(IntoResponse::into_response)
}

/// What the client asked to receive: whole objects, or only their metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Full,
    /// `PartialObjectMetadata` objects (get, watch, writes).
    Metadata,
    /// A `PartialObjectMetadataList` (list).
    MetadataList,
}

impl Form {
    /// A stored object as this form shows it, at the version the request names (stored
    /// objects convert by `apiVersion` only, like custom resources without a conversion
    /// webhook). Borrowed when that changes nothing: a whole object read at the version it
    /// was written at, as most are.
    fn present<'a>(self, object: &'a Value, request: &ResourceRequest) -> Cow<'a, Value> {
        match self {
            Form::Full => {
                let api_version = request.api_version();
                if object["apiVersion"] == api_version {
                    return Cow::Borrowed(object);
                }
                let mut object = object.clone();
                object["apiVersion"] = json!(api_version);
                Cow::Owned(object)
            }
            Form::Metadata | Form::MetadataList => Cow::Owned(json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": META_API_VERSION,
                "metadata": object["metadata"],
            })),
        }
    }
}

/// Reads `Accept` as the API server's content negotiation does for JSON: the first range it
/// can serve wins; `as=PartialObjectMetadata;g=meta.k8s.io;v=v1` asks for metadata only
/// (`…List` on lists). Ranges it cannot serve are skipped; 406 when none is left but some
/// asked for a conversion.
fn negotiate(headers: &HeaderMap, verb: Verb) -> Result<Form, ApiError> {
    let Some(accept) = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(Form::Full);
    };
    let mut asked_conversion = false;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let mut params = HashMap::new();
        for param in parts {
            if let Some((name, value)) = param.split_once('=') {
                params.insert(name.trim(), value.trim());
            }
        }
        if !matches!(media, "application/json" | "application/*" | "*/*") {
            continue;
        }
        let Some(target) = params.get("as") else {
            return Ok(Form::Full);
        };
        asked_conversion = true;
        let meta = params.get("g") == Some(&"meta.k8s.io") && params.get("v") == Some(&"v1");
        match (*target, verb) {
            ("PartialObjectMetadataList", Verb::List) if meta => return Ok(Form::MetadataList),
            ("PartialObjectMetadata", verb) if meta && verb != Verb::List => {
                return Ok(Form::Metadata);
            }
            _ => {}
        }
    }
    if asked_conversion {
        Err(ApiError::not_acceptable(
            "application/json, application/yaml, application/vnd.kubernetes.protobuf",
        ))
    } else {
        Ok(Form::Full)
    }
}

pub(super) fn dry_run(query: &Query) -> bool {
    query.get("dryRun").is_some_and(|v| v == "All")
}

pub(super) fn key(request: &ResourceRequest) -> ObjectKey {
    ObjectKey::new(
        request.namespace.as_deref().unwrap_or(""),
        request.name.as_deref().unwrap_or(""),
    )
}

fn get(shared: &Shared, request: &ResourceRequest) -> Result<Value, ApiError> {
    let resource = request.group_resource();
    let store = lock(&shared.store);
    store
        .get(&resource, &key(request))
        .cloned()
        .ok_or_else(|| ApiError::not_found(&resource, request.name.as_deref().unwrap_or("")))
}

fn delete(shared: &Shared, request: &ResourceRequest, query: &Query) -> Result<Value, ApiError> {
    let resource = request.group_resource();
    let key = key(request);
    let mut store = lock(&shared.store);
    let deleted = if dry_run(query) {
        store.get(&resource, &key).cloned()
    } else {
        store.delete(&resource, &key)
    };
    deleted.ok_or_else(|| ApiError::not_found(&resource, &key.name))
}

fn selectors(query: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let text = |name: &str| query.get(name).map(String::as_str).unwrap_or("");
    let labels = LabelSelector::parse(text("labelSelector")).map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(text("fieldSelector")).map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn list(
    shared: &Shared,
    request: &ResourceRequest,
    query: &Query,
    form: Form,
) -> Result<Value, ApiError> {
    let (labels, fields) = selectors(query)?;
    let limit = query
        .get("limit")
        .and_then(|limit| limit.parse::<usize>().ok())
        .filter(|limit| *limit > 0);
    let after = match query.get("continue").filter(|token| !token.is_empty()) {
        Some(token) => Some(
            token
                .split_once('/')
                .map(|(namespace, name)| ObjectKey::new(namespace, name))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("continue key is not valid: {token}"))
                })?,
        ),
        None => None,
    };

    let resource = request.group_resource();
    let store = lock(&shared.store);
    // A list at an exact resource version needs history the server may have compacted; any
    // other list is served from the current state, which is never older than asked.
    let exact = query
        .get("resourceVersionMatch")
        .is_some_and(|m| m == "Exact");
    let version = query
        .get("resourceVersion")
        .and_then(|version| version.parse::<u64>().ok())
        .unwrap_or(0);
    if exact && version != 0 && version < store.compacted() {
        return Err(ApiError::expired(
            "The resourceVersion for the provided list is too old.".to_owned(),
        ));
    }
    let selected: Vec<(ObjectKey, Value)> = store
        .list(&resource, request.namespace.as_deref())
        .into_iter()
        .filter(|object| labels.matches(object) && fields.matches(object))
        .map(|object| {
            (
                object_key(object),
                form.present(object, request).into_owned(),
            )
        })
        .filter(|(key, _)| after.as_ref().is_none_or(|after| key > after))
        .collect();
    let page = limit.unwrap_or(selected.len()).min(selected.len());
    let remaining = selected.len() - page;
    let mut metadata = json!({"resourceVersion": store.revision().to_string()});
    if remaining > 0
        && let Some((last, _)) = selected.get(page.saturating_sub(1))
    {
        metadata["continue"] = json!(format!("{}/{}", last.namespace, last.name));
        metadata["remainingItemCount"] = json!(remaining);
    }
    let items: Vec<Value> = selected.into_iter().take(page).map(|(_, o)| o).collect();
    let (kind, api_version) = match form {
        Form::Full => (
            store
                .kind(&resource)
                .map_or_else(|| "List".to_owned(), |kind| format!("{kind}List")),
            request.api_version(),
        ),
        Form::Metadata | Form::MetadataList => (
            "PartialObjectMetadataList".to_owned(),
            META_API_VERSION.to_owned(),
        ),
    };
    Ok(json!({
        "kind": kind,
        "apiVersion": api_version,
        "metadata": metadata,
        "items": items,
    }))
}

fn object_key(object: &Value) -> ObjectKey {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    ObjectKey::new(text("/metadata/namespace"), text("/metadata/name"))
}

fn create(
    shared: &Shared,
    request: &ResourceRequest,
    query: &Query,
    body: &[u8],
) -> Result<Arc<Value>, ApiError> {
    create_in(&mut lock(&shared.store), request, query, body)
}

/// Decodes, defaults, validates and stores a new object, as the create handler and the
/// registry's `BeforeCreate` do. `status` is dropped: it is written through its subresource.
pub(super) fn create_in(
    store: &mut Store,
    request: &ResourceRequest,
    query: &Query,
    body: &[u8],
) -> Result<Arc<Value>, ApiError> {
    let resource = request.group_resource();
    let expected_kind = store.kind(&resource).map(str::to_owned);
    let (mut object, kind) = decode(request, expected_kind.as_deref(), body, false)?;
    if let Some(fields) = object.as_object_mut() {
        fields.remove("status");
    }
    let metadata = object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ApiError::internal("decoded object has no metadata"))?;

    let mut name = text(metadata, "name").to_owned();
    let generate_name = text(metadata, "generateName").to_owned();
    let namespace = request.namespace.as_deref().unwrap_or("");
    if name.is_empty() && !generate_name.is_empty() {
        name = generated_name(&generate_name);
        for _ in 1..NAME_ATTEMPTS {
            if !store.contains(&resource, &ObjectKey::new(namespace, &name)) {
                break;
            }
            name = generated_name(&generate_name);
        }
        metadata.insert("name".into(), json!(name));
    }

    let mut errors = Vec::new();
    if let Some(expected) = expected_kind.as_deref().filter(|k| *k != kind) {
        errors.push(FieldError::invalid(
            "kind",
            &kind,
            format!("must be {expected}"),
        ));
    }
    errors.extend(validate_object_meta(metadata));
    if !errors.is_empty() {
        let kind = expected_kind.as_deref().unwrap_or(&kind);
        return Err(ApiError::invalid(&request.group, kind, &name, &errors));
    }

    // System fields: the server owns them, whatever the client sent.
    metadata.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    metadata.insert("creationTimestamp".into(), json!(now()));
    metadata.insert("generation".into(), json!(1));
    for owned in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        metadata.remove(owned);
    }

    let taken = || ApiError::already_exists(&resource, &name);
    if dry_run(query) {
        if store.contains(&resource, &ObjectKey::new(namespace, &name)) {
            return Err(taken());
        }
        return Ok(Arc::new(object));
    }
    store.add(&resource, object).ok_or_else(taken)
}

/// Decodes a create or update body: a JSON object whose `apiVersion` and `kind` match the
/// URL (and are defaulted from it when absent), whose metadata fields have their schema
/// types, with no `resourceVersion` unless `updating`, and with the namespace of the URL.
/// Returns it and its kind.
pub(super) fn decode(
    request: &ResourceRequest,
    expected_kind: Option<&str>,
    body: &[u8],
    updating: bool,
) -> Result<(Value, String), ApiError> {
    let type_name = expected_kind.unwrap_or(&request.resource);
    let unrecognized = |why: &dyn std::fmt::Display| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {type_name}): couldn't get \
             version/kind; json parse error: {why} ({})",
            summarize(body)
        ))
    };
    let mut object: Value = serde_json::from_slice(body).map_err(|e| unrecognized(&e))?;
    let fields = object
        .as_object_mut()
        .ok_or_else(|| unrecognized(&"expected an object"))?;

    let api_version = request.api_version();
    match fields.get("apiVersion") {
        None | Some(Value::Null) => {
            fields.insert("apiVersion".into(), json!(api_version));
        }
        Some(Value::String(sent)) if *sent == api_version => {}
        Some(Value::String(sent)) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({sent}) does not match the expected API version \
                 ({api_version})"
            )));
        }
        Some(other) => return Err(cannot_decode(type_name, request, "apiVersion", other)),
    }
    let kind = match (fields.get("kind"), expected_kind) {
        (Some(Value::String(kind)), _) if !kind.is_empty() => kind.clone(),
        (None | Some(Value::Null | Value::String(_)), Some(kind)) => {
            fields.insert("kind".into(), json!(kind));
            kind.to_owned()
        }
        (None | Some(Value::Null | Value::String(_)), None) => {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{}'",
                String::from_utf8_lossy(body)
            )));
        }
        (Some(other), _) => return Err(cannot_decode(type_name, request, "kind", other)),
    };

    let metadata = fields.entry("metadata").or_insert_with(|| json!({}));
    if metadata.is_null() {
        *metadata = json!({});
    }
    let Some(metadata) = metadata.as_object_mut() else {
        let metadata = metadata.clone();
        return Err(cannot_decode(type_name, request, "metadata", &metadata));
    };
    check_metadata_types(metadata).map_err(|(field, value)| {
        cannot_decode(type_name, request, &format!("metadata.{field}"), &value)
    })?;
    if !updating && !text(metadata, "resourceVersion").is_empty() {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    match (&request.namespace, text(metadata, "namespace")) {
        (Some(namespace), sent) if sent.is_empty() || sent == namespace => {
            metadata.insert("namespace".into(), json!(namespace));
        }
        (Some(_), _) => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on \
                 the request",
            ));
        }
        (None, _) => {
            metadata.remove("namespace");
        }
    }
    Ok((object, kind))
}

/// A string field of metadata, `""` when absent.
fn text<'a>(metadata: &'a Map<String, Value>, key: &str) -> &'a str {
    metadata.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The 400 for a field of the wrong JSON type.
fn cannot_decode(
    type_name: &str,
    request: &ResourceRequest,
    field: &str,
    value: &Value,
) -> ApiError {
    let json_type = match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    ApiError::bad_request(format!(
        "{type_name} in version \"{}\" cannot be handled as a {type_name}: json: cannot \
         unmarshal {json_type} into Go struct field {field}",
        request.version
    ))
}

/// Checks that the metadata fields the double reads have their schema types; returns the
/// first that does not. `null` counts as absent.
fn check_metadata_types(metadata: &mut Map<String, Value>) -> Result<(), (String, Value)> {
    metadata.retain(|_, value| !value.is_null());
    for field in [
        "name",
        "generateName",
        "namespace",
        "resourceVersion",
        "uid",
    ] {
        if let Some(value) = metadata.get(field).filter(|v| !v.is_string()) {
            return Err((field.to_owned(), value.clone()));
        }
    }
    for field in ["labels", "annotations"] {
        match metadata.get(field) {
            None => {}
            Some(Value::Object(map)) => {
                if let Some(value) = map.values().find(|v| !v.is_string()) {
                    return Err((format!("{field} of type string"), value.clone()));
                }
            }
            Some(other) => return Err((field.to_owned(), other.clone())),
        }
    }
    Ok(())
}

/// `generateName` plus five random characters, the prefix cut to fit 63 characters.
fn generated_name(base: &str) -> String {
    let mut cut = base.len().min(NAME_PREFIX_MAX);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    let random = uuid::Uuid::new_v4();
    let suffix: String = random.as_bytes()[..NAME_SUFFIX_LEN]
        .iter()
        .map(|b| char::from(NAME_ALPHABET[usize::from(*b) % NAME_ALPHABET.len()]))
        .collect();
    format!("{}{suffix}", &base[..cut])
}

/// RFC 3339 UTC to the second, as `metav1.Time` serialises.
pub fn now() -> String {
    let now = Timestamp::from_second(Timestamp::now().as_second());
    now.unwrap_or(Timestamp::UNIX_EPOCH).to_string()
}

/// The start of a body for an error message.
fn summarize(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(30) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.into_owned(),
    }
}

/// What a watch sends, and until when.
struct WatchStream {
    initial: VecDeque<Arc<Event>>,
    /// The streaming list's end-of-initial-events bookmark, still to send.
    bookmark: Option<Value>,
    events: broadcast::Receiver<Arc<Event>>,
    request: ResourceRequest,
    form: Form,
    kind: String,
    labels: LabelSelector,
    fields: FieldSelector,
    deadline: Option<Instant>,
    /// How often to send a bookmark, when the client allows them.
    bookmark_every: Option<Duration>,
    next_bookmark: Instant,
    /// The revision this watch has seen every change up to.
    seen: u64,
    /// Whether the watch has ended (after its closing bookmark).
    ended: bool,
    shutdown: Shutdown,
}

impl WatchStream {
    fn selects(&self, event: &Event) -> bool {
        event.resource == self.request.group_resource()
            && self.request.namespace.as_deref().is_none_or(|namespace| {
                event
                    .object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    == Some(namespace)
            })
            && self.labels.matches(&event.object)
            && self.fields.matches(&event.object)
    }

    /// A `BOOKMARK`: an object of the watched kind with only its `resourceVersion`.
    fn bookmark_line(&self) -> Bytes {
        let (kind, api_version) = match self.form {
            Form::Full => (self.kind.clone(), self.request.api_version()),
            Form::Metadata | Form::MetadataList => (
                "PartialObjectMetadata".to_owned(),
                META_API_VERSION.to_owned(),
            ),
        };
        let object = json!({
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {"resourceVersion": self.seen.to_string()},
        });
        event_line("BOOKMARK", &object)
    }

    /// The next line to send, or `None` when the watch ends (timeout, shutdown, dropped
    /// watches, or the watcher fell too far behind). A watch that allows bookmarks gets one
    /// every `bookmark_every` and one as it times out.
    async fn next_line(&mut self) -> Option<Bytes> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(event) = self.initial.pop_front() {
                if self.selects(&event) {
                    return Some(self.event_line(&event));
                }
                continue;
            }
            if let Some(bookmark) = self.bookmark.take() {
                return Some(event_line("BOOKMARK", &bookmark));
            }
            let deadline = self.deadline;
            let until_deadline = async move {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            let bookmark_at = self.bookmark_every.map(|_| self.next_bookmark);
            let until_bookmark = async move {
                match bookmark_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = self.events.recv() => {
                    let event = received.ok()?;
                    self.seen = self.seen.max(event.resource_version);
                    if self.selects(&event) {
                        return Some(self.event_line(&event));
                    }
                }
                () = until_deadline => {
                    self.ended = true;
                    return self.bookmark_every.map(|_| self.bookmark_line());
                }
                () = until_bookmark => {
                    if let Some(every) = self.bookmark_every {
                        self.next_bookmark = Instant::now() + every;
                    }
                    return Some(self.bookmark_line());
                }
                () = self.shutdown.wait() => return None,
            }
        }
    }

    fn event_line(&self, event: &Event) -> Bytes {
        let object = self.form.present(&event.object, &self.request);
        event_line(event.event_type.as_str(), &object)
    }
}

/// One watch event on the wire: a JSON object and a newline.
fn event_line(event_type: &str, object: &Value) -> Bytes {
    #[derive(Serialize)]
    struct WatchEvent<'a> {
        #[serde(rename = "type")]
        event_type: &'a str,
        object: &'a Value,
    }
    let mut line = serde_json::to_vec(&WatchEvent { event_type, object })
        .expect("a JSON value always serializes");
    line.push(b'\n');
    Bytes::from(line)
}

/// A watch answered with a single `ERROR` event, as for a compacted resource version.
fn error_watch(error: &ApiError) -> Response {
    let line = event_line("ERROR", &error.body());
    let body = futures_util::stream::iter([Ok::<_, Infallible>(line)]);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}

/// A watch: newline-delimited `{"type","object"}` events, starting from the current state
/// (no or zero `resourceVersion`) or after the given one, which must not be compacted away.
fn watch(
    shared: &Shared,
    request: &ResourceRequest,
    query: &Query,
    form: Form,
) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(query)?;
    let flag = |name: &str| query.get(name).is_some_and(|v| v == "true");
    let send_initial_events = flag("sendInitialEvents");
    let allow_bookmarks = flag("allowWatchBookmarks");
    let since =
        match query.get("resourceVersion").map(String::as_str) {
            None | Some("") => None,
            Some(version) => Some(version.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("invalid resource version: {version}"))
            })?),
        };
    let deadline = query
        .get("timeoutSeconds")
        .and_then(|seconds| seconds.parse::<u64>().ok())
        .filter(|seconds| *seconds > 0)
        .map(|seconds| Instant::now() + Duration::from_secs(seconds));
    let bookmark_every = allow_bookmarks.then(|| *lock(&shared.bookmark_interval));

    let resource = request.group_resource();
    let store = lock(&shared.store);
    let since = if send_initial_events { None } else { since };
    let (initial, events) = match store.watch(&resource, since) {
        Ok(started) => started,
        Err(compacted) => {
            let message = format!(
                "too old resource version: {} ({compacted})",
                since.unwrap_or(0)
            );
            return Ok(error_watch(&ApiError::expired(message)));
        }
    };
    let kind = store.kind(&resource).unwrap_or("List").to_owned();
    // Streaming lists: after the initial state, a bookmark marks its end.
    let bookmark = (send_initial_events && allow_bookmarks).then(|| {
        let (kind, api_version) = match form {
            Form::Full => (kind.clone(), request.api_version()),
            Form::Metadata | Form::MetadataList => (
                "PartialObjectMetadata".to_owned(),
                META_API_VERSION.to_owned(),
            ),
        };
        json!({
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {
                "resourceVersion": store.revision().to_string(),
                "annotations": {"k8s.io/initial-events-end": "true"},
            },
        })
    });
    let seen = store.revision();
    drop(store);

    let stream = WatchStream {
        initial: initial.into(),
        bookmark,
        events,
        request: request.clone(),
        form,
        kind,
        labels,
        fields,
        deadline,
        bookmark_every,
        next_bookmark: Instant::now() + bookmark_every.unwrap_or_default(),
        seen,
        ended: false,
        shutdown: shared.shutdown.clone(),
    };
    let body = futures_util::stream::unfold(stream, |mut stream| async move {
        let line = stream.next_line().await?;
        Some((Ok::<_, Infallible>(line), stream))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_use_the_api_server_alphabet_and_fit_63_characters() {
        let name = generated_name("build-");
        assert_eq!(name.len(), "build-".len() + 5);
        assert!(
            name[6..].bytes().all(|b| NAME_ALPHABET.contains(&b)),
            "{name}"
        );
        assert_eq!(generated_name(&"x".repeat(100)).len(), 63);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_seconds() {
        let stamp = now();
        assert_eq!(stamp.len(), "2025-01-01T00:00:00Z".len(), "{stamp}");
        assert!(stamp.ends_with('Z'));
    }
}
