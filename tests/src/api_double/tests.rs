//! The double against the real `kube` client (and raw HTTP where the client hides details).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
    WatchEvent, WatchParams,
};
use serde_json::{Value, json};

use super::*;

const TENANT: &str = "tenant-a";
const BUILDER: &str = "system:serviceaccount:tenant-a:builder";

fn pipeline_runs() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("tekton.dev", "v1", "PipelineRun"))
}

fn run_named(name: &str) -> DynamicObject {
    let mut object = DynamicObject::new(name, &pipeline_runs());
    object.data = json!({"spec": {"pipelineRef": {"name": "build"}}});
    object
}

fn run_generated(prefix: &str) -> DynamicObject {
    let mut object = run_named("");
    object.metadata.name = None;
    object.metadata.generate_name = Some(prefix.to_owned());
    object
}

fn runs(client: kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client, namespace, &pipeline_runs())
}

/// The `metav1.Status` of a failed call.
fn status(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A POST of `object` to the tenant's pipelineruns, as `user` via impersonation.
fn impersonated_create(user: &str, object: &DynamicObject) -> http::Request<Vec<u8>> {
    http::Request::post(format!(
        "/apis/tekton.dev/v1/namespaces/{TENANT}/pipelineruns"
    ))
    .header("Impersonate-User", user)
    .header(http::header::CONTENT_TYPE, "application/json")
    .body(serde_json::to_vec(object).unwrap())
    .unwrap()
}

#[tokio::test]
async fn create_with_generate_name_assigns_name_uid_version_and_timestamp() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let runs = runs(api.client().await, TENANT);

    let first = runs
        .create(&PostParams::default(), &run_generated("build-"))
        .await
        .unwrap();
    let second = runs
        .create(&PostParams::default(), &run_generated("build-"))
        .await
        .unwrap();

    let name = first.metadata.name.clone().unwrap();
    assert!(
        name.starts_with("build-") && name.len() == "build-".len() + 5,
        "{name}"
    );
    assert!(
        name["build-".len()..]
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{name}"
    );
    assert_ne!(first.metadata.name, second.metadata.name);
    assert_eq!(first.metadata.namespace.as_deref(), Some(TENANT));
    let uid = first.metadata.uid.clone().unwrap();
    assert!(uuid::Uuid::parse_str(&uid).is_ok(), "{uid}");
    let version = |o: &DynamicObject| -> u64 {
        o.metadata
            .resource_version
            .as_deref()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(version(&second) > version(&first));
    let created = first.metadata.creation_timestamp.clone().unwrap().0;
    let age = k8s_openapi::jiff::Timestamp::now().duration_since(created);
    assert!(age.as_secs() < 60, "{created}");
    assert_eq!(first.data["spec"]["pipelineRef"]["name"], "build");
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", TENANT), 2);
}

#[tokio::test]
async fn get_list_and_label_selectors_return_the_stored_objects() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let runs = runs(api.client().await, TENANT);
    for (name, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
        let mut run = run_named(name);
        run.metadata.labels = Some([("app".to_owned(), app.to_owned())].into());
        runs.create(&PostParams::default(), &run).await.unwrap();
    }

    let b = runs.get("b").await.unwrap();
    assert_eq!(b.metadata.labels.unwrap()["app"], "web");
    let web = runs
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let names: Vec<_> = web
        .iter()
        .map(|o| o.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let not_web = runs
        .list(&ListParams::default().labels("app!=web"))
        .await
        .unwrap();
    assert_eq!(not_web.items.len(), 1);
    let all = runs.list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 3);
    assert_eq!(
        all.metadata.resource_version.as_deref(),
        Some("3"),
        "a list carries the current resourceVersion"
    );

    let missing = status(runs.get("nope").await);
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(
        missing.message,
        "pipelineruns.tekton.dev \"nope\" not found"
    );
    let details = missing.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("nope", "tekton.dev", "pipelineruns")
    );
}

