//! Update, patch, server-side apply and the status subresource, through the real `kube`
//! client.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use serde_json::{Value, json};

use super::*;

const NS: &str = "triggers";
const GROUP: &str = "triggers.tekton.dev";

fn listeners_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, "v1beta1", "EventListener"))
}

fn listeners(client: kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client, NS, &listeners_resource())
}

fn listener(name: &str) -> DynamicObject {
    let mut object = DynamicObject::new(name, &listeners_resource());
    object.data = json!({"spec": {"serviceAccountName": "sa", "triggers": []}});
    object
}

/// The `metav1.Status` of a failed call.
fn status(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn version(object: &DynamicObject) -> u64 {
    object
        .metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .expect("a numeric resourceVersion")
}

fn generation(object: &DynamicObject) -> i64 {
    object.metadata.generation.expect("a generation")
}

fn ready(status: &str, reason: &str) -> Value {
    json!({
        "apiVersion": "triggers.tekton.dev/v1beta1",
        "kind": "EventListener",
        "status": {"conditions": [{"type": "Ready", "status": status, "reason": reason}]},
    })
}

async fn started() -> (ApiDouble, Api<DynamicObject>) {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let listeners = listeners(api.client().await);
    (api, listeners)
}

#[tokio::test]
async fn replace_needs_the_current_resource_version_and_ignores_status() {
    let (api, listeners) = started().await;
    let created = listeners
        .create(&PostParams::default(), &listener("el"))
        .await
        .unwrap();
    assert_eq!(generation(&created), 1);

    let mut changed = created.clone();
    changed.data["spec"]["serviceAccountName"] = json!("other");
    changed.data["status"] = json!({"address": {"url": "http://ignored"}});
    let replaced = listeners
        .replace("el", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert!(version(&replaced) > version(&created));
    assert_eq!(
        generation(&replaced),
        2,
        "a spec change is a new generation"
    );
    assert_eq!(replaced.data["spec"]["serviceAccountName"], "other");
    assert!(
        replaced.data.get("status").is_none(),
        "the object's PUT ignores status: {:?}",
        replaced.data
    );
    assert_eq!(replaced.metadata.uid, created.metadata.uid);

    // The version read before the replace is stale now.
    let stale = status(
        listeners
            .replace("el", &PostParams::default(), &changed)
            .await,
    );
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        stale.message,
        "Operation cannot be fulfilled on eventlisteners.triggers.tekton.dev \"el\": the object \
         has been modified; please apply your changes to the latest version and try again"
    );

    // Custom resources take no unconditional update.
    let mut unversioned = replaced.clone();
    unversioned.metadata.resource_version = None;
    let refused = status(
        listeners
            .replace("el", &PostParams::default(), &unversioned)
            .await,
    );
    assert_eq!((refused.code, refused.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        refused.message,
        "eventlisteners.triggers.tekton.dev \"el\" is invalid: metadata.resourceVersion: \
         Invalid value: 0x0: must be specified for an update"
    );

    let missing = status(
        listeners
            .replace("gone", &PostParams::default(), &listener("gone"))
            .await,
    );
    assert_eq!(missing.code, 404);
    assert_eq!(
        api.object(GROUP, "eventlisteners", NS, "el").unwrap()["metadata"]["resourceVersion"],
        json!(version(&replaced).to_string())
    );
}

#[tokio::test]
async fn replace_status_changes_only_status_and_needs_its_own_rbac_resource() {
    let (api, listeners) = started().await;
    let created = listeners
        .create(&PostParams::default(), &listener("el"))
        .await
        .unwrap();
    let mut changed = created.clone();
    changed.data["spec"]["serviceAccountName"] = json!("ignored");
    changed.data["status"] = json!({"address": {"url": "http://el.triggers:8080"}});
    let replaced = listeners
        .replace_status("el", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(
        replaced.data["status"]["address"]["url"],
        "http://el.triggers:8080"
    );
    assert_eq!(replaced.data["spec"]["serviceAccountName"], "sa");
    assert_eq!(generation(&replaced), 1, "status is not a new generation");
    let update = api.requests_for(Verb::Update, "eventlisteners");
    assert_eq!(update.len(), 1);
    assert_eq!(update[0].subresource.as_deref(), Some("status"));

    let writer = "system:serviceaccount:triggers:writer";
    api.grant(writer, &["get", "update"], GROUP, "eventlisteners", NS);
    let as_writer = listeners_of(&api, writer).await;
    let forbidden = status(
        as_writer
            .replace_status("el", &PostParams::default(), &replaced)
            .await,
    );
    assert_eq!(forbidden.code, 403);
    assert!(
        forbidden
            .message
            .contains("cannot update resource \"eventlisteners/status\" in API group"),
        "{}",
        forbidden.message
    );
    api.grant(writer, &["update"], GROUP, "eventlisteners/status", NS);
    as_writer
        .replace_status("el", &PostParams::default(), &replaced)
        .await
        .unwrap();
}

async fn listeners_of(api: &ApiDouble, user: &str) -> Api<DynamicObject> {
    listeners(api.client_as(user).await)
}

#[tokio::test]
async fn apply_to_status_records_the_manager_and_skips_writes_that_change_nothing() {
    let (api, listeners) = started().await;
    let created = listeners
        .create(&PostParams::default(), &listener("el"))
        .await
        .unwrap();
    let apply = PatchParams::apply("sluice").force();

    let first = listeners
        .patch_status("el", &apply, &Patch::Apply(ready("False", "Starting")))
        .await
        .unwrap();
    assert!(version(&first) > version(&created));
    assert_eq!(first.data["status"]["conditions"][0]["reason"], "Starting");
    assert_eq!(generation(&first), 1);
    let managed = first.metadata.managed_fields.clone().unwrap();
    let entry = managed
        .iter()
        .find(|entry| entry.manager.as_deref() == Some("sluice"))
        .expect("an entry for the applying manager");
    assert_eq!(entry.operation.as_deref(), Some("Apply"));
    assert_eq!(entry.subresource.as_deref(), Some("status"));
    assert_eq!(entry.fields_type.as_deref(), Some("FieldsV1"));

    // The same status again changes nothing: no new resourceVersion, no watch event.
    let mut events = listeners
        .watch(
            &WatchParams::default().disable_bookmarks().timeout(1),
            &version(&first).to_string(),
        )
        .await
        .unwrap()
        .boxed();
    let again = listeners
        .patch_status("el", &apply, &Patch::Apply(ready("False", "Starting")))
        .await
        .unwrap();
    assert_eq!(version(&again), version(&first));
    assert_eq!(again.metadata.managed_fields, first.metadata.managed_fields);
    let changed = listeners
        .patch_status("el", &apply, &Patch::Apply(ready("True", "Serving")))
        .await
        .unwrap();
    assert!(version(&changed) > version(&first));
    let seen: Vec<String> = events_of(&mut events).await;
    assert_eq!(
        seen,
        [format!("MODIFIED {}", version(&changed))],
        "only the write that changed something is seen"
    );
    assert_eq!(
        api.object(GROUP, "eventlisteners", NS, "el").unwrap()["status"]["conditions"],
        json!([{"type": "Ready", "status": "True", "reason": "Serving"}])
    );

    // Another manager's condition is merged in by type, and stays when ours changes.
    let other = json!({
        "apiVersion": "triggers.tekton.dev/v1beta1",
        "kind": "EventListener",
        "status": {"conditions": [{"type": "Deployed", "status": "True"}]},
    });
    listeners
        .patch_status("el", &PatchParams::apply("other"), &Patch::Apply(other))
        .await
        .unwrap();
    let both = listeners
        .patch_status("el", &apply, &Patch::Apply(ready("False", "Stopping")))
        .await
        .unwrap();
    let types: Vec<&str> = both.data["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Ready", "Deployed"]);
}

use futures_util::StreamExt;

/// `TYPE resourceVersion` of every event until the watch ends.
async fn events_of(
    events: &mut futures_util::stream::BoxStream<'_, kube::Result<WatchEvent<DynamicObject>>>,
) -> Vec<String> {
    let mut seen = Vec::new();
    while let Some(event) = events.next().await {
        match event.unwrap() {
            WatchEvent::Added(o) => seen.push(format!("ADDED {}", version(&o))),
            WatchEvent::Modified(o) => seen.push(format!("MODIFIED {}", version(&o))),
            WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", version(&o))),
            WatchEvent::Bookmark(b) => {
                seen.push(format!("BOOKMARK {}", b.metadata.resource_version))
            }
            WatchEvent::Error(e) => seen.push(format!("ERROR {}", e.code)),
        }
    }
    seen
}

#[tokio::test]
async fn apply_creates_an_absent_object_and_needs_a_field_manager() {
    let (api, listeners) = started().await;
    let config = json!({
        "apiVersion": "triggers.tekton.dev/v1beta1",
        "kind": "EventListener",
        "metadata": {"name": "el", "labels": {"app": "sluice"}},
        "spec": {"serviceAccountName": "sa"},
        "status": {"ignored": true},
    });
    let created = listeners
        .patch("el", &PatchParams::apply("sluice"), &Patch::Apply(&config))
        .await
        .unwrap();
    assert_eq!(generation(&created), 1);
    assert_eq!(created.metadata.namespace.as_deref(), Some(NS));
    assert!(created.metadata.uid.is_some());
    assert!(created.data.get("status").is_none(), "{:?}", created.data);
    let stored = api.object(GROUP, "eventlisteners", NS, "el").unwrap();
    assert_eq!(stored["spec"]["serviceAccountName"], "sa");
    assert_eq!(stored["metadata"]["managedFields"][0]["operation"], "Apply");
    let applied = api.requests_for(Verb::Patch, "eventlisteners");
    assert_eq!(applied[0].status, Some(201));

    // Dropping a field from the configuration removes it: only this manager set it.
    let smaller = json!({
        "apiVersion": "triggers.tekton.dev/v1beta1",
        "kind": "EventListener",
        "metadata": {"name": "el"},
        "spec": {"serviceAccountName": "sa"},
    });
    let updated = listeners
        .patch("el", &PatchParams::apply("sluice"), &Patch::Apply(&smaller))
        .await
        .unwrap();
    assert!(
        updated
            .metadata
            .labels
            .clone()
            .unwrap_or_default()
            .is_empty()
    );
    assert_eq!(generation(&updated), 1, "labels are metadata");

    let missing = status(
        listeners
            .patch("el", &PatchParams::default(), &Patch::Apply(&smaller))
            .await,
    );
    assert_eq!((missing.code, missing.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        missing.message,
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required \
         for apply patch"
    );
    let no_object = status(
        listeners
            .patch_status(
                "nope",
                &PatchParams::apply("sluice"),
                &Patch::Apply(ready("True", "x")),
            )
            .await,
    );
    assert_eq!(no_object.code, 404);
}

#[tokio::test]
async fn merge_patch_changes_the_object_and_counts_generations() {
    let (api, listeners) = started().await;
    let created = listeners
        .create(&PostParams::default(), &listener("el"))
        .await
        .unwrap();
    let patched = listeners
        .patch(
            "el",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"serviceAccountName": "other"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["serviceAccountName"], "other");
    assert_eq!(patched.data["spec"]["triggers"], json!([]));
    assert_eq!(generation(&patched), 2);

    // Status through the object is ignored: nothing changes, nothing is stored.
    let ignored = listeners
        .patch(
            "el",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"address": {"url": "x"}}})),
        )
        .await
        .unwrap();
    assert_eq!(version(&ignored), version(&patched));
    let stale = status(
        listeners
            .patch(
                "el",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"resourceVersion": version(&created).to_string()}, "spec": {"x": 1}})),
            )
            .await,
    );
    assert_eq!(stale.code, 409);

    let strategic = status(
        listeners
            .patch(
                "el",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {}})),
            )
            .await,
    );
    assert_eq!(
        (strategic.code, strategic.reason.as_str()),
        (415, "UnsupportedMediaType")
    );

    let reader = "system:serviceaccount:triggers:reader";
    api.grant(reader, &["get", "update"], GROUP, "eventlisteners", NS);
    let forbidden = status(
        listeners_of(&api, reader)
            .await
            .patch("el", &PatchParams::default(), &Patch::Merge(json!({})))
            .await,
    );
    assert_eq!(forbidden.code, 403);
    assert!(
        forbidden
            .message
            .contains("cannot patch resource \"eventlisteners\"")
    );
}

