//! Loading Tekton Triggers YAML into a catalogue: what serves, what is skipped, and how each
//! problem is reported.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod dispatched;
mod interceptors;

use super::{LoadOptions, load_dir, load_str, load_str_with};
use crate::catalogue::{BindingParam, Catalogue, ConfigIssue, Interceptor, Listener};

const FILE: &str = "config.yaml";

/// A TriggerTemplate `pipeline` in `team-a` with one param.
const TEMPLATE: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata:
  name: pipeline
  namespace: team-a
spec:
  params:
    - name: revision
      description: The git revision
      default: main
  resourcetemplates:
    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata:
        generateName: build-
      spec:
        pipelineRef:
          name: build
        params:
          - name: revision
            value: $(tt.params.revision)
"#;

/// A TriggerBinding `push` in `team-a`.
const BINDING: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata:
  name: push
  namespace: team-a
spec:
  params:
    - name: revision
      value: $(body.after)
    - name: url
      value: $(body.repository.clone_url)
"#;

/// A Secret `github` in `team-a` holding `token` = `s3cret` (base64 in `data`).
const SECRET: &str = r#"
apiVersion: v1
kind: Secret
metadata:
  name: github
  namespace: team-a
type: Opaque
data:
  token: czNjcmV0
"#;

fn docs(documents: &[&str]) -> String {
    documents.join("\n---\n")
}

fn listener<'c>(catalogue: &'c Catalogue, namespace: &str, name: &str) -> &'c Arc<Listener> {
    catalogue.listener(namespace, name).unwrap_or_else(|| {
        panic!(
            "listener {namespace}/{name} missing; issues: {:#?}",
            catalogue.issues()
        )
    })
}

fn trigger_names(listener: &Listener) -> Vec<&str> {
    listener.triggers.iter().map(|t| t.name.as_str()).collect()
}

fn assert_no_issues(catalogue: &Catalogue) {
    assert!(catalogue.issues().is_empty(), "{:#?}", catalogue.issues());
}

/// The only issue; fails if there are none or several.
fn only_issue(catalogue: &Catalogue) -> &ConfigIssue {
    match catalogue.issues() {
        [issue] => issue,
        issues => panic!("expected exactly one issue, got {issues:#?}"),
    }
}