#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let runs = runs(api.client().await, TENANT);
    for name in ["a", "b", "c"] {
        runs.create(&PostParams::default(), &run_named(name))
            .await
            .unwrap();
    }
    let first = runs.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().unwrap();
    let rest = runs
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].metadata.name.as_deref(), Some("c"));
    assert!(rest.metadata.continue_.is_none_or(|c| c.is_empty()));
}

#[tokio::test]
async fn cluster_wide_list_spans_namespaces() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let client = api.client().await;
    for namespace in ["one", "two"] {
        runs(client.clone(), namespace)
            .create(&PostParams::default(), &run_named("same"))
            .await
            .unwrap();
    }
    let everywhere: Api<DynamicObject> = Api::all_with(client, &pipeline_runs());
    let all = everywhere.list(&ListParams::default()).await.unwrap();
    let namespaces: Vec<_> = all
        .iter()
        .map(|o| o.metadata.namespace.clone().unwrap())
        .collect();
    assert_eq!(namespaces, ["one", "two"]);
    assert_eq!(api.all_objects("tekton.dev", "pipelineruns").len(), 2);
}

#[tokio::test]
async fn duplicate_name_is_409_already_exists() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let runs = runs(api.client().await, TENANT);
    runs.create(&PostParams::default(), &run_named("once"))
        .await
        .unwrap();

    let conflict = status(
        runs.create(&PostParams::default(), &run_named("once"))
            .await,
    );
    assert_eq!(
        (conflict.code, conflict.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(
        conflict.message,
        "pipelineruns.tekton.dev \"once\" already exists"
    );
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", TENANT), 1);
}

#[tokio::test]
async fn impersonated_user_needs_a_grant_to_create() {
    let api = ApiDouble::start().await;
    let client = api.client().await;
    let run = run_generated("run-");

    let denied = status(
        client
            .request::<DynamicObject>(impersonated_create(BUILDER, &run))
            .await,
    );
    assert_eq!((denied.code, denied.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        denied.message,
        format!(
            "pipelineruns.tekton.dev is forbidden: User \"{BUILDER}\" cannot create resource \
             \"pipelineruns\" in API group \"tekton.dev\" in the namespace \"{TENANT}\""
        )
    );
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", TENANT), 0);

    api.grant(BUILDER, &["create"], "tekton.dev", "pipelineruns", TENANT);
    let created = client
        .request::<DynamicObject>(impersonated_create(BUILDER, &run))
        .await
        .unwrap();
    assert!(created.metadata.name.unwrap().starts_with("run-"));

    let requests = api.requests_for(Verb::Create, "pipelineruns");
    let seen: Vec<_> = requests
        .iter()
        .map(|r| (r.status, r.user.as_deref(), r.impersonated_user.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (Some(403), Some(BUILDER), Some(BUILDER)),
            (Some(201), Some(BUILDER), Some(BUILDER)),
        ]
    );
    assert_eq!(
        requests[0].authenticated_user.as_deref(),
        Some(DEFAULT_CONTROLLER)
    );

    // The grant is namespaced: another tenant stays closed.
    let elsewhere = http::Request::post("/apis/tekton.dev/v1/namespaces/tenant-b/pipelineruns")
        .header("Impersonate-User", BUILDER)
        .body(serde_json::to_vec(&run).unwrap())
        .unwrap();
    assert_eq!(
        status(client.request::<DynamicObject>(elsewhere).await).code,
        403
    );
}

#[tokio::test]
async fn impersonation_needs_the_impersonate_right() {
    let api = ApiDouble::start().await;
    api.grant_all(BUILDER);
    api.revoke_impersonation();
    let client = api.client().await;

    let denied = status(
        client
            .request::<DynamicObject>(impersonated_create(BUILDER, &run_named("x")))
            .await,
    );
    assert_eq!(denied.code, 403);
    assert_eq!(
        denied.message,
        format!(
            "serviceaccounts \"builder\" is forbidden: User \"{DEFAULT_CONTROLLER}\" cannot \
             impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \
             \"{TENANT}\""
        )
    );
    let user = status(
        client
            .request::<DynamicObject>(impersonated_create("alice", &run_named("x")))
            .await,
    );
    assert!(
        user.message.starts_with("users \"alice\" is forbidden")
            && user.message.ends_with("at the cluster scope"),
        "{}",
        user.message
    );
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", TENANT), 0);
}

#[tokio::test]
async fn controller_reads_everywhere_but_creates_nothing_by_default() {
    let api = ApiDouble::start().await;
    let runs = runs(api.client().await, TENANT);
    assert!(runs.list(&ListParams::default()).await.is_ok());
    let denied = status(runs.create(&PostParams::default(), &run_named("x")).await);
    assert_eq!(denied.code, 403);
}

#[tokio::test]
async fn invalid_label_value_is_422_with_a_field_cause() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let runs = runs(api.client().await, TENANT);
    let mut run = run_named("labelled");
    run.metadata.labels = Some([("app".to_owned(), "not a label!".to_owned())].into());

    let invalid = status(runs.create(&PostParams::default(), &run).await);
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
    assert!(
        invalid.message.starts_with(
            "PipelineRun.tekton.dev \"labelled\" is invalid: metadata.labels: Invalid value: \
             \"not a label!\": a valid label must be an empty string"
        ),
        "{}",
        invalid.message
    );
    let details = invalid.details.unwrap();
    assert_eq!(details.kind, "PipelineRun");
    assert_eq!(details.causes.len(), 1);
    assert_eq!(details.causes[0].reason, "FieldValueInvalid");
    assert_eq!(details.causes[0].field, "metadata.labels");

    let bad_name = status(
        runs.create(&PostParams::default(), &run_named("Bad_Name"))
            .await,
    );
    assert_eq!(bad_name.code, 422);
    assert_eq!(bad_name.details.unwrap().causes[0].field, "metadata.name");
    let mut nameless = run_named("");
    nameless.metadata.name = None;
    let required = status(runs.create(&PostParams::default(), &nameless).await);
    assert_eq!(
        required.details.unwrap().causes[0].reason,
        "FieldValueRequired"
    );
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", TENANT), 0);
}

#[tokio::test]
async fn malformed_creates_are_400_bad_request() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let client = api.client().await;
    let post = |namespace: &str, body: Vec<u8>| {
        http::Request::post(format!(
            "/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns"
        ))
        .body(body)
        .unwrap()
    };
    let mut other_namespace = run_named("x");
    other_namespace.metadata.namespace = Some("elsewhere".into());
    let mut old_version = serde_json::to_value(run_named("x")).unwrap();
    old_version["apiVersion"] = json!("tekton.dev/v1beta1");

    let cases = [
        post(TENANT, b"{not json".to_vec()),
        post(TENANT, serde_json::to_vec(&other_namespace).unwrap()),
        post(TENANT, serde_json::to_vec(&old_version).unwrap()),
    ];
    let mut messages = Vec::new();
    for request in cases {
        let error = status(client.request::<DynamicObject>(request).await);
        assert_eq!((error.code, error.reason.as_str()), (400, "BadRequest"));
        messages.push(error.message);
    }
    assert_eq!(
        messages[1],
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    assert_eq!(
        messages[2],
        "the API version in the data (tekton.dev/v1beta1) does not match the expected API \
         version (tekton.dev/v1)"
    );
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", TENANT), 0);
}

#[tokio::test]
async fn wrong_kind_for_a_known_resource_is_invalid() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    api.register_kind("tekton.dev", "pipelineruns", "PipelineRun");
    let mut task_run = serde_json::to_value(run_named("x")).unwrap();
    task_run["kind"] = json!("TaskRun");
    let request = http::Request::post(format!(
        "/apis/tekton.dev/v1/namespaces/{TENANT}/pipelineruns"
    ))
    .body(serde_json::to_vec(&task_run).unwrap())
    .unwrap();
    let error = status(api.client().await.request::<DynamicObject>(request).await);
    assert_eq!(error.code, 422);
    assert_eq!(error.details.unwrap().causes[0].field, "kind");
}

