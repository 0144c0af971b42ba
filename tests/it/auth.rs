//! Authentication at the edge, with the real binaries: for each provider a correctly signed
//! webhook is stored, and a wrong secret, a missing header, a tampered body or an expired
//! timestamp is refused with 401 and the code of the failed check, before the queue. Plus:
//! two triggers with different secrets, a listener whose Secret is missing, and
//! `--require-authentication`.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Sha256, Sha512};
use sluice_tests::NatsServer;
use sluice_tests::procs::{Ingest, bin_path, eventually, github_signature};

use crate::support::{
    ConfigDir, Stack, metrics_text, post, push_body, stored_envelopes, stored_events,
};

const NS: &str = "auth";

/// A listener `name` in namespace `auth` with one trigger, also named `name`, guarded by
/// `interceptors` (YAML flow text, where `SECRET_REF` stands for the Secret `<name>` key
/// `token`), that Secret holding `secret`, and an inline PipelineRun template.
fn guarded_listener(name: &str, secret: &str, interceptors: &str) -> String {
    let secret_ref = format!("{{secretName: {name}, secretKey: token}}");
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: {NS}}}
stringData: {{token: "{secret}"}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: {name}, namespace: {NS}}}
spec:
  triggers:
    - name: {name}
      interceptors: {interceptors}
      template:
        spec:
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {{generateName: {name}-}}
              spec: {{pipelineRef: {{name: build}}}}
"#,
        interceptors = interceptors.replace("SECRET_REF", &secret_ref),
    )
}

/// A nats-server and ingest serving one configuration.
struct Edge {
    nats: NatsServer,
    ingest: Ingest,
    client: reqwest::Client,
    _config: ConfigDir,
}

impl Edge {
    async fn start(config: ConfigDir, flags: &[&str]) -> Edge {
        let nats = NatsServer::start().await;
        let ingest = Ingest::start(&nats.url(), config.path(), flags).await;
        ingest.wait_ready().await;
        Edge {
            nats,
            ingest,
            client: reqwest::Client::new(),
            _config: config,
        }
    }

    async fn post(&self, listener: &str, body: &[u8], headers: &[(&str, String)]) -> (u16, Value) {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        post(
            &self.client,
            &self.ingest.hook_url(NS, listener),
            body,
            &headers,
        )
        .await
    }

    async fn accepted(&self, listener: &str, body: &[u8], headers: &[(&str, String)]) {
        let (status, answer) = self.post(listener, body, headers).await;
        assert_eq!(status, 202, "{listener}: {answer}");
        assert!(
            answer["eventID"].as_str().is_some_and(|id| id.len() == 36),
            "{answer}"
        );
    }

    /// Asserts a 401 with `code` whose answer echoes none of `secrets` nor any header value
    /// sent.
    async fn refused(
        &self,
        listener: &str,
        body: &[u8],
        headers: &[(&str, String)],
        code: &str,
        secrets: &[&str],
    ) {
        let (status, answer) = self.post(listener, body, headers).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (401, Some(code)),
            "{listener} {headers:?}: {answer}"
        );
        let text = answer.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "{text}");
        }
        for (_, value) in headers {
            if value.len() >= 8 {
                assert!(!text.contains(value.as_str()), "{text}");
            }
        }
    }

    async fn stored(&self) -> u64 {
        stored_events(&self.nats.url()).await
    }
}