fn param(name: &str, value: &str) -> BindingParam {
    BindingParam {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

fn github(interceptor: &Interceptor) -> &crate::catalogue::GitHubInterceptor {
    match interceptor {
        Interceptor::GitHub(github) => github,
        other => panic!("not a github interceptor: {other:?}"),
    }
}

// ----- Tekton semantics ------------------------------------------------------------------

#[test]
fn v1alpha1_listener_with_unnamed_trigger_uses_deprecated_refs_and_param_defaults() {
    let yaml = r#"
apiVersion: triggers.tekton.dev/v1alpha1
kind: EventListener
metadata:
  name: legacy
spec:
  serviceAccountName: tekton-triggers
  triggers:
    - bindings:
        - name: legacy-binding
      template:
        name: legacy-template
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: TriggerBinding
metadata:
  name: legacy-binding
spec:
  params:
    - name: revision
      value: $(body.head_commit.id)
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: TriggerTemplate
metadata:
  name: legacy-template
spec:
  params:
    - name: revision
    - name: retries
      default: 3
    - name: dry-run
      default: false
  resourcetemplates:
    - apiVersion: tekton.dev/v1beta1
      kind: PipelineRun
      metadata:
        generateName: legacy-
"#;
    let catalogue = load_str(FILE, yaml);
    assert_no_issues(&catalogue);
    let listener = listener(&catalogue, "default", "legacy");
    assert_eq!(trigger_names(listener), ["trigger-0"]);
    let trigger = &listener.triggers[0];
    assert_eq!(trigger.namespace, "default");
    assert_eq!(trigger.service_account, "tekton-triggers");
    assert_eq!(
        trigger.params,
        [param("revision", "$(body.head_commit.id)")]
    );
    let defaults: Vec<_> = trigger
        .template
        .params
        .iter()
        .map(|p| (p.name.as_str(), p.default.as_deref()))
        .collect();
    assert_eq!(
        defaults,
        [
            ("revision", None),
            ("retries", Some("3")),
            ("dry-run", Some("false"))
        ]
    );
}

#[test]
fn a_param_named_twice_across_a_triggers_bindings_skips_the_trigger() {
    let yaml = docs(&[
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: twice, namespace: team-a}
spec:
  triggers:
    - name: build
      bindings:
        - {name: revision, value: $(body.after)}
        - ref: push
      template:
        ref: pipeline
    - name: lint
      bindings:
        - ref: push
      template:
        ref: pipeline
"#,
        TEMPLATE,
        BINDING,
    ]);
    let catalogue = load_str(FILE, &yaml);
    let issue = only_issue(&catalogue);
    assert!(
        issue.message.contains("duplicate param name `revision`")
            && issue.message.contains("trigger skipped"),
        "{issue}"
    );
    assert_eq!(issue.field.as_deref(), Some("spec.triggers[0].bindings[1]"));
    assert_eq!(
        trigger_names(listener(&catalogue, "team-a", "twice")),
        ["lint"]
    );
}

#[test]
fn v1beta1_inline_bindings_take_scalars_in_their_text_form() {
    let yaml = docs(&[
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata:
  name: inline
  namespace: team-a
spec:
  triggers:
    - name: build
      bindings:
        - name: commit
          value: $(body.after)
        - name: attempts
          value: 2
        - name: verbose
          value: true
        - name: ratio
          value: 0.5
        - ref: push
      template:
        ref: pipeline
"#,
        TEMPLATE,
        BINDING,
    ]);
    let catalogue = load_str(FILE, &yaml);
    assert_no_issues(&catalogue);
    let trigger = &listener(&catalogue, "team-a", "inline").triggers[0];
    assert_eq!(trigger.name, "build");
    assert_eq!(trigger.service_account, "default");
    assert_eq!(
        trigger.params,
        [
            param("commit", "$(body.after)"),
            param("attempts", "2"),
            param("verbose", "true"),
            param("ratio", "0.5"),
            param("revision", "$(body.after)"),
            param("url", "$(body.repository.clone_url)"),
        ]
    );
    assert_eq!(
        trigger.template.params[0].description.as_deref(),
        Some("The git revision")
    );
    assert_eq!(trigger.template.params[0].default.as_deref(), Some("main"));
}

#[test]
fn inline_template_with_taskrun_and_inline_task_spec_keeps_the_whole_resource() {
    let yaml = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata:
  name: tasks
  namespace: team-a
spec:
  triggers:
    - name: echo
      bindings:
        - {name: message, value: $(body.message)}
      template:
        spec:
          params:
            - name: message
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: TaskRun
              metadata:
                generateName: echo-
              spec:
                taskSpec:
                  params:
                    - name: message
                  steps:
                    - name: echo
                      image: alpine:3
                      script: |
                        #!/bin/sh
                        echo "$(params.message)"
                params:
                  - name: message
                    value: $(tt.params.message)
"#;
    let catalogue = load_str(FILE, yaml);
    assert_no_issues(&catalogue);
    let trigger = &listener(&catalogue, "team-a", "tasks").triggers[0];
    let resource = &trigger.template.resource_templates.get().expect("readable")[0];
    assert_eq!(resource["kind"], "TaskRun");
    assert_eq!(
        resource["spec"]["taskSpec"]["steps"][0]["script"],
        "#!/bin/sh\necho \"$(params.message)\"\n"
    );
    assert_eq!(
        resource["spec"]["params"][0]["value"],
        "$(tt.params.message)"
    );
    assert!(!trigger.template.old_escape_quotes);
}

#[test]
fn trigger_ref_resolves_a_trigger_of_the_listener_namespace() {
    let yaml = docs(&[
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata:
  name: refs
  namespace: team-a
spec:
  serviceAccountName: listener-sa
  triggers:
    - triggerRef: on-push
    - triggerRef: with-own-sa
"#,
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata:
  name: on-push
  namespace: team-a
spec:
  bindings:
    - ref: push
  template:
    ref: pipeline
"#,
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata:
  name: with-own-sa
  namespace: team-a
spec:
  serviceAccountName: trigger-sa
  template:
    ref: pipeline
"#,
        TEMPLATE,
        BINDING,
    ]);
    let catalogue = load_str(FILE, &yaml);
    assert_no_issues(&catalogue);
    let listener = listener(&catalogue, "team-a", "refs");
    assert_eq!(trigger_names(listener), ["on-push", "with-own-sa"]);
    let on_push = listener.trigger("on-push").unwrap();
    assert_eq!(on_push.service_account, "listener-sa");
    assert_eq!(on_push.params.len(), 2);
    assert_eq!(
        listener.trigger("with-own-sa").unwrap().service_account,
        "trigger-sa"
    );
}

#[test]
fn cluster_trigger_binding_is_found_from_any_namespace() {
    let yaml = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: ClusterTriggerBinding
metadata:
  name: github-push
  namespace: ignored-for-cluster-scoped
spec:
  params:
    - name: revision
      value: $(body.after)
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata:
  name: team-b-listener
  namespace: team-b
spec:
  triggers:
    - bindings:
        - ref: github-push
          kind: ClusterTriggerBinding
      template:
        spec:
          resourcetemplates:
            - {apiVersion: v1, kind: ConfigMap, metadata: {generateName: cm-}}
"#;
    let catalogue = load_str(FILE, yaml);
    assert_no_issues(&catalogue);
    let trigger = &listener(&catalogue, "team-b", "team-b-listener").triggers[0];
    assert_eq!(trigger.params, [param("revision", "$(body.after)")]);
    assert_eq!(trigger.namespace, "team-b");
}

#[test]
fn a_cluster_binding_is_not_a_namespaced_binding_and_vice_versa() {
    let yaml = docs(&[
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - bindings: [{ref: push, kind: ClusterTriggerBinding}]
      template: {ref: pipeline}
"#,
        TEMPLATE,
        BINDING,
    ]);
    let catalogue = load_str(FILE, &yaml);
    let issue = only_issue(&catalogue);
    assert_eq!(
        issue.field.as_deref(),
        Some("spec.triggers[0].bindings[0].ref")
    );
    assert!(
        issue
            .message
            .contains("ClusterTriggerBinding `push` not found"),
        "{issue}"
    );
    assert!(listener(&catalogue, "team-a", "l").triggers.is_empty());
}

#[test]
fn triggers_sharing_a_template_share_one_arc() {
    let yaml = docs(&[
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - {name: a, template: {ref: pipeline}}
    - {name: b, template: {ref: pipeline}}
"#,
        TEMPLATE,
    ]);
    let catalogue = load_str(FILE, &yaml);
    assert_no_issues(&catalogue);
    let listener = listener(&catalogue, "team-a", "l");
    assert!(Arc::ptr_eq(
        &listener.triggers[0].template,
        &listener.triggers[1].template
    ));
}

#[test]
fn old_escape_quotes_counts_by_presence_whatever_its_value() {
    let listener_doc = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers: [{template: {ref: pipeline}}]
"#;
    for (annotation, expected) in [
        (Some("\"true\""), true),
        (Some("\"yes\""), true),
        (Some("\"false\""), true),
        (Some("\"\""), true),
        (None, false),
    ] {
        let template = match annotation {
            Some(value) => TEMPLATE.replace(
                "  namespace: team-a\n",
                &format!(
                    "  namespace: team-a\n  annotations:\n    triggers.tekton.dev/old-escape-quotes: {value}\n"
                ),
            ),
            None => TEMPLATE.to_owned(),
        };
        let catalogue = load_str(FILE, &docs(&[&template, listener_doc]));
        assert_no_issues(&catalogue);
        let template = &listener(&catalogue, "team-a", "l").triggers[0].template;
        assert_eq!(template.old_escape_quotes, expected, "{annotation:?}");
    }
}

#[test]
fn payload_validation_is_on_unless_the_annotation_says_false_and_other_values_are_refused() {
    let listener_doc = |annotation: &str| {
        format!(
            "apiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\n\
             metadata: {{name: l, namespace: team-a{annotation}}}\nspec: {{}}\n"
        )
    };
    let catalogue = load_str(FILE, &listener_doc(""));
    assert_no_issues(&catalogue);
    assert!(listener(&catalogue, "team-a", "l").payload_validation);
    for (value, expected) in [("\"true\"", true), ("\"false\"", false)] {
        let annotation = format!(", annotations: {{tekton.dev/payload-validation: {value}}}");
        let catalogue = load_str(FILE, &listener_doc(&annotation));
        assert_no_issues(&catalogue);
        assert_eq!(
            listener(&catalogue, "team-a", "l").payload_validation,
            expected,
            "{value}"
        );
    }
    for value in ["\"False\"", "\"no\"", "\"\""] {
        let annotation = format!(", annotations: {{tekton.dev/payload-validation: {value}}}");
        let catalogue = load_str(FILE, &listener_doc(&annotation));
        assert!(catalogue.listener("team-a", "l").is_none(), "{value}");
        let issue = &catalogue.issues()[0];
        assert_eq!(
            issue.field.as_deref(),
            Some("metadata.annotations.tekton.dev/payload-validation")
        );
        assert!(issue.message.contains("listener skipped"), "{issue}");
    }
}

#[test]
fn listener_uid_comes_from_metadata_or_is_derived_stably() {
    let yaml = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: with-uid, namespace: team-a, uid: 0b7a5e2c-0000-4000-8000-000000000001}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: without-uid, namespace: team-a}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: without-uid, namespace: team-b}
