//! The `sluice` command line on real directories: `validate` reports every problem with its
//! file, document and field; `render` runs authentication, interceptors, bindings and
//! templates offline and reports each trigger.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use sluice_tests::procs::github_signature;

use crate::support::{ConfigDir, sluice};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// The demo's webhook secret (examples/config/secret.yaml).
const EXAMPLE_SECRET: &str = "demo-webhook-secret";

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn render_json(args: &[&str]) -> (i32, Value) {
    let output = sluice(args);
    let text = stdout(&output);
    let report = serde_json::from_str(&text).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {text}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), report)
}

#[test]
fn validate_accepts_the_examples() {
    let dir = examples().join("config");
    let output = sluice(&["validate", "--config-dir", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("1 listener(s), 1 trigger(s), 0 problem(s)"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn render_shows_what_the_example_push_creates_and_who_creates_it() {
    let dir = examples().join("config");
    let body_file = examples().join("push.json");
    let body = std::fs::read(&body_file).unwrap();
    let signature = format!(
        "X-Hub-Signature-256: {}",
        github_signature(EXAMPLE_SECRET, &body)
    );
    let args = |signature: &str, output: &'static str| {
        vec![
            "render".to_owned(),
            "--config-dir".to_owned(),
            dir.display().to_string(),
            "--listener".to_owned(),
            "team-a/github".to_owned(),
            "--body".to_owned(),
            body_file.display().to_string(),
            "--header".to_owned(),
            "X-GitHub-Event: push".to_owned(),
            "--header".to_owned(),
            "X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned(),
            "--header".to_owned(),
            signature.to_owned(),
            "--output".to_owned(),
            output.to_owned(),
        ]
    };
    let signed = args(&signature, "json");
    let signed: Vec<&str> = signed.iter().map(String::as_str).collect();
    let (code, report) = render_json(&signed);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["eventListener"], "github");
    assert_eq!(report["namespace"], "team-a");
    let trigger = &report["triggers"][0];
    assert_eq!(trigger["name"], "build-on-push");
    assert_eq!(trigger["status"], "created", "{trigger:#}");
    assert_eq!(
        trigger["serviceAccount"],
        "system:serviceaccount:team-a:team-a-triggers"
    );
    let run = &trigger["resources"][0];
    assert_eq!(run["kind"], "PipelineRun");
    assert_eq!(run["metadata"]["namespace"], "team-a");
    assert_eq!(
        run["metadata"]["labels"]["triggers.tekton.dev/trigger"],
        "build-on-push"
    );
    let text = run.to_string();
    assert!(
        text.contains("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        "the delivery header is bound: {text}"
    );

    let yaml = args(&signature, "yaml");
    let yaml: Vec<&str> = yaml.iter().map(String::as_str).collect();
    let output = sluice(&yaml);
    let text = stdout(&output);
    assert!(
        text.starts_with("# trigger build-on-push: created"),
        "{text}"
    );
    assert!(text.contains("kind: PipelineRun"), "{text}");

    let forged = args("X-Hub-Signature-256: sha256=0000", "json");
    let forged: Vec<&str> = forged.iter().map(String::as_str).collect();
    let (code, report) = render_json(&forged);
    assert_eq!(code, 1, "a trigger in error fails the command");
    let trigger = &report["triggers"][0];
    assert_eq!(trigger["status"], "error");
    let reason = trigger["reason"].as_str().unwrap();
    assert!(reason.contains("signature"), "{reason}");
    assert!(
        !reason.contains(EXAMPLE_SECRET),
        "never the secret: {reason}"
    );
    assert_eq!(trigger["resources"], Value::Array(vec![]));
}

const FILTERING: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: pulls, namespace: team-a}
spec:
  triggers:
    - name: opened
      interceptors:
        - cel: {filter: "body.action == 'opened'"}
      template:
        spec:
          resourcetemplates:
            - {apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {generateName: opened-}}
    - name: closed
      interceptors:
        - cel: {filter: "body.action == 'closed'"}
      template:
        spec:
          resourcetemplates:
            - {apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {generateName: closed-}}
    - name: needs-field
      bindings: [{name: x, value: $(body.absent)}]
      template:
        spec:
          params: [{name: x}]
          resourcetemplates:
            - {apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {generateName: x-}}
"#;

#[test]
fn render_reports_filtered_and_failing_triggers_with_their_reasons() {
    let config = ConfigDir::new().file("pulls.yaml", FILTERING);
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), br#"{"action": "opened"}"#).unwrap();
    let (code, report) = render_json(&[
        "render",
        "--config-dir",
        config.path().to_str().unwrap(),
        "--listener",
        "team-a/pulls",
        "--body",
        body.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(code, 1, "{report:#}");
    let triggers = report["triggers"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = triggers
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("opened", "created"),
            ("closed", "filtered"),
            ("needs-field", "error")
        ]
    );
    let filtered = triggers[1]["reason"].as_str().unwrap();
    assert!(
        filtered.contains("cel") && filtered.contains("body.action == 'closed'"),
        "{filtered}"
    );
    let failed = triggers[2]["reason"].as_str().unwrap();
    assert!(failed.contains("body.absent"), "{failed}");
}

const BROKEN: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: broken, namespace: team-a}
spec:
  triggers:
    - name: bad-cel
      interceptors:
        - cel: {filter: "body.action == "}
      template: {ref: missing-template}
    - name: bad-webhook
      interceptors:
        - webhook: {url: "http://example.com/check"}
      template: {ref: missing-template}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: good, namespace: team-a}
