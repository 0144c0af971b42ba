//! Writes to existing objects — update (PUT), merge patch, JSON patch and server-side
//! apply — on the object and on its status subresource, with the API server's optimistic
//! concurrency, `generation` and `managedFields` rules.
//!
//! Every resource behaves as a custom resource whose CRD declares `subresources.status`:
//! a write to the object ignores `status`, a write to `/status` ignores everything else.
//! A write that changes nothing stores nothing: no new `resourceVersion`, no watch event.

use std::sync::Arc;

use http::HeaderMap;
use serde_json::{Map, Value, json};

use super::handlers::{decode, dry_run, key, now};
use super::request::{Query, ResourceRequest};
use super::status::ApiError;
use super::store::Store;
use super::validation::FieldError;

/// The patch formats a custom resource takes, as the 415 answer lists them.
const PATCH_TYPES: &str =
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

/// Metadata the server owns: a write keeps the stored values whatever the body says.
const SYSTEM_METADATA: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
];

/// What a write did: created the object (apply only), changed it, or found nothing to
/// change.
pub enum Written {
    Created(Arc<Value>),
    Stored(Arc<Value>),
}

/// Who wrote, and how, for `managedFields`.
enum Operation {
    /// PUT or a non-apply PATCH by this manager.
    Update(String),
    /// Server-side apply by this manager; `fields` is the set its configuration names.
    Apply { manager: String, fields: Value },
}

/// PUT of an object or of its status.
pub fn update(
    store: &mut Store,
    request: &ResourceRequest,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Written, ApiError> {
    let resource = request.group_resource();
    let expected_kind = store.kind(&resource).map(str::to_owned);
    let (sent, kind) = decode(request, expected_kind.as_deref(), body, true)?;
    let name = request.name.as_deref().unwrap_or("");
    let sent_name = sent
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if sent_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({sent_name}) does not match the name on the URL ({name})"
        )));
    }
    if let Some(expected) = expected_kind.as_deref().filter(|k| *k != kind) {
        let error = FieldError::invalid("kind", &kind, format!("must be {expected}"));
        return Err(ApiError::invalid(&request.group, expected, name, &[error]));
    }
    let strategy = UpdateStrategy::of(&request.group, &request.resource);
    if strategy.create_on_update
        && !request.is_status()
        && !store.contains(&resource, &key(request))
    {
        // The resourceVersion of an object that does not exist is no precondition: storage
        // versions the new object afresh.
        let mut object = sent;
        if let Some(metadata) = object["metadata"].as_object_mut() {
            metadata.remove("resourceVersion");
        }
        let body = serde_json::to_vec(&object).map_err(|e| ApiError::internal(&e.to_string()))?;
        return super::handlers::create_in(store, request, query, &body).map(Written::Created);
    }
    let current = current(store, request)?;
    let sent_version = sent
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if sent_version.is_empty() {
        if !strategy.unconditional_update {
            let error = FieldError::invalid_literal(
                "metadata.resourceVersion",
                "0x0",
                "must be specified for an update",
            );
            return Err(ApiError::invalid(
                &request.group,
                &request.resource,
                name,
                &[error],
            ));
        }
    } else if sent_version != version_of(&current) {
        return Err(ApiError::modified(&resource, name));
    }
    let candidate = written_part(&current, &sent, request);
    let manager = Operation::Update(field_manager(query, headers));
    commit(store, request, query, &current, candidate, manager)
}

/// PATCH of an object or of its status, by content type.
pub fn patch(
    store: &mut Store,
    request: &ResourceRequest,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Written, ApiError> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let built_in = built_in(&request.group);
    match content_type.as_str() {
        "application/apply-patch+yaml" => apply(store, request, query, body),
        "application/merge-patch+json" => merge_patch(store, request, query, headers, body),
        "application/json-patch+json" => {
            let operations = parse_json_patch(body)?;
            write_patched(store, request, query, headers, |current| {
                json_patch(current, &operations)
            })
        }
        // Built-in kinds take strategic merge patches; the double merges them as JSON merge
        // patches, which is what they are for maps.
        "application/strategic-merge-patch+json" if built_in => {
            merge_patch(store, request, query, headers, body)
        }
        _ => Err(ApiError::unsupported_media_type(PATCH_TYPES)),
    }
}

