//! `pkg/resources/create_test.go`: where a rendered resource is created and the labels it
//! gets (`Create`, `addLabels`).
//!
//! Maps to [`sluice_triggers::plan::render`]: the objects a trigger creates, with Tekton's
//! labels, pinned to a namespace. Sluice also names each object from the run's key and
//! records the key in the annotation `sluice.dev/idempotency-key`, which is left out of the
//! comparison (a fixed `metadata.name` is kept as written). What is compared is where the
//! object is created, its name, labels and spec.
//!
//! Tekton's `addLabels` adds whatever labels it is given; in Tekton and in Sluice those are
//! always `eventlistener`, `trigger` and `triggers-eventid` under `triggers.tekton.dev/`, so
//! the `Test_AddLabels` rows use those keys for the labels they add and overwrite. Their
//! objects also get the `apiVersion`, `kind` and `name` every created object has.

use serde_json::{Map, Value, json};
use sluice_triggers::config::{LoadOptions, load_str_with};
use sluice_triggers::naming::ANNOTATION;

use crate::common::Event;
use crate::suite::{Compared, Suite};

const FILE: &str = "pkg/resources/create_test.go";
const EVENT_ID: &str = "12345";

/// The object trigger `trigger` of listener `foo-el` (namespace `foo`) creates from
/// `resource`, reduced to where it is created, its name, labels and spec.
fn created(resource: &Value, options: &LoadOptions) -> String {
    let yaml = format!(
        r#"apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: foo-el, namespace: foo}}
spec:
  triggers:
    - name: trigger
      template: {{spec: {{resourcetemplates: [{resource}]}}}}
"#
    );
    let catalogue = load_str_with("create.yaml", &yaml, options);
    let Some(listener) = catalogue.listener("foo", "foo-el") else {
        return format!("error: {:?}", catalogue.issues());
    };
    let Some(trigger) = listener.trigger("trigger") else {
        return format!("error: {:?}", catalogue.issues());
    };
    let event = Event::new(json!({})).with_event_id(EVENT_ID);
    match sluice_triggers::plan::render(listener, trigger, "run-key", &event.ctx()) {
        Ok(objects) => {
            let object = &objects[0];
            let namespace = sluice_triggers::plan::object_namespace(object, trigger);
            reduced(object, namespace).to_string()
        }
        Err(error) => format!("error: {error}"),
    }
}

fn reduced(object: &Value, namespace: &str) -> Value {
    let mut labels = object["metadata"]["labels"].clone();
    if let Some(annotations) = object["metadata"]["annotations"].as_object() {
        let others: Map<String, Value> = annotations
            .iter()
            // Sluice's own (the key, the event and delivery ids) are its additions.
            .filter(|(key, _)| key.as_str() != ANNOTATION && !key.starts_with("sluice.dev/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert!(others.is_empty(), "unexpected annotations {others:?}");
    }
    if labels.is_null() {
        labels = json!({});
    }
    json!({
        "namespace": namespace,
        "name": object["metadata"]["name"],
        "labels": labels,
        "spec": object.get("spec").cloned().unwrap_or(Value::Null),
    })
}

fn labels(extra: &[(&str, &str)]) -> Value {
    let mut labels = Map::new();
    for (k, v) in extra {
        labels.insert((*k).to_owned(), json!(v));
    }
    Value::Object(labels)
}

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);
    let discovery = "finds the API resource of a kind through Kubernetes discovery, a Go \
                     helper of the client; creating the objects is not offline behaviour";
    file.skip("Test_FindAPIResource_error", &[""], discovery);
    file.skip(
        "TestFindAPIResource",
        &[
            "v1_Pod",
            "v1_Namespace",
            "tekton.dev/v1alpha1_TriggerTemplate",
            "tekton.dev/v1alpha1_PipelineRun",
        ],
        discovery,
    );

    const ADDED: [(&str, &str); 3] = [
        ("triggers.tekton.dev/eventlistener", "foo-el"),
        ("triggers.tekton.dev/trigger", "trigger"),
        ("triggers.tekton.dev/triggers-eventid", EVENT_ID),
    ];
    let create = [
        (
            "TaskRun without namespace",
            r#"{"kind":"TaskRun","apiVersion":"tekton.dev/v1beta1","metadata":{"name":"my-taskrun","creationTimestamp":null,"labels":{"someLabel":"bar"}},"spec":{"serviceAccountName":"","taskRef":{"name":"my-task"}},"status":{"podName": ""}}"#,
            "foo",
        ),
        (
            "TaskRun with namespace",
            r#"{"kind":"TaskRun","apiVersion":"tekton.dev/v1beta1","metadata":{"name":"my-taskrun","namespace":"bar","creationTimestamp":null,"labels":{"someLabel":"bar"}},"spec":{"serviceAccountName":"","taskRef":{"name":"my-task"}},"status":{"podName":""}}"#,
            "bar",
        ),
    ];
    for (name, resource, namespace) in create {
        // Another namespace than the trigger's is the platform's choice in Sluice
        // (`--allow-cross-namespace`); with it, Sluice does as Tekton does.
        let options = LoadOptions {
            allow_cross_namespace: namespace != "foo",
            ..LoadOptions::default()
        };
        file.case("TestCreateResource", name, move || {
            let resource: Value = serde_json::from_str(resource).unwrap();
            let mut want_labels = vec![("someLabel", "bar")];
            want_labels.extend(ADDED);
            let want = json!({
                "namespace": namespace,
                "name": "my-taskrun",
                "labels": labels(&want_labels),
                "spec": resource["spec"],
            });
            Compared::new(
                format!(
                    "listener foo/foo-el, trigger `trigger`, event {EVENT_ID}, resource {resource}{}",
                    if options.allow_cross_namespace { " (--allow-cross-namespace)" } else { "" }
                ),
                want,
                created(&resource, &options),
            )
        });
    }

    let add_labels: [(&str, Value, Value); 3] = [
        ("add to empty labels", json!({}), labels(&ADDED)),
        (
            "overwrite label",
            json!({"triggers.tekton.dev/eventlistener": "bar"}),
            labels(&ADDED),
        ),
        (
            "add and overwrite labels",
            json!({
                "triggers.tekton.dev/eventlistener": "bar",
                "triggers.tekton.dev/trigger": "world",
                "triggers.tekton.dev/z": "0",
                "best-palindrome": "tacocat",
            }),
            {
                let mut want = vec![
                    ("triggers.tekton.dev/z", "0"),
                    ("best-palindrome", "tacocat"),
                ];
                want.extend(ADDED);
                labels(&want)
            },
        ),
    ];
    for (name, existing, want) in add_labels {
        file.case("Test_AddLabels", name, move || {
            let mut metadata = json!({"name": "x"});
            if existing.as_object().is_some_and(|l| !l.is_empty()) {
                metadata["labels"] = existing.clone();
            }
            let resource = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata});
            Compared::new(
                format!("resource labels {existing}"),
                json!({"namespace": "foo", "name": "x", "labels": want, "spec": null}),
                created(&resource, &LoadOptions::default()),
            )
        });
    }
    file.skip(
        "Test_AddLabels",
        &["non-string label"],
        "Tekton refuses an object whose labels are not strings before creating it; Sluice \
         leaves that to the API server, which refuses it: either way nothing is created, \
         which only a cluster can show",
    );
}
