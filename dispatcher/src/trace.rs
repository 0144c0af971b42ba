//! The dispatcher's spans, when traces are on (`sluice_runtime::telemetry`): one consumer
//! span per delivery, and under it a span per interceptor call and per create, each naming
//! the trigger, the namespace and the result. Disabled, and free, when traces are off.
//!
//! Where a delivery's span sits:
//! - the first delivery continues ingest's trace: its parent is the webhook span that the
//!   stored message's `traceparent` header names;
//! - a redelivery (attempt > 1) starts a trace of its own, linked to that webhook span
//!   (`sluice.link = "redelivery"`): a retry may come hours later, and each attempt stays a
//!   short trace of its own that leads back to the webhook;
//! - an event replayed from the dead-letter stream (`sluice dlq replay`) also starts its own
//!   trace, linked to the span that dead-lettered it (`sluice.link = "dead_letter"`).
//!
//! Created PipelineRuns and TaskRuns carry their create span's context in the annotation
//! Tekton Pipelines reads ([`with_span_context`]), so its reconciler's spans join the trace.

use async_nats::HeaderMap;
use serde_json::{Map, Value};
use sluice_runtime::envelope::Envelope;
use sluice_runtime::telemetry::traces::{self, REPLAYED_HEADER, TARGET, TRACEPARENT_HEADER};
use sluice_triggers::catalogue::Trigger;
use tracing::Span;
use tracing::field::Empty;

use crate::dispatch::Disposition;
use crate::interceptor::{EventInfo, InterceptorError};
use crate::sink::{Created, SinkError};

/// The annotations Tekton Pipelines reads a parent span from, by kind: a JSON object of
/// W3C trace-context fields (`{"traceparent":"00-…"}`).
const SPAN_CONTEXT_ANNOTATIONS: &[(&str, &str)] = &[
    ("PipelineRun", "tekton.dev/pipelinerunSpanContext"),
    ("TaskRun", "tekton.dev/taskrunSpanContext"),
];