fn merge_patch(
    store: &mut Store,
    request: &ResourceRequest,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Written, ApiError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    if !patch.is_object() {
        return Err(ApiError::bad_request(
            "the server rejected our request due to an error in our request",
        ));
    }
    write_patched(store, request, query, headers, |current| {
        let mut patched = current.clone();
        merge(&mut patched, &patch);
        Ok(patched)
    })
}

/// A non-apply patch: `patch` turns the stored object into the one to write, whose
/// `resourceVersion` (the stored one unless the patch set it) is the precondition.
fn write_patched(
    store: &mut Store,
    request: &ResourceRequest,
    query: &Query,
    headers: &HeaderMap,
    patch: impl FnOnce(&Value) -> Result<Value, ApiError>,
) -> Result<Written, ApiError> {
    let current = current(store, request)?;
    let patched = patch(&current)?;
    let name = request.name.as_deref().unwrap_or("");
    if version_of(&patched) != version_of(&current) {
        return Err(ApiError::modified(&request.group_resource(), name));
    }
    if patched.pointer("/metadata/name") != current.pointer("/metadata/name") {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            patched
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
        )));
    }
    let candidate = written_part(&current, &patched, request);
    let manager = Operation::Update(field_manager(query, headers));
    commit(store, request, query, &current, candidate, manager)
}