fn hmac_sha256(secret: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha512(secret: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn h(name: &'static str, value: impl Into<String>) -> (&'static str, String) {
    (name, value.into())
}

#[tokio::test]
async fn github_signatures_are_verified_at_the_edge() {
    const SECRET: &str = "gh-secret-4f1a";
    let config = ConfigDir::new()
        .file(
            "github.yaml",
            &guarded_listener(
                "github",
                SECRET,
                "[{ref: {name: github, kind: ClusterInterceptor}, params: [{name: secretRef, value: SECRET_REF}, {name: eventTypes, value: [push]}]}]",
            ),
        )
        .file(
            "vector.yaml",
            &guarded_listener("vector", "secret", "[{github: {secretRef: SECRET_REF}}]"),
        );
    let edge = Edge::start(config, &[]).await;
    let body = push_body("a1");
    let push = h("X-GitHub-Event", "push");

    edge.accepted(
        "github",
        &body,
        &[
            push.clone(),
            h("X-Hub-Signature-256", github_signature(SECRET, &body)),
        ],
    )
    .await;
    // The issue's vector, through the v1alpha1 shorthand: secret `secret`, body `{}`.
    edge.accepted(
        "vector",
        b"{}",
        &[h(
            "X-Hub-Signature-256",
            "sha256=77325902caca812dc259733aacd046b73817372c777b8d95b402647474516e13",
        )],
    )
    .await;
    assert_eq!(edge.stored().await, 2);

    let wrong = github_signature("not-the-secret", &body);
    edge.refused(
        "github",
        &body,
        &[push.clone(), h("X-Hub-Signature-256", wrong)],
        "signature_invalid",
        &[SECRET],
    )
    .await;
    edge.refused(
        "github",
        &body,
        std::slice::from_ref(&push),
        "signature_missing",
        &[SECRET],
    )
    .await;
    let tampered = push_body("a2");
    edge.refused(
        "github",
        &tampered,
        &[
            push.clone(),
            h("X-Hub-Signature-256", github_signature(SECRET, &body)),
        ],
        "signature_invalid",
        &[SECRET],
    )
    .await;
    let good = github_signature(SECRET, &body);
    edge.refused(
        "github",
        &body,
        &[
            push.clone(),
            h("X-Hub-Signature-256", good.clone()),
            h("X-Hub-Signature-256", good),
        ],
        "signature_invalid",
        &[SECRET],
    )
    .await;
    assert_eq!(edge.stored().await, 2, "nothing refused reached the queue");
}

#[tokio::test]
async fn gitlab_tokens_are_verified_at_the_edge() {
    const SECRET: &str = "gl-secret-77c2";
    let config = ConfigDir::new()
        .file(
            "beta.yaml",
            &guarded_listener(
                "gitlab",
                SECRET,
                "[{ref: {name: gitlab}, params: [{name: secretRef, value: SECRET_REF}, {name: eventTypes, value: [Push Hook]}]}]",
            ),
        )
        .file(
            "alpha.yaml",
            &guarded_listener(
                "gitlab-alpha",
                SECRET,
                "[{gitlab: {secretRef: SECRET_REF, eventTypes: [Push Hook]}}]",
            )
            .replace("triggers.tekton.dev/v1beta1", "triggers.tekton.dev/v1alpha1"),
        );
    let edge = Edge::start(config, &[]).await;
    let body = br#"{"object_kind":"push","ref":"refs/heads/main"}"#;
    let push = h("X-Gitlab-Event", "Push Hook");

    for listener in ["gitlab", "gitlab-alpha"] {
        edge.accepted(listener, body, &[push.clone(), h("X-Gitlab-Token", SECRET)])
            .await;
    }
    assert_eq!(edge.stored().await, 2);
    edge.refused(
        "gitlab",
        body,
        &[push.clone(), h("X-Gitlab-Token", "gl-guess-0000")],
        "token_invalid",
        &[SECRET],
    )
    .await;
    edge.refused(
        "gitlab",
        body,
        std::slice::from_ref(&push),
        "token_missing",
        &[SECRET],
    )
    .await;
    // Authentic, another event type: 202, filtered, not queued.
    let (status, _) = edge
        .post(
            "gitlab",
            body,
            &[
                h("X-Gitlab-Event", "Issue Hook"),
                h("X-Gitlab-Token", SECRET),
            ],
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        edge.stored().await,
        2,
        "nothing refused or filtered reached the queue"
    );
}

#[tokio::test]
async fn bitbucket_signatures_are_verified_at_the_edge() {
    const SECRET: &str = "bb-secret-0a9e";
    let config = ConfigDir::new().file(
        "bitbucket.yaml",
        &guarded_listener(
            "bitbucket",
            SECRET,
            "[{bitbucket: {secretRef: SECRET_REF, eventTypes: [\"repo:refs_changed\", \"repo:push\"]}}]",
        ),
    );
    let edge = Edge::start(config, &[]).await;
    let body = br#"{"push":{"changes":[]}}"#;
    let sign =
        |secret: &str, body: &[u8]| format!("sha256={}", hex::encode(hmac_sha256(secret, &[body])));

    for key in ["repo:refs_changed", "repo:push"] {
        edge.accepted(
            "bitbucket",
            body,
            &[
                h("X-Event-Key", key),
                // Two deliveries of one body: each has its own request UUID.
                h("X-Request-UUID", key),
                h("X-Hub-Signature", sign(SECRET, body)),
            ],
        )
        .await;
    }
    let key = h("X-Event-Key", "repo:push");
    edge.refused(
        "bitbucket",
        body,
        &[key.clone(), h("X-Hub-Signature", sign("wrong", body))],
        "signature_invalid",
        &[SECRET],
    )
    .await;
    edge.refused(
        "bitbucket",
        body,
        std::slice::from_ref(&key),
        "signature_missing",
        &[SECRET],
    )
    .await;
    edge.refused(
        "bitbucket",
        br#"{"push":{"changes":["forged"]}}"#,
        &[key.clone(), h("X-Hub-Signature", sign(SECRET, body))],
        "signature_invalid",
        &[SECRET],
    )
    .await;
    assert_eq!(edge.stored().await, 2);
}

#[tokio::test]
async fn gitee_passwords_and_timestamped_signatures_are_verified_at_the_edge() {
    const SECRET: &str = "ge-secret-5b3d";
    let config = ConfigDir::new()
        .file(
            "signature.yaml",
            &guarded_listener(
                "gitee",
                SECRET,
                "[{ref: {name: gitee}, params: [{name: secretRef, value: SECRET_REF}, {name: mode, value: signature}, {name: eventTypes, value: [Push Hook]}]}]",
            ),
        )
        .file(
            "password.yaml",
            &guarded_listener(
                "gitee-password",
                SECRET,
                "[{ref: {name: gitee}, params: [{name: secretRef, value: SECRET_REF}, {name: mode, value: password}]}]",
            ),
        );
    let edge = Edge::start(config, &[]).await;
    let body = br#"{"hook_name":"push_hooks"}"#;
    let sign = |secret: &str, timestamp: &str| {
        STANDARD.encode(hmac_sha256(
            secret,
            &[timestamp.as_bytes(), b"\n", secret.as_bytes()],
        ))
    };
    let push = h("X-Gitee-Event", "Push Hook");
    let now = (unix_secs() * 1000).to_string();

    edge.accepted(
        "gitee",
        body,
        &[
            push.clone(),
            h("X-Gitee-Token", sign(SECRET, &now)),
            h("X-Gitee-Timestamp", now.clone()),
        ],
    )
    .await;
    edge.accepted(
        "gitee-password",
        body,
        &[
            h("X-Gitee-Token", SECRET),
            h("X-Gitee-Timestamp", now.clone()),
        ],
    )
    .await;
    assert_eq!(edge.stored().await, 2);

    edge.refused(
        "gitee",
        body,
        &[
            push.clone(),
            h("X-Gitee-Token", sign("wrong", &now)),
            h("X-Gitee-Timestamp", now.clone()),
        ],
        "token_invalid",
        &[SECRET],
    )
    .await;
    edge.refused(
        "gitee",
        body,
        &[push.clone(), h("X-Gitee-Timestamp", now.clone())],
        "token_missing",
        &[SECRET],
    )
    .await;
    edge.refused(
        "gitee",
        body,
        &[push.clone(), h("X-Gitee-Token", sign(SECRET, &now))],
        "timestamp_missing",
        &[SECRET],
    )
    .await;
    // Correctly signed two hours ago: a replay.
    let stale = ((unix_secs() - 7200) * 1000).to_string();
    edge.refused(
        "gitee",
        body,
        &[
            push.clone(),
            h("X-Gitee-Token", sign(SECRET, &stale)),
            h("X-Gitee-Timestamp", stale),
        ],
        "timestamp_outside_window",
        &[SECRET],
    )
    .await;
    // Signature mode does not take the password.
    edge.refused(
        "gitee",
        body,
        &[
            push.clone(),
            h("X-Gitee-Token", SECRET),
            h("X-Gitee-Timestamp", now.clone()),
        ],
        "token_invalid",
        &[SECRET],
    )
    .await;
    edge.refused(
        "gitee-password",
        body,
        &[h("X-Gitee-Token", "ge-guess-1111")],
        "token_invalid",
        &[SECRET],
    )
    .await;
    edge.refused("gitee-password", body, &[], "token_missing", &[SECRET])
        .await;
    assert_eq!(edge.stored().await, 2);
}

#[tokio::test]
async fn slack_signatures_and_their_timestamps_are_verified_at_the_edge() {
    const SECRET: &str = "sl-secret-c0de";
    let config = ConfigDir::new().file(
        "slack.yaml",
        &guarded_listener(
            "slack",
            SECRET,
            "[{ref: {name: slack}, params: [{name: secretRef, value: SECRET_REF}]}]",
        ),
    );
    let edge = Edge::start(config, &[]).await;
    let body = br#"{"type":"event_callback","event":{"type":"app_mention"}}"#;
    let sign = |secret: &str, timestamp: &str, body: &[u8]| {
        format!(
            "v0={}",
            hex::encode(hmac_sha256(
                secret,
                &[b"v0:", timestamp.as_bytes(), b":", body]
            ))
        )
    };
    let now = unix_secs().to_string();
    let ts = h("X-Slack-Request-Timestamp", now.clone());

    edge.accepted(
        "slack",
        body,
        &[ts.clone(), h("X-Slack-Signature", sign(SECRET, &now, body))],
    )
    .await;
    edge.refused(
        "slack",
        body,
        &[
            ts.clone(),
            h("X-Slack-Signature", sign("wrong", &now, body)),
        ],
        "signature_invalid",
        &[SECRET],
    )
    .await;
    edge.refused(
        "slack",
        body,
        std::slice::from_ref(&ts),
        "signature_missing",
        &[SECRET],
    )
    .await;
    edge.refused(
        "slack",
        br#"{"type":"event_callback","event":{"type":"forged"}}"#,
        &[ts.clone(), h("X-Slack-Signature", sign(SECRET, &now, body))],
        "signature_invalid",
        &[SECRET],
    )
    .await;
    let stale = (unix_secs() - 600).to_string();
    edge.refused(
        "slack",
        body,
        &[
            h("X-Slack-Request-Timestamp", stale.clone()),
            h("X-Slack-Signature", sign(SECRET, &stale, body)),
        ],
        "timestamp_outside_window",
        &[SECRET],
    )
    .await;
    edge.refused(
        "slack",
        body,
        &[h("X-Slack-Signature", sign(SECRET, &now, body))],
        "timestamp_missing",
        &[SECRET],
    )
    .await;
    assert_eq!(edge.stored().await, 1);
}

#[tokio::test]
async fn generic_hmac_signatures_are_verified_at_the_edge_and_never_queued() {
    const SECRET: &str = "hm-secret-9d8c";
    let config = ConfigDir::new().file(
        "hmac.yaml",
        &guarded_listener(
            "hmac",
            SECRET,
            "[{ref: {name: hmac}, params: [{name: secretRef, value: SECRET_REF}, {name: header, value: X-Signature}, {name: algorithm, value: sha512}, {name: encoding, value: base64}, {name: prefix, value: \"sha512=\"}]}]",
        ),
    );
    let edge = Edge::start(config, &[]).await;
    let body = br#"{"deployment":"web"}"#;
    let sign = |secret: &str, body: &[u8]| {
        format!("sha512={}", STANDARD.encode(hmac_sha512(secret, body)))
    };

    let signature = sign(SECRET, body);
    edge.accepted("hmac", body, &[h("X-Signature", signature.clone())])
        .await;
    edge.refused(
        "hmac",
        body,
        &[h("X-Signature", sign("wrong", body))],
        "signature_invalid",
        &[SECRET],
    )
    .await;
    edge.refused("hmac", body, &[], "signature_missing", &[SECRET])
        .await;
    edge.refused(
        "hmac",
        br#"{"deployment":"db"}"#,
        &[h("X-Signature", signature.clone())],
        "signature_invalid",
        &[SECRET],
    )
    .await;
    let envelopes = stored_envelopes(&edge.nats.url()).await;
    assert_eq!(envelopes.len(), 1);
    assert_eq!(envelopes[0].meta.triggers, ["hmac"]);
    assert!(
        envelopes[0].meta.headers.get_all("X-Signature").is_none(),
        "the configured signature header is dropped from the event like the built-in ones"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_triggers_with_different_secrets_run_only_the_one_whose_secret_matched() {
    const ONE: &str = "secret-of-team-one";
    const TWO: &str = "secret-of-team-two";
    let yaml = format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: hooks, namespace: {NS}}}
stringData: {{one: {ONE}, two: {TWO}}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: shared, namespace: {NS}}}
spec:
  serviceAccountName: builder
  triggers:
    - name: one
      interceptors:
        - ref: {{name: github}}
          params: [{{name: secretRef, value: {{secretName: hooks, secretKey: one}}}}]
      template:
        spec:
          resourcetemplates:
            - {{apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {{generateName: one-}}, spec: {{pipelineRef: {{name: one}}}}}}
    - name: two
      interceptors:
        - ref: {{name: github}}
          params: [{{name: secretRef, value: {{secretName: hooks, secretKey: two}}}}]
      template:
        spec:
          resourcetemplates:
            - {{apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {{generateName: two-}}, spec: {{pipelineRef: {{name: two}}}}}}
"#
    );
    let stack = Stack::start(
        ConfigDir::new().file("shared.yaml", &yaml),
        |api| {
            api.grant(
                &format!("system:serviceaccount:{NS}:builder"),
                &["create"],
                "tekton.dev",
                "pipelineruns",
                NS,
            );
        },
        &[],
    )
    .await;
    let Stack {
        api, ingest, nats, ..
    } = &stack;
    let client = reqwest::Client::new();
    let body = push_body("b2");
    let (status, answer) = post(
        &client,
        &ingest.hook_url(NS, "shared"),
        &body,
        &[("X-Hub-Signature-256", &github_signature(TWO, &body))],
    )
    .await;
    assert_eq!(status, 202, "{answer}");

    let envelopes = stored_envelopes(&nats.url()).await;
    assert_eq!(envelopes.len(), 1);
    assert_eq!(envelopes[0].meta.triggers, ["two"]);
    assert_eq!(
        envelopes[0].meta.event_id,
        answer["eventID"].as_str().unwrap()
    );
    assert!(
        envelopes[0]
            .meta
            .headers
            .get_all("X-Hub-Signature-256")
            .is_none(),
        "signatures never enter the queue"
    );

    assert!(
        eventually(Duration::from_secs(20), || async {
            api.object_count("tekton.dev", "pipelineruns", NS) >= 1
        })
        .await,
        "{}",
        stack.dispatcher.process.logs()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs = api.objects("tekton.dev", "pipelineruns", NS);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        runs[0]["metadata"]["labels"]["triggers.tekton.dev/trigger"],
        "two"
    );
    assert!(
        runs[0]["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("two-")
    );
}

#[tokio::test]
async fn a_listener_whose_secret_is_missing_answers_500_misconfigured_and_says_why_only_in_logs() {
    let yaml = guarded_listener(
        "broken",
        "unused",
        "[{ref: {name: github}, params: [{name: secretRef, value: {secretName: webhook-secret-gone, secretKey: token}}]}]",
    );
    let config = ConfigDir::new().file("broken.yaml", &yaml);
    let edge = Edge::start(config, &[]).await;
    let body = push_body("c3");
    let (status, answer) = edge
        .post(
            "broken",
            &body,
            &[h("X-Hub-Signature-256", github_signature("unused", &body))],
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (500, Some("listener_misconfigured")),
        "{answer}"
    );
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(message.contains("misconfigured"), "{answer}");
    assert!(
        !message.contains("webhook-secret-gone") && !message.contains("token"),
        "the sender learns only that the listener is misconfigured: {answer}"
    );
    // Unsigned: the same answer, since the trigger could have accepted it.
    let (status, _) = edge.post("broken", &body, &[]).await;
    assert_eq!(status, 500);
    assert_eq!(edge.stored().await, 0);

    let logs = edge.ingest.process.logs();
    assert!(
        logs.contains("listener misconfigured") && logs.contains("webhook-secret-gone"),
        "{logs}"
    );
    let metrics = metrics_text(&edge.client, &edge.ingest.metrics_url).await;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("sluice_ingest_requests_total")
                && line.contains(r#"listener="broken""#)
                && line.contains(r#"outcome="misconfigured""#)
                && line.ends_with(" 2")),
        "{metrics}"
    );

    let output = Command::new(bin_path("sluice"))
        .args(["validate", "--config-dir"])
        .arg(edge._config.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("Secret `webhook-secret-gone`"), "{report}");
}

#[tokio::test]
async fn require_authentication_turns_open_triggers_away() {
    const SECRET: &str = "strict-secret-31";
    let yaml = format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: hook, namespace: {NS}}}
