//! The resource operations — create, get, list, watch, delete — on an authorized request,
//! with the API server's decoding, defaulting, validation and storage rules.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::request::{Query, ResourceRequest, Verb};
use super::selector::{FieldSelector, LabelSelector};
use super::server::{Shared, Shutdown, lock};
use super::status::ApiError;
use super::store::{Event, ObjectKey};
use super::validation::{FieldError, validate_object_meta};

/// The characters the API server draws `generateName` suffixes from.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// The random suffix of a generated name.
const NAME_SUFFIX_LEN: usize = 5;
/// Longest `generateName` prefix kept, so that prefix and suffix fit in 63 characters.
const NAME_PREFIX_MAX: usize = 63 - NAME_SUFFIX_LEN;
/// The API server retries a generated name that is taken this many times.
const NAME_ATTEMPTS: usize = 8;

/// Serves an authorized resource request.
pub fn serve(shared: &Shared, request: &ResourceRequest, query: &Query, body: &[u8]) -> Response {
    let result = match request.verb {
        Verb::Create => create(shared, request, query, body)
            .map(|object| (StatusCode::CREATED, axum::Json(&*object)).into_response()),
        Verb::Get => get(shared, request).map(|object| axum::Json(object).into_response()),
        Verb::List => list(shared, request, query).map(|list| axum::Json(list).into_response()),
        Verb::Delete => {
            delete(shared, request, query).map(|object| axum::Json(object).into_response())
        }
        Verb::Watch => watch(shared, request, query),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn dry_run(query: &Query) -> bool {
    query.get("dryRun").is_some_and(|v| v == "All")
}

/// The object as served at the requested version (stored objects convert by apiVersion
/// only, like custom resources without a conversion webhook).
fn present(object: &Value, request: &ResourceRequest) -> Value {
    let mut object = object.clone();
    object["apiVersion"] = json!(request.api_version());
    object
}

fn key(request: &ResourceRequest) -> ObjectKey {
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
        .map(|object| present(object, request))
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
    deleted
        .map(|object| present(&object, request))
        .ok_or_else(|| ApiError::not_found(&resource, &key.name))
}

fn selectors(query: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let text = |name: &str| query.get(name).map(String::as_str).unwrap_or("");
    let labels = LabelSelector::parse(text("labelSelector")).map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(text("fieldSelector")).map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn list(shared: &Shared, request: &ResourceRequest, query: &Query) -> Result<Value, ApiError> {
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
    let selected: Vec<(ObjectKey, Value)> = store
        .list(&resource, request.namespace.as_deref())
        .into_iter()
        .filter(|object| labels.matches(object) && fields.matches(object))
        .map(|object| (object_key(object), present(object, request)))
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
    let kind = store
        .kind(&resource)
        .map_or_else(|| "List".to_owned(), |kind| format!("{kind}List"));
    Ok(json!({
        "kind": kind,
        "apiVersion": request.api_version(),
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

/// Decodes, defaults, validates and stores a new object, as the create handler and the
/// registry's `BeforeCreate` do.
fn create(
    shared: &Shared,
    request: &ResourceRequest,
    query: &Query,
    body: &[u8],
) -> Result<Arc<Value>, ApiError> {
    let resource = request.group_resource();
    let mut store = lock(&shared.store);
    let expected_kind = store.kind(&resource).map(str::to_owned);
    let (mut object, kind) = decode(request, expected_kind.as_deref(), body)?;
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

    if store.contains(&resource, &ObjectKey::new(namespace, &name)) {
        return Err(ApiError::already_exists(&resource, &name));
    }
    if dry_run(query) {
        return Ok(Arc::new(object));
    }
    Ok(store.put(&resource, object))
}

/// Decodes a create body: a JSON object whose `apiVersion` and `kind` match the URL (and
/// are defaulted from it when absent), whose metadata fields have their schema types, with
/// no `resourceVersion`, and with the namespace of the URL. Returns it and its kind.
fn decode(
    request: &ResourceRequest,
    expected_kind: Option<&str>,
    body: &[u8],
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
    if !text(metadata, "resourceVersion").is_empty() {
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
    bookmark: Option<Value>,
    events: broadcast::Receiver<Arc<Event>>,
    request: ResourceRequest,
    labels: LabelSelector,
    fields: FieldSelector,
    deadline: Option<Instant>,
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

    /// The next line to send, or `None` when the watch ends (timeout, shutdown, or the
    /// watcher fell too far behind).
    async fn next_line(&mut self) -> Option<Bytes> {
        loop {
            let event = match self.initial.pop_front() {
                Some(event) => event,
                None => {
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
                    tokio::select! {
                        received = self.events.recv() => received.ok()?,
                        () = until_deadline => return None,
                        () = self.shutdown.wait() => return None,
                    }
                }
            };
            if self.selects(&event) {
                let object = present(&event.object, &self.request);
                return Some(event_line(event.event_type.as_str(), &object));
            }
        }
    }
}

/// One watch event on the wire: a JSON object and a newline.
fn event_line(event_type: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": event_type, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// A watch: newline-delimited `{"type","object"}` events, starting from the current state
/// (no or zero `resourceVersion`) or after the given one.
fn watch(shared: &Shared, request: &ResourceRequest, query: &Query) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(query)?;
    let flag = |name: &str| query.get(name).is_some_and(|v| v == "true");
    let send_initial_events = flag("sendInitialEvents");
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

    let resource = request.group_resource();
    let store = lock(&shared.store);
    let since = if send_initial_events { None } else { since };
    let (initial, events) = store.watch(&resource, since);
    // Streaming lists: after the initial state, a bookmark marks its end.
    let bookmark = (send_initial_events && flag("allowWatchBookmarks")).then(|| {
        json!({
            "kind": store.kind(&resource).unwrap_or("List"),
            "apiVersion": request.api_version(),
            "metadata": {
                "resourceVersion": store.revision().to_string(),
                "annotations": {"k8s.io/initial-events-end": "true"},
            },
        })
    });
    drop(store);

    let stream = WatchStream {
        initial: initial.into(),
        bookmark,
        events,
        request: request.clone(),
        labels,
        fields,
        deadline,
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