/// Server-side apply: fields other managers own and the configuration sets to other values
/// are 409 conflicts unless `force=true` takes them over; the configuration's fields are
/// merged into the object (maps recursively, lists replaced, `conditions` lists merged by
/// `type`); fields this manager applied before and no longer names are removed unless
/// another manager owns them; and the manager's `managedFields` entry records what it now
/// owns. Creates the object when absent (not through `/status`).
fn apply(
    store: &mut Store,
    request: &ResourceRequest,
    query: &Query,
    body: &[u8],
) -> Result<Written, ApiError> {
    let manager = query.get("fieldManager").cloned().unwrap_or_default();
    if manager.is_empty() {
        let error = FieldError::required("fieldManager", "is required for apply patch");
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            &[error],
        ));
    }
    let config = parse_apply(body)?;
    let resource = request.group_resource();
    let name = request.name.as_deref().unwrap_or("");
    let api_version = request.api_version();
    match config.get("apiVersion").and_then(Value::as_str) {
        Some(sent) if sent == api_version => {}
        Some(sent) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({sent}) does not match the expected API version \
                 ({api_version})"
            )));
        }
        None => {
            return Err(ApiError::bad_request(format!(
                "Object 'apiVersion' is missing in '{}'",
                String::from_utf8_lossy(body)
            )));
        }
    }
    let Some(kind) = config
        .get("kind")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{}'",
            String::from_utf8_lossy(body)
        )));
    };
    if let Some(expected) = store.kind(&resource).filter(|k| *k != kind) {
        let error = FieldError::invalid("kind", &kind, format!("must be {expected}"));
        return Err(ApiError::invalid(&request.group, expected, name, &[error]));
    }
    let sent_name = at(&config, "/metadata/name");
    if !sent_name.is_empty() && sent_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({sent_name}) does not match the name on the URL ({name})"
        )));
    }

    // What this request may write: `status` through the subresource, the rest otherwise.
    let mut applied = Map::new();
    if request.is_status() {
        if let Some(status) = config.get("status") {
            applied.insert("status".into(), status.clone());
        }
    } else {
        for (field, value) in config.as_object().into_iter().flatten() {
            match field.as_str() {
                "apiVersion" | "kind" | "status" => {}
                "metadata" => {
                    let mut metadata = value.as_object().cloned().unwrap_or_default();
                    metadata.retain(|field, _| !SYSTEM_METADATA.contains(&field.as_str()));
                    if !metadata.is_empty() {
                        applied.insert(field.clone(), Value::Object(metadata));
                    }
                }
                _ => {
                    applied.insert(field.clone(), value.clone());
                }
            }
        }
    }
    let applied = Value::Object(applied);
    let fields = owned_fields(&applied);

    let Some(current) = store.get(&resource, &key(request)).cloned() else {
        if request.is_status() {
            return Err(ApiError::not_found(&resource, name));
        }
        let mut object = json!({"apiVersion": api_version, "kind": kind, "metadata": {}});
        merge_applied(&mut object, &applied);
        object["metadata"]["name"] = json!(name);
        if let Some(namespace) = &request.namespace {
            object["metadata"]["namespace"] = json!(namespace);
        }
        object["metadata"]["managedFields"] = json!([entry(&manager, "Apply", request, fields)]);
        let body = serde_json::to_vec(&object).map_err(|e| ApiError::internal(&e.to_string()))?;
        return super::handlers::create_in(store, request, query, &body).map(Written::Created);
    };
    let sent_version = at(&config, "/metadata/resourceVersion");
    if !sent_version.is_empty() && sent_version != version_of(&current) {
        return Err(ApiError::modified(&resource, name));
    }
    let mut candidate = current.clone();
    let subresource = request.subresource.as_deref().unwrap_or("");
    let mut entries = managed_fields(&current);

    // Fields other managers own and this configuration sets to other values conflict;
    // forced, they change hands.
    let force = query.get("force").is_some_and(|force| force == "true");
    let mut conflicts = Vec::new();
    for other in &mut entries {
        if is_entry(other, &manager, "Apply", subresource) {
            continue;
        }
        let mut paths = Vec::new();
        let lost = conflicting(
            &fields,
            &other["fieldsV1"],
            Some(&current),
            Some(&applied),
            "",
            &mut paths,
        );
        conflicts.extend(paths.into_iter().map(|path| (printed_manager(other), path)));
        if force {
            subtract(&mut other["fieldsV1"], &lost);
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(ApiError::apply_conflict(&conflicts));
    }
    set_managed_fields(&mut candidate, entries.clone());
    let previous = entries
        .iter()
        .find(|e| is_entry(e, &manager, "Apply", subresource))
        .map(|e| e["fieldsV1"].clone());
    if let Some(previous) = previous {
        let others: Vec<&Value> = entries
            .iter()
            .filter(|e| !is_entry(e, &manager, "Apply", subresource))
            .map(|e| &e["fieldsV1"])
            .collect();
        remove_dropped(&mut candidate, &previous, &fields, &others);
    }
    merge_applied(&mut candidate, &applied);
    commit(
        store,
        request,
        query,
        &current,
        candidate,
        Operation::Apply { manager, fields },
    )
}

/// An apply body: JSON (what kube sends), or YAML (what kubectl sends).
fn parse_apply(body: &[u8]) -> Result<Value, ApiError> {
    let config: Value = match serde_json::from_slice(body) {
        Ok(config) => config,
        Err(_) => serde_norway::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
    };
    if config.is_object() {
        Ok(config)
    } else {
        Err(ApiError::bad_request(
            "error decoding YAML: the applied configuration is not an object",
        ))
    }
}