spec:
  triggers:
    - template:
        spec:
          resourcetemplates: [{apiVersion: v1, kind: ConfigMap}]
"#;

#[test]
fn validate_reports_every_problem_with_file_document_and_field() {
    let config = ConfigDir::new()
        .file("broken.yaml", BROKEN)
        .file("not-yaml.yaml", "kind: [unclosed\n");
    let output = sluice(&["validate", "--config-dir", config.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    for expected in [
        "broken.yaml (document 0): spec.triggers[0].interceptors[0].cel.filter: cel filter `body.action == ` does not compile",
        "broken.yaml (document 0): spec.triggers[0].template.ref: TriggerTemplate `missing-template`",
        "broken.yaml (document 0): spec.triggers[1].interceptors[0].webhook: `example.com` is neither an in-cluster service",
        "not-yaml.yaml (document 0)",
        "2 listener(s), 1 trigger(s), 5 problem(s)",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }

    // The platform's allowance is part of what validate judges, as the servers do.
    let allowed = sluice(&[
        "validate",
        "--config-dir",
        config.path().to_str().unwrap(),
        "--interceptor-allow",
        "example.com",
    ]);
    let text = stdout(&allowed);
    assert!(!text.contains("is neither an in-cluster service"), "{text}");
}

#[test]
fn validate_reports_a_template_naming_another_namespace_unless_the_platform_allows_it() {
    let config = ConfigDir::new().file(
        "elsewhere.yaml",
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: elsewhere, namespace: team-a}
spec:
  resourcetemplates:
    - {apiVersion: v1, kind: ConfigMap, metadata: {generateName: own-}}
    - {apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {generateName: x-, namespace: team-b}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - name: build
      template: {ref: elsewhere}
"#,
    );
    let dir = config.path().to_str().unwrap();
    let output = sluice(&["validate", "--config-dir", dir]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    for expected in [
        "elsewhere.yaml (document 0): spec.resourcetemplates[1].metadata.namespace: names namespace `team-b`, but TriggerTemplate `elsewhere` creates its objects in namespace `team-a`",
        "elsewhere.yaml (document 1): spec.triggers[0].template.ref: TriggerTemplate `elsewhere` in namespace `team-a` is invalid",
        "1 listener(s), 0 trigger(s), 2 problem(s)",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }

    let allowed = sluice(&["validate", "--config-dir", dir, "--allow-cross-namespace"]);
    let text = stdout(&allowed);
    assert_eq!(allowed.status.code(), Some(0), "{text}");
    assert!(
        text.contains("1 listener(s), 1 trigger(s), 0 problem(s)"),
        "{text}"
    );
}

#[test]
fn validate_checks_the_tenants_file_with_the_servers_parser() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("tenants.yaml");
    let check = |yaml: &str| {
        std::fs::write(&policy, yaml).unwrap();
        let output = sluice(&["validate", "--tenants-file", policy.to_str().unwrap()]);
        (output.status.code(), stdout(&output))
    };

    let (code, text) = check(
        "interceptorAllow: [hooks.example.com]\ndefaults: {runsPerMinute: 600, burst: 50}\nnamespaces:\n  team-a: {runsPerMinute: 60}\n",
    );
    assert_eq!(code, Some(0), "{text}");
    for expected in [
        "tenants.yaml: defaults: runsPerMinute 600 (burst 50); 1 namespace(s) with their own limits",
        "interceptorAllow: hooks.example.com",
        "tenants file only: 0 problem(s)",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }

    for (yaml, expected) in [
        (
            "namespaces:\n  team-a: {runsPerMinute: 60, admisionPerSecond: 5}\n",
            "tenants.yaml: namespaces.team-a.admisionPerSecond: unknown field",
        ),
        (
            "defaults: {runsPerMinute: -5}\n",
            "tenants.yaml: defaults.runsPerMinute: must be a positive finite number, not -5",
        ),
        (
            "namespaces:\n  team-a: {maxConcurrentCreates: -1}\n",
            "tenants.yaml: namespaces.team-a.maxConcurrentCreates:",
        ),
        ("defaults: [unclosed\n", "tenants.yaml:"),
    ] {
        let (code, text) = check(yaml);
        assert_eq!(code, Some(1), "{yaml}: {text}");
        assert!(
            text.contains(expected),
            "{yaml}: missing `{expected}` in:\n{text}"
        );
        assert!(text.contains("tenants file only: 1 problem(s)"), "{text}");
    }

    // With a directory, a broken tenants file counts among the directory's problems.
    std::fs::write(&policy, "defaults: {runsPerMinute: 0}\n").unwrap();
    let examples = examples().join("config");
    let output = sluice(&[
        "validate",
        "--config-dir",
        examples.to_str().unwrap(),
        "--tenants-file",
        policy.to_str().unwrap(),
    ]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("defaults.runsPerMinute"), "{text}");
    assert!(
        text.contains("1 listener(s), 1 trigger(s), 1 problem(s)"),
        "{text}"
    );

    let neither = sluice(&["validate"]);
    assert_eq!(neither.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn render_calls_webhook_interceptors_and_shows_what_they_decide() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // An interceptor that lets `main` through with an extension and stops anything else.
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/check",
        axum::routing::post(move |axum::Json(request): axum::Json<Value>| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let body: Value =
                    serde_json::from_str(request["body"].as_str().unwrap_or("{}")).unwrap_or_default();
                let answer = if body["branch"] == "main" {
                    serde_json::json!({"continue": true, "extensions": {"checked": "by-interceptor"}})
                } else {
                    serde_json::json!({"continue": false, "status": {"code": 9, "message": "only main builds"}})
                };
                axum::Json(answer)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let config = ConfigDir::new().file(
        "gated.yaml",
        &format!(
            r#"
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {{name: branch-check}}
spec: {{clientConfig: {{url: "http://{addr}/check"}}}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: gated, namespace: team-a}}
spec:
  triggers:
    - name: build
      interceptors: [{{ref: {{name: branch-check}}}}]
      bindings: [{{name: checked, value: $(extensions.checked)}}]
      template:
        spec:
          params: [{{name: checked}}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {{generateName: build-}}
              spec: {{params: [{{name: checked, value: $(tt.params.checked)}}]}}
"#
        ),
    );
    let render = |branch: &'static str| {
        let dir = config.path().to_owned();
        async move {
            let body = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(body.path(), format!(r#"{{"branch": "{branch}"}}"#)).unwrap();
            tokio::task::spawn_blocking(move || {
                render_json(&[
                    "render",
                    "--config-dir",
                    dir.to_str().unwrap(),
                    "--listener",
                    "team-a/gated",
                    "--body",
                    body.path().to_str().unwrap(),
                    "--interceptor-allow",
                    "127.0.0.1",
                    "--output",
                    "json",
                ])
            })
            .await
            .unwrap()
        }
    };
    let (code, report) = render("main").await;
    assert_eq!(code, 0, "{report:#}");
    let trigger = &report["triggers"][0];
    assert_eq!(trigger["status"], "created");
    assert_eq!(
        trigger["resources"][0]["spec"]["params"][0]["value"], "by-interceptor",
        "the interceptor's extension reached the binding"
    );
    let (code, report) = render("feature").await;
    assert_eq!(code, 0, "a filtered trigger is not an error: {report:#}");
    let trigger = &report["triggers"][0];
    assert_eq!(trigger["status"], "filtered");
    let reason = trigger["reason"].as_str().unwrap();
    assert!(
        reason.contains("ClusterInterceptor/branch-check") && reason.contains("only main builds"),
        "{reason}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the interceptor was called each time"
    );
}
