//! Conformance with Tekton Triggers' documented behaviour, through the whole offline path:
//! YAML configuration → catalogue → interceptors → bindings → template → labelled objects,
//! exactly as the dispatcher plans a trigger (`plan_trigger`), without a cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use serde_json::{Value, json};
use sluice_dispatcher::args::InterceptorArgs;
use sluice_dispatcher::dispatch::{GroupOutcomes, initial_state, plan_trigger};
use sluice_dispatcher::interceptor::{EventState, Interceptors};
use sluice_runtime::envelope::{EventMeta, SCHEMA_VERSION};
use sluice_triggers::catalogue::{Catalogue, Listener, Trigger};
use sluice_triggers::config::load_str;
use sluice_triggers::headers::Headers;
use sluice_triggers::idempotency;
use sluice_triggers::plan::Plan;

const EVENT_ID: &str = "5d0f9c1e-0000-4000-8000-00000000c0de";

fn interceptors() -> Interceptors {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        interceptors: InterceptorArgs,
    }
    Cli::parse_from(["conformance"]).interceptors.interceptors()
}

/// One listener `team-a/l` with one trigger `t` binding `bindings` into a template whose
/// single PipelineRun carries `params` (each `$(tt.params.NAME)`), after `interceptors`.
fn config(interceptors: &str, bindings: &str, template_params: &str, params: &str) -> Catalogue {
    let yaml = format!(
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: l, namespace: team-a}}
spec:
  triggers:
    - name: t
      interceptors: {interceptors}
      bindings: {bindings}
      template: {{ref: tpl}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {{name: tpl, namespace: team-a}}
spec:
  params: {template_params}
  resourcetemplates:
    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata: {{generateName: run-}}
      spec:
        params: {params}
"#
    );
    let catalogue = load_str("conformance.yaml", &yaml);
    assert!(catalogue.issues().is_empty(), "{:#?}", catalogue.issues());
    catalogue
}

fn meta(headers: &[(&str, &str)]) -> EventMeta {
    let mut all = Headers::new();
    for (name, value) in headers {
        all.append(name, *value);
    }
    EventMeta {
        schema: SCHEMA_VERSION,
        event_id: EVENT_ID.to_owned(),
        namespace: "team-a".to_owned(),
        listener: "l".to_owned(),
        received_at_ms: 0,
        idempotency_key: String::new(),
        triggers: vec!["t".to_owned()],
        traceparent: None,
        request_url: "/hooks/team-a/l?source=ci".to_owned(),
        headers: all,
    }
}

async fn plan(catalogue: &Catalogue, body: &str, headers: &[(&str, &str)]) -> Plan {
    let listener = catalogue.listener("team-a", "l").unwrap();
    let meta = meta(headers);
    let input = initial_state(Bytes::from(body.to_owned()), &meta);
    plan_first_trigger(listener, &meta, &input).await
}

/// The key the dispatcher names `trigger`'s run of the event with.
fn run_key(meta: &EventMeta, trigger: &Trigger) -> String {
    let event_key = idempotency::event_key(&meta.idempotency_key, &meta.event_id);
    idempotency::run_key(&event_key, trigger)
}

/// The plan of the listener's first trigger, named from the event's keys as the dispatcher
/// names it.
async fn plan_first_trigger(listener: &Listener, meta: &EventMeta, input: &EventState) -> Plan {
    let trigger = &listener.triggers[0];
    let run_key = run_key(meta, trigger);
    plan_trigger(
        &interceptors(),
        listener,
        trigger,
        meta,
        &run_key,
        input,
        &mut GroupOutcomes::default(),
    )
    .await
    .unwrap()
}

fn objects(plan: Plan) -> Vec<Value> {
    match plan {
        Plan::Create(objects) => objects,
        Plan::Filtered {
            interceptor,
            reason,
        } => panic!("filtered by {interceptor}: {reason}"),
    }
}

/// The value of the first PipelineRun param, as the API server would receive it.
async fn rendered(binding: &str, body: &str, headers: &[(&str, &str)]) -> Value {
    let catalogue = config(
        "[]",
        &format!("[{{name: p, value: '{binding}'}}]"),
        "[{name: p}]",
        "[{name: p, value: $(tt.params.p)}]",
    );
    let objects = objects(plan(&catalogue, body, headers).await);
    let wire: Value = serde_json::from_str(&objects[0].to_string()).unwrap();
    wire["spec"]["params"][0]["value"].clone()
}

