//! The dispatcher's own path on one event: planning, naming, a redelivery.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde_json::{Map, Value};
use sluice_runtime::envelope::{Envelope, EventMeta, SCHEMA_VERSION};
use sluice_runtime::retry::FailureKind;
use sluice_triggers::catalogue::{Listener, Trigger};
use sluice_triggers::config::load_str;
use sluice_triggers::expr::EventContext;
use sluice_triggers::headers::Headers;
use sluice_triggers::plan::{
    self, LABEL_EVENT_ID, LABEL_EVENTLISTENER, LABEL_TRIGGER, PlanError, service_account_user,
};
use sluice_triggers::{idempotency, naming};

use super::*;
use crate::interceptor::Interceptors;
use crate::ledger::Ledger;
use crate::metrics::DispatchMetrics;
use crate::sink::Sink;

/// The objects the dispatcher would create for `trigger`, failing as it would.
fn render_trigger(
    listener: &Listener,
    trigger: &Trigger,
    meta: &EventMeta,
    ctx: &EventContext<'_>,
) -> Result<Vec<Value>, TriggerError> {
    let event_key = idempotency::event_key(&meta.idempotency_key, &meta.event_id);
    let run_key = idempotency::run_key(&event_key, trigger);
    Ok(plan::render(listener, trigger, &run_key, ctx)?)
}