/// Versions, counts generations, records the manager and stores — unless nothing changed.
fn commit(
    store: &mut Store,
    request: &ResourceRequest,
    query: &Query,
    current: &Value,
    mut candidate: Value,
    operation: Operation,
) -> Result<Written, ApiError> {
    if spec_of(&candidate) != spec_of(current) {
        let generation = current
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        candidate["metadata"]["generation"] = json!(generation + 1);
    }
    let subresource = request.subresource.as_deref().unwrap_or("");
    let mut entries = managed_fields(&candidate);
    let (manager, operation_name, fields) = match operation {
        Operation::Apply { manager, fields } => (manager, "Apply", Some(fields)),
        Operation::Update(manager) => {
            let changed = changed_fields(&without_managed(current), &without_managed(&candidate));
            for other in &mut entries {
                if !is_entry(other, &manager, "Update", subresource) {
                    subtract(&mut other["fieldsV1"], &changed);
                }
            }
            let mut owned = entries
                .iter()
                .find(|e| is_entry(e, &manager, "Update", subresource))
                .map_or_else(|| json!({}), |e| e["fieldsV1"].clone());
            union(&mut owned, &changed);
            (manager, "Update", Some(owned))
        }
    };
    let position = entries
        .iter()
        .position(|e| is_entry(e, &manager, operation_name, subresource));
    let fresh = entry(
        &manager,
        operation_name,
        request,
        fields.unwrap_or_else(|| json!({})),
    );
    match position {
        Some(index) => {
            let time = entries[index]["time"].clone();
            entries[index] = fresh;
            entries[index]["time"] = time;
        }
        None => entries.push(fresh),
    }
    entries.retain(|e| e["fieldsV1"].as_object().is_some_and(|f| !f.is_empty()));
    set_managed_fields(&mut candidate, entries);
    if candidate == *current {
        return Ok(Written::Stored(Arc::new(candidate)));
    }
    // The manager's entry dates from this write.
    if let Some(entries) = candidate
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
        && let Some(entry) = entries
            .iter_mut()
            .find(|e| is_entry(e, &manager, operation_name, subresource))
    {
        entry["time"] = json!(now());
    }
    if dry_run(query) {
        return Ok(Written::Stored(Arc::new(candidate)));
    }
    Ok(Written::Stored(
        store.put(&request.group_resource(), candidate),
    ))
}

fn current(store: &Store, request: &ResourceRequest) -> Result<Value, ApiError> {
    let resource = request.group_resource();
    store
        .get(&resource, &key(request))
        .cloned()
        .ok_or_else(|| ApiError::not_found(&resource, request.name.as_deref().unwrap_or("")))
}

/// The stored object with what this write may change taken from `sent`: the status for the
/// subresource; everything else, system metadata aside, for the object.
fn written_part(current: &Value, sent: &Value, request: &ResourceRequest) -> Value {
    if request.is_status() {
        let mut object = current.clone();
        match sent.get("status") {
            Some(status) => object["status"] = status.clone(),
            None => {
                if let Some(fields) = object.as_object_mut() {
                    fields.remove("status");
                }
            }
        }
        object
    } else {
        let mut object = sent.clone();
        object["apiVersion"] = current["apiVersion"].clone();
        for field in SYSTEM_METADATA {
            match current["metadata"].get(field) {
                Some(value) => object["metadata"][field] = value.clone(),
                None => {
                    if let Some(metadata) = object["metadata"].as_object_mut() {
                        metadata.remove(field);
                    }
                }
            }
        }
        if let Some(fields) = object.as_object_mut() {
            match current.get("status") {
                Some(status) => {
                    fields.insert("status".into(), status.clone());
                }
                None => {
                    fields.remove("status");
                }
            }
        }
        object
    }
}

/// Whether a group is one of Kubernetes' own: core, `*.k8s.io`, or unqualified (`apps`).
fn built_in(group: &str) -> bool {
    group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io")
}

/// What a resource's registry strategy allows on update.
struct UpdateStrategy {
    /// An update without `resourceVersion` overwrites whatever is stored.
    unconditional_update: bool,
    /// A PUT of an absent object creates it.
    create_on_update: bool,
}

impl UpdateStrategy {
    /// Custom resources allow neither; Leases need a `resourceVersion` but may be created by
    /// PUT; Events (core and `events.k8s.io`) allow both; other built-in kinds allow
    /// unconditional updates only.
    fn of(group: &str, resource: &str) -> Self {
        let (unconditional_update, create_on_update) = match (group, resource) {
            ("coordination.k8s.io", "leases") => (false, true),
            ("" | "events.k8s.io", "events") => (true, true),
            (group, _) if built_in(group) => (true, false),
            _ => (false, false),
        };
        UpdateStrategy {
            unconditional_update,
            create_on_update,
        }
    }
}