#[tokio::test]
async fn dry_run_validates_without_storing() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let runs = runs(api.client().await, TENANT);
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let checked = runs.create(&params, &run_generated("dry-")).await.unwrap();
    assert!(checked.metadata.name.unwrap().starts_with("dry-"));
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", TENANT), 0);
    let mut bad = run_named("x");
    bad.metadata.labels = Some([("a".to_owned(), "b c".to_owned())].into());
    assert_eq!(status(runs.create(&params, &bad).await).code, 422);
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    api.fail_next(
        Verb::Create,
        1,
        Failure::TooManyRequests {
            retry_after_seconds: 7,
        },
    );
    let mut config = api.config().await;
    config.default_retry = false;
    let runs = runs(kube::Client::try_from(config).unwrap(), TENANT);

    let throttled = status(runs.create(&PostParams::default(), &run_named("x")).await);
    assert_eq!(
        (throttled.code, throttled.reason.as_str()),
        (429, "TooManyRequests")
    );
    assert_eq!(throttled.details.unwrap().retry_after_seconds, 7);
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", TENANT), 0);

    // The header itself, which kube's Status does not carry.
    api.fail_next(
        Verb::Create,
        1,
        Failure::TooManyRequests {
            retry_after_seconds: 7,
        },
    );
    let response = reqwest::Client::new()
        .post(format!(
            "{}/apis/tekton.dev/v1/namespaces/{TENANT}/pipelineruns",
            api.url()
        ))
        .bearer_auth(api.token())
        .json(&run_named("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");

    // Once the fault is spent the same create goes through.
    runs.create(&PostParams::default(), &run_named("x"))
        .await
        .unwrap();
    let faulted: Vec<_> = api
        .requests_for(Verb::Create, "pipelineruns")
        .iter()
        .map(|r| (r.status, r.faulted))
        .collect();
    assert_eq!(
        faulted,
        [(Some(429), true), (Some(429), true), (Some(201), false)]
    );
    assert_eq!(api.count_answered(Verb::Create, "pipelineruns", 429), 2);
    assert_eq!(api.count_answered(Verb::Create, "pipelineruns", 201), 1);
    assert_eq!(api.count_answered(Verb::Create, "taskruns", 201), 0);
}

