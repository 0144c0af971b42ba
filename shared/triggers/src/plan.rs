//! What a trigger creates for an event once its interceptors let it through: bindings
//! resolved into params, the template rendered, Tekton's labels added, every object pinned to
//! the trigger's namespace and named from the run's key (see [`crate::naming`]).

use serde_json::{Map, Value};

use crate::body::NotJson;
use crate::catalogue::{Listener, Trigger};
use crate::expr::{self, EventContext, ExprError};
use crate::idempotency;
use crate::names::is_dns1123_label;
use crate::naming;
use crate::template::{self, RenderError};

pub const LABEL_EVENTLISTENER: &str = "triggers.tekton.dev/eventlistener";
pub const LABEL_TRIGGER: &str = "triggers.tekton.dev/trigger";
pub const LABEL_EVENT_ID: &str = "triggers.tekton.dev/triggers-eventid";
/// The event that created the object (`sluice events get`), beside Tekton's label.
pub const ANNOTATION_EVENT_ID: &str = "sluice.dev/event-id";
/// The sender's delivery id (`X-GitHub-Delivery`…) when it named one
/// (`sluice events find --delivery`).
pub const ANNOTATION_DELIVERY_ID: &str = "sluice.dev/delivery-id";

/// What a trigger makes of an event.
#[derive(Debug)]
pub enum Plan {
    /// The objects to create, rendered, labelled, named from the event's key.
    Create(Vec<Value>),
    /// An interceptor stopped the trigger: its name and why.
    Filtered { interceptor: String, reason: String },
}

/// Why a trigger's objects could not be rendered. The same event and configuration fail the
/// same way every time.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The body is not JSON (its listener's payload validation is off): as in Tekton, no
    /// trigger reads it, whatever its bindings.
    #[error("bindings failed: {0}")]
    Body(#[from] NotJson),
    #[error("binding failed: {0}")]
    Binding(#[from] ExprError),
    #[error("template failed: {0}")]
    Render(#[from] RenderError),
    #[error("rendered object {index} is invalid: {reason}")]
    InvalidObject { index: usize, reason: String },
}

/// The objects a trigger creates for an event: bindings resolved, template rendered (with
/// `$(uid)` derived from `run_key`), Tekton's labels added, each object stamped with its key
/// and the name derived from it.
pub fn render(
    listener: &Listener,
    trigger: &Trigger,
    run_key: &str,
    ctx: &EventContext<'_>,
) -> Result<Vec<Value>, PlanError> {
    let params = expr::resolve_params(&trigger.params, &trigger.template.params, ctx)?;
    let uid = template::uid_for(run_key);
    let mut objects = template::render(&trigger.template, &params, &uid)?;
    for (index, object) in objects.iter_mut().enumerate() {
        label(object, listener, trigger, ctx.event_id, index)?;
        let key = idempotency::object_key(run_key, index);
        naming::stamp(object, &key, 0).ok_or_else(|| PlanError::InvalidObject {
            index,
            reason: "metadata.name or metadata.generateName is required".to_owned(),
        })?;
        annotate(object, ctx);
    }
    Ok(objects)
}

/// Names the event and the sender's delivery on a stamped object (whose annotations are an
/// object), so that whoever finds the run can ask what happened to its webhook.
fn annotate(object: &mut Value, ctx: &EventContext<'_>) {
    let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    annotations.insert(ANNOTATION_EVENT_ID.into(), ctx.event_id.into());
    if let Some(delivery) = idempotency::stored_delivery_id(ctx.headers) {
        annotations.insert(ANNOTATION_DELIVERY_ID.into(), delivery.into());
    }
}

/// The user a trigger's objects are created as.
pub fn service_account_user(trigger: &Trigger) -> String {
    format!(
        "system:serviceaccount:{}:{}",
        trigger.namespace, trigger.service_account
    )
}

/// The namespace [`render`] pinned the object to.
pub fn object_namespace<'o>(object: &'o Value, trigger: &'o Trigger) -> &'o str {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(&trigger.namespace)
}

/// Adds Tekton's labels and pins the object to the trigger's namespace; a template that
/// names another namespace is refused.
fn label(
    object: &mut Value,
    listener: &Listener,
    trigger: &Trigger,
    event_id: &str,
    index: usize,
) -> Result<(), PlanError> {
    let invalid = |reason: String| PlanError::InvalidObject { index, reason };
    let metadata = object
        .as_object_mut()
        .ok_or_else(|| invalid("it is not an object".into()))?
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| invalid("metadata is not an object".into()))?;
    match metadata.get("namespace") {
        None | Some(Value::Null) => {
            metadata.insert("namespace".into(), trigger.namespace.clone().into());
        }
        Some(Value::String(ns)) if ns.is_empty() || *ns == trigger.namespace => {
            metadata.insert("namespace".into(), trigger.namespace.clone().into());
        }
        Some(Value::String(ns)) if trigger.cross_namespace && is_dns1123_label(ns) => {}
        Some(other) => {
            return Err(invalid(format!(
                "it names namespace {other}; objects are created only in the trigger's namespace `{}` (the platform does not allow other namespaces)",
                trigger.namespace
            )));
        }
    }
    let labels = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if labels.is_null() {
        *labels = Value::Object(Map::new());
    }
    let labels = labels
        .as_object_mut()
        .ok_or_else(|| invalid("metadata.labels is not an object".into()))?;
    labels.insert(LABEL_EVENTLISTENER.into(), listener.name.clone().into());
    labels.insert(LABEL_TRIGGER.into(), trigger.name.clone().into());
    labels.insert(LABEL_EVENT_ID.into(), event_id.into());
    Ok(())
}