#[tokio::test]
async fn leases_take_optimistic_concurrency() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let leases: Api<Lease> = Api::namespaced(api.client().await, "sluice-system");
    let lease = Lease {
        metadata: kube::api::ObjectMeta {
            name: Some("sluice-leader".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("pod-a".into()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }),
    };
    leases.create(&PostParams::default(), &lease).await.unwrap();
    let read = leases.get("sluice-leader").await.unwrap();
    assert_eq!(
        read.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some("pod-a")
    );

    let mut taken = read.clone();
    taken.spec.as_mut().unwrap().holder_identity = Some("pod-b".into());
    let replaced = leases
        .replace("sluice-leader", &PostParams::default(), &taken)
        .await
        .unwrap();
    assert_eq!(
        replaced.spec.unwrap().holder_identity.as_deref(),
        Some("pod-b")
    );
    assert_ne!(
        replaced.metadata.resource_version,
        read.metadata.resource_version
    );

    // A candidate that read before the takeover loses.
    let mut late = read.clone();
    late.spec.as_mut().unwrap().holder_identity = Some("pod-c".into());
    let lost = status(
        leases
            .replace("sluice-leader", &PostParams::default(), &late)
            .await,
    );
    assert_eq!((lost.code, lost.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        lost.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"sluice-leader\": the \
         object has been modified; please apply your changes to the latest version and try again"
    );
    let stored = api
        .object(
            "coordination.k8s.io",
            "leases",
            "sluice-system",
            "sluice-leader",
        )
        .unwrap();
    assert_eq!(stored["spec"]["holderIdentity"], "pod-b");

    // Leases take no unconditional update, but a PUT may create one.
    let mut unversioned = late.clone();
    unversioned.metadata.resource_version = None;
    let refused = status(
        leases
            .replace("sluice-leader", &PostParams::default(), &unversioned)
            .await,
    );
    assert_eq!((refused.code, refused.reason.as_str()), (422, "Invalid"));
    let mut other = late;
    other.metadata.name = Some("other".into());
    let created = leases
        .replace("other", &PostParams::default(), &other)
        .await
        .unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("other"));
    let puts = api.requests_for(Verb::Update, "leases");
    assert_eq!(puts.last().unwrap().status, Some(201));
}

