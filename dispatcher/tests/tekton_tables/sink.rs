//! `pkg/sink/sink_test.go`: what an EventListener creates for an event, through selection,
//! interceptors, bindings and templates (`HandleEvent`), and how a chain of interceptors
//! passes the event on (`ExecuteTriggerInterceptors`). `pkg/sink/validate_payload_test.go`,
//! whose result is the HTTP answer, runs in ingest's suite (`ingest/tests/tekton_tables.rs`).
//!
//! A request is judged at the edge ([`sluice_triggers::auth::admit_at`]) and each accepted
//! trigger planned by `dispatch::plan_trigger`; the objects are compared without the
//! idempotency annotation Sluice adds. Tekton's tables route interceptor calls to an
//! in-process server; here webhook interceptors are local stand-ins at `clientConfig.url`
//! (a legacy `webhook.objectRef` Service becomes `webhook.url`), and Tekton's core
//! interceptors are built into Sluice, `cel` included.

use serde_json::{Value, json};

use crate::harness::{
    Answer, EVENT_ID, Handled, Outcome, Request, StandIn, created, handle, hmac_header, load,
};
use crate::suite::{Compared, File, Suite};

const SINK: &str = "pkg/sink/sink_test.go";

const EVENT_BODY: &str = r#"{"head_commit": {"id": "testrevision"}, "repository": {"url": "testurl"}, "foo": "bar\t\r\nbaz昨"}"#;

/// `makeGitCloneTTSpec(name)` as YAML: a TaskRun named by the `name` param.
fn template_spec(name: &str) -> String {
    format!(
        "{{params: [{{name: url}}, {{name: revision}}, {{name: name, default: {name}}}, \
         {{name: app, default: triggers}}, {{name: type, default: bar}}], \
         resourcetemplates: [{{apiVersion: tekton.dev/v1, kind: TaskRun, metadata: \
         {{name: $(tt.params.name), namespace: foo, labels: {{app: $(tt.params.app), type: $(tt.params.type)}}}}, \
         spec: {{params: [{{name: url, value: $(tt.params.url)}}, {{name: git-revision, value: $(tt.params.revision)}}], \
         taskRef: {{name: git-clone}}}}}}]}}"
    )
}

/// `gitCloneTBSpec` with the run named `name`.
fn bindings(name: &str) -> String {
    format!(
        "[{{name: url, value: $(body.repository.url)}}, {{name: revision, value: $(body.head_commit.id)}}, \
         {{name: name, value: {name}}}, {{name: app, value: $(body.foo)}}, {{name: type, value: $(header.Content-Type)}}]"
    )
}

fn binding_doc(namespace: &str) -> String {
    format!(
        "apiVersion: triggers.tekton.dev/v1beta1\nkind: TriggerBinding\nmetadata: {{name: git-clone, namespace: {namespace}}}\n\
         spec: {{params: {}}}\n",
        bindings("git-clone-run")
    )
}

fn template_doc(namespace: &str) -> String {
    format!(
        "apiVersion: triggers.tekton.dev/v1beta1\nkind: TriggerTemplate\nmetadata: {{name: git-clone, namespace: {namespace}}}\n\
         spec: {}\n",
        template_spec("git-clone-test-run")
    )
}

fn trigger_doc(name: &str, namespace: &str, labels: &str, spec: &str) -> String {
    format!(
        "apiVersion: triggers.tekton.dev/v1beta1\nkind: Trigger\nmetadata: {{name: {name}, namespace: {namespace}{labels}}}\n\
         spec: {spec}\n"
    )
}

fn listener_doc(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\nmetadata: {{name: {name}, namespace: foo, uid: el-uid}}\n\
         spec: {spec}\n"
    )
}

fn documents(docs: &[String]) -> String {
    docs.join("---\n")
}

/// The TaskRun Tekton's table expects.
fn task_run(
    name: &str,
    listener: &str,
    trigger: &str,
    app: &str,
    kind: &str,
    url: &str,
    revision: &str,
) -> Value {
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": {
            "name": name,
            "namespace": "foo",
            "labels": {
                "app": app,
                "type": kind,
                "triggers.tekton.dev/eventlistener": listener,
                "triggers.tekton.dev/trigger": trigger,
                "triggers.tekton.dev/triggers-eventid": EVENT_ID,
            },
        },
        "spec": {
            "params": [
                {"name": "url", "value": url},
                {"name": "git-revision", "value": revision},
            ],
            "taskRef": {"name": "git-clone"},
        },
    })
}

/// `gitCloneTaskRun`: what the git-clone binding and template make of the event.
fn git_clone_task_run(name: &str, trigger: &str) -> Value {
    task_run(
        name,
        "my-el",
        trigger,
        "bar\t\r\nbaz昨",
        "application/json",
        "testurl",
        "testrevision",
    )
}

fn event() -> Request {
    Request::new(EVENT_BODY).header("Content-Type", "application/json")
}