/// The `fieldManager` query parameter, else what the server derives from the user agent.
fn field_manager(query: &Query, headers: &HeaderMap) -> String {
    if let Some(manager) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        return manager.clone();
    }
    headers
        .get(http::header::USER_AGENT)
        .and_then(|agent| agent.to_str().ok())
        .and_then(|agent| agent.split('/').next())
        .filter(|agent| !agent.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

/// A string at a JSON pointer, `""` when absent.
fn at<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn version_of(object: &Value) -> &str {
    at(object, "/metadata/resourceVersion")
}

/// Everything `generation` counts: all but metadata and status.
fn spec_of(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(fields) = object.as_object_mut() {
        fields.remove("metadata");
        fields.remove("status");
    }
    object
}

fn without_managed(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object["metadata"].as_object_mut() {
        metadata.remove("managedFields");
        metadata.remove("resourceVersion");
        metadata.remove("generation");
    }
    object
}

fn managed_fields(object: &Value) -> Vec<Value> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn set_managed_fields(object: &mut Value, entries: Vec<Value>) {
    if let Some(metadata) = object["metadata"].as_object_mut() {
        if entries.is_empty() {
            metadata.remove("managedFields");
        } else {
            metadata.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

fn is_entry(entry: &Value, manager: &str, operation: &str, subresource: &str) -> bool {
    entry["manager"] == manager
        && entry["operation"] == operation
        && entry
            .get("subresource")
            .and_then(Value::as_str)
            .unwrap_or("")
            == subresource
}

/// One `managedFields` entry.
fn entry(manager: &str, operation: &str, request: &ResourceRequest, fields: Value) -> Value {
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": request.api_version(),
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if let Some(subresource) = &request.subresource {
        entry["subresource"] = json!(subresource);
    }
    entry
}

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Some(fields) = target.as_object_mut() else {
        return;
    };
    for (field, value) in patch {
        if value.is_null() {
            fields.remove(field);
        } else {
            merge(fields.entry(field.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Decodes an RFC 6902 JSON patch: an array of operations.
fn parse_json_patch(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(operations)) if operations.iter().all(Value::is_object) => Ok(operations),
        Ok(_) => Err(ApiError::bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
        )),
        Err(e) => Err(ApiError::bad_request(e.to_string())),
    }
}

/// Applies RFC 6902 operations (`add`, `remove`, `replace`, `move`, `copy`, `test`); a
/// failed one is 422, as the API server answers.
fn json_patch(current: &Value, operations: &[Value]) -> Result<Value, ApiError> {
    let mut document = current.clone();
    for operation in operations {
        let field = |name: &str| operation.get(name).and_then(Value::as_str);
        let path = field("path").ok_or_else(ApiError::unprocessable)?;
        let value = || {
            operation
                .get("value")
                .cloned()
                .ok_or_else(ApiError::unprocessable)
        };
        let from = || field("from").ok_or_else(ApiError::unprocessable);
        match field("op").unwrap_or("") {
            "add" => pointer_add(&mut document, path, value()?)?,
            "remove" => {
                pointer_remove(&mut document, path)?;
            }
            "replace" => {
                pointer_remove(&mut document, path)?;
                pointer_add(&mut document, path, value()?)?;
            }
            "move" => {
                let moved = pointer_remove(&mut document, from()?)?;
                pointer_add(&mut document, path, moved)?;
            }
            "copy" => {
                let copied = document
                    .pointer(from()?)
                    .cloned()
                    .ok_or_else(ApiError::unprocessable)?;
                pointer_add(&mut document, path, copied)?;
            }
            "test" => {
                if document.pointer(path) != Some(&value()?) {
                    return Err(ApiError::unprocessable());
                }
            }
            _ => return Err(ApiError::unprocessable()),
        }
    }
    Ok(document)
}

/// Splits a JSON pointer into its parent's pointer and its last token, unescaped.
fn split_pointer(path: &str) -> Result<(&str, String), ApiError> {
    let cut = path.rfind('/').ok_or_else(ApiError::unprocessable)?;
    let last = path[cut + 1..].replace("~1", "/").replace("~0", "~");
    Ok((&path[..cut], last))
}

fn pointer_add(document: &mut Value, path: &str, value: Value) -> Result<(), ApiError> {
    let (parent, last) = split_pointer(path)?;
    let missing = ApiError::unprocessable;
    match document.pointer_mut(parent).ok_or_else(missing)? {
        Value::Object(fields) => {
            fields.insert(last, value);
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|index| *index <= items.len())
                    .ok_or_else(missing)?
            };
            items.insert(index, value);
        }
        _ => return Err(missing()),
    }
    Ok(())
}

fn pointer_remove(document: &mut Value, path: &str) -> Result<Value, ApiError> {
    let (parent, last) = split_pointer(path)?;
    let missing = ApiError::unprocessable;
    match document.pointer_mut(parent).ok_or_else(missing)? {
        Value::Object(fields) => fields.remove(&last).ok_or_else(missing),
        Value::Array(items) => {
            let index = last
                .parse::<usize>()
                .ok()
                .filter(|index| *index < items.len())
                .ok_or_else(missing)?;
            Ok(items.remove(index))
        }
        _ => Err(missing()),
    }
}

/// Whether a list is a `listType=map` keyed by `type`, as status conditions are.
fn keyed_by_type(field: &str, items: &[Value]) -> bool {
    field == "conditions"
        && items
            .iter()
            .all(|item| item.get("type").is_some_and(Value::is_string))
}

/// Merges an applied configuration into an object: maps recursively, keyed lists by key,
/// anything else replaced.
fn merge_applied(target: &mut Value, applied: &Value) {
    let (Some(target), Some(applied)) = (target.as_object_mut(), applied.as_object()) else {
        return;
    };
    for (field, value) in applied {
        match (target.get_mut(field), value) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) => merge_applied(existing, value),
            (Some(Value::Array(existing)), Value::Array(items))
                if keyed_by_type(field, items) && keyed_by_type(field, existing) =>
            {
                for item in items {
                    match existing.iter_mut().find(|e| e["type"] == item["type"]) {
                        Some(current) => merge_applied(current, item),
                        None => existing.push(item.clone()),
                    }
                }
            }
            _ => {
                target.insert(field.clone(), value.clone());
            }
        }
    }
}

/// The `fieldsV1` set an applied configuration names: `f:<field>` per map field, `k:{"type":…}`
/// per keyed list item, `{}` for leaves (atomic lists included).
fn owned_fields(value: &Value) -> Value {
    let mut set = Map::new();
    for (field, value) in value.as_object().into_iter().flatten() {
        let owned = match value {
            Value::Object(map) if !map.is_empty() => owned_fields(value),
            Value::Array(items) if !items.is_empty() && keyed_by_type(field, items) => {
                let mut list = Map::new();
                for item in items {
                    let mut owned = owned_fields(item);
                    owned["."] = json!({});
                    list.insert(format!("k:{}", json!({"type": item["type"]})), owned);
                }
                Value::Object(list)
            }
            _ => json!({}),
        };
        set.insert(format!("f:{field}"), owned);
    }
    Value::Object(set)
}

/// The `fieldsV1` set of what differs between two objects.
fn changed_fields(before: &Value, after: &Value) -> Value {
    let mut set = Map::new();
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return Value::Object(set);
    };
    for field in before.keys().chain(after.keys()) {
        match (before.get(field), after.get(field)) {
            (Some(old), Some(new)) if old == new => {}
            (Some(old @ Value::Object(_)), Some(new @ Value::Object(_))) => {
                set.insert(format!("f:{field}"), changed_fields(old, new));
            }
            (_, Some(_)) => {
                set.insert(format!("f:{field}"), json!({}));
            }
            (_, None) => {}
        }
    }
    Value::Object(set)
}