"#;
    let catalogue = load_str(FILE, yaml);
    assert_no_issues(&catalogue);
    assert_eq!(
        listener(&catalogue, "team-a", "with-uid").uid,
        "0b7a5e2c-0000-4000-8000-000000000001"
    );
    let derived = &listener(&catalogue, "team-a", "without-uid").uid;
    let parsed = uuid::Uuid::parse_str(derived).unwrap();
    assert_eq!(parsed.get_version_num(), 8);
    let again = load_str("other-file.yaml", yaml);
    assert_eq!(&listener(&again, "team-a", "without-uid").uid, derived);
    assert_ne!(&listener(&catalogue, "team-b", "without-uid").uid, derived);
}

#[test]
fn a_listener_without_valid_triggers_still_serves() {
    let yaml = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: empty, namespace: team-a}
spec:
  triggers: ~
"#;
    let catalogue = load_str(FILE, yaml);
    assert_no_issues(&catalogue);
    assert!(listener(&catalogue, "team-a", "empty").triggers.is_empty());
}

#[test]
fn unknown_tekton_fields_are_ignored() {
    let yaml = docs(&[
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata:
  name: l
  namespace: team-a
  labels: {app: ci}
spec:
  cloudEventURI: http://sink.example
  resources:
    kubernetesResource:
      serviceType: NodePort
  namespaceSelector: {}
  triggerGroups: []
  triggers:
    - name: t
      template: {ref: pipeline, apiversion: v1beta1}
status:
  address: {url: http://el-l.team-a.svc}
"#,
        TEMPLATE,
    ]);
    let catalogue = load_str(FILE, &yaml);
    assert_no_issues(&catalogue);
    assert_eq!(trigger_names(listener(&catalogue, "team-a", "l")), ["t"]);
}

// ----- interceptors and secrets ----------------------------------------------------------

#[test]
fn github_interceptor_v1beta1_reads_secret_from_data_and_event_types() {
    let yaml = docs(&[
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - name: push
      interceptors:
        - name: verify
          ref: {name: github, kind: ClusterInterceptor}
          params:
            - name: secretRef
              value: {secretName: github, secretKey: token}
            - name: eventTypes
              value: [push, pull_request]
            - name: addChangedFiles
              value: {enabled: false}
      template: {ref: pipeline}
"#,
        TEMPLATE,
        SECRET,
    ]);
    let catalogue = load_str(FILE, &yaml);
    assert_no_issues(&catalogue);
    let trigger = &listener(&catalogue, "team-a", "l").triggers[0];
    let [interceptor] = trigger.interceptors.as_slice() else {
        panic!("{:?}", trigger.interceptors);
    };
    let github = github(interceptor);
    assert_eq!(github.secret.as_ref().unwrap().expose(), b"s3cret");
    assert_eq!(github.event_types, ["push", "pull_request"]);
}

#[test]
fn github_interceptor_v1alpha1_reads_secret_where_string_data_wins() {
    let yaml = r#"
apiVersion: v1
kind: Secret
metadata: {name: hook, namespace: team-a}
data:
  token: b2xk
  other: b3RoZXI=
stringData:
  token: new
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - interceptors:
        - github:
            secretRef: {secretName: hook, secretKey: token}
            eventTypes: [push]
      template:
        spec:
          resourcetemplates: [{apiVersion: v1, kind: ConfigMap}]
"#;
    let catalogue = load_str(FILE, yaml);
    assert_no_issues(&catalogue);
    let trigger = &listener(&catalogue, "team-a", "l").triggers[0];
    let github = github(&trigger.interceptors[0]);
    assert_eq!(github.secret.as_ref().unwrap().expose(), b"new");
    assert_eq!(github.event_types, ["push"]);
}

#[test]
fn github_interceptor_without_secret_ref_has_no_secret() {
    let yaml = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - interceptors: [{ref: {name: github}}]
      template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap}]}}
"#;
    let catalogue = load_str(FILE, yaml);
    assert_no_issues(&catalogue);
    let github = github(&listener(&catalogue, "team-a", "l").triggers[0].interceptors[0]);
    assert!(github.secret.is_none());
    assert!(github.event_types.is_empty());
}

/// A listener `l` in `team-a` with trigger `guarded` using `interceptor` (YAML flow text),
/// and trigger `open` without interceptors.
fn listener_with_interceptor(interceptor: &str) -> String {
    format!(
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: l, namespace: team-a}}
spec:
  triggers:
    - name: guarded
      interceptors: [{interceptor}]
      template: {{ref: pipeline}}
    - name: open
      template: {{ref: pipeline}}
---
{TEMPLATE}
---
{SECRET}
"#
    )
}