/// One `TestHandleEvent` row: configuration, request, and the TaskRuns Tekton creates.
fn handle_event(
    yaml: String,
    cross_namespace: bool,
    request: Request,
    want: Vec<Value>,
) -> Compared {
    let catalogue = load(&yaml, cross_namespace);
    let sluice = created(&handle(&catalogue, "foo", "my-el", &request));
    Compared::new(
        format!(
            "{}; request headers {:?}, body {}{}",
            yaml.replace('\n', " "),
            request.headers,
            String::from_utf8_lossy(&request.body),
            if cross_namespace {
                " (--allow-cross-namespace)"
            } else {
                ""
            }
        ),
        Value::Array(want),
        sluice,
    )
}

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(SINK);
    handle_event_cases(&mut file);
    handle_event_errors(&mut file);
    execute_interceptors(&mut file);
    extend_body_with_extensions(&mut file);
    cloud_events(&mut file);
    file.skip(
        "TestExecuteInterceptors_ConcurrentMapWrite",
        &[""],
        "a data race of Tekton's Go maps, with `cel` interceptors",
    );
}

fn handle_event_cases(file: &mut File<'_>) {
    const F: &str = "TestHandleEvent";
    file.case(F, "single trigger embedded within EventListener", || {
        let yaml = documents(&[
            binding_doc("foo"),
            template_doc("foo"),
            listener_doc(
                "my-el",
                "{triggers: [{name: git-clone-trigger, bindings: [{ref: git-clone, kind: TriggerBinding}], template: {ref: git-clone}}]}",
            ),
        ]);
        handle_event(yaml, false, event(), vec![git_clone_task_run("git-clone-run", "git-clone-trigger")])
    });
    file.case(F, "namespace selector match names", || {
        let yaml = documents(&[
            binding_doc("bar"),
            template_doc("bar"),
            trigger_doc(
                "git-clone-trigger",
                "bar",
                "",
                "{bindings: [{ref: git-clone}], template: {ref: git-clone}}",
            ),
            listener_doc("my-el", "{namespaceSelector: {matchNames: [bar]}}"),
        ]);
        handle_event(
            yaml,
            true,
            event(),
            vec![git_clone_task_run("git-clone-run", "git-clone-trigger")],
        )
    });
    file.case(F, "label selector match expressions", || {
        let yaml = documents(&[
            binding_doc("bar"),
            template_doc("bar"),
            trigger_doc(
                "git-clone-trigger",
                "bar",
                ", labels: {foo: bar}",
                "{bindings: [{ref: git-clone}], template: {ref: git-clone}}",
            ),
            trigger_doc(
                "second-not-invoked-trigger",
                "bar",
                ", labels: {foo: notbar}",
                "{bindings: [{ref: git-clone}], template: {ref: git-clone}}",
            ),
            listener_doc(
                "my-el",
                "{namespaceSelector: {matchNames: [bar]}, labelSelector: {matchLabels: {foo: bar}}}",
            ),
        ]);
        handle_event(yaml, true, event(), vec![git_clone_task_run("git-clone-run", "git-clone-trigger")])
    });
    file.case(
        F,
        "label selector match expressions without namespace selector",
        || {
            let yaml = documents(&[
                binding_doc("foo"),
                template_doc("foo"),
                trigger_doc(
                    "git-clone-trigger",
                    "foo",
                    ", labels: {foo: bar}",
                    "{bindings: [{ref: git-clone}], template: {ref: git-clone}}",
                ),
                trigger_doc(
                    "second-not-invoked-trigger",
                    "foo",
                    ", labels: {foo: notbar}",
                    "{bindings: [{ref: git-clone}], template: {ref: git-clone}}",
                ),
                listener_doc("my-el", "{labelSelector: {matchLabels: {foo: bar}}}"),
            ]);
            handle_event(
                yaml,
                false,
                event(),
                vec![git_clone_task_run("git-clone-run", "git-clone-trigger")],
            )
        },
    );
    file.case(F, "eventlistener with a trigger ref", || {
        let yaml = documents(&[
            binding_doc("foo"),
            template_doc("foo"),
            trigger_doc(
                "git-clone-trigger",
                "foo",
                "",
                "{bindings: [{ref: git-clone}], template: {ref: git-clone}}",
            ),
            listener_doc("my-el", "{triggers: [{triggerRef: git-clone-trigger}]}"),
        ]);
        handle_event(
            yaml,
            false,
            event(),
            vec![git_clone_task_run("git-clone-run", "git-clone-trigger")],
        )
    });
    file.case(
        F,
        "eventlistener with ref to trigger with embedded spec",
        || {
            let yaml = documents(&[
                trigger_doc(
                    "git-clone-trigger",
                    "foo",
                    "",
                    &format!(
                        "{{bindings: {}, template: {{spec: {}}}}}",
                        bindings("git-clone-run"),
                        template_spec("git-clone-test-run")
                    ),
                ),
                listener_doc("my-el", "{triggers: [{triggerRef: git-clone-trigger}]}"),
            ]);
            handle_event(
                yaml,
                false,
                event(),
                vec![git_clone_task_run("git-clone-run", "git-clone-trigger")],
            )
        },
    );
    file.case(F, "with GitHub and CEL interceptors", || {
        let yaml = documents(&[
            secret_doc(),
            core_interceptor_doc("github"),
            core_interceptor_doc("cel"),
            trigger_doc(
                "git-clone-trigger",
                "foo",
                "",
                &format!(
                    "{{interceptors: [{{ref: {{name: github, kind: ClusterInterceptor}}, params: \
                     [{{name: secretRef, value: {{secretKey: secretKey, secretName: secret}}}}, \
                     {{name: eventTypes, value: [pull_request]}}]}}], bindings: {}, template: {{spec: {}}}}}",
                    bindings("git-clone-run"),
                    template_spec("git-clone-test-run")
                ),
            ),
            listener_doc("my-el", "{triggers: [{triggerRef: git-clone-trigger}]}"),
        ]);
        let request = event()
            .header("X-GitHub-Event", "pull_request")
            .header(
                "X-Hub-Signature-256",
                hmac_header("secret", EVENT_BODY.as_bytes(), "sha256"),
            );
        handle_event(yaml, false, request, vec![git_clone_task_run("git-clone-run", "git-clone-trigger")])
    });
    file.case(F, "with BitBucket interceptor", || {
        let yaml = documents(&[
            secret_doc(),
            core_interceptor_doc("bitbucket"),
            trigger_doc(
                "git-clone-trigger",
                "foo",
                "",
                &format!(
                    "{{interceptors: [{{ref: {{name: bitbucket, kind: ClusterInterceptor}}, params: {BITBUCKET_PARAMS}}}], \
                     bindings: {}, template: {{spec: {}}}}}",
                    bindings("git-clone-run"),
                    template_spec("git-clone-test-run")
                ),
            ),
            listener_doc("my-el", "{triggers: [{triggerRef: git-clone-trigger}]}"),
        ]);
        handle_event(yaml, false, bitbucket_event(), vec![git_clone_task_run("git-clone-run", "git-clone-trigger")])
    });
    file.documented(
        F,
        "with namespaced interceptor",
        "docs/tekton.md, Expressions: Headers that carry credentials are not there",
        NAMESPACED_INTERCEPTOR_RESULT,
        || {
        // The namespaced Interceptor stands in for Tekton's core bitbucket interceptor: it
        // checks the event type and the signature of the body it is sent.
        let interceptor = StandIn::serve(tekton_bitbucket_interceptor);
        let yaml = documents(&[
            secret_doc(),
            format!(
                "apiVersion: triggers.tekton.dev/v1alpha1\nkind: Interceptor\nmetadata: {{name: bitbucket, namespace: foo}}\n\
                 spec: {{clientConfig: {{url: \"{}\"}}}}\n",
                interceptor.url("/bitbucket")
            ),
            trigger_doc(
                "git-clone-trigger",
                "foo",
                "",
                &format!(
                    "{{interceptors: [{{ref: {{name: bitbucket, kind: NamespacedInterceptor}}, params: {BITBUCKET_PARAMS}}}], \
                     bindings: {}, template: {{spec: {}}}}}",
                    bindings("git-clone-run"),
                    template_spec("git-clone-test-run")
                ),
            ),
            listener_doc("my-el", "{triggers: [{triggerRef: git-clone-trigger}]}"),
        ]);
        let mut compared = handle_event(
            yaml,
            false,
            bitbucket_event(),
            vec![git_clone_task_run("git-clone-run", "git-clone-trigger")],
        );
        let headers: Vec<String> = interceptor
            .requests()
            .iter()
            .flat_map(|r| r.json()["header"].as_object().cloned().unwrap_or_default())
            .map(|(name, _)| name)
            .collect();
        compared.sluice.push_str(&format!(" (the interceptor was sent the headers {headers:?})"));
        compared
    },
    );
    file.case(F, "eventListener with multiple triggers", || {
        let mut docs = Vec::new();
        let mut want = Vec::new();
        for i in 0..10 {
            docs.push(trigger_doc(
                &format!("git-clone-trigger-{i}"),
                "foo",
                "",
                &format!(
                    "{{bindings: {}, template: {{spec: {}}}}}",
                    bindings(&format!("git-clone-run-{i}")),
                    template_spec(&format!("git-clone-run-{i}"))
                ),
            ));
            want.push(git_clone_task_run(
                &format!("git-clone-run-{i}"),
                &format!("git-clone-trigger-{i}"),
            ));
        }
        docs.push(listener_doc(
            "my-el",
            "{namespaceSelector: {matchNames: [foo]}}",
        ));
        want.sort_by_key(|o| o["metadata"]["name"].as_str().unwrap().to_owned());
        handle_event(documents(&docs), false, event(), want)
    });
    file.case(F, "with webhook interceptors", || {
        let webhook = StandIn::serve(|request| {
            // Every header copied back, and the `Name` header as the body's `name`.
            let mut answer = Answer::ok(
                json!({"name": request.header("Name").first().cloned().unwrap_or_default()})
                    .to_string(),
            );
            for (name, value) in &request.headers {
                answer = answer.header(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
            }
            answer
        });
        let yaml = documents(&[
            trigger_doc(
                "git-clone-trigger",
                "foo",
                "",
                &format!(
                    "{{interceptors: [{{webhook: {{url: \"{}\", header: [{{name: Name, value: name-from-webhook}}]}}}}], \
                     bindings: [{{name: url, value: \"https://github.com/tektoncd/triggers\"}}, {{name: revision, value: master}}, \
                     {{name: name, value: $(body.name)}}], template: {{spec: {}}}}}",
                    webhook.url("/"),
                    template_spec("git-clone-test-run")
                ),
            ),
            listener_doc("my-el", "{triggers: [{triggerRef: git-clone-trigger}]}"),
        ]);
        let want = task_run(
            "name-from-webhook",
            "my-el",
            "git-clone-trigger",
            "triggers",
            "bar",
            "https://github.com/tektoncd/triggers",
            "master",
        );
        handle_event(yaml, false, event(), vec![want])
    });
    file.case(F, "with interceptors overlays race", || {
        // Two Triggers with the same `cel` filter and overlay. The listener's own entries
        // also list a `cel` interceptor beside each `triggerRef`, which Tekton's sink
        // ignores (it reads the Trigger) and its admission webhook would refuse; they are
        // left out. `$(body.name)` finds nothing, so `name` falls back to its default.
        let cel = "[{ref: {name: cel, kind: ClusterInterceptor}, params: [{name: filter, value: 'has(body.head_commit)'}, \
                   {name: overlays, value: [{key: foo, expression: 'has(body.head_commit)'}]}]}]";
        let mut docs = vec![core_interceptor_doc("cel")];
        let mut want = Vec::new();
        for trigger in ["git-clone-trigger", "git-clone-trigger-2"] {
            docs.push(trigger_doc(
                trigger,
                "foo",
                "",
                &format!(
                    "{{interceptors: {cel}, bindings: [{{name: url, value: \"https://github.com/tektoncd/triggers\"}}, \
                     {{name: revision, value: master}}, {{name: name, value: $(body.name)}}], template: {{spec: {}}}}}",
                    template_spec(trigger)
                ),
            ));
            want.push(task_run(
                trigger,
                "my-el",
                trigger,
                "triggers",
                "bar",
                "https://github.com/tektoncd/triggers",
                "master",
            ));
        }
        docs.push(listener_doc(
            "my-el",
            "{triggers: [{triggerRef: git-clone-trigger}, {triggerRef: git-clone-trigger-2}]}",
        ));
        handle_event(documents(&docs), false, event(), want)
    });
    file.case(F, "single trigger within EventListener triggerGroup", || {
        let yaml = documents(&[
            binding_doc("foo"),
            template_doc("foo"),
            core_interceptor_doc("cel"),
            trigger_doc(
                "git-clone-trigger",
                "foo",
                ", labels: {foo: bar}",
                "{bindings: [{ref: git-clone, kind: TriggerBinding}], template: {ref: git-clone}}",
            ),
            listener_doc(
                "my-el",
                "{triggerGroups: [{name: filter-event, interceptors: [{ref: {name: cel, kind: ClusterInterceptor}, \
                 params: [{name: filter, value: 'has(body.head_commit)'}]}], \
                 triggerSelector: {labelSelector: {matchLabels: {foo: bar}}}}]}",
            ),
        ]);
        handle_event(yaml, false, event(), vec![git_clone_task_run("git-clone-run", "git-clone-trigger")])
    });
    file.case(
        F,
        "with TriggerGroups and CEL interceptors - multiple triggers with extensions (data race test)",
        || {
            let mut docs = vec![template_doc("foo"), core_interceptor_doc("cel")];
            let mut want = Vec::new();
            for n in 1..=2 {
                docs.push(trigger_doc(
                    &format!("trigger-{n}"),
                    "foo",
                    ", labels: {group: race-test}",
                    &format!(
                        "{{interceptors: [{{ref: {{name: cel, kind: ClusterInterceptor}}, params: [{{name: overlays, \
                         value: [{{key: extensions.trigger{n}_ext, expression: \"'value{n}'\"}}]}}]}}], \
                         bindings: {}, template: {{ref: git-clone}}}}",
                        bindings(&format!("git-clone-run-trigger{n}"))
                    ),
                ));
                want.push(task_run(
                    &format!("git-clone-run-trigger{n}"),
                    "my-el",
                    &format!("trigger-{n}"),
                    "bar\t\r\nbaz昨",
                    "application/json",
                    "testurl",
                    "testrevision",
                ));
            }
            docs.push(listener_doc(
                "my-el",
                "{triggerGroups: [{name: race-test-group, interceptors: [{ref: {name: cel, kind: ClusterInterceptor}, \
                 params: [{name: filter, value: 'has(body.head_commit)'}, \
                 {name: overlays, value: [{key: extensions.group_ext, expression: \"'group_value'\"}]}]}], \
                 triggerSelector: {labelSelector: {matchLabels: {group: race-test}}}}]}",
            ));
            handle_event(documents(&docs), false, event(), want)
        },
    );
}

/// A namespaced Interceptor that checks `X-Hub-Signature` itself never sees it: the event
/// keeps no credential headers once it is authenticated and queued.
const NAMESPACED_INTERCEPTOR_RESULT: &str = "[]; git-clone-trigger filtered by Interceptor/foo/bitbucket: \
    interceptor Interceptor/foo/bitbucket stopped the trigger: InvalidArgument: no X-Hub-Signature header set \
    (the interceptor was sent the headers [\"Content-Type\", \"X-Event-Key\"])";

const BITBUCKET_PARAMS: &str = "[{name: secretRef, value: {secretKey: secretKey, secretName: secret}}, {name: eventTypes, value: ['repo:refs_changed']}]";

fn secret_doc() -> String {
    "apiVersion: v1\nkind: Secret\nmetadata: {name: secret, namespace: foo}\nstringData: {secretKey: secret}\n"
        .to_owned()
}

/// One of the ClusterInterceptors Tekton's install declares (Sluice evaluates these itself).
fn core_interceptor_doc(name: &str) -> String {
    format!(
        "apiVersion: triggers.tekton.dev/v1alpha1\nkind: ClusterInterceptor\nmetadata: {{name: {name}}}\n\
         spec: {{clientConfig: {{url: \"http://tekton-triggers-core-interceptors/{name}\"}}}}\n"
    )
}

fn bitbucket_event() -> Request {
    event().header("X-Event-Key", "repo:refs_changed").header(
        "X-Hub-Signature",
        hmac_header("secret", EVENT_BODY.as_bytes(), "sha1"),
    )
}

/// Tekton's core `bitbucket` interceptor, as far as this table needs it: the event type
/// must be listed and `X-Hub-Signature` must be the SHA-1 HMAC of the body under the
/// Secret's value (`secret`).
fn tekton_bitbucket_interceptor(request: &crate::harness::Received) -> Answer {
    let sent = request.json();
    let header = |name: &str| {
        sent["header"][name][0]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let body = sent["body"].as_str().unwrap_or_default().to_owned();
    let types = sent["interceptor_params"]["eventTypes"].clone();
    let wanted = types.as_array().is_some_and(|types| {
        types
            .iter()
            .any(|t| t.as_str() == Some(&header("X-Event-Key")))
    });
    let signature = header("X-Hub-Signature");
    let decision = if !wanted {
        json!({"continue": false, "status": {"code": 9, "message": "event type is not allowed"}})
    } else if signature.is_empty() {
        json!({"continue": false, "status": {"code": 3, "message": "no X-Hub-Signature header set"}})
    } else if signature != hmac_header("secret", body.as_bytes(), "sha1") {
        json!({"continue": false, "status": {"code": 9, "message": "error validating signature"}})
    } else {
        json!({"continue": true})
    };
    Answer::json(&decision)
}

fn handle_event_errors(file: &mut File<'_>) {
    const F: &str = "TestHandleEvent_Error";
    // "missing eventListener" is ingest's answer: its own suite counts it.
    file.documented(
        F,
        "eventlistener with unknown triggers",
        "README.md, Tekton compatibility: a listener left with no valid trigger answers 500",
        "refused: listener_misconfigured",
        || {
            let yaml = listener_doc("test-el", "{triggers: [{triggerRef: unknown}]}");
            let catalogue = load(&yaml, false);
            let request = Request::new(
                r#"{"head_commit": {"id": "testrevision"}, "repository": {"url": "testurl"}}"#,
            )
            .header("Content-Type", "application/json");
            let sluice = match handle(&catalogue, "foo", "test-el", &request) {
                Handled::Refused(code) => format!("refused: {code}"),
                Handled::Filtered => "accepted (202), nothing created".to_owned(),
                Handled::Triggers(outcomes) if outcomes.is_empty() => {
                    "accepted (202), nothing created".to_owned()
                }
                handled => format!("accepted (202): {}", created(&handled)),
            };
            Compared::new(
                yaml.replace('\n', " "),
                "accepted (202), nothing created",
                sluice,
            )
        },
    );
}

/// `sequentialInterceptor`: the body's `i` plus one, and the `Foo` values it was sent with
/// that number added.
fn sequential(request: &crate::harness::Received) -> Answer {
    let sent = request.json();
    let i = sent["i"].as_i64().unwrap_or(0) + 1;
    let mut answer = Answer::json(&json!({ "i": i }));
    for value in request.header("Foo") {
        answer = answer.header("Foo", value);
    }
    answer.header("Foo", i.to_string())
}

/// A trigger with `interceptors` (YAML flow) whose ConfigMap shows `$(body.i)` and
/// `$(header.Foo)` once they ran.
fn chain_listener(interceptors: &str, extra: &[String]) -> String {
    let mut docs = extra.to_vec();
    docs.push(listener_doc(
        "my-el",
        &format!(
            "{{triggers: [{{name: t, interceptors: {interceptors}, \
             bindings: [{{name: i, value: $(body.i)}}, {{name: foo, value: $(header.Foo)}}], \
             template: {{spec: {{params: [{{name: i}}, {{name: foo}}], resourcetemplates: \
             [{{apiVersion: v1, kind: ConfigMap, metadata: {{name: chain}}, data: {{i: $(tt.params.i), foo: $(tt.params.foo)}}}}]}}}}}}]}}"
        ),
    ));
    documents(&docs)
}

fn execute_interceptors(file: &mut File<'_>) {
    const F: &str = "TestExecuteInterceptor_Sequential";
    file.case(F, "POST", || {
        let webhook = StandIn::serve(sequential);
        let url = webhook.url("/");
        let yaml = chain_listener(
            &format!("[{{webhook: {{url: \"{url}\"}}}}, {{webhook: {{url: \"{url}\"}}}}]"),
            &[],
        );
        let catalogue = load(&yaml, false);
        let handled = handle(&catalogue, "foo", "my-el", &Request::new("{}"));
        let sluice = match &handled {
            Handled::Triggers(outcomes) => match outcomes.first() {
                Some((_, Outcome::Created(objects))) => json!({
                    "body": {"i": objects[0]["data"]["i"]},
                    "Foo": objects[0]["data"]["foo"],
                })
                .to_string(),
                _ => created(&handled),
            },
            _ => created(&handled),
        };
        Compared::new(
            "two legacy webhook interceptors in a row, each the sequential interceptor, body {}",
            json!({"body": {"i": "2"}, "Foo": "1,2"}),
            sluice,
        )
    });
    // The other methods are ingest's answer: its own suite counts them.

    const E: &str = "TestExecuteInterceptor_error";
    file.documented(
        E,
        "",
        "docs/tekton.md, Where Sluice differs: Interceptor calls are retried",
        "error after 3 call(s), Transient; second interceptor called: false",
        || {
            let failing = StandIn::serve(|_| Answer::status(500, ""));
            let second = StandIn::serve(sequential);
            let yaml = chain_listener(
                &format!(
                    "[{{webhook: {{url: \"{}\"}}}}, {{webhook: {{url: \"{}\"}}}}]",
                    failing.url("/"),
                    second.url("/")
                ),
                &[],
            );
            let catalogue = load(&yaml, false);
            let handled = handle(&catalogue, "foo", "my-el", &Request::new("{}"));
            let calls = failing.requests().len();
            let called = !second.requests().is_empty();
            let sluice = match &handled {
                Handled::Triggers(outcomes) => match outcomes.first() {
                    Some((_, Outcome::Failed(error))) => format!(
                        "error after {calls} call(s), {:?}; second interceptor called: {called}",
                        error.kind()
                    ),
                    _ => created(&handled),
                },
                _ => created(&handled),
            };
            Compared::new(
                "a legacy webhook interceptor answering 500, then the sequential interceptor",
                "error after 1 call(s); second interceptor called: false",
                sluice,
            )
        },
    );
    file.case("TestExecuteInterceptor_NotContinue", "", || {
        let yaml = documents(&[
            core_interceptor_doc("cel"),
            listener_doc(
                "my-el",
                "{triggers: [{name: t, interceptors: [{ref: {name: cel, kind: ClusterInterceptor}, \
                 params: [{name: filter, value: 'body.head == \"abcde\"'}]}], \
                 template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: c-}}]}}}]}",
            ),
        ]);
        let catalogue = load(&yaml, false);
        let handled = handle(&catalogue, "foo", "my-el", &Request::new(r#"{"head": "blah"}"#));
        let sluice = match &handled {
            Handled::Triggers(outcomes) => match outcomes.first() {
                Some((_, Outcome::Filtered(_))) => "continue: false".to_owned(),
                _ => created(&handled),
            },
            _ => created(&handled),
        };
        Compared::new(
            "a `cel` filter `body.head == \"abcde\"` on the body {\"head\": \"blah\"}",
            "continue: false",
            sluice,
        )
    });
    file.case("TestExecuteInterceptor_ExtensionChaining", "", || {
        // cel (overlay) -> legacy webhook echoing its body -> cel (filter on both copies).
        let echo = StandIn::serve(|request| Answer::ok(request.body.to_vec()));
        let yaml = documents(&[
            core_interceptor_doc("cel"),
            listener_doc(
                "my-el",
                &format!(
                    "{{triggers: [{{name: t, interceptors: [\
                     {{ref: {{name: cel, kind: ClusterInterceptor}}, params: [{{name: overlays, value: [{{key: truncated_sha, expression: 'body.sha.truncate(5)'}}]}}]}}, \
                     {{webhook: {{url: \"{}\"}}}}, \
                     {{ref: {{name: cel, kind: ClusterInterceptor}}, params: [{{name: filter, value: 'body.extensions.truncated_sha == \"abcde\" && extensions.truncated_sha == \"abcde\"'}}]}}], \
                     template: {{spec: {{resourcetemplates: [{{apiVersion: v1, kind: ConfigMap, metadata: {{generateName: c-}}}}]}}}}}}]}}",
                    echo.url("/")
                ),
            ),
        ]);
        let catalogue = load(&yaml, false);
        let handled = handle(&catalogue, "foo", "my-el", &Request::new(r#"{"sha": "abcdefghi"}"#));
        let sent = echo
            .requests()
            .first()
            .map_or_else(|| "nothing".to_owned(), |r| r.json().to_string());
        let continued = match &handled {
            Handled::Triggers(outcomes) => {
                matches!(outcomes.first(), Some((_, Outcome::Created(_))))
            }
            _ => false,
        };
        Compared::new(
            "body {\"sha\": \"abcdefghi\"}; cel overlay truncated_sha, a legacy webhook echoing its body, \
             cel filter on body.extensions and extensions",
            format!(
                "webhook sent {}; last interceptor continues: true",
                json!({"sha": "abcdefghi", "extensions": {"truncated_sha": "abcde"}})
            ),
            format!("webhook sent {sent}; last interceptor continues: {continued}"),
        )
    });
    form_bodies(file);
}

/// A listener whose payload validation is off, as a form-encoded body needs (Tekton's sink
/// refuses it otherwise, and so does Sluice's ingest; see `ingest/tests/tekton_tables.rs`).
fn unvalidated_listener_doc(name: &str, spec: &str) -> String {
    listener_doc(name, spec).replace(
        "uid: el-uid}",
        "uid: el-uid, annotations: {tekton.dev/payload-validation: \"false\"}}",
    )
}

const FORM_BODY: &str = "token=abc&user_id=123&text=hello+world";

fn form_event() -> Request {
    Request::new(FORM_BODY).header("Content-Type", "application/x-www-form-urlencoded")
}

/// A legacy webhook interceptor that records the body it is sent and answers it back.
fn recording_webhook() -> StandIn {
    StandIn::serve(|request| {
        Answer::ok(request.body.to_vec()).header("Content-Type", "application/json")
    })
}

/// Tekton converts a form-encoded body into JSON before a trigger's interceptors run, except
/// for a legacy webhook interceptor that comes first with no extensions yet.
fn form_bodies(file: &mut File<'_>) {
    file.case("TestExecuteInterceptor_WebhookFirstGetsRawURLEncodedBody", "", || {
        let webhook = recording_webhook();
        let yaml = unvalidated_listener_doc(
            "my-el",
            &format!(
                "{{triggers: [{{name: t, interceptors: [{{webhook: {{url: \"{}\"}}}}], \
                 template: {{spec: {{resourcetemplates: [{{apiVersion: v1, kind: ConfigMap, metadata: {{generateName: c-}}}}]}}}}}}]}}",
                webhook.url("/")
            ),
        );
        let catalogue = load(&yaml, false);
        let handled = handle(&catalogue, "foo", "my-el", &form_event());
        let sluice = match webhook.requests().first() {
            Some(received) => String::from_utf8_lossy(&received.body).into_owned(),
            None => format!("the webhook was not called: {}", created(&handled)),
        };
        Compared::new(
            format!("a form-encoded body {FORM_BODY:?}, a legacy webhook interceptor first"),
            FORM_BODY,
            sluice,
        )
    });
    file.case(
        "TestExecuteInterceptor_WebhookFirstWithExtensionsGetsJSONBody",
        "",
        || {
            // The extensions come from the interceptor of the trigger group that selects the
            // trigger, as in Tekton's comment on this test.
            let adds = StandIn::serve(|_| {
                Answer::json(&json!({"continue": true, "extensions": {"added_field": "val1"}}))
            });
            let webhook = recording_webhook();
            let yaml = documents(&[
                format!(
                    "apiVersion: triggers.tekton.dev/v1alpha1\nkind: ClusterInterceptor\nmetadata: {{name: adds}}\n\
                     spec: {{clientConfig: {{url: \"{}\"}}}}\n",
                    adds.url("/")
                ),
                trigger_doc(
                    "t",
                    "foo",
                    ", labels: {form: \"yes\"}",
                    &format!(
                        "{{interceptors: [{{webhook: {{url: \"{}\"}}}}], \
                         template: {{spec: {{resourcetemplates: [{{apiVersion: v1, kind: ConfigMap, metadata: {{generateName: c-}}}}]}}}}}}",
                        webhook.url("/")
                    ),
                ),
                unvalidated_listener_doc(
                    "my-el",
                    "{triggerGroups: [{name: g, interceptors: [{ref: {name: adds}}], \
                     triggerSelector: {labelSelector: {matchLabels: {form: \"yes\"}}}}]}",
                ),
            ]);
            let catalogue = load(&yaml, false);
            let handled = handle(&catalogue, "foo", "my-el", &form_event());
            let sluice = match webhook.requests().first() {
                Some(received) => received.json().to_string(),
                None => format!("the webhook was not called: {}", created(&handled)),
            };
            Compared::new(
                format!(
                    "a form-encoded body {FORM_BODY:?}; a trigger group's interceptor adds \
                     extensions, then the trigger's legacy webhook interceptor"
                ),
                json!({
                    "token": ["abc"],
                    "user_id": ["123"],
                    "text": ["hello world"],
                    "extensions": {"added_field": "val1"},
                }),
                sluice,
            )
        },
    );
}

/// `extendBodyWithExtensions` is observed as the body a legacy webhook interceptor receives
/// after a ClusterInterceptor added `extensions` (in Tekton any earlier interceptor can add
/// them; a ClusterInterceptor stand-in keeps CEL out of this suite).
fn extend_body_with_extensions(file: &mut File<'_>) {
    const F: &str = "TestExtendBodyWithExtensions";
    let table = [
        (
            "merges all extensions to an extension field",
            r#"{"sha": "abcdef"}"#,
            r#"{"added_field": "val1", "nested": {"field": "nestedVal"}}"#,
            r#"{"sha": "abcdef", "extensions": {"added_field": "val1", "nested": {"field": "nestedVal"}}}"#,
        ),
        (
            "body contains an extension already",
            r#"{"sha": "abcdef", "extensions": {"foo": "bar"}}"#,
            r#"{"added_field": "val1"}"#,
            r#"{"sha": "abcdef", "extensions": {"foo": "bar", "added_field": "val1"}}"#,
        ),
        (
            "no extensions",
            r#"{"sha": "abcdef"}"#,
            "{}",
            r#"{"sha": "abcdef"}"#,
        ),
    ];
    for (name, body, extensions, want) in table {
        let check = move || {
            let adds = StandIn::serve(move |_| {
                Answer::json(
                    &json!({"continue": true, "extensions": serde_json::from_str::<Value>(extensions).unwrap()}),
                )
            });
            let echo = StandIn::serve(|request| Answer::ok(request.body.to_vec()));
            let interceptor = format!(
                "apiVersion: triggers.tekton.dev/v1alpha1\nkind: ClusterInterceptor\nmetadata: {{name: adds}}\n\
                 spec: {{clientConfig: {{url: \"{}\"}}}}\n",
                adds.url("/")
            );
            let yaml = documents(&[
                interceptor,
                listener_doc(
                    "my-el",
                    &format!(
                        "{{triggers: [{{name: t, interceptors: [{{ref: {{name: adds}}}}, {{webhook: {{url: \"{}\"}}}}], \
                         template: {{spec: {{resourcetemplates: [{{apiVersion: v1, kind: ConfigMap, metadata: {{generateName: c-}}}}]}}}}}}]}}",
                        echo.url("/")
                    ),
                ),
            ]);
            let catalogue = load(&yaml, false);
            let handled = handle(&catalogue, "foo", "my-el", &Request::new(body));
            let sluice = match echo.requests().first() {
                Some(received) => received.json().to_string(),
                None => format!(
                    "the legacy interceptor was not called: {}",
                    created(&handled)
                ),
            };
            Compared::new(
                format!("body {body}, extensions {extensions} from the interceptor before"),
                serde_json::from_str::<Value>(want).unwrap(),
                sluice,
            )
        };
        file.case(F, name, check);
    }
}

fn cloud_events(file: &mut File<'_>) {
    const F: &str = "TestCloudEventHandling";
    file.case(F, "(the TaskRun created)", || {
        let yaml = documents(&[
            binding_doc("foo"),
            template_doc("foo"),
            listener_doc(
                "test-el",
                "{triggers: [{name: git-clone-trigger, bindings: [{ref: git-clone, kind: TriggerBinding}], template: {ref: git-clone}}]}",
            ),
        ]);
        let catalogue = load(&yaml, false);
        let body = json!({
            "head_commit": {"id": "testrevision"},
            "repository": {"url": "testurl"},
            "foo": "bar\t\r\nbaz昨",
        })
        .to_string();
        let request = Request::new(body)
            .header("Ce-Specversion", "1.0")
            .header("Ce-Type", "testing.cloudevent")
            .header("Ce-Source", "testing")
            .header("Ce-Id", "7d6a3b0c-0d6f-4c5e-9f0a-0123456789ab")
            .header("Content-Type", "application/json");
        let mut want = git_clone_task_run("git-clone-run", "git-clone-trigger");
        want["metadata"]["labels"]["triggers.tekton.dev/eventlistener"] = json!("test-el");
        Compared::new(
            "a binary-mode CloudEvent (ce-* headers, JSON data) to listener test-el",
            Value::Array(vec![want]),
            created(&handle(&catalogue, "foo", "test-el", &request)),
        )
    });
    // The answer to the CloudEvent is ingest's: its own suite counts it.
}