/// Adds set `more` to set `set`.
fn union(set: &mut Value, more: &Value) {
    let (Some(set), Some(more)) = (set.as_object_mut(), more.as_object()) else {
        return;
    };
    for (path, below) in more {
        union(set.entry(path.clone()).or_insert_with(|| json!({})), below);
    }
}

/// Takes set `less` out of set `set`: a leaf of `less` removes the path and what is below.
fn subtract(set: &mut Value, less: &Value) {
    let (Some(fields), Some(less)) = (set.as_object_mut(), less.as_object()) else {
        return;
    };
    for (path, below) in less {
        if below.as_object().is_some_and(Map::is_empty) {
            fields.remove(path);
        } else if let Some(owned) = fields.get_mut(path) {
            let was_leaf = owned.as_object().is_some_and(Map::is_empty);
            subtract(owned, below);
            if !was_leaf && owned.as_object().is_some_and(Map::is_empty) {
                fields.remove(path);
            }
        }
    }
}

/// The part of set `mine` that set `theirs` owns too and whose applied value differs from
/// the stored one; `paths` gets each such field as the API server prints it
/// (`.status.conditions[type="Ready"].status`).
fn conflicting(
    mine: &Value,
    theirs: &Value,
    stored: Option<&Value>,
    applied: Option<&Value>,
    prefix: &str,
    paths: &mut Vec<String>,
) -> Value {
    let leaf = |set: &Value| set.as_object().is_none_or(Map::is_empty);
    let mut set = Map::new();
    for (element, below) in mine.as_object().into_iter().flatten() {
        if element == "." {
            continue;
        }
        let Some(their_below) = theirs.get(element) else {
            continue;
        };
        let stored = stored.and_then(|value| element_of(value, element));
        let applied = applied.and_then(|value| element_of(value, element));
        let path = format!("{prefix}{}", printed_element(element));
        if leaf(below) || leaf(their_below) {
            if stored != applied {
                paths.push(path);
                set.insert(element.clone(), json!({}));
            }
        } else {
            let lost = conflicting(below, their_below, stored, applied, &path, paths);
            if !leaf(&lost) {
                set.insert(element.clone(), lost);
            }
        }
    }
    Value::Object(set)
}

