//! Tekton Triggers YAML as users write it works unchanged, end to end.

use std::time::Duration;

use serde_json::Value;
use sluice_tests::ApiDouble;
use sluice_tests::api_double::Verb;
use sluice_tests::procs::eventually;

use crate::support::{ConfigDir, Stack, param, post, push_body};

const V1ALPHA1: &str = r#"
apiVersion: triggers.tekton.dev/v1alpha1
kind: TriggerBinding
metadata:
  name: alpha-binding
  namespace: compat
spec:
  params:
    - name: gitrevision
      value: $(body.head_commit.id)
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: TriggerTemplate
metadata:
  name: alpha-template
  namespace: compat
spec:
  params:
    - name: gitrevision
    - name: message
      description: falls back to its default
      default: built by sluice
  resourcetemplates:
    - apiVersion: tekton.dev/v1beta1
      kind: PipelineRun
      metadata:
        generateName: alpha-run-
      spec:
        pipelineRef:
          name: alpha
        params:
          - name: revision
            value: $(tt.params.gitrevision)
          - name: message
            value: $(tt.params.message)
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: EventListener
metadata:
  name: alpha
  namespace: compat
spec:
  serviceAccountName: alpha-sa
  triggers:
    - bindings:
        - ref: alpha-binding
      template:
        name: alpha-template
"#;

const V1BETA1_INLINE: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata:
  name: beta
  namespace: compat
spec:
  serviceAccountName: beta-sa
  triggers:
    - name: inline
      bindings:
        - name: revision
          value: $(body.head_commit.id)
        - name: branch
          value: $(body.ref)
      template:
        spec:
          params:
            - name: revision
            - name: branch
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata:
                generateName: beta-
              spec:
                pipelineRef:
                  name: beta
                params:
                  - name: revision
                    value: $(tt.params.revision)
                  - name: branch
                    value: $(tt.params.branch)
"#;

const TASKRUN_TASKSPEC: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata:
  name: echo
  namespace: compat
spec:
  params:
    - name: message
  resourcetemplates:
    - apiVersion: tekton.dev/v1
      kind: TaskRun
      metadata:
        generateName: echo-$(uid)-
      spec:
        taskSpec:
          params:
            - name: message
              type: string
          steps:
            - name: echo
              image: alpine:3
              script: |
                echo "$(params.message)"
        params:
          - name: message
            value: $(tt.params.message)
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata:
  name: echo-commit
  namespace: compat
spec:
  serviceAccountName: task-sa
  bindings:
    - name: message
      value: $(body.head_commit.message)
  template:
    ref: echo
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata:
  name: tasks
  namespace: compat
spec:
  triggers:
    - triggerRef: echo-commit
"#;

