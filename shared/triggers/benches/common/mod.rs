//! What the event-path benchmarks share: a realistic GitHub push delivery (`fixtures/`), its
//! headers, and a trigger as a team would write it (a `github` interceptor, a `cel` filter
//! and overlay, a binding of five params, a PipelineRun template), loaded from YAML by the
//! real configuration loader. Used by the benches of `sluice-triggers` and, through
//! `#[path]`, of `sluice-dispatcher`; each uses only part of it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Map, Value};
use sluice_triggers::catalogue::{CelInterceptor, Interceptor, Listener, Trigger};
use sluice_triggers::config::load_str;
use sluice_triggers::expr::EventContext;
use sluice_triggers::headers::Headers;

/// A GitHub push delivery as GitHub sends it: compact JSON, about 8 KiB, three commits.
pub const GITHUB_PUSH: &[u8] = include_bytes!("../fixtures/github-push.json");

/// The event id the dispatcher would have, as `$(context.eventID)`.
pub const EVENT_ID: &str = "5d0f9c1e-0000-4000-8000-00000000c0de";

/// The CEL filter of the trigger.
pub const FILTER: &str = "header.match('X-GitHub-Event', 'push') \
    && body.ref.startsWith('refs/heads/main') \
    && body.repository.full_name in ['acme/svc', 'acme/other']";

/// The CEL overlay of the trigger, added to the extensions as `short_sha`.
pub const OVERLAY: &str = "body.after.truncate(7)";

/// One listener `bench/github` with one trigger `build-on-push`.
pub fn config() -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: webhook, namespace: bench}}
stringData: {{token: bench-webhook-secret}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: github, namespace: bench}}
spec:
  serviceAccountName: bench-triggers
  triggers:
    - name: build-on-push
      interceptors:
        - ref: {{name: github, kind: ClusterInterceptor}}
          params:
            - {{name: secretRef, value: {{secretName: webhook, secretKey: token}}}}
            - {{name: eventTypes, value: [push]}}
        - cel:
            filter: "{FILTER}"
            overlays:
              - {{key: short_sha, expression: "{OVERLAY}"}}
      bindings:
        - ref: github-push
      template:
        ref: build-on-push
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {{name: github-push, namespace: bench}}
spec:
  params:
    - {{name: git-revision, value: $(body.after)}}
    - {{name: git-url, value: $(body.repository.clone_url)}}
    - {{name: event, value: $(header.X-GitHub-Event)}}
    - {{name: message, value: $(body.head_commit.message)}}
    - {{name: short-sha, value: $(extensions.short_sha)}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {{name: build-on-push, namespace: bench}}
spec:
  params:
    - {{name: git-revision}}
    - {{name: git-url}}
    - {{name: event}}
    - {{name: message}}
    - {{name: short-sha}}
    - {{name: pipeline, default: build-and-test}}
  resourcetemplates:
    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata:
        generateName: build-$(tt.params.short-sha)-
        labels:
          app.kubernetes.io/managed-by: sluice
          example.com/event: $(tt.params.event)
        annotations:
          example.com/commit-message: $(tt.params.message)
          example.com/run-uid: $(uid)
      spec:
        pipelineRef:
          name: $(tt.params.pipeline)
        taskRunTemplate:
          serviceAccountName: builder
        params:
          - {{name: git-url, value: $(tt.params.git-url)}}
          - {{name: git-revision, value: $(tt.params.git-revision)}}
          - {{name: short-sha, value: $(tt.params.short-sha)}}
          - {{name: message, value: $(tt.params.message)}}
        workspaces:
          - name: source
            volumeClaimTemplate:
              spec:
                accessModes: [ReadWriteOnce]
                resources:
                  requests:
                    storage: 1Gi
          - name: cache
            persistentVolumeClaim:
              claimName: build-cache
"#
    )
}

/// The listener, loaded and checked.
pub fn listener() -> Arc<Listener> {
    let catalogue = load_str("bench.yaml", &config());
    assert!(catalogue.issues().is_empty(), "{:#?}", catalogue.issues());
    catalogue.listener("bench", "github").unwrap().clone()
}

/// The listener's one trigger.
pub fn trigger(listener: &Listener) -> &Trigger {
    &listener.triggers[0]
}

/// The trigger's `cel` interceptor.
pub fn cel(trigger: &Trigger) -> &CelInterceptor {
    trigger
        .interceptors
        .iter()
        .find_map(|interceptor| match interceptor {
            Interceptor::Cel(cel) => Some(cel),
            _ => None,
        })
        .unwrap()
}

/// The headers of the delivery as the event carries them (ingest drops the signature).
pub fn headers() -> Headers {
    let mut headers = Headers::new();
    for (name, value) in [
        ("Accept", "*/*"),
        ("Content-Type", "application/json"),
        ("User-Agent", "GitHub-Hookshot/3f5e2a1"),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Hook-ID", "292430182"),
        ("X-GitHub-Hook-Installation-Target-ID", "79929171"),
        ("X-GitHub-Hook-Installation-Target-Type", "repository"),
    ] {
        headers.append(name, value);
    }
    headers
}

/// The body, parsed.
pub fn body() -> Value {
    serde_json::from_slice(GITHUB_PUSH).unwrap()
}

/// The extensions after the trigger's overlay.
pub fn extensions(body: &Value) -> Map<String, Value> {
    let after = body["after"].as_str().unwrap();
    Map::from_iter([("short_sha".to_owned(), Value::from(&after[..7]))])
}

/// The event as bindings see it: body, headers and the overlay's extensions.
pub struct Event {
    pub body: Value,
    pub headers: Headers,
    pub extensions: Map<String, Value>,
}

impl Event {
    pub fn new() -> Self {
        let body = body();
        let extensions = extensions(&body);
        Self {
            body,
            headers: headers(),
            extensions,
        }
    }

    pub fn ctx(&self) -> EventContext<'_> {
        EventContext {
            body: &self.body,
            headers: &self.headers,
            extensions: &self.extensions,
            event_id: EVENT_ID,
        }
    }
}