/// A `fieldsV1` path element as a field path prints it: `.field` or `[key="value"]`.
fn printed_element(element: &str) -> String {
    if let Some(field) = element.strip_prefix("f:") {
        return format!(".{field}");
    }
    let keys = element
        .strip_prefix("k:")
        .and_then(|keys| serde_json::from_str::<Map<String, Value>>(keys).ok())
        .unwrap_or_default();
    let keys: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("[{}]", keys.join(","))
}

/// A manager as conflict messages name it: `"name"`, with its subresource, and for updates
/// the API version and time.
fn printed_manager(entry: &Value) -> String {
    let text = |field: &str| entry.get(field).and_then(Value::as_str).unwrap_or("");
    let mut printed = format!("{:?}", text("manager"));
    if !text("subresource").is_empty() {
        printed = format!("{printed} with subresource {:?}", text("subresource"));
    }
    if text("operation") == "Update" {
        printed = format!("{printed} using {}", text("apiVersion"));
        if !text("time").is_empty() {
            printed = format!("{printed} at {}", text("time"));
        }
    }
    printed
}

fn element_of<'a>(value: &'a Value, element: &str) -> Option<&'a Value> {
    if let Some(field) = element.strip_prefix("f:") {
        return value.get(field);
    }
    let selector: Value = serde_json::from_str(element.strip_prefix("k:")?).ok()?;
    value
        .as_array()?
        .iter()
        .find(|item| element_matches(item, &selector))
}

/// Removes from `object` what set `before` names and set `after` does not, unless one of
/// `others` names it too. Maps left empty stay.
fn remove_dropped(object: &mut Value, before: &Value, after: &Value, others: &[&Value]) {
    for (path, below) in before.as_object().into_iter().flatten() {
        if path == "." {
            continue;
        }
        let still = after.get(path);
        let shared: Vec<&Value> = others.iter().filter_map(|o| o.get(path)).collect();
        // A leaf, or a list item (`.`), is owned whole; anything else only through what
        // is below it.
        let whole = below
            .as_object()
            .is_none_or(|below| below.is_empty() || below.contains_key("."));
        if whole {
            if still.is_none() && shared.is_empty() {
                remove_element(object, path);
            }
        } else if let Some(child) = element_mut(object, path) {
            remove_dropped(child, below, still.unwrap_or(&json!({})), &shared);
        }
    }
}