#[test]
fn missing_secret_or_key_keeps_the_trigger_misconfigured_and_never_shows_a_value() {
    for (secret_ref, field, named) in [
        (
            "{secretName: absent, secretKey: token}",
            "spec.triggers[0].interceptors[0].params[0].value.secretName",
            "Secret `absent` in namespace `team-a` not found",
        ),
        (
            "{secretName: github, secretKey: nope}",
            "spec.triggers[0].interceptors[0].params[0].value.secretKey",
            "Secret `github` in namespace `team-a` has no key `nope`",
        ),
    ] {
        let yaml = listener_with_interceptor(&format!(
            "{{ref: {{name: github}}, params: [{{name: secretRef, value: {secret_ref}}}, {{name: eventTypes, value: [push]}}]}}"
        ));
        let catalogue = load_str(FILE, &yaml);
        let issue = only_issue(&catalogue);
        assert_eq!(issue.field.as_deref(), Some(field));
        assert!(issue.message.contains(named), "{issue}");
        assert!(issue.message.contains("listener_misconfigured"), "{issue}");
        assert!(!format!("{issue} {issue:?}").contains("s3cret"));
        let l = listener(&catalogue, "team-a", "l");
        assert_eq!(trigger_names(l), ["guarded", "open"]);
        let Interceptor::Misconfigured(misconfigured) = &l.triggers[0].interceptors[0] else {
            panic!("{:?}", l.triggers[0].interceptors);
        };
        assert_eq!(misconfigured.event_types, ["push"]);
        assert!(
            misconfigured.reason.starts_with("github interceptor: "),
            "{misconfigured:?}"
        );
        assert!(misconfigured.reason.contains(named), "{misconfigured:?}");
        assert!(!format!("{l:?}").contains("s3cret"));
    }
}

#[test]
fn an_empty_secret_value_makes_the_interceptor_misconfigured() {
    let yaml = listener_with_interceptor(
        "{github: {secretRef: {secretName: empty, secretKey: token}}}",
    ) + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: empty, namespace: team-a}\nstringData: {token: ''}\n";
    let catalogue = load_str(FILE, &yaml);
    let issue = only_issue(&catalogue);
    assert!(issue.message.contains("is empty"), "{issue}");
    let l = listener(&catalogue, "team-a", "l");
    assert_eq!(trigger_names(l), ["guarded", "open"]);
    assert!(matches!(
        l.triggers[0].interceptors[0],
        Interceptor::Misconfigured(_)
    ));
}

#[test]
fn unknown_interceptors_skip_their_trigger() {
    for (interceptor, field, message) in [
        (
            "{ref: {name: github, kind: NamespacedInterceptor}}",
            "spec.triggers[0].interceptors[0].ref.name",
            "Interceptor `github` in namespace `team-a` not found",
        ),
        (
            "{ref: {name: my-company-check}}",
            "spec.triggers[0].interceptors[0].ref.name",
            "ClusterInterceptor `my-company-check` not found",
        ),
        (
            "{ref: {name: check, kind: Webhook}}",
            "spec.triggers[0].interceptors[0].ref.kind",
            "`Webhook` is not an interceptor kind",
        ),
        (
            "{gitee: {secretRef: {secretName: github, secretKey: token}}}",
            "spec.triggers[0].interceptors[0].gitee",
            "interceptor `gitee` is not supported yet",
        ),
        (
            "{webhook: {objectRef: {kind: Deployment, name: check, apiVersion: apps/v1}}}",
            "spec.triggers[0].interceptors[0].webhook.objectRef",
            "must name a `v1` `Service`",
        ),
        (
            "{webhook: {url: \"http://check.example.com/\"}}",
            "spec.triggers[0].interceptors[0].webhook",
            "`check.example.com` is neither an in-cluster service",
        ),
    ] {
        let catalogue = load_str(FILE, &listener_with_interceptor(interceptor));
        let issue = only_issue(&catalogue);
        assert_eq!(issue.field.as_deref(), Some(field), "{interceptor}");
        assert!(issue.message.contains(message), "{issue}");
        assert!(issue.message.ends_with("trigger skipped"), "{issue}");
        assert_eq!(trigger_names(listener(&catalogue, "team-a", "l")), ["open"]);
    }
}

#[test]
fn github_api_features_read_their_tokens_with_the_configuration() {
    use crate::catalogue::OwnersCheck;
    let yaml = listener_with_interceptor(
        "{ref: {name: github}, params: [\
         {name: addChangedFiles, value: {enabled: true, personalAccessToken: {secretName: github, secretKey: token}}}, \
         {name: githubOwners, value: {enabled: true, checkType: orgMembers, personalAccessToken: {secretName: gone, secretKey: token}}}]}",
    );
    let catalogue = load_str(FILE, &yaml);
    // The missing Secret is reported; the trigger is kept, and fails the events needing it.
    let issue = only_issue(&catalogue);
    assert!(issue.message.contains("Secret `gone`"), "{issue}");
    assert!(
        issue.message.contains("each event that needs the token"),
        "{issue}"
    );
    let trigger = &listener(&catalogue, "team-a", "l").triggers[0];
    let gh = github(&trigger.interceptors[0]);
    assert!(trigger.interceptors[0].runs_in_dispatcher());
    let changed = gh.changed_files.as_ref().unwrap();
    assert_eq!(
        changed.token.as_ref().unwrap().as_ref().unwrap().expose(),
        b"s3cret"
    );
    let owners = gh.owners.as_ref().unwrap();
    assert_eq!(owners.check, OwnersCheck::OrgMembers);
    let reason = owners.token.as_ref().unwrap_err();
    assert!(reason.contains("Secret `gone`"), "{reason}");

    // Disabled features, and no token: nothing to read.
    let yaml = listener_with_interceptor(
        "{ref: {name: github}, params: [\
         {name: addChangedFiles, value: {enabled: false, personalAccessToken: {secretName: gone}}}, \
         {name: githubOwners, value: {enabled: true}}]}",
    );
    let catalogue = load_str(FILE, &yaml);
    // Without a token, only `checkType: none` works: said now, and the trigger is kept.
    let issue = only_issue(&catalogue);
    assert!(issue.message.contains("personalAccessToken"), "{issue}");
    let trigger = &listener(&catalogue, "team-a", "l").triggers[0];
    let gh = github(&trigger.interceptors[0]);
    assert!(gh.changed_files.is_none());
    let owners = gh.owners.as_ref().unwrap();
    assert_eq!(owners.check, OwnersCheck::Unset);
    assert!(matches!(owners.token, Ok(None)));
}