stringData: {{token: {SECRET}}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {{name: run, namespace: {NS}}}
spec:
  resourcetemplates:
    - {{apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {{generateName: run-}}}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: mixed, namespace: {NS}}}
spec:
  triggers:
    - name: open
      template: {{ref: run}}
    - name: signed
      interceptors:
        - ref: {{name: github}}
          params: [{{name: secretRef, value: {{secretName: hook, secretKey: token}}}}]
      template: {{ref: run}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: open-only, namespace: {NS}}}
spec:
  triggers:
    - name: anyone
      template: {{ref: run}}
"#
    );
    let config = ConfigDir::new().file("strict.yaml", &yaml);

    // Tekton's default: an open trigger accepts any caller.
    let validate = |extra: &[&str], env: &[(&str, &str)]| {
        let output = Command::new(bin_path("sluice"))
            .args(["validate", "--config-dir"])
            .arg(config.path())
            .args(extra)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    assert_eq!(validate(&[], &[]).0, Some(0), "{}", validate(&[], &[]).1);
    for (flags, env) in [
        (&["--require-authentication"][..], &[][..]),
        (&[][..], &[("SLUICE_REQUIRE_AUTHENTICATION", "true")][..]),
    ] {
        let (code, report) = validate(flags, env);
        assert_eq!(code, Some(1), "{report}");
        assert!(report.contains("spec.triggers[0].interceptors"), "{report}");
        assert!(report.contains("--require-authentication"), "{report}");
    }

    let edge = Edge::start(config, &["--require-authentication"]).await;
    let body = push_body("d4");
    // The open trigger is gone: an unsigned request is refused, a signed one names only
    // the trigger that authenticated it.
    edge.refused("mixed", &body, &[], "signature_missing", &[SECRET])
        .await;
    edge.accepted(
        "mixed",
        &body,
        &[h("X-Hub-Signature-256", github_signature(SECRET, &body))],
    )
    .await;
    let envelopes = stored_envelopes(&edge.nats.url()).await;
    assert_eq!(envelopes.len(), 1);
    assert_eq!(envelopes[0].meta.triggers, ["signed"]);
    // A listener left with no valid trigger says it is misconfigured, not 202.
    let (status, answer) = edge.post("open-only", &body, &[]).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (500, Some("listener_misconfigured")),
        "{answer}"
    );
    assert_eq!(edge.stored().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_providers_signed_webhook_becomes_a_run() {
    const SECRET: &str = "all-providers-secret-5e2b";
    let providers = [
        (
            "github",
            "[{ref: {name: github}, params: [{name: secretRef, value: SECRET_REF}, {name: eventTypes, value: [push]}]}]",
        ),
        (
            "gitlab",
            "[{gitlab: {secretRef: SECRET_REF, eventTypes: [Push Hook]}}]",
        ),
        (
            "bitbucket",
            "[{bitbucket: {secretRef: SECRET_REF, eventTypes: [\"repo:push\"]}}]",
        ),
        (
            "gitee",
            "[{ref: {name: gitee}, params: [{name: secretRef, value: SECRET_REF}, {name: mode, value: signature}]}]",
        ),
        (
            "slack",
            "[{ref: {name: slack}, params: [{name: secretRef, value: SECRET_REF}]}]",
        ),
        (
            "hmac",
            "[{ref: {name: hmac}, params: [{name: secretRef, value: SECRET_REF}, {name: header, value: X-Signature}, {name: algorithm, value: sha512}, {name: encoding, value: base64}]}]",
        ),
    ];
    let mut config = ConfigDir::new();
    for (name, interceptors) in providers {
        config = config.file(
            &format!("{name}.yaml"),
            &guarded_listener(name, SECRET, interceptors),
        );
    }
    let stack = Stack::start(
        config,
        |api| {
            api.grant(
                &format!("system:serviceaccount:{NS}:default"),
                &["create"],
                "tekton.dev",
                "pipelineruns",
                NS,
            )
        },
        &[],
    )
    .await;
    let Stack { api, ingest, .. } = &stack;
    let client = reqwest::Client::new();
    let body = br#"{"ref":"refs/heads/main"}"#;
    let millis = (unix_secs() * 1000).to_string();
    let secs = unix_secs().to_string();
    let signed: [(&str, Vec<(&str, String)>); 6] = [
        (
            "github",
            vec![
                h("X-GitHub-Event", "push"),
                h("X-Hub-Signature-256", github_signature(SECRET, body)),
            ],
        ),
        (
            "gitlab",
            vec![
                h("X-Gitlab-Event", "Push Hook"),
                h("X-Gitlab-Token", SECRET),
            ],
        ),
        (
            "bitbucket",
            vec![
                h("X-Event-Key", "repo:push"),
                h(
                    "X-Hub-Signature",
                    format!("sha256={}", hex::encode(hmac_sha256(SECRET, &[body]))),
                ),
            ],
        ),
        (
            "gitee",
            vec![
                h(
                    "X-Gitee-Token",
                    STANDARD.encode(hmac_sha256(
                        SECRET,
                        &[millis.as_bytes(), b"\n", SECRET.as_bytes()],
                    )),
                ),
                h("X-Gitee-Timestamp", millis.clone()),
            ],
        ),
        (
            "slack",
            vec![
                h(
                    "X-Slack-Signature",
                    format!(
                        "v0={}",
                        hex::encode(hmac_sha256(SECRET, &[b"v0:", secs.as_bytes(), b":", body]))
                    ),
                ),
                h("X-Slack-Request-Timestamp", secs.clone()),
            ],
        ),
        (
            "hmac",
            vec![h("X-Signature", STANDARD.encode(hmac_sha512(SECRET, body)))],
        ),
    ];
    for (listener, headers) in &signed {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (status, answer) = post(&client, &ingest.hook_url(NS, listener), body, &headers).await;
        assert_eq!(status, 202, "{listener}: {answer}");
    }
    let all_ran = eventually(Duration::from_secs(20), || async {
        api.object_count("tekton.dev", "pipelineruns", NS) == signed.len()
    })
    .await;
    let runs = api.objects("tekton.dev", "pipelineruns", NS);
    assert!(all_ran, "{} of {} runs", runs.len(), signed.len());
    let mut listeners: Vec<&str> = runs
        .iter()
        .filter_map(|run| run["metadata"]["labels"]["triggers.tekton.dev/eventlistener"].as_str())
        .collect();
    listeners.sort_unstable();
    assert_eq!(
        listeners,
        ["bitbucket", "gitee", "github", "gitlab", "hmac", "slack"]
    );
}