async fn created(api: &ApiDouble, resource: &str, prefix: &str) -> Value {
    let found = eventually(Duration::from_secs(20), || async {
        api.objects("tekton.dev", resource, "compat")
            .iter()
            .any(|o| {
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(prefix)
            })
    })
    .await;
    assert!(found, "no {resource} named {prefix}*");
    api.objects("tekton.dev", resource, "compat")
        .into_iter()
        .find(|o| {
            o["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .starts_with(prefix)
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tekton_configurations_work_unchanged() {
    let config = ConfigDir::new()
        .file("alpha.yaml", V1ALPHA1)
        .file("beta.yaml", V1BETA1_INLINE)
        .file("tasks.yml", TASKRUN_TASKSPEC);
    let stack = Stack::start(
        config,
        |api| {
            for sa in ["alpha-sa", "beta-sa", "task-sa"] {
                api.grant(
                    &format!("system:serviceaccount:compat:{sa}"),
                    &["create"],
                    "tekton.dev",
                    "*",
                    "compat",
                );
            }
        },
        &[],
    )
    .await;
    let Stack { api, ingest, .. } = &stack;
    let client = reqwest::Client::new();
    let body = push_body("9fceb02d0ae598e95dc970b74767f19372d61af8");
    for listener in ["alpha", "beta", "tasks"] {
        let (status, answer) =
            post(&client, &ingest.hook_url("compat", listener), &body, &[]).await;
        assert_eq!(status, 202, "{listener}: {answer}");
    }

    // v1alpha1, unnamed trigger, deprecated `template.name`, a param default.
    let alpha = created(api, "pipelineruns", "alpha-run-").await;
    assert_eq!(alpha["apiVersion"], "tekton.dev/v1beta1");
    assert_eq!(
        param(&alpha, "revision"),
        Some("9fceb02d0ae598e95dc970b74767f19372d61af8")
    );
    assert_eq!(param(&alpha, "message"), Some("built by sluice"));
    assert_eq!(
        alpha["metadata"]["labels"]["triggers.tekton.dev/trigger"],
        "trigger-0"
    );
    assert_eq!(
        alpha["metadata"]["labels"]["triggers.tekton.dev/eventlistener"],
        "alpha"
    );

    // v1beta1 inline name/value bindings and an inline template spec.
    let beta = created(api, "pipelineruns", "beta-").await;
    assert_eq!(param(&beta, "branch"), Some("refs/heads/main"));
    assert_eq!(
        beta["metadata"]["labels"]["triggers.tekton.dev/trigger"],
        "inline"
    );

    // A TaskRun with an inline taskSpec, via triggerRef; Tekton's own $(params.x) is left
    // for Tekton, and the commit message's quotes and newline arrive intact.
    let task = created(api, "taskruns", "echo-").await;
    assert_eq!(
        task["spec"]["taskSpec"]["steps"][0]["script"],
        "echo \"$(params.message)\"\n"
    );
    assert_eq!(
        param(&task, "message"),
        Some("fix \"quotes\"\nand newlines")
    );
    assert_eq!(
        task["metadata"]["labels"]["triggers.tekton.dev/trigger"],
        "echo-commit"
    );

    let users: Vec<_> = ["pipelineruns", "taskruns"]
        .into_iter()
        .flat_map(|resource| api.requests_for(Verb::Create, resource))
        .map(|r| r.impersonated_user.unwrap_or_default())
        .collect();
    for sa in ["alpha-sa", "beta-sa", "task-sa"] {
        assert!(
            users.contains(&format!("system:serviceaccount:compat:{sa}")),
            "{users:?}"
        );
    }
}

/// A Slack app as Tekton's docs configure it: payload validation off (Slack posts forms)
/// and the slack interceptor's `requestedFields`, here with the signing secret Sluice
/// verifies.
const SLACK_APP: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: slack, namespace: compat}
stringData: {signing-secret: "sl-secret-c0de"}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata:
  name: slack
  namespace: compat
  annotations:
    tekton.dev/payload-validation: "false"
spec:
  serviceAccountName: slack-sa
  triggers:
    - name: slash-command
      interceptors:
        - ref: {name: slack, kind: ClusterInterceptor}
          params:
            - {name: secretRef, value: {secretName: slack, secretKey: signing-secret}}
            - {name: requestedFields, value: [text, user_id]}
      bindings:
        - {name: text, value: "$(extensions.text[0])"}
        - {name: users, value: "$(extensions.user_id)"}
      template:
        spec:
          params: [{name: text}, {name: users}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {generateName: slash-}
              spec:
                pipelineRef: {name: build}
                params:
                  - {name: text, value: $(tt.params.text)}
                  - {name: users, value: $(tt.params.users)}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_slack_slash_command_creates_a_run_with_its_requested_fields() {
    use hmac::{Hmac, KeyInit, Mac};
    let stack = Stack::start(
        ConfigDir::new().file("slack.yaml", SLACK_APP),
        |api| {
            api.grant(
                "system:serviceaccount:compat:slack-sa",
                &["create"],
                "tekton.dev",
                "*",
                "compat",
            );
        },
        &[],
    )
    .await;
    let Stack { api, ingest, .. } = &stack;
    let body = "token=t0k&team_id=T1&user_id=U2&command=%2Fbuild&text=main+%24%28params.token%29";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let sign = |secret: &str| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{now}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    };
    let send = |signature: String| {
        reqwest::Client::new()
            .post(ingest.hook_url("compat", "slack"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Slack-Request-Timestamp", now.clone())
            .header("X-Slack-Signature", signature)
            .body(body)
            .send()
    };
    let forged = send(sign("another-secret")).await.unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let answer = send(sign("sl-secret-c0de")).await.unwrap();
    assert_eq!(answer.status().as_u16(), 202);

    let run = created(api, "pipelineruns", "slash-").await;
    assert_eq!(
        param(&run, "text"),
        Some("main $$(params.token)"),
        "a field's value is event text: its `$(` stays inert"
    );
    assert_eq!(param(&run, "users"), Some(r#"["U2"]"#));
    assert_eq!(
        api.objects("tekton.dev", "pipelineruns", "compat").len(),
        1,
        "the forged request created nothing"
    );
}