#[test]
fn unknown_github_params_and_changed_files_fail_closed() {
    for (interceptor, field) in [
        (
            "{ref: {name: github}, params: [{name: branches, value: [main]}]}",
            "spec.triggers[0].interceptors[0].params[0].name",
        ),
        (
            "{ref: {name: github}, params: [{name: githubOwners, value: {enabled: true, checkType: both}}]}",
            "spec.triggers[0].interceptors[0].params[0].value.checkType",
        ),
        (
            "{ref: {name: github}, params: [{name: addChangedFiles, value: {enabled: true, personalAccessToken: {secretName: github}}}]}",
            "spec.triggers[0].interceptors[0].params[0].value.personalAccessToken.secretKey",
        ),
        (
            "{github: {eventTypes: [push], branches: [main]}}",
            "spec.triggers[0].interceptors[0].github.branches",
        ),
        (
            "{ref: {name: github}, params: [{name: eventTypes, value: push}]}",
            "spec.triggers[0].interceptors[0].params[0].value",
        ),
    ] {
        let catalogue = load_str(FILE, &listener_with_interceptor(interceptor));
        let issue = only_issue(&catalogue);
        assert_eq!(
            issue.field.as_deref(),
            Some(field),
            "{interceptor}: {issue}"
        );
        assert_eq!(trigger_names(listener(&catalogue, "team-a", "l")), ["open"]);
    }
}

#[test]
fn secret_problems_never_show_secret_values() {
    let yaml = r#"
apiVersion: v1
kind: Secret
metadata: {name: typed, namespace: team-a}
stringData:
  token: [hunter2]
---
apiVersion: v1
kind: Secret
metadata: {name: encoded, namespace: team-a}
data:
  token: "hunter2!"
"#;
    let catalogue = load_str(FILE, yaml);
    let issues = catalogue.issues();
    assert_eq!(issues.len(), 2, "{issues:#?}");
    assert_eq!(issues[0].field.as_deref(), Some("stringData.token"));
    assert_eq!(issues[1].field.as_deref(), Some("data.token"));
    assert!(issues[1].message.contains("base64"), "{}", issues[1]);
    for issue in issues {
        assert!(!format!("{issue} {issue:?}").contains("hunter2"), "{issue}");
    }
}

// ----- references and namespaces ---------------------------------------------------------

#[test]
fn a_missing_reference_is_named_and_only_its_trigger_is_skipped() {
    let yaml = docs(&[
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - name: good
      bindings: [{ref: push}]
      template: {ref: pipeline}
    - name: no-template
      template: {ref: missing-template}
    - name: no-binding
      bindings: [{ref: push}, {ref: missing-binding}]
      template: {ref: pipeline}
    - name: no-trigger
      triggerRef: missing-trigger
"#,
        TEMPLATE,
        BINDING,
    ]);
    let catalogue = load_str(FILE, &yaml);
    let found: Vec<_> = catalogue
        .issues()
        .iter()
        .map(|i| {
            (
                i.document,
                i.field.as_deref().unwrap_or_default(),
                i.message.as_str(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                0,
                "spec.triggers[1].template.ref",
                "TriggerTemplate `missing-template` in namespace `team-a` not found; trigger skipped"
            ),
            (
                0,
                "spec.triggers[2].bindings[1].ref",
                "TriggerBinding `missing-binding` in namespace `team-a` not found; trigger skipped"
            ),
            (
                0,
                "spec.triggers[3].triggerRef",
                "Trigger `missing-trigger` in namespace `team-a` not found; trigger skipped"
            ),
        ]
    );
    assert_eq!(trigger_names(listener(&catalogue, "team-a", "l")), ["good"]);
}

#[test]
fn references_never_cross_namespaces() {
    // Everything the listener refers to exists, but in `team-a`; the listener is in `team-b`.
    let yaml = docs(&[
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-b}
spec:
  triggers:
    - name: by-binding
      bindings: [{ref: push}]
      template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap}]}}
    - name: by-template
      template: {ref: pipeline}
    - name: by-secret
      interceptors: [{github: {secretRef: {secretName: github, secretKey: token}}}]
      template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap}]}}
    - triggerRef: team-a-trigger
"#,
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: team-a-trigger, namespace: team-a}
spec:
  template: {ref: pipeline}
"#,
        TEMPLATE,
        BINDING,
        SECRET,
    ]);
    let catalogue = load_str(FILE, &yaml);
    let issues = catalogue.issues();
    assert_eq!(issues.len(), 4, "{issues:#?}");
    for issue in issues {
        assert!(
            issue.message.contains("in namespace `team-b` not found"),
            "{issue}"
        );
    }
    // The trigger whose Secret is in another namespace is kept, but can accept nothing.
    let l = listener(&catalogue, "team-b", "l");
    assert_eq!(trigger_names(l), ["by-secret"]);
    assert!(matches!(
        l.triggers[0].interceptors[0],
        Interceptor::Misconfigured(_)
    ));
}

#[test]
fn a_reference_to_an_invalid_document_says_so() {
    let broken_template = TEMPLATE.replace("kind: PipelineRun", "notKind: PipelineRun");
    let yaml = docs(&[
        &broken_template,
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers: [{template: {ref: pipeline}}]
"#,
    ]);
    let catalogue = load_str(FILE, &yaml);
    let issues = catalogue.issues();
    assert_eq!(issues.len(), 2, "{issues:#?}");
    assert_eq!(issues[0].document, 0);
    assert_eq!(
        issues[0].field.as_deref(),
        Some("spec.resourcetemplates[0]")
    );
    assert!(issues[0].message.contains("`kind`"), "{}", issues[0]);
    assert_eq!(issues[1].document, 1);
    assert!(issues[1].message.contains("is invalid"), "{}", issues[1]);
}

#[test]
fn v1beta1_needs_ref_where_v1alpha1_accepted_a_bare_name() {
    let yaml = docs(&[
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - bindings: [{name: push}]
      template: {ref: pipeline}
    - template: {name: pipeline}
"#,
        TEMPLATE,
        BINDING,
    ]);
    let catalogue = load_str(FILE, &yaml);
    let issues = catalogue.issues();
    assert_eq!(issues.len(), 2, "{issues:#?}");
    assert_eq!(
        issues[0].field.as_deref(),
        Some("spec.triggers[0].bindings[0]")
    );
    assert!(
        issues[0].message.contains("write `ref: push`"),
        "{}",
        issues[0]
    );
    assert_eq!(
        issues[1].field.as_deref(),
        Some("spec.triggers[1].template")
    );
    assert!(
        issues[1].message.contains("write `ref: pipeline`"),
        "{}",
        issues[1]
    );
}