#[tokio::test]
async fn json_patch_applies_operations_and_tests_preconditions() {
    let (api, listeners) = started().await;
    listeners
        .create(&PostParams::default(), &listener("el"))
        .await
        .unwrap();
    let patch = |operations: Value| {
        http::Request::patch(format!(
            "/apis/{GROUP}/v1beta1/namespaces/{NS}/eventlisteners/el"
        ))
        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
        .body(serde_json::to_vec(&operations).unwrap())
        .unwrap()
    };
    let client = api.client().await;
    let patched: Value = client
        .request(patch(json!([
            {"op": "test", "path": "/spec/serviceAccountName", "value": "sa"},
            {"op": "add", "path": "/spec/triggers/-", "value": {"name": "push"}},
        ])))
        .await
        .unwrap();
    assert_eq!(patched["spec"]["triggers"], json!([{"name": "push"}]));
    assert_eq!(patched["metadata"]["generation"], 2);

    let failed = status(
        client
            .request::<Value>(patch(json!([
                {"op": "test", "path": "/spec/serviceAccountName", "value": "other"},
            ])))
            .await,
    );
    assert_eq!((failed.code, failed.reason.as_str()), (422, "Invalid"));
}

#[tokio::test]
async fn apply_takes_yaml_as_kubectl_sends_it() {
    let (api, _listeners) = started().await;
    let yaml = "apiVersion: triggers.tekton.dev/v1beta1\n\
                kind: EventListener\n\
                metadata:\n  name: el\n\
                spec:\n  serviceAccountName: sa\n";
    let request = http::Request::patch(format!(
        "/apis/{GROUP}/v1beta1/namespaces/{NS}/eventlisteners/el?fieldManager=kubectl"
    ))
    .header(http::header::CONTENT_TYPE, "application/apply-patch+yaml")
    .body(yaml.as_bytes().to_vec())
    .unwrap();
    let created: Value = api.client().await.request(request).await.unwrap();
    assert_eq!(created["spec"]["serviceAccountName"], "sa");
    assert_eq!(
        created["metadata"]["managedFields"][0]["manager"],
        "kubectl"
    );
}