#[tokio::test]
async fn kube_default_retry_waits_out_retry_after() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    api.fail_next(
        Verb::Create,
        1,
        Failure::TooManyRequests {
            retry_after_seconds: 1,
        },
    );
    let runs = runs(api.client().await, TENANT);
    let started = Instant::now();
    runs.create(&PostParams::default(), &run_named("x"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(api.requests_for(Verb::Create, "pipelineruns").len(), 2);
}

#[tokio::test]
async fn injected_500_fails_once_then_the_create_succeeds() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    api.fail_next(Verb::Create, 1, Failure::InternalError);
    let runs = runs(api.client().await, TENANT);

    let failed = status(runs.create(&PostParams::default(), &run_named("x")).await);
    assert_eq!(
        (failed.code, failed.reason.as_str()),
        (500, "InternalError")
    );
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", TENANT), 0);
    runs.create(&PostParams::default(), &run_named("x"))
        .await
        .unwrap();
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", TENANT), 1);
}

#[tokio::test]
async fn outage_fails_every_create_until_cleared() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    api.fail_all(Verb::Create, Failure::InternalError);
    let runs = runs(api.client().await, TENANT);
    for name in ["a", "b", "c"] {
        let error = status(runs.create(&PostParams::default(), &run_named(name)).await);
        assert_eq!(error.code, 500);
    }
    assert!(
        runs.list(&ListParams::default()).await.is_ok(),
        "only creates fail"
    );
    api.clear_faults();
    runs.create(&PostParams::default(), &run_named("a"))
        .await
        .unwrap();
}