#[test]
fn service_account_names_are_checked() {
    let yaml = docs(&[
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - name: bad
      serviceAccountName: "system:masters"
      template: {ref: pipeline}
"#,
        TEMPLATE,
    ]);
    let catalogue = load_str(FILE, &yaml);
    let issue = only_issue(&catalogue);
    assert_eq!(
        issue.field.as_deref(),
        Some("spec.triggers[0].serviceAccountName")
    );
    assert!(listener(&catalogue, "team-a", "l").triggers.is_empty());
}

// ----- names and duplicates --------------------------------------------------------------

#[test]
fn duplicate_objects_and_trigger_names_keep_the_first() {
    let yaml = docs(&[
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - template: {ref: pipeline}
    - name: trigger-0
      template: {ref: pipeline}
    - name: twice
      template: {ref: pipeline}
    - name: twice
      template: {ref: pipeline}
"#,
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers: []
"#,
        TEMPLATE,
        // Same name, other kind or namespace: not duplicates.
        &BINDING.replace("  name: push\n", "  name: pipeline\n"),
        &TEMPLATE.replace("namespace: team-a", "namespace: team-b"),
    ]);
    let catalogue = load_str(FILE, &yaml);
    let found: Vec<_> = catalogue
        .issues()
        .iter()
        .map(|i| (i.document, i.field.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(
        found,
        [
            (0, "spec.triggers[1].name"),
            (0, "spec.triggers[3].name"),
            (1, "metadata.name"),
        ],
        "{:#?}",
        catalogue.issues()
    );
    assert!(
        catalogue.issues()[2]
            .message
            .contains("duplicate EventListener `l`")
    );
    assert!(
        catalogue.issues()[2]
            .message
            .contains("config.yaml document 0")
    );
    assert_eq!(
        trigger_names(listener(&catalogue, "team-a", "l")),
        ["trigger-0", "twice"]
    );
}

#[test]
fn invalid_names_skip_the_document() {
    let yaml = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: Bad_Name, namespace: team-a}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: good, namespace: team.a}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {namespace: team-a}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: good, namespace: team-a}
spec:
  triggers:
    - name: "has space"
      template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap}]}}
"#;
    let catalogue = load_str(FILE, yaml);
    let found: Vec<_> = catalogue
        .issues()
        .iter()
        .map(|i| (i.document, i.field.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(
        found,
        [
            (0, "metadata.name"),
            (1, "metadata.namespace"),
            (2, "metadata.name"),
            (3, "spec.triggers[0].name"),
        ]
    );
    assert_eq!(catalogue.listeners().count(), 1);
}

const SELECTED_TRIGGERS: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: build, namespace: team-a, labels: {team: a, kind: ci}}
spec:
  template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: b-}}]}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: docs, namespace: team-a, labels: {team: a, kind: docs}}
spec:
  serviceAccountName: docs-sa
  template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: d-}}]}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: other, namespace: team-a}
spec:
  template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: o-}}]}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: b-build, namespace: team-b, labels: {team: a}}
spec:
  template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: bb-}}]}}
"#;

#[test]
fn label_selectors_and_trigger_groups_pick_triggers_of_the_namespace() {
    let yaml = format!(
        r#"{SELECTED_TRIGGERS}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: by-label, namespace: team-a}}
spec:
  serviceAccountName: listener-sa
  labelSelector: {{matchLabels: {{team: a}}}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: by-expression, namespace: team-a}}
spec:
  labelSelector:
    matchExpressions:
      - {{key: kind, operator: In, values: [ci]}}
      - {{key: skip, operator: DoesNotExist}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: everything, namespace: team-a}}
spec:
  labelSelector: {{}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: grouped, namespace: team-a}}
spec:
  triggers:
    - name: inline
      template: {{spec: {{resourcetemplates: [{{apiVersion: v1, kind: ConfigMap}}]}}}}
  triggerGroups:
    - name: pushes
      interceptors:
        - ref: {{name: github}}
          params: [{{name: eventTypes, value: [push]}}]
      triggerSelector:
        labelSelector: {{matchExpressions: [{{key: kind, operator: NotIn, values: [docs]}}]}}
"#
    );
    let catalogue = load_str(FILE, &yaml);
    assert_no_issues(&catalogue);
    let by_label = listener(&catalogue, "team-a", "by-label");
    assert_eq!(trigger_names(by_label), ["build", "docs"]);
    assert_eq!(by_label.triggers[0].service_account, "listener-sa");
    assert_eq!(by_label.triggers[1].service_account, "docs-sa");
    assert_eq!(
        trigger_names(listener(&catalogue, "team-a", "by-expression")),
        ["build"]
    );
    assert_eq!(
        trigger_names(listener(&catalogue, "team-a", "everything")),
        ["build", "docs", "other"],
        "an empty selector selects every Trigger of the namespace, and none of another"
    );
    let grouped = listener(&catalogue, "team-a", "grouped");
    assert_eq!(trigger_names(grouped), ["inline", "build", "other"]);
    assert!(grouped.triggers[0].group.is_none());
    for trigger in &grouped.triggers[1..] {
        let group = trigger.group.as_ref().unwrap();
        assert_eq!((group.name.as_str(), group.interceptors), ("pushes", 1));
        assert!(matches!(trigger.interceptors[0], Interceptor::GitHub(_)));
    }
}

#[test]
fn other_namespaces_are_selected_only_where_the_platform_allows_it() {
    let yaml = format!(
        r#"{SELECTED_TRIGGERS}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: cross, namespace: team-a}}
spec:
  serviceAccountName: listener-sa
  namespaceSelector: {{matchNames: [team-b]}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: grouped-cross, namespace: team-a}}
spec:
  triggerGroups:
    - triggerSelector:
        namespaceSelector: {{matchNames: ["*"]}}
        labelSelector: {{matchLabels: {{team: a}}}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: bad-operator, namespace: team-a}}
spec:
  labelSelector: {{matchExpressions: [{{key: kind, operator: Equals, values: [ci]}}]}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: plain, namespace: team-a}}
spec:
  namespaceSelector: {{matchNames: []}}
  labelSelector: null
  triggerGroups: []