/// A `fieldsV1` path element: `f:<field>` in a map, `k:{…}` in a keyed list.
fn element_matches(item: &Value, selector: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|keys| keys.iter().all(|(k, v)| item.get(k) == Some(v)))
}

fn element_mut<'a>(object: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    if let Some(field) = path.strip_prefix("f:") {
        return object.get_mut(field);
    }
    let selector: Value = serde_json::from_str(path.strip_prefix("k:")?).ok()?;
    object
        .as_array_mut()?
        .iter_mut()
        .find(|item| element_matches(item, &selector))
}

fn remove_element(object: &mut Value, path: &str) {
    if let Some(field) = path.strip_prefix("f:") {
        if let Some(fields) = object.as_object_mut() {
            fields.remove(field);
        }
    } else if let Some(selector) = path
        .strip_prefix("k:")
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        && let Some(items) = object.as_array_mut()
    {
        items.retain(|item| !element_matches(item, &selector));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge(&mut target, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn json_patch_follows_rfc_6902() {
        let document = json!({"spec": {"a": 1, "l": [1, 2]}, "x~/y": true});
        let patched = json_patch(
            &document,
            &[
                json!({"op": "test", "path": "/spec/a", "value": 1}),
                json!({"op": "replace", "path": "/spec/a", "value": 2}),
                json!({"op": "add", "path": "/spec/l/-", "value": 3}),
                json!({"op": "add", "path": "/spec/l/0", "value": 0}),
                json!({"op": "move", "from": "/spec/a", "path": "/spec/b"}),
                json!({"op": "copy", "from": "/spec/b", "path": "/spec/c"}),
                json!({"op": "remove", "path": "/x~0~1y"}),
            ],
        )
        .unwrap();
        assert_eq!(
            patched,
            json!({"spec": {"b": 2, "c": 2, "l": [0, 1, 2, 3]}})
        );
        let failed = json_patch(
            &document,
            &[json!({"op": "test", "path": "/spec/a", "value": 2})],
        );
        assert_eq!(failed.map_err(|e| e.code()), Err(422));
        let missing = json_patch(&document, &[json!({"op": "remove", "path": "/nope"})]);
        assert_eq!(missing.map_err(|e| e.code()), Err(422));
    }

    #[test]
    fn apply_merges_conditions_by_type_and_owns_them_by_key() {
        let mut object = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "Other", "status": "True"},
        ]}});
        let applied = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        merge_applied(&mut object, &applied);
        assert_eq!(
            object["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "Other", "status": "True"}])
        );
        let fields = owned_fields(&applied);
        assert_eq!(
            fields,
            json!({"f:status": {"f:conditions": {
                "k:{\"type\":\"Ready\"}": {".": {}, "f:type": {}, "f:status": {}}
            }}})
        );
        // Dropping the condition from the configuration removes it, as nobody else owns it.
        remove_dropped(&mut object, &fields, &json!({"f:status": {}}), &[]);
        assert_eq!(
            object["status"]["conditions"],
            json!([{"type": "Other", "status": "True"}])
        );
    }

    #[test]
    fn field_sets_subtract_and_unite() {
        let mut set = json!({"f:spec": {"f:a": {}, "f:b": {}}});
        subtract(&mut set, &json!({"f:spec": {"f:a": {}}}));
        assert_eq!(set, json!({"f:spec": {"f:b": {}}}));
        subtract(&mut set, &json!({"f:spec": {"f:b": {}}}));
        assert_eq!(set, json!({}));
        union(&mut set, &json!({"f:spec": {"f:c": {}}}));
        assert_eq!(set, json!({"f:spec": {"f:c": {}}}));
    }
}
