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