"#
    );
    let refused = load_str(FILE, &yaml);
    let found: Vec<_> = refused
        .issues()
        .iter()
        .map(|i| i.field.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(
        found,
        [
            "spec.namespaceSelector",
            "spec.triggerGroups[0].triggerSelector.namespaceSelector",
            "spec.labelSelector.matchExpressions[0]",
        ],
        "{:#?}",
        refused.issues()
    );
    assert!(refused.issues()[0].message.contains("team-b"));
    assert!(
        refused.issues()[0]
            .message
            .contains("--allow-cross-namespace")
    );
    assert!(
        refused.issues()[2]
            .message
            .contains("`Equals` is not an operator")
    );
    for issue in refused.issues() {
        assert!(issue.message.ends_with("listener skipped"), "{issue}");
    }
    let served: Vec<_> = refused.listeners().map(|l| l.name.as_str()).collect();
    assert_eq!(served, ["plain"]);

    let options = LoadOptions {
        allow_cross_namespace: true,
        ..LoadOptions::default()
    };
    let allowed = load_str_with(FILE, &yaml, &options);
    let cross = listener(&allowed, "team-a", "cross");
    assert_eq!(trigger_names(cross), ["b-build"]);
    let b_build = &cross.triggers[0];
    assert_eq!(
        b_build.namespace, "team-b",
        "objects go to the Trigger's namespace"
    );
    assert_eq!(
        b_build.service_account, "default",
        "the listener's service account belongs to another namespace"
    );
    assert_eq!(
        trigger_names(listener(&allowed, "team-a", "grouped-cross")),
        ["build", "docs", "b-build"]
    );
}

/// A resource template naming another namespace would be refused for every event; it is
/// reported when the configuration loads, unless the platform allows other namespaces. A
/// namespace written as an expression is known only when an event renders it.
#[test]
fn a_template_naming_another_namespace_is_reported_at_load() {
    let yaml = docs(&[
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: elsewhere, namespace: team-a}
spec:
  params: [{name: ns}]
  resourcetemplates:
    - {apiVersion: v1, kind: ConfigMap, metadata: {generateName: own-, namespace: team-a}}
    - {apiVersion: v1, kind: ConfigMap, metadata: {generateName: x-, namespace: $(tt.params.ns)}}
    - {apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {generateName: x-, namespace: team-b}}
"#,
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - name: by-ref
      template: {ref: elsewhere}
    - name: inline
      template:
        spec:
          resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: team-c}}]
    - name: own
      template:
        spec:
          resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: ""}}]
"#,
    ]);
    let refused = load_str(FILE, &yaml);
    let issues = refused.issues();
    let fields: Vec<_> = issues
        .iter()
        .map(|i| (i.document, i.field.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(
        fields,
        [
            (0, "spec.resourcetemplates[2].metadata.namespace"),
            (1, "spec.triggers[0].template.ref"),
            (
                1,
                "spec.triggers[1].template.spec.resourcetemplates[0].metadata.namespace"
            ),
        ],
        "{issues:#?}"
    );
    let document = &issues[0].message;
    for expected in [
        "TriggerTemplate `elsewhere`",
        "namespace `team-b`",
        "namespace `team-a`",
        "--allow-cross-namespace",
        "template skipped",
    ] {
        assert!(document.contains(expected), "{document}");
    }
    let inline = &issues[2].message;
    assert!(
        inline.contains("inline template")
            && inline.contains("`team-c`")
            && inline.contains("`team-a`")
            && inline.ends_with("trigger skipped"),
        "{inline}"
    );
    assert_eq!(trigger_names(listener(&refused, "team-a", "l")), ["own"]);

    let options = LoadOptions {
        allow_cross_namespace: true,
        ..LoadOptions::default()
    };
    let allowed = load_str_with(FILE, &yaml, &options);
    assert!(allowed.issues().is_empty(), "{:#?}", allowed.issues());
    assert_eq!(
        trigger_names(listener(&allowed, "team-a", "l")),
        ["by-ref", "inline", "own"]
    );
}

// ----- documents and parsing -------------------------------------------------------------

#[test]
fn multi_document_file_numbers_documents_and_ignores_empty_ones() {
    let yaml = docs(&[
        "# leading comment only belongs to the first document",
        "",
        TEMPLATE,
        "# nothing here",
        r#"
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: build, namespace: team-a}
spec: {tasks: []}
"#,
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers: [{template: {ref: pipeline}, bindings: [{ref: missing}]}]
"#,
    ]);
    let catalogue = load_str(FILE, &yaml);
    // `docs` puts a `---` between parts: the comment-only first part is absorbed into the
    // (empty) document 0 opened by the first `---`; the listener is document 4.
    let issue = only_issue(&catalogue);
    assert_eq!(issue.document, 4, "{issue}");
    assert!(catalogue.listener("team-a", "l").is_some());
}

#[test]
fn a_broken_document_is_reported_and_its_neighbours_load() {
    let yaml = docs(&[
        TEMPLATE,
        "apiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\nmetadata: {name: broken\n  namespace: team-a\n",
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: after, namespace: team-a}
spec:
  triggers: [{template: {ref: pipeline}}]
"#,
    ]);
    let catalogue = load_str("team-a/listeners.yaml", &yaml);
    let issue = only_issue(&catalogue);
    assert_eq!(issue.file, Path::new("team-a/listeners.yaml"));
    assert_eq!(issue.document, 1);
    assert_eq!(issue.field, None);
    // The parser's line numbers are the file's, not the document's: the flow mapping opens
    // on the document's third line, after the template and the separator.
    let opening = TEMPLATE.lines().count() + 5;
    assert!(
        issue
            .message
            .contains(&format!("flow mapping at line {opening} column 11")),
        "{issue}"
    );
    assert_eq!(listener(&catalogue, "team-a", "after").triggers.len(), 1);
}

#[test]
fn a_wrong_field_type_names_the_field_path() {
    let yaml = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - template: {ref: pipeline}
    - bindings:
        - ref: [not, a, name]
"#;
    let catalogue = load_str(FILE, yaml);
    let issue = only_issue(&catalogue);
    assert_eq!(
        issue.field.as_deref(),
        Some("spec.triggers[1].bindings[0].ref")
    );
    assert!(issue.message.contains("invalid type: sequence"), "{issue}");
    assert!(catalogue.listener("team-a", "l").is_none());
}