#[tokio::test]
async fn strings_are_inserted_json_escaped_and_arrive_exactly() {
    assert_eq!(
        rendered("$(body.a)", r#"{"a":"v\r\n烈"}"#, &[]).await,
        "v\r\n烈"
    );
}

#[tokio::test]
async fn a_negative_slice_takes_the_last_element_as_compact_json() {
    assert_eq!(
        rendered("$(body.a[-1:])", r#"{"a":[{"k":1},{"k":2},{"k":3}]}"#, &[]).await,
        r#"{"k":3}"#
    );
}

#[tokio::test]
async fn a_repeated_header_joins_its_values_and_matches_any_case() {
    let headers = [("Header-One", "val1"), ("Header-One", "val2")];
    assert_eq!(
        rendered("$(header.header-one)", "{}", &headers).await,
        "val1,val2"
    );
    assert_eq!(
        rendered("$(header.HEADER-ONE)", "{}", &headers).await,
        "val1,val2"
    );
}

#[tokio::test]
async fn numbers_booleans_null_and_objects_are_inserted_literally_and_exactly() {
    let body = r#"{"n":9007199254740993,"f":1.5,"t":true,"z":null,"o":{"b":[1,"x"]}}"#;
    assert_eq!(
        rendered("$(body.n)", body, &[]).await,
        "9007199254740993",
        "integers above 2^53 stay exact"
    );
    assert_eq!(rendered("$(body.f)", body, &[]).await, "1.5");
    assert_eq!(rendered("$(body.t)", body, &[]).await, "true");
    assert_eq!(rendered("$(body.z)", body, &[]).await, "null");
    assert_eq!(rendered("$(body.o)", body, &[]).await, r#"{"b":[1,"x"]}"#);
    assert_eq!(
        rendered("$(context.eventID)", body, &[]).await,
        EVENT_ID,
        "context.eventID"
    );
}

#[tokio::test]
async fn an_object_param_inside_json_text_renders_as_that_json() {
    let catalogue = config(
        "[]",
        "[{name: p1, value: $(body.obj)}]",
        "[{name: p1}]",
        r#"[{name: payload, value: '{"foo": $(tt.params.p1)}'}]"#,
    );
    let objects = objects(plan(&catalogue, r#"{"obj":{"a":"b"}}"#, &[]).await);
    let payload = objects[0]["spec"]["params"][0]["value"].as_str().unwrap();
    assert_eq!(payload, r#"{"foo": {"a":"b"}}"#);
    let parsed: Value = serde_json::from_str(payload).unwrap();
    assert_eq!(parsed, json!({"foo": {"a": "b"}}));
}

#[tokio::test]
async fn uid_is_one_value_shared_by_every_resource_of_a_run() {
    let yaml = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - name: t
      template:
        spec:
          resourcetemplates:
            - {apiVersion: v1, kind: ConfigMap, metadata: {name: "cfg-$(uid)"}}
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {name: "run-$(uid)"}
              spec: {params: [{name: config, value: "cfg-$(uid)"}]}
"#;
    let catalogue = load_str("uid.yaml", yaml);
    let first = objects(plan(&catalogue, "{}", &[]).await);
    let uid = first[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .strip_prefix("cfg-")
        .unwrap()
        .to_owned();
    assert_eq!(first[1]["metadata"]["name"], format!("run-{uid}"));
    assert_eq!(first[1]["spec"]["params"][0]["value"], format!("cfg-{uid}"));
    let again = objects(plan(&catalogue, "{}", &[]).await);
    assert_eq!(
        again[0]["metadata"]["name"], first[0]["metadata"]["name"],
        "a redelivery of the same event is the same run, with the same uid"
    );
    let listener = catalogue.listener("team-a", "l").unwrap();
    let mut other = meta(&[]);
    other.idempotency_key = "team-a/l/another-delivery".to_owned();
    let input = initial_state(Bytes::from_static(b"{}"), &other);
    let second = objects(plan_first_trigger(listener, &other, &input).await);
    assert_ne!(
        second[0]["metadata"]["name"], first[0]["metadata"]["name"],
        "another webhook is another run, with its own uid"
    );
}

#[tokio::test]
async fn variable_references_from_the_event_are_escaped_for_tekton() {
    assert_eq!(
        rendered("$(body.title)", r#"{"title":"$(tasks.x.results.y)"}"#, &[]).await,
        "$$(tasks.x.results.y)"
    );
}

#[tokio::test]
async fn defaults_seed_params_bindings_override_and_undeclared_stay_literal() {
    let catalogue = config(
        "[]",
        "[{name: given, value: $(body.v)}, {name: fallback, value: $(body.missing)}]",
        "[{name: given, default: d1}, {name: fallback, default: d2}, {name: only-default, default: d3}, {name: neither}]",
        "[{name: a, value: $(tt.params.given)}, {name: b, value: $(tt.params.fallback)}, {name: c, value: $(tt.params.only-default)}, {name: d, value: $(tt.params.neither)}, {name: e, value: $(params.legacy)}]",
    );
    let objects = objects(plan(&catalogue, r#"{"v":"from-body"}"#, &[]).await);
    let values: Vec<&str> = objects[0]["spec"]["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        values,
        [
            "from-body",
            "d2",
            "d3",
            "$(tt.params.neither)",
            "$(params.legacy)"
        ]
    );
}

#[tokio::test]
async fn a_missing_field_without_a_default_fails_the_trigger_and_names_it() {
    let catalogue = config(
        "[]",
        "[{name: p, value: $(body.absent)}]",
        "[{name: p}]",
        "[{name: p, value: $(tt.params.p)}]",
    );
    let listener = catalogue.listener("team-a", "l").unwrap();
    let meta = meta(&[]);
    let input = initial_state(Bytes::from_static(b"{}"), &meta);
    let error = plan_trigger(
        &interceptors(),
        listener,
        &listener.triggers[0],
        &meta,
        &run_key(&meta, &listener.triggers[0]),
        &input,
        &mut GroupOutcomes::default(),
    )
    .await
    .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("body.absent"), "{message}");
}

// ----- cel ---------------------------------------------------------------------------------

const PULL_REQUEST: &str = r#"{
  "action": "opened",
  "number": 42,
  "pull_request": {"head": {"sha": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567", "ref": "feature/x"}},
  "repository": {"full_name": "acme/app"}
}"#;

fn cel_config(interceptor: &str) -> Catalogue {
    config(
        &format!("[{interceptor}]"),
        "[{name: sha, value: $(extensions.pr.short_sha)}, {name: number, value: $(body.number)}]",
        "[{name: sha}, {name: number}]",
        "[{name: sha, value: $(tt.params.sha)}, {name: number, value: $(tt.params.number)}]",
    )
}

const GITHUB_FILTER: &str =
    "header.match('X-GitHub-Event', 'pull_request') && body.action in ['opened','synchronize']";

#[tokio::test]
async fn a_cel_filter_and_overlay_feed_the_bindings() {
    for form in [
        format!(
            "{{ref: {{name: cel}}, params: [{{name: filter, value: \"{GITHUB_FILTER}\"}}, {{name: overlays, value: [{{key: pr.short_sha, expression: 'body.pull_request.head.sha.truncate(7)'}}]}}]}}"
        ),
        format!(
            "{{cel: {{filter: \"{GITHUB_FILTER}\", overlays: [{{key: pr.short_sha, expression: 'body.pull_request.head.sha.truncate(7)'}}]}}}}"
        ),
    ] {
        let catalogue = cel_config(&form);
        let plan = plan(
            &catalogue,
            PULL_REQUEST,
            &[("X-GitHub-Event", "pull_request")],
        )
        .await;
        let objects = objects(plan);
        assert_eq!(
            objects[0]["spec"]["params"][0]["value"], "0a1b2c3",
            "{form}"
        );
        assert_eq!(objects[0]["spec"]["params"][1]["value"], "42", "{form}");
    }
}

#[tokio::test]
async fn a_false_cel_filter_creates_nothing_and_says_why() {
    let catalogue = cel_config(&format!(
        "{{ref: {{name: cel}}, params: [{{name: filter, value: \"{GITHUB_FILTER}\"}}, {{name: overlays, value: [{{key: pr.short_sha, expression: 'body.pull_request.head.sha.truncate(7)'}}]}}]}}"
    ));
    for (headers, body) in [
        (&[("X-GitHub-Event", "push")][..], PULL_REQUEST.to_owned()),
        (
            &[("X-GitHub-Event", "pull_request")][..],
            PULL_REQUEST.replace("opened", "closed"),
        ),
    ] {
        match plan(&catalogue, &body, headers).await {
            Plan::Filtered {
                interceptor,
                reason,
            } => {
                assert_eq!(interceptor, "cel");
                assert!(reason.contains("did not return true"), "{reason}");
                assert!(reason.contains("header.match"), "{reason}");
            }
            Plan::Create(objects) => panic!("created {objects:?}"),
        }
    }
}

#[tokio::test]
async fn cel_sees_the_request_url_and_overlays_nest_by_dotted_key() {
    let catalogue = config(
        "[{cel: {overlays: [{key: a.b.c, expression: 'requestURL.parseURL().queryStrings[\"source\"][0]'}, {key: a.n, expression: 'body.big + 1'}]}}]",
        "[{name: s, value: $(extensions.a.b.c)}, {name: a, value: $(extensions.a)}]",
        "[{name: s}, {name: a}]",
        "[{name: s, value: $(tt.params.s)}, {name: a, value: $(tt.params.a)}]",
    );
    let objects = objects(plan(&catalogue, r#"{"big": 9007199254740993}"#, &[]).await);
    assert_eq!(objects[0]["spec"]["params"][0]["value"], "ci");
    assert_eq!(
        objects[0]["spec"]["params"][1]["value"], r#"{"b":{"c":"ci"},"n":9007199254740994}"#,
        "cel arithmetic on integers stays exact"
    );
}

// ----- trigger groups ----------------------------------------------------------------------

/// A webhook interceptor on 127.0.0.1 that counts its calls and adds an extension.
async fn counting_interceptor() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({"continue": true, "extensions": {"checked": "yes"}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, calls)
}

#[tokio::test]
async fn a_trigger_groups_interceptors_run_once_for_all_the_triggers_it_selects() {
    let (addr, calls) = counting_interceptor().await;
    let yaml = format!(
        r#"
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {{name: check}}
spec: {{clientConfig: {{url: "http://{addr}/"}}}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {{name: build, namespace: team-a, labels: {{stage: ci}}}}
spec:
  bindings: [{{name: c, value: $(extensions.checked)}}]
  template:
    spec:
      params: [{{name: c}}]
      resourcetemplates: [{{apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {{generateName: build-}}, spec: {{params: [{{name: c, value: $(tt.params.c)}}]}}}}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {{name: lint, namespace: team-a, labels: {{stage: ci}}}}
spec:
  interceptors: [{{cel: {{filter: "body.lint"}}}}]
  template:
    spec:
      resourcetemplates: [{{apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {{generateName: lint-}}}}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: l, namespace: team-a}}
spec:
  triggerGroups:
    - name: checked
      interceptors: [{{ref: {{name: check}}}}]
      triggerSelector: {{labelSelector: {{matchLabels: {{stage: ci}}}}}}
"#
    );
    let options = sluice_triggers::config::LoadOptions {
        interceptor_allow: vec!["127.0.0.1".to_owned()],
        ..Default::default()
    };
    let catalogue = sluice_triggers::config::load_str_with("groups.yaml", &yaml, &options);
    assert!(catalogue.issues().is_empty(), "{:#?}", catalogue.issues());
    let listener = catalogue.listener("team-a", "l").unwrap();
    let meta = meta(&[]);
    let input = initial_state(Bytes::from_static(br#"{"lint": false}"#), &meta);
    let (interceptors, mut groups) = (interceptors(), GroupOutcomes::default());
    let mut outcomes = Vec::new();
    for trigger in &listener.triggers {
        let run_key = run_key(&meta, trigger);
        let plan = plan_trigger(
            &interceptors,
            listener,
            trigger,
            &meta,
            &run_key,
            &input,
            &mut groups,
        )
        .await
        .unwrap();
        outcomes.push((trigger.name.clone(), plan));
    }
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the group's interceptor is called once per event"
    );
    let (build, lint) = (&outcomes[0], &outcomes[1]);
    assert_eq!(build.0, "build");
    match &build.1 {
        Plan::Create(objects) => assert_eq!(objects[0]["spec"]["params"][0]["value"], "yes"),
        other => panic!("{other:?}"),
    }
    assert_eq!(lint.0, "lint");
    assert!(
        matches!(&lint.1, Plan::Filtered { interceptor, .. } if interceptor == "cel"),
        "then each trigger's own interceptors run: {:?}",
        lint.1
    );
}

// ----- bodies that are not JSON: Slack's forms, payload validation off ---------------------

/// A Slack app's listener: payload validation off, the slack interceptor reading
/// `requested` (a YAML flow list) into the extensions, `bindings` into a PipelineRun's
/// params (one per binding, named as the binding).
fn slack_config(requested: &str, bindings: &[(&str, &str)]) -> Catalogue {
    let params: Vec<String> = bindings
        .iter()
        .map(|(name, _)| format!("{{name: {name}}}"))
        .collect();
    let values: Vec<String> = bindings
        .iter()
        .map(|(name, _)| format!("{{name: {name}, value: $(tt.params.{name})}}"))
        .collect();
    let bound: Vec<String> = bindings
        .iter()
        .map(|(name, value)| format!("{{name: {name}, value: '{value}'}}"))
        .collect();
    let yaml = format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: slack, namespace: team-a}}
stringData: {{signing-secret: s3cret}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata:
  name: l
  namespace: team-a
  annotations: {{tekton.dev/payload-validation: "false"}}
spec:
  triggers:
    - name: t
      interceptors:
        - ref: {{name: slack}}
          params:
            - {{name: secretRef, value: {{secretName: slack, secretKey: signing-secret}}}}
            - {{name: requestedFields, value: {requested}}}
      bindings: [{}]
      template:
        spec:
          params: [{}]
          resourcetemplates:
            - {{apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {{generateName: run-}}, spec: {{params: [{}]}}}}
"#,
        bound.join(", "),
        params.join(", "),
        values.join(", ")
    );
    let catalogue = load_str("slack.yaml", &yaml);
    assert!(catalogue.issues().is_empty(), "{:#?}", catalogue.issues());
    catalogue
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// The PipelineRun's params as `name → value`.
fn run_params(plan: Plan) -> std::collections::BTreeMap<String, String> {
    objects(plan)[0]["spec"]["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let value = p["value"].as_str().unwrap().to_owned();
            (p["name"].as_str().unwrap().to_owned(), value)
        })
        .collect()
}

#[tokio::test]
async fn a_slash_command_creates_a_run_with_its_requested_fields_in_the_extensions() {
    let catalogue = slack_config(
        "[text, user_id]",
        &[
            ("text", "$(extensions.text)"),
            ("first", "$(extensions.text[0])"),
            ("user", "$(extensions.user_id[0])"),
            ("command", "$(body.command[0])"),
        ],
    );
    let body = "token=t0k&team_id=T1&user_id=U2&command=%2Fbuild&text=main+2222";
    let params = run_params(plan(&catalogue, body, &[FORM]).await);
    assert_eq!(
        params["text"], r#"["main 2222"]"#,
        "a field is its list of values"
    );
    assert_eq!(params["first"], "main 2222");
    assert_eq!(params["user"], "U2");
    assert_eq!(
        params["command"], "/build",
        "the bindings read the form as Tekton converts it"
    );
}

#[tokio::test]
async fn a_missing_requested_field_or_a_body_that_is_no_form_stops_the_trigger() {
    let catalogue = slack_config("[text, channel_id]", &[("text", "$(extensions.text)")]);
    let filtered = |plan: Plan| match plan {
        Plan::Filtered {
            interceptor,
            reason,
        } => format!("{interceptor}: {reason}"),
        Plan::Create(objects) => panic!("created {objects:?}"),
    };
    let reason = filtered(plan(&catalogue, "text=a&user_id=U2", &[FORM]).await);
    assert_eq!(
        reason,
        "slack: requested field `channel_id` is not in the form"
    );
    let reason = filtered(
        plan(
            &catalogue,
            "text=a&user_id=U2",
            &[("Content-Type", "text/plain")],
        )
        .await,
    );
    assert!(reason.contains("not form-encoded"), "{reason}");
    // One field only: Tekton leaves the body as it is, and the interceptor cannot read it.
    let reason = filtered(plan(&catalogue, "text=a", &[FORM]).await);
    assert!(reason.contains("is not a form's fields"), "{reason}");
}

#[tokio::test]
async fn hostile_field_names_and_values_stay_inert() {
    let catalogue = slack_config(
        "['$(tt.params.secret)', 'a.b', text]",
        &[
            ("text", "$(extensions.text[0])"),
            ("dotted", "$(extensions.a\\.b[0])"),
            ("odd", "$(body.x)"),
        ],
    );
    let body = "text=%24%28params.deploy-token%29+%22%7D%5D&a.b=%24%28uid%29&%24%28tt.params.secret%29=v&x=%24%28tasks.x.results.y%29";
    let params = run_params(plan(&catalogue, body, &[FORM]).await);
    assert_eq!(params["text"], "$$(params.deploy-token) \"}]");
    assert_eq!(params["dotted"], "$$(uid)");
    assert_eq!(params["odd"], r#"["$$(tasks.x.results.y)"]"#);
}

#[tokio::test]
async fn a_body_that_is_not_json_fails_the_bindings_and_cel_as_in_tekton() {
    let catalogue = config(
        "[]",
        "[{name: p, value: $(body)}]",
        "[{name: p}]",
        "[{name: p, value: $(tt.params.p)}]",
    );
    let listener = catalogue.listener("team-a", "l").unwrap();
    let meta = meta(&[("Content-Type", "text/plain")]);
    let input = initial_state(Bytes::from_static(b"plain text"), &meta);
    assert_eq!(&input.body_bytes()[..], b"plain text", "passed on as it is");
    let trigger = &listener.triggers[0];
    let error = plan_trigger(
        &interceptors(),
        listener,
        trigger,
        &meta,
        &run_key(&meta, trigger),
        &input,
        &mut GroupOutcomes::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), sluice_runtime::retry::FailureKind::Permanent);
    assert!(
        error
            .to_string()
            .starts_with("bindings failed: the body is not JSON ("),
        "{error}"
    );
    assert!(!error.to_string().contains("plain text"), "{error}");

    let catalogue = cel_config("{ref: {name: cel}, params: [{name: filter, value: 'true'}]}");
    let listener = catalogue.listener("team-a", "l").unwrap();
    let trigger = &listener.triggers[0];
    let error = plan_trigger(
        &interceptors(),
        listener,
        trigger,
        &meta,
        &run_key(&meta, trigger),
        &input,
        &mut GroupOutcomes::default(),
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("the body is not JSON"),
        "{error}"
    );
}

#[tokio::test]
async fn each_trigger_of_a_group_without_interceptors_converts_a_form_by_its_own_chain() {
    use std::sync::{Arc, Mutex};
    let received = Arc::new(Mutex::new(Vec::<Bytes>::new()));
    let log = received.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: Bytes| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(body.clone());
                body
            }
        }),
    );
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(server, app).await;
    });
    let yaml = format!(
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {{name: a-cel-first, namespace: team-a, labels: {{app: slack}}}}
spec:
  interceptors: [{{cel: {{filter: "has(body.text)"}}}}]
  bindings: [{{name: text, value: '$(body.text[0])'}}]
  template:
    spec:
      params: [{{name: text}}]
      resourcetemplates: [{{apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {{generateName: a-}}, spec: {{params: [{{name: text, value: $(tt.params.text)}}]}}}}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {{name: b-webhook-first, namespace: team-a, labels: {{app: slack}}}}
spec:
  interceptors: [{{webhook: {{url: "http://{addr}/"}}}}]
  template:
    spec:
      resourcetemplates: [{{apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {{generateName: b-}}}}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata:
  name: l
  namespace: team-a
  annotations: {{tekton.dev/payload-validation: "false"}}
spec:
  triggerGroups:
    - name: slack
      triggerSelector: {{labelSelector: {{matchLabels: {{app: slack}}}}}}
"#
    );
    let options = sluice_triggers::config::LoadOptions {
        interceptor_allow: vec!["127.0.0.1".to_owned()],
        ..Default::default()
    };
    let catalogue = sluice_triggers::config::load_str_with("groups.yaml", &yaml, &options);
    assert!(catalogue.issues().is_empty(), "{:#?}", catalogue.issues());
    let listener = catalogue.listener("team-a", "l").unwrap();
    let meta = meta(&[FORM]);
    let form = "text=hello+world&user_id=U2";
    let input = initial_state(Bytes::from_static(form.as_bytes()), &meta);
    let (interceptors, mut groups) = (interceptors(), GroupOutcomes::default());
    let mut names = Vec::new();
    for trigger in &listener.triggers {
        names.push(trigger.name.clone());
        let plan = plan_trigger(
            &interceptors,
            listener,
            trigger,
            &meta,
            &run_key(&meta, trigger),
            &input,
            &mut groups,
        )
        .await;
        if trigger.name == "a-cel-first" {
            let params = run_params(plan.unwrap());
            assert_eq!(params["text"], "hello world", "converted before `cel`");
        }
    }
    assert_eq!(names, ["a-cel-first", "b-webhook-first"]);
    assert_eq!(
        received.lock().unwrap().as_slice(),
        [Bytes::from_static(form.as_bytes())],
        "a legacy webhook interceptor that comes first is sent the form as it came"
    );
}

// ----- the github interceptor's GitHub API features ----------------------------------------

/// A stand-in for GitHub's API: pull request 42 changed `docs/guide.md` and `src/lib.rs`
/// (over two pages), pull request 43 `src/main.rs`.
async fn fake_github() -> String {
    let app = axum::Router::new().fallback(|request: axum::extract::Request| async move {
        let target = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let (link, files) = match target.as_str() {
            "/repos/acme/app/pulls/42/files?per_page=100&page=1" => (
                Some("<https://api.github.com/x?per_page=100&page=2>; rel=\"next\""),
                json!([{"filename": "docs/guide.md"}]),
            ),
            "/repos/acme/app/pulls/42/files?per_page=100&page=2" => {
                (None, json!([{"filename": "src/lib.rs"}]))
            }
            "/repos/acme/app/pulls/43/files?per_page=100&page=1" => {
                (None, json!([{"filename": "src/main.rs"}]))
            }
            _ => {
                return (
                    http::StatusCode::NOT_FOUND,
                    http::HeaderMap::new(),
                    String::new(),
                );
            }
        };
        let mut headers = http::HeaderMap::new();
        if let Some(link) = link {
            headers.insert(http::header::LINK, link.parse().unwrap());
        }
        (http::StatusCode::OK, headers, files.to_string())
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_cel_filter_after_the_github_interceptor_sees_the_changed_files() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        interceptors: InterceptorArgs,
    }
    let api = fake_github().await;
    let interceptors = Cli::parse_from(["conformance", "--github-api-url", &api])
        .interceptors
        .interceptors();
    let catalogue = config(
        "[{ref: {name: github}, params: [{name: addChangedFiles, value: {enabled: true}}]}, \
         {cel: {filter: \"extensions.changed_files.split(',').exists(f, f.startsWith('docs/'))\"}}]",
        "[{name: files, value: $(extensions.changed_files)}]",
        "[{name: files}]",
        "[{name: files, value: $(tt.params.files)}]",
    );
    let listener = catalogue.listener("team-a", "l").unwrap();
    let trigger = &listener.triggers[0];
    let meta = meta(&[("X-GitHub-Event", "pull_request")]);
    let plan_for = |number: u64| {
        let body =
            json!({"action": "opened", "number": number, "repository": {"full_name": "acme/app"}});
        let input = initial_state(Bytes::from(body.to_string()), &meta);
        let interceptors = interceptors.clone();
        let meta = meta.clone();
        async move {
            plan_trigger(
                &interceptors,
                listener,
                trigger,
                &meta,
                &run_key(&meta, trigger),
                &input,
                &mut GroupOutcomes::default(),
            )
            .await
            .unwrap()
        }
    };
    let objects = objects(plan_for(42).await);
    assert_eq!(
        objects[0]["spec"]["params"][0]["value"],
        "docs/guide.md,src/lib.rs"
    );
    match plan_for(43).await {
        Plan::Filtered { interceptor, .. } => assert_eq!(interceptor, "cel"),
        Plan::Create(objects) => panic!("created {objects:?}"),
    }
}