#[tokio::test]
async fn apply_conflicts_with_other_managers_unless_forced() {
    let (_api, listeners) = started().await;
    listeners
        .create(&PostParams::default(), &listener("el"))
        .await
        .unwrap();
    listeners
        .patch_status(
            "el",
            &PatchParams::apply("tekton"),
            &Patch::Apply(ready("True", "Serving")),
        )
        .await
        .unwrap();

    // The same value is shared ownership, not a conflict.
    listeners
        .patch_status(
            "el",
            &PatchParams::apply("sluice"),
            &Patch::Apply(ready("True", "Serving")),
        )
        .await
        .unwrap();

    let refused = status(
        listeners
            .patch_status(
                "el",
                &PatchParams::apply("sluice"),
                &Patch::Apply(ready("False", "Stopped")),
            )
            .await,
    );
    assert_eq!((refused.code, refused.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        refused.message,
        "Apply failed with 2 conflicts: conflicts with \"tekton\" with subresource \"status\":\n\
         - .status.conditions[type=\"Ready\"].reason\n\
         - .status.conditions[type=\"Ready\"].status"
    );
    let causes = refused.details.unwrap().causes;
    assert_eq!(causes.len(), 2);
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(
        causes[0].message,
        "conflict with \"tekton\" with subresource \"status\""
    );

    // Forced, the fields change hands: tekton no longer owns them.
    let forced = listeners
        .patch_status(
            "el",
            &PatchParams::apply("sluice").force(),
            &Patch::Apply(ready("False", "Stopped")),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["status"]["conditions"][0]["status"], "False");
    let tekton = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|entry| entry.manager.as_deref() == Some("tekton"))
        .unwrap();
    let owned = tekton.fields_v1.unwrap().0;
    assert_eq!(
        owned["f:status"]["f:conditions"]["k:{\"type\":\"Ready\"}"],
        json!({".": {}, "f:type": {}}),
        "the keys stay shared, the changed fields moved"
    );
}