#[test]
fn unsupported_triggers_api_version_is_reported_other_kinds_are_not() {
    let yaml = r#"
apiVersion: triggers.tekton.dev/v1
kind: EventListener
metadata: {name: l, namespace: team-a}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: ClusterInterceptor
metadata: {name: github}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
---
name: not a kubernetes object
---
- a
- list
"#;
    let catalogue = load_str(FILE, yaml);
    let issue = only_issue(&catalogue);
    assert_eq!(issue.field.as_deref(), Some("apiVersion"));
    assert!(
        issue.message.contains("triggers.tekton.dev/v1beta1"),
        "{issue}"
    );
}

#[test]
fn items_of_a_v1_list_are_loaded_with_their_path() {
    let yaml = r#"
apiVersion: v1
kind: List
items:
  - apiVersion: triggers.tekton.dev/v1beta1
    kind: TriggerTemplate
    metadata: {name: pipeline, namespace: team-a}
    spec:
      resourcetemplates: [{apiVersion: v1, kind: ConfigMap}]
  - apiVersion: triggers.tekton.dev/v1beta1
    kind: EventListener
    metadata: {name: l, namespace: team-a}
    spec:
      triggers: [{template: {ref: pipeline}}, {template: {ref: absent}}]
"#;
    let catalogue = load_str(FILE, yaml);
    let issue = only_issue(&catalogue);
    assert_eq!(
        issue.field.as_deref(),
        Some("items[1].spec.triggers[1].template.ref")
    );
    assert_eq!(listener(&catalogue, "team-a", "l").triggers.len(), 1);
}

#[test]
fn yaml_anchors_and_merge_keys_are_applied() {
    let yaml = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - &base
      name: a
      template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap}]}}
    - <<: *base
      name: b
"#;
    let catalogue = load_str(FILE, yaml);
    assert_no_issues(&catalogue);
    assert_eq!(
        trigger_names(listener(&catalogue, "team-a", "l")),
        ["a", "b"]
    );
}

// ----- directories -----------------------------------------------------------------------

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn load_dir_reads_the_tree_in_order_and_skips_hidden_and_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join("b/listener.yml"),
        &docs(&[r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers: [{bindings: [{ref: push}], template: {ref: pipeline}}, {template: {ref: nope}}]
"#]),
    );
    write(&root.join("a/template.yaml"), TEMPLATE);
    let binding_json = r#"{"apiVersion": "triggers.tekton.dev/v1beta1", "kind": "TriggerBinding",
        "metadata": {"name": "push", "namespace": "team-a"},
        "spec": {"params": [{"name": "revision", "value": "$(body.after)"}]}}"#;
    write(&root.join("a/binding.json"), binding_json);
    write(&root.join("README.md"), "not: [yaml");
    write(&root.join(".hidden.yaml"), "not: [yaml");
    write(&root.join(".git/config.yaml"), "not: [yaml");
    write(&root.join("z-broken.yaml"), "not: [yaml");

    let catalogue = load_dir(root).unwrap();
    let files: Vec<PathBuf> = catalogue
        .issues()
        .iter()
        .map(|i| i.file.strip_prefix(root).unwrap().to_owned())
        .collect();
    assert_eq!(
        files,
        [
            PathBuf::from("b/listener.yml"),
            PathBuf::from("z-broken.yaml")
        ]
    );
    let listener = listener(&catalogue, "team-a", "l");
    assert_eq!(
        listener.triggers[0].params,
        [param("revision", "$(body.after)")]
    );
}

#[cfg(unix)]
#[test]
fn mounted_configmap_layout_loads_each_document_once() {
    use std::os::unix::fs::symlink;

    // What the kubelet writes for a ConfigMap volume with keys `template.yaml`, `l.yaml`.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let data = root.join("..2024_05_01_10_00_00.123456789");
    write(&data.join("template.yaml"), TEMPLATE);
    write(
        &data.join("l.yaml"),
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers: [{template: {ref: pipeline}}]
"#,
    );
    symlink(&data, root.join("..data")).unwrap();
    symlink("..data/template.yaml", root.join("template.yaml")).unwrap();
    symlink("..data/l.yaml", root.join("l.yaml")).unwrap();
    // A second visible path to the same file, and a directory link cycle.
    symlink("..data/l.yaml", root.join("same-listener.yaml")).unwrap();
    symlink(".", root.join("loop")).unwrap();

    let catalogue = load_dir(root).unwrap();
    assert_no_issues(&catalogue);
    assert_eq!(listener(&catalogue, "team-a", "l").triggers.len(), 1);
}

#[test]
fn load_dir_fails_only_when_the_directory_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    assert!(load_dir(&dir.path().join("absent")).is_err());
    let catalogue = load_dir(dir.path()).unwrap();
    assert_eq!(catalogue.listeners().count(), 0);
    assert_no_issues(&catalogue);
}

#[test]
fn an_unreadable_file_is_an_issue() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("bad.yaml"), "");
    fs::write(dir.path().join("latin1.yaml"), b"name: caf\xe9\n").unwrap();
    let catalogue = load_dir(dir.path()).unwrap();
    let issue = only_issue(&catalogue);
    assert!(issue.file.ends_with("latin1.yaml"));
    assert!(issue.message.contains("UTF-8"), "{issue}");
}

#[test]
fn malformed_binding_expressions_are_refused_when_the_configuration_loads() {
    let yaml = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: typo, namespace: team-a}
spec:
  params: [{name: revision, value: $(bdy.head_commit.id)}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - name: by-ref
      bindings: [{ref: typo}]
      template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap}]}}
    - name: inline
      bindings: [{name: x, value: "$(body.a[)"}]
      template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap}]}}
    - name: fine
      bindings: [{name: x, value: "literal $(body.a) and $(header.x-y)"}]
      template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap}]}}
"#;
    let catalogue = load_str(FILE, yaml);
    let found: Vec<_> = catalogue
        .issues()
        .iter()
        .map(|i| (i.field.as_deref().unwrap_or_default(), i.message.as_str()))
        .collect();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0].0, "spec.triggers[0].bindings[0]");
    assert!(
        found[0].1.contains("`$(bdy.head_commit.id)`"),
        "{}",
        found[0].1
    );
    assert_eq!(found[1].0, "spec.triggers[1].bindings[0]");
    assert_eq!(trigger_names(listener(&catalogue, "team-a", "l")), ["fine"]);
}