const CONFIG: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: github, namespace: team-a}
spec:
  serviceAccountName: listener-sa
  triggers:
    - name: build
      bindings: [{name: revision, value: $(body.after)}]
      template:
        spec:
          params: [{name: revision}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata:
                generateName: ci-
                labels: {team: a, triggers.tekton.dev/trigger: spoofed}
              spec: {params: [{name: revision, value: $(tt.params.revision)}]}
    - name: elsewhere
      serviceAccountName: trigger-sa
      bindings: [{name: ns, value: team-b}]
      template:
        spec:
          params: [{name: ns}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {generateName: x-, namespace: $(tt.params.ns)}
"#;

fn meta() -> EventMeta {
    EventMeta {
        schema: SCHEMA_VERSION,
        event_id: "3f0c7e9a-0000-4000-8000-000000000001".into(),
        namespace: "team-a".into(),
        listener: "github".into(),
        received_at_ms: 0,
        idempotency_key: String::new(),
        triggers: vec![],
        traceparent: None,
        request_url: String::new(),
        headers: Headers::new(),
    }
}

#[test]
fn rendered_objects_carry_tektons_labels_and_the_trigger_namespace() {
    let catalogue = load_str("c.yaml", CONFIG);
    let listener = catalogue.listener("team-a", "github").unwrap();
    let body = serde_json::json!({"after": "abc123"});
    let (meta, extensions) = (meta(), Map::new());
    let ctx = EventContext {
        body: &body,
        headers: &meta.headers,
        extensions: &extensions,
        event_id: &meta.event_id,
    };
    let objects = render_trigger(listener, &listener.triggers[0], &meta, &ctx).unwrap();
    let labels = &objects[0]["metadata"]["labels"];
    assert_eq!(labels[LABEL_EVENTLISTENER], "github");
    assert_eq!(
        labels[LABEL_TRIGGER], "build",
        "a template cannot spoof Tekton's labels"
    );
    assert_eq!(labels[LABEL_EVENT_ID], meta.event_id);
    assert_eq!(labels["team"], "a", "the template's own labels stay");
    assert_eq!(objects[0]["metadata"]["namespace"], "team-a");
    assert_eq!(objects[0]["spec"]["params"][0]["value"], "abc123");
    assert_eq!(
        service_account_user(&listener.triggers[0]),
        "system:serviceaccount:team-a:listener-sa"
    );
    assert_eq!(
        service_account_user(&listener.triggers[1]),
        "system:serviceaccount:team-a:trigger-sa"
    );
}

/// A literal namespace is reported when the configuration loads; one that only an event's
/// params decide is refused when the event renders it.
#[test]
fn a_template_naming_another_namespace_is_refused_permanently() {
    let catalogue = load_str("c.yaml", CONFIG);
    let listener = catalogue.listener("team-a", "github").unwrap();
    let body = serde_json::json!({});
    let (meta, extensions) = (meta(), Map::new());
    let ctx = EventContext {
        body: &body,
        headers: &meta.headers,
        extensions: &extensions,
        event_id: &meta.event_id,
    };
    let error = render_trigger(listener, &listener.triggers[1], &meta, &ctx).unwrap_err();
    assert_eq!(error.kind(), FailureKind::Permanent);
    assert!(error.to_string().contains("team-b"), "{error}");
}

fn dispatcher(root: &std::path::Path) -> Dispatcher {
    use crate::interceptor::webhook::{WebhookClient, WebhookSettings};
    let catalogue = Arc::new(ArcSwap::from_pointee(load_str("c.yaml", CONFIG)));
    let metrics = DispatchMetrics::register(&mut prometheus_client::registry::Registry::default());
    let interceptors = Interceptors::new(
        WebhookClient::new(WebhookSettings::default()),
        sluice_cel::Limits::default(),
    );
    Dispatcher::new(
        catalogue,
        Sink::Dir(crate::sink::dir::DirSink::new(root.to_owned())),
        metrics,
        interceptors,
        Ledger::disabled(),
        DeadLetters::disabled(),
    )
}

fn files(root: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("team-a"))
        .map(|dir| {
            dir.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn a_redelivery_finds_its_objects_and_a_foreign_name_moves_the_run() {
    let root = tempfile::tempdir().unwrap();
    let dispatcher = dispatcher(root.path());
    let mut meta = meta();
    meta.idempotency_key = "team-a/github/delivery-1".into();
    meta.triggers = vec!["build".into()];
    let envelope = Envelope {
        meta: meta.clone(),
        body: Bytes::from_static(br#"{"after": "abc123"}"#),
    };
    // Occupy the name this run would take with an object that is not its own.
    let catalogue = load_str("c.yaml", CONFIG);
    let listener = catalogue.listener("team-a", "github").unwrap();
    let body = serde_json::json!({"after": "abc123"});
    let extensions = Map::new();
    let ctx = EventContext {
        body: &body,
        headers: &meta.headers,
        extensions: &extensions,
        event_id: &meta.event_id,
    };
    let planned = render_trigger(listener, &listener.triggers[0], &meta, &ctx).unwrap();
    let taken = planned[0]["metadata"]["name"].as_str().unwrap().to_owned();
    let foreign = serde_json::json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": taken}});
    crate::sink::dir::DirSink::new(root.path().to_owned())
        .create(&foreign, "team-a")
        .await
        .unwrap();

    let raw = envelope.encode();
    for attempt in 1..=3 {
        let delivery = Delivery {
            envelope: &envelope,
            raw: &raw,
            attempt,
            last: false,
            sequence: 1,
        };
        assert_eq!(dispatcher.dispatch(delivery).await, Disposition::Done);
    }
    let files = files(root.path());
    assert_eq!(files.len(), 2, "the foreign object and one run: {files:?}");
    let ours = files
        .iter()
        .find(|f| **f != format!("pipelinerun-{taken}.yaml"))
        .expect("the run under another name");
    let text = std::fs::read_to_string(root.path().join("team-a").join(ours)).unwrap();
    assert!(text.contains(naming::ANNOTATION), "{text}");
}

#[test]
fn a_missing_body_field_is_a_permanent_binding_error() {
    let catalogue = load_str("c.yaml", CONFIG);
    let listener = catalogue.listener("team-a", "github").unwrap();
    let body = serde_json::json!({"before": "x"});
    let (meta, extensions) = (meta(), Map::new());
    let ctx = EventContext {
        body: &body,
        headers: &meta.headers,
        extensions: &extensions,
        event_id: &meta.event_id,
    };
    let error = render_trigger(listener, &listener.triggers[0], &meta, &ctx).unwrap_err();
    assert!(
        matches!(error, TriggerError::Plan(PlanError::Binding(_))),
        "{error}"
    );
    assert_eq!(error.kind(), FailureKind::Permanent);
}