#[tokio::test]
async fn other_injected_failures_have_their_real_shapes() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let mut config = api.config().await;
    config.default_retry = false;
    let runs = runs(kube::Client::try_from(config).unwrap(), TENANT);
    let cases = [
        (Failure::ServiceUnavailable, 503, "ServiceUnavailable"),
        (Failure::Forbidden, 403, "Forbidden"),
        (Failure::Invalid, 422, "Invalid"),
        (Failure::AlreadyExists, 409, "AlreadyExists"),
        (Failure::Conflict, 409, "Conflict"),
    ];
    for (failure, code, reason) in cases {
        api.inject(
            FaultRule::fail(failure)
                .on(Verb::Create)
                .resource("pipelineruns"),
        );
        let error = status(runs.create(&PostParams::default(), &run_named("x")).await);
        assert_eq!((error.code, error.reason.as_str()), (code, reason));
    }
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", TENANT), 0);
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let api = ApiDouble::start().await;
    api.inject(
        FaultRule::delay(Duration::from_millis(300))
            .on(Verb::List)
            .times(1),
    );
    let runs = runs(api.client().await, TENANT);
    let started = Instant::now();
    runs.list(&ListParams::default()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    runs.list(&ListParams::default()).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn hung_request_makes_the_client_time_out() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    api.inject(FaultRule::hang(Duration::from_secs(30)).on(Verb::Create));
    let mut config = api.config().await;
    config.read_timeout = Some(Duration::from_millis(300));
    let runs = runs(kube::Client::try_from(config).unwrap(), TENANT);

    let started = Instant::now();
    let result = runs.create(&PostParams::default(), &run_named("x")).await;
    assert!(
        !matches!(result, Ok(_) | Err(kube::Error::Api(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", TENANT), 0);
    let hung = &api.requests_for(Verb::Create, "pipelineruns")[0];
    assert!(hung.faulted && hung.status.is_none(), "{hung:?}");
}

#[tokio::test]
async fn watch_sees_objects_created_and_deleted() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let runs = runs(api.client().await, TENANT);
    runs.create(&PostParams::default(), &run_named("before"))
        .await
        .unwrap();

    let mut events = Box::pin(
        runs.watch(&WatchParams::default().timeout(30), "0")
            .await
            .unwrap(),
    );
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("a watch event within 5s")
            .expect("the watch is still open")
            .unwrap()
    };
    let WatchEvent::Added(existing) = next().await else {
        panic!("expected ADDED for the existing object");
    };
    assert_eq!(existing.metadata.name.as_deref(), Some("before"));

    runs.create(&PostParams::default(), &run_named("after"))
        .await
        .unwrap();
    let WatchEvent::Added(created) = next().await else {
        panic!("expected ADDED for the new object");
    };
    assert_eq!(created.metadata.name.as_deref(), Some("after"));

    runs.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    let WatchEvent::Deleted(deleted) = next().await else {
        panic!("expected DELETED");
    };
    assert_eq!(deleted.metadata.name.as_deref(), Some("before"));
    assert!(runs.get_opt("before").await.unwrap().is_none());
}

#[tokio::test]
async fn watch_from_a_resource_version_replays_later_changes_only() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let runs = runs(api.client().await, TENANT);
    let mut labelled = run_named("kept");
    labelled.metadata.labels = Some([("app".to_owned(), "web".to_owned())].into());
    let first = runs
        .create(&PostParams::default(), &labelled)
        .await
        .unwrap();
    runs.create(&PostParams::default(), &run_named("unlabelled"))
        .await
        .unwrap();
    labelled.metadata.name = Some("later".into());
    runs.create(&PostParams::default(), &labelled)
        .await
        .unwrap();

    let since = first.metadata.resource_version.unwrap();
    let params = WatchParams::default().labels("app=web").timeout(1);
    let events: Vec<_> = runs
        .watch(&params, &since)
        .await
        .unwrap()
        .collect::<Vec<_>>()
        .await;
    let names: Vec<_> = events
        .into_iter()
        .filter_map(|event| match event.unwrap() {
            WatchEvent::Added(o) => o.metadata.name,
            // kube asks for bookmarks; one closes the watch at its timeout.
            WatchEvent::Bookmark(_) => None,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(names, ["later"], "timeoutSeconds ends the watch");
}

#[tokio::test]
async fn requests_without_a_known_token_are_401() {
    let api = ApiDouble::start().await;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/apis/tekton.dev/v1/namespaces/{TENANT}/pipelineruns",
        api.url()
    );
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(
        (
            body["kind"].as_str(),
            body["reason"].as_str(),
            body["code"].as_i64()
        ),
        (Some("Status"), Some("Unauthorized"), Some(401))
    );
    let forged = http.get(&url).bearer_auth("forged").send().await.unwrap();
    assert_eq!(forged.status(), 401);
    let known = http
        .get(&url)
        .bearer_auth(api.token())
        .send()
        .await
        .unwrap();
    assert_eq!(known.status(), 200);
    assert_eq!(api.requests()[0].status, Some(401));
}

#[tokio::test]
async fn other_tokens_authenticate_as_their_own_user() {
    let api = ApiDouble::start().await;
    let alice = api.client_as("alice").await;
    let denied = status(
        runs(alice.clone(), TENANT)
            .list(&ListParams::default())
            .await,
    );
    assert!(
        denied.message.contains("User \"alice\" cannot list"),
        "{}",
        denied.message
    );
    api.grant("alice", &["list"], "tekton.dev", "*", TENANT);
    assert!(api.is_allowed("alice", "list", "tekton.dev", "pipelineruns", TENANT));
    runs(alice, TENANT)
        .list(&ListParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn seeded_objects_are_served_and_watched() {
    let api = ApiDouble::start().await;
    let stored = api.insert(
        "triggers.tekton.dev",
        "triggers",
        TENANT,
        json!({
            "apiVersion": "triggers.tekton.dev/v1beta1",
            "kind": "Trigger",
            "metadata": {"name": "on-push"},
            "spec": {},
        }),
    );
    assert_eq!(stored["metadata"]["resourceVersion"], "1");
    assert_eq!(stored["metadata"]["namespace"], TENANT);
    let triggers: Api<DynamicObject> = Api::namespaced_with(
        api.client().await,
        TENANT,
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "triggers.tekton.dev",
            "v1beta1",
            "Trigger",
        )),
    );
    let list = triggers.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);

    let mut events = Box::pin(triggers.watch(&WatchParams::default(), "1").await.unwrap());
    let mut changed = stored.clone();
    changed["spec"] = json!({"interceptors": []});
    api.insert("triggers.tekton.dev", "triggers", TENANT, changed);
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(event, WatchEvent::Modified(_)), "{event:?}");

    api.clear();
    assert_eq!(
        api.object_count("triggers.tekton.dev", "triggers", TENANT),
        0
    );
    assert!(
        api.object("triggers.tekton.dev", "triggers", TENANT, "on-push")
            .is_none()
    );
}

#[tokio::test]
async fn written_kubeconfig_points_kube_at_the_double() {
    let api = ApiDouble::builder().namespace(TENANT).start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = api.write_kubeconfig(dir.path());
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, TENANT);
    let client = kube::Client::try_from(config).unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
    let runs: Api<DynamicObject> = Api::default_namespaced_with(client, &pipeline_runs());
    runs.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        api.requests().last().unwrap().namespace.as_deref(),
        Some(TENANT)
    );
}

#[tokio::test]
async fn dropping_the_double_stops_it_and_ends_watches() {
    let api = ApiDouble::start().await;
    let runs = runs(api.client().await, TENANT);
    let mut events = Box::pin(runs.watch(&WatchParams::default(), "0").await.unwrap());
    let url = api.url();
    drop(api);
    let ended = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
    assert!(
        matches!(ended, Ok(None | Some(Err(_)))),
        "the watch should end when the double is dropped"
    );
    let after = reqwest::Client::new()
        .get(format!("{url}/version"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(after.is_err(), "the double still answers after drop");
}