/// The consumer span of one delivery of `subject`, placed as the module says.
pub fn delivery(
    subject: &str,
    headers: Option<&HeaderMap>,
    event: Option<&Envelope>,
    attempt: u64,
) -> Span {
    if !traces::worth_a_root_span() {
        return Span::none();
    }
    let meta = event.map(|event| &event.meta);
    let span = tracing::info_span!(
        target: TARGET,
        "consume",
        otel.kind = "consumer",
        otel.status_code = Empty,
        messaging.system = "nats",
        messaging.destination.name = subject,
        sluice.namespace = meta.map_or("", |m| m.namespace.as_str()),
        sluice.listener = meta.map_or("", |m| m.listener.as_str()),
        sluice.event_id = meta.map_or("", |m| m.event_id.as_str()),
        sluice.attempt = attempt,
        sluice.result = Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let header = |name: &str| {
        headers
            .and_then(|headers| headers.get(name))
            .map(|value| value.as_str())
    };
    let stored = header(TRACEPARENT_HEADER);
    if attempt <= 1 {
        traces::set_parent(&span, stored);
    } else {
        traces::add_link(&span, stored, "redelivery");
    }
    traces::add_link(&span, header(REPLAYED_HEADER), "dead_letter");
    span
}

/// Records what became of the delivery: `ack`, `retry` or `abort` (handed back at shutdown).
pub fn settled(span: &Span, disposition: Option<&Disposition>) {
    if span.is_disabled() {
        return;
    }
    let result = match disposition {
        Some(Disposition::Done) => "ack",
        Some(Disposition::Retry { .. }) => "retry",
        None => "abort",
    };
    span.record("sluice.result", result);
}

/// A trigger id as interceptors are told it (`namespaces/NS/triggers/NAME`), split.
fn trigger_of(event: EventInfo<'_>) -> (&str, &str) {
    event
        .trigger_id
        .strip_prefix("namespaces/")
        .and_then(|rest| rest.split_once("/triggers/"))
        .unwrap_or(("", event.trigger_id))
}

/// The span of one interceptor call for `event`'s trigger.
pub fn interceptor(name: &str, event: EventInfo<'_>) -> Span {
    let (namespace, trigger) = trigger_of(event);
    tracing::info_span!(
        target: TARGET,
        "interceptor",
        otel.status_code = Empty,
        otel.status_description = Empty,
        sluice.interceptor = name,
        sluice.trigger = trigger,
        sluice.namespace = namespace,
        sluice.event_id = event.event_id,
        sluice.result = Empty,
    )
}

/// Records an interceptor's answer: `continue`, `stopped` (the trigger is filtered) or
/// `error`.
pub fn intercepted(span: &Span, step: &Result<Option<String>, InterceptorError>) {
    if span.is_disabled() {
        return;
    }
    match step {
        Ok(None) => span.record("sluice.result", "continue"),
        Ok(Some(_)) => span.record("sluice.result", "stopped"),
        Err(error) => {
            span.record("sluice.result", "error");
            span.record("otel.status_code", "error");
            span.record("otel.status_description", error.message.as_str())
        }
    };
}

/// The span of creating one of `trigger`'s objects in `namespace`.
pub fn create(trigger: &Trigger, namespace: &str, object: &Value) -> Span {
    tracing::info_span!(
        target: TARGET,
        "create",
        otel.kind = "client",
        otel.status_code = Empty,
        otel.status_description = Empty,
        sluice.trigger = %trigger.name,
        sluice.namespace = namespace,
        k8s.kind = object["kind"].as_str().unwrap_or_default(),
        k8s.name = Empty,
        sluice.result = Empty,
        http.response.status_code = Empty,
    )
}

/// Records a create's result: `created`, `existed` (an earlier delivery made it) or `error`
/// with the API's status.
pub fn created(span: &Span, result: &Result<Created, SinkError>) {
    if span.is_disabled() {
        return;
    }
    match result {
        Ok(created) => {
            span.record("k8s.name", created.name.as_str());
            span.record(
                "sluice.result",
                if created.existed {
                    "existed"
                } else {
                    "created"
                },
            );
        }
        Err(error) => {
            span.record("sluice.result", "error");
            span.record("otel.status_code", "error");
            span.record("otel.status_description", error.message.as_str());
            if let Some(status) = error.status {
                span.record("http.response.status_code", status);
            }
        }
    }
}

/// `object` with its span-context annotation set to `span`'s context, for a Tekton
/// PipelineRun or TaskRun whose template does not set it; `None` (create it as it is)
/// otherwise, and whenever traces are off.
pub fn with_span_context(object: &Value, span: &Span) -> Option<Value> {
    if span.is_disabled() {
        return None;
    }
    annotated(object, || traces::span_traceparent(span))
}

/// `object` with the annotation its kind takes set to `traceparent()`, as Tekton Pipelines
/// reads it: a JSON object of W3C trace-context fields.
fn annotated(object: &Value, traceparent: impl FnOnce() -> Option<String>) -> Option<Value> {
    let kind = object.get("kind")?.as_str()?;
    let (_, annotation) = SPAN_CONTEXT_ANNOTATIONS
        .iter()
        .find(|(tekton_kind, _)| *tekton_kind == kind)?;
    let tekton = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|api| api.starts_with("tekton.dev/"));
    let set = object
        .pointer("/metadata/annotations")
        .and_then(|annotations| annotations.get(annotation))
        .is_some();
    if !tekton || set || !object.get("metadata")?.is_object() {
        return None;
    }
    let value = serde_json::json!({ "traceparent": traceparent()? }).to_string();
    let mut object = object.clone();
    let metadata = object.get_mut("metadata")?.as_object_mut()?;
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    annotations
        .as_object_mut()?
        .insert((*annotation).to_owned(), Value::String(value));
    Some(object)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    fn parent() -> Option<String> {
        Some(PARENT.to_owned())
    }

    #[test]
    fn pipelineruns_and_taskruns_carry_the_span_context_tekton_reads() {
        let run = json!({
            "apiVersion": "tekton.dev/v1",
            "kind": "PipelineRun",
            "metadata": {"name": "build-1", "annotations": {"a": "b"}},
        });
        let run = annotated(&run, parent).unwrap();
        let value = run["metadata"]["annotations"]["tekton.dev/pipelinerunSpanContext"]
            .as_str()
            .unwrap();
        let carrier: Map<String, Value> = serde_json::from_str(value).unwrap();
        assert_eq!(carrier["traceparent"], PARENT);
        assert_eq!(run["metadata"]["annotations"]["a"], "b");

        let task = json!({"apiVersion": "tekton.dev/v1beta1", "kind": "TaskRun", "metadata": {"generateName": "t-"}});
        let task = annotated(&task, parent).unwrap();
        assert!(task["metadata"]["annotations"]["tekton.dev/taskrunSpanContext"].is_string());
    }

    #[test]
    fn a_template_s_own_span_context_and_other_objects_are_left_alone() {
        let own = json!({
            "apiVersion": "tekton.dev/v1",
            "kind": "PipelineRun",
            "metadata": {"name": "x", "annotations": {"tekton.dev/pipelinerunSpanContext": "{}"}},
        });
        assert!(annotated(&own, parent).is_none());
        let config_map =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        assert!(annotated(&config_map, parent).is_none());
        let lookalike =
            json!({"apiVersion": "example.com/v1", "kind": "PipelineRun", "metadata": {}});
        assert!(annotated(&lookalike, parent).is_none());
        let broken = json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": "x"});
        assert!(annotated(&broken, parent).is_none());
        let run = json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {}});
        assert!(
            annotated(&run, || None).is_none(),
            "no span context, no annotation"
        );
    }

    #[test]
    fn trigger_ids_split_into_namespace_and_name() {
        let event = |trigger_id| EventInfo {
            event_id: "e",
            request_url: "/",
            trigger_id,
        };
        assert_eq!(
            trigger_of(event("namespaces/team-a/triggers/build")),
            ("team-a", "build")
        );
        assert_eq!(trigger_of(event("odd")), ("", "odd"));
    }
}
