//! Interceptors the dispatcher runs, end to end: a CEL filter and overlay feeding a binding,
//! a real HTTP interceptor behind a ClusterInterceptor gating runs, retried while down, and
//! the github interceptor listing a pull request's files from a stand-in for GitHub's API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sluice_tests::ApiDouble;
use sluice_tests::procs::{eventually, free_port};

use futures_util::StreamExt;

use crate::support::{
    ConfigDir, Stack, assert_nothing_dead_lettered, metric_sum, metrics_text, param, post, sluice,
};

const SA: &str = "system:serviceaccount:team-a:builder";

fn grant(api: &ApiDouble) {
    api.grant(SA, &["create"], "tekton.dev", "*", "team-a");
}

const CEL_LISTENER: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: pulls, namespace: team-a}
spec:
  serviceAccountName: builder
  triggers:
    - name: pr
      interceptors:
        - ref: {name: cel}
          params:
            - name: filter
              value: header.match('X-GitHub-Event', 'pull_request') && body.action in ['opened','synchronize']
            - name: overlays
              value:
                - {key: pr.short_sha, expression: body.pull_request.head.sha.truncate(7)}
      bindings:
        - {name: sha, value: $(extensions.pr.short_sha)}
        - {name: number, value: $(body.number)}
      template:
        spec:
          params: [{name: sha}, {name: number}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {generateName: pr-}
              spec:
                pipelineRef: {name: build}
                params:
                  - {name: sha, value: $(tt.params.sha)}
                  - {name: number, value: $(tt.params.number)}
"#;

fn pull_request(action: &str, number: u64) -> Vec<u8> {
    json!({
        "action": action,
        "number": number,
        "pull_request": {"head": {"sha": format!("{number:07}abcdef0123456789abcdef0123456789")}},
    })
    .to_string()
    .into_bytes()
}

/// The dispatcher's count of trigger outcomes `outcome` for a listener.
async fn trigger_outcomes(metrics_url: &str, listener: &str, outcome: &str) -> u64 {
    metric_sum(
        metrics_url,
        "sluice_dispatch_triggers_total{",
        &[
            &format!("listener=\"{listener}\""),
            &format!("outcome=\"{outcome}\""),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cel_filter_and_overlay_select_and_shape_runs() {
    let stack = Stack::start(
        ConfigDir::new().file("pulls.yaml", CEL_LISTENER),
        grant,
        &[],
    )
    .await;
    let Stack {
        api,
        ingest,
        dispatcher,
        ..
    } = &stack;
    let client = reqwest::Client::new();
    let url = ingest.hook_url("team-a", "pulls");
    let pr = [("X-GitHub-Event", "pull_request")];
    let push = [("X-GitHub-Event", "push")];
    // Wanted: opened and synchronize pull requests. Not wanted: closed, or a push.
    for (body, headers) in [
        (pull_request("opened", 1), &pr),
        (pull_request("closed", 2), &pr),
        (pull_request("synchronize", 3), &pr),
        (pull_request("opened", 4), &push),
    ] {
        let (status, answer) = post(&client, &url, &body, headers).await;
        assert_eq!(status, 202, "{answer}");
    }
    let settled = eventually(Duration::from_secs(20), || async {
        trigger_outcomes(&dispatcher.metrics_url, "pulls", "created").await == 2
            && trigger_outcomes(&dispatcher.metrics_url, "pulls", "filtered").await == 2
    })
    .await;
    assert!(settled, "{}", dispatcher.process.logs());

    let mut runs: Vec<(String, String)> = api
        .objects("tekton.dev", "pipelineruns", "team-a")
        .iter()
        .map(|run| {
            (
                param(run, "number").unwrap().to_owned(),
                param(run, "sha").unwrap().to_owned(),
            )
        })
        .collect();
    runs.sort();
    assert_eq!(
        runs,
        [
            ("1".to_owned(), "0000001".to_owned()),
            ("3".to_owned(), "0000003".to_owned())
        ],
        "only the wanted pull requests ran, with the overlay's short sha"
    );
    let logs = dispatcher.process.logs();
    assert!(
        logs.contains("trigger filtered") && logs.contains("did not return true"),
        "a filtered trigger says so: {logs}"
    );
}

/// A webhook interceptor as users write them against Tekton's InterceptorRequest: it lets
/// the trigger continue only when the event's `X-My-Token` header is `123456`, and answers
/// 503 otherwise.
#[derive(Clone, Default)]
struct TokenGate {
    calls: Arc<AtomicUsize>,
    requests: Arc<std::sync::Mutex<Vec<Value>>>,
}

async fn gate(State(gate): State<TokenGate>, Json(request): Json<Value>) -> Response {
    gate.calls.fetch_add(1, Ordering::SeqCst);
    gate.requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(request.clone());
    let token = request["header"]["X-My-Token"][0].as_str();
    if token == Some("123456") {
        Json(json!({
            "continue": true,
            "extensions": {"gate": {"approved_for": request["context"]["trigger_id"]}},
            "status": {}
        }))
        .into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "token required").into_response()
    }
}

impl TokenGate {
    /// Serves on `addr` until the returned handle is aborted.
    async fn serve(&self, addr: SocketAddr) -> tokio::task::JoinHandle<()> {
        let app = axum::Router::new()
            .route("/gate", axum::routing::post(gate))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind gate");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn gated_config(port: u16) -> ConfigDir {
    let yaml = format!(
        r#"
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {{name: token-gate}}
spec:
  clientConfig:
    url: http://127.0.0.1:{port}/gate
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: gated, namespace: team-a}}
spec:
  serviceAccountName: builder
  triggers:
    - name: gated
      interceptors:
        - ref: {{name: token-gate, kind: ClusterInterceptor}}
          params: [{{name: team, value: a}}]
      bindings:
        - {{name: approval, value: $(extensions.gate.approved_for)}}
        - {{name: id, value: $(body.id)}}
      template:
        spec:
          params: [{{name: approval}}, {{name: id}}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {{generateName: gated-}}
              spec:
                params:
                  - {{name: approval, value: $(tt.params.approval)}}
                  - {{name: id, value: $(tt.params.id)}}
"#
    );
    ConfigDir::new().file("gated.yaml", &yaml)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_interceptor_gates_runs_and_is_retried_while_down() {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let allow = ["--interceptor-allow", "127.0.0.1"];
    let stack = Stack::start_with(
        gated_config(port),
        grant,
        &allow,
        &[
            "--interceptor-allow",
            "127.0.0.1",
            "--interceptor-attempts",
            "2",
            "--interceptor-timeout",
            "2s",
            "--max-deliver",
            "6",
        ],
    )
    .await;
    let Stack {
        api,
        ingest,
        dispatcher,
        ..
    } = &stack;
    let token_gate = TokenGate::default();
    let server = token_gate.serve(addr).await;
    let client = reqwest::Client::new();
    let url = ingest.hook_url("team-a", "gated");
    let runs = || api.objects("tekton.dev", "pipelineruns", "team-a");

    // The right token: the run is created, with the interceptor's extension bound.
    let (status, answer) = post(
        &client,
        &url,
        br#"{"id":"good"}"#,
        &[("X-My-Token", "123456")],
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert!(
        eventually(Duration::from_secs(20), || async { runs().len() == 1 }).await,
        "{}",
        dispatcher.process.logs()
    );
    let run = &runs()[0];
    assert_eq!(param(run, "id"), Some("good"));
    assert_eq!(
        param(run, "approval"),
        Some("namespaces/team-a/triggers/gated"),
        "the interceptor's extensions reach the bindings"
    );
    let request = token_gate.requests.lock().unwrap()[0].clone();
    assert_eq!(
        request["body"], r#"{"id":"good"}"#,
        "the body exactly as sent"
    );
    assert_eq!(request["interceptor_params"], json!({"team": "a"}));
    assert_eq!(request["context"]["event_id"], answer["eventID"]);

    // A wrong token: 503, retried with the event until it gives up; never a run.
    let before = token_gate.calls();
    let (status, _) = post(&client, &url, br#"{"id":"bad"}"#, &[("X-My-Token", "nope")]).await;
    assert_eq!(status, 202);
    let gave_up = eventually(Duration::from_secs(40), || async {
        metrics_text(&client, &dispatcher.metrics_url)
            .await
            .lines()
            .any(|l| {
                l.starts_with("sluice_dispatch_events_total")
                    && l.contains("gave_up")
                    && !l.ends_with(" 0")
            })
    })
    .await;
    assert!(gave_up, "{}", dispatcher.process.logs());
    assert!(
        token_gate.calls() - before >= 6,
        "every delivery asked the interceptor again ({} calls)",
        token_gate.calls() - before
    );
    assert_eq!(runs().len(), 1, "a refused event creates nothing");

    // The interceptor is down: the event waits in the queue, retried, not dropped.
    server.abort();
    let _ = server.await;
    let (status, _) = post(
        &client,
        &url,
        br#"{"id":"later"}"#,
        &[("X-My-Token", "123456")],
    )
    .await;
    assert_eq!(status, 202);
    let retried = eventually(Duration::from_secs(20), || async {
        trigger_outcomes(&dispatcher.metrics_url, "gated", "transient").await >= 1
    })
    .await;
    assert!(retried, "{}", dispatcher.process.logs());
    assert_eq!(
        runs().len(),
        1,
        "nothing is created while the interceptor is down"
    );
    let _server = token_gate.serve(addr).await;
    let created = eventually(Duration::from_secs(30), || async { runs().len() == 2 }).await;
    assert!(created, "{}", dispatcher.process.logs());
    assert!(runs().iter().any(|run| param(run, "id") == Some("later")));
}

/// A Tekton interceptor that takes `delay` to answer `continue: true`, counting its calls.
#[derive(Clone)]
struct SlowInterceptor {
    delay: Duration,
    calls: Arc<AtomicUsize>,
}

async fn slow(State(interceptor): State<SlowInterceptor>) -> Json<Value> {
    interceptor.calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(interceptor.delay).await;
    Json(json!({"continue": true}))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interceptor_slower_than_the_ack_wait_is_called_once() {
    let port = free_port();
    let interceptor = SlowInterceptor {
        delay: Duration::from_secs(4),
        calls: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/slow", axum::routing::post(slow))
        .with_state(interceptor.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let yaml = format!(
        r#"
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {{name: slow}}
spec:
  clientConfig:
    url: http://127.0.0.1:{port}/slow
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: slow, namespace: team-a}}
spec:
  serviceAccountName: builder
  triggers:
    - name: slow
      interceptors:
        - ref: {{name: slow, kind: ClusterInterceptor}}
      template:
        spec:
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {{generateName: slow-}}
"#
    );
    // JetStream would hand an event held a second without news to the next pull.
    let stack = Stack::start_with(
        ConfigDir::new().file("slow.yaml", &yaml),
        grant,
        &["--interceptor-allow", "127.0.0.1"],
        &["--interceptor-allow", "127.0.0.1", "--ack-wait", "1s"],
    )
    .await;
    let client = reqwest::Client::new();
    let (status, answer) = post(
        &client,
        &stack.ingest.hook_url("team-a", "slow"),
        br#"{"n": 1}"#,
        &[("X-GitHub-Delivery", "slow-1")],
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let created = eventually(Duration::from_secs(30), || async {
        stack
            .api
            .object_count("tekton.dev", "pipelineruns", "team-a")
            == 1
    })
    .await;
    assert!(created, "{}", stack.dispatcher.process.logs());
    // Time for a redelivery the ack wait would have caused to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        interceptor.calls.load(Ordering::SeqCst),
        1,
        "the event stayed with the replica running it: {}",
        stack.dispatcher.process.logs()
    );
    assert_eq!(
        stack
            .api
            .object_count("tekton.dev", "pipelineruns", "team-a"),
        1
    );
    server.abort();
}

/// A ClusterInterceptor as the seeds write one: it answers a wrong `X-My-Token` with `503`
/// and a decision in the body, `continue: false` with status 14 and a message.
async fn refusing_gate(
    State(calls): State<Arc<AtomicUsize>>,
    Json(request): Json<Value>,
) -> Response {
    calls.fetch_add(1, Ordering::SeqCst);
    if request["header"]["X-My-Token"][0] == "123456" {
        Json(json!({"continue": true})).into_response()
    } else {
        let refusal = json!({"continue": false, "status": {"code": 14, "message": "error param"}});
        (StatusCode::SERVICE_UNAVAILABLE, Json(refusal)).into_response()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interceptor_answering_503_with_a_decision_filters_the_event_once() {
    let port = free_port();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/gate", axum::routing::post(refusing_gate))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let yaml = format!(
        r#"
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {{name: token-gate}}
spec:
  clientConfig:
    url: http://127.0.0.1:{port}/gate
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: seeded, namespace: team-a}}
spec:
  serviceAccountName: builder
  triggers:
    - name: gated
      interceptors:
        - ref: {{name: token-gate, kind: ClusterInterceptor}}
      bindings:
        - {{name: id, value: $(body.id)}}
      template:
        spec:
          params: [{{name: id}}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {{generateName: seeded-}}
              spec:
                params: [{{name: id, value: $(tt.params.id)}}]
"#
    );
    let allow = ["--interceptor-allow", "127.0.0.1"];
    let stack = Stack::start_with(
        ConfigDir::new().file("seeded.yaml", &yaml),
        grant,
        &allow,
        &allow,
    )
    .await;
    let client = reqwest::Client::new();
    let url = stack.ingest.hook_url("team-a", "seeded");
    let body = br#"{"id":"same"}"#;

    let (status, answer) = post(&client, &url, body, &[("X-My-Token", "wrong")]).await;
    assert_eq!(status, 202, "{answer}");
    let filtered = eventually(Duration::from_secs(20), || async {
        trigger_outcomes(&stack.dispatcher.metrics_url, "seeded", "filtered").await == 1
    })
    .await;
    assert!(filtered, "{}", stack.dispatcher.process.logs());
    // Time for a retry or a redelivery to show, if there were one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a decision is asked once");
    let logs = stack.dispatcher.process.logs();
    assert!(
        logs.contains("stopped the trigger: Unavailable: error param"),
        "the interceptor's reason is logged: {logs}"
    );

    // The right token, the same body: one run.
    let (status, answer) = post(&client, &url, body, &[("X-My-Token", "123456")]).await;
    assert_eq!(status, 202, "{answer}");
    let runs = || stack.api.objects("tekton.dev", "pipelineruns", "team-a");
    let created = eventually(Duration::from_secs(20), || async { runs().len() == 1 }).await;
    assert!(created, "{}", stack.dispatcher.process.logs());
    assert_eq!(param(&runs()[0], "id"), Some("same"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_nothing_dead_lettered(&stack.dispatcher.metrics_url).await;
    server.abort();
}

const MISSING_KEY_LISTENER: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: merges, namespace: team-a}
spec:
  serviceAccountName: builder
  triggers:
    - name: on-merge
      interceptors:
        - ref: {name: cel}
          params:
            - name: filter
              value: body.pull_request.merged
      template:
        spec:
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {generateName: merged-}
"#;

/// A filter written for pull requests meets pushes, which have no `pull_request`: Tekton
/// skips the trigger on the evaluation error. Each is the trigger's `error`, counted and
/// logged, never a dead letter and never retried.
#[tokio::test(flavor = "multi_thread")]
async fn a_cel_filter_on_a_missing_key_fails_the_trigger_without_dead_letters() {
    const EVENTS: usize = 1000;
    let config = ConfigDir::new().file("merges.yaml", MISSING_KEY_LISTENER);
    let stack = Stack::start(config, grant, &[]).await;
    let client = reqwest::Client::new();
    let url = stack.ingest.hook_url("team-a", "merges");
    let accepted = futures_util::stream::iter(0..EVENTS)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let body = json!({"ref": "refs/heads/main", "after": format!("{i:040}")});
                let delivery = format!("push-{i}");
                post(
                    &client,
                    &url,
                    body.to_string().as_bytes(),
                    &[("X-GitHub-Delivery", delivery.as_str())],
                )
                .await
                .0
            }
        })
        .buffer_unordered(16)
        .filter(|status| std::future::ready(*status == 202))
        .count()
        .await;
    assert_eq!(accepted, EVENTS);
    let all = eventually(Duration::from_secs(120), || async {
        trigger_outcomes(&stack.dispatcher.metrics_url, "merges", "error").await == EVENTS as u64
    })
    .await;
    assert!(all, "{}", stack.dispatcher.process.logs());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_nothing_dead_lettered(&stack.dispatcher.metrics_url).await;
    for outcome in ["permanent", "transient", "created"] {
        assert_eq!(
            trigger_outcomes(&stack.dispatcher.metrics_url, "merges", outcome).await,
            0,
            "{outcome}"
        );
    }
    let js = async_nats::jetstream::new(async_nats::connect(stack.nats.url()).await.unwrap());
    if let Ok(mut dlq) = js.get_stream("SLUICE_DLQ").await {
        assert_eq!(dlq.info().await.unwrap().state.messages, 0);
    }
    assert!(
        stack
            .api
            .objects("tekton.dev", "pipelineruns", "team-a")
            .is_empty()
    );
    assert!(
        stack
            .dispatcher
            .process
            .logs()
            .contains("trigger failed for this event; not retried"),
        "logged"
    );

    // `sluice render` shows the same outcome with the CEL message.
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), r#"{"ref": "refs/heads/main"}"#).unwrap();
    let output = sluice(&[
        "render",
        "--config-dir",
        stack.config_dir().to_str().unwrap(),
        "--listener",
        "team-a/merges",
        "--body",
        body.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(report["triggers"][0]["status"], "error", "{report}");
    let reason = report["triggers"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no such key"), "{reason}");
}

/// A stand-in for GitHub's API: pull request 1 changed `src/a.rs` and `src/b.rs` (the first
/// request fails with 503), pull request 2 is refused as with a bad token.
#[derive(Clone, Default)]
struct FakeGitHub {
    calls: Arc<AtomicUsize>,
    authorizations: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn fake_github(
    State(github): State<FakeGitHub>,
    request: axum::extract::Request,
) -> Response {
    let call = github.calls.fetch_add(1, Ordering::SeqCst);
    if let Some(authorization) = request.headers().get("authorization") {
        github
            .authorizations
            .lock()
            .unwrap()
            .push(authorization.to_str().unwrap_or_default().to_owned());
    }
    match request.uri().path() {
        "/repos/acme/app/pulls/1/files" if call == 0 => {
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
        "/repos/acme/app/pulls/1/files" => {
            Json(json!([{"filename": "src/a.rs"}, {"filename": "src/b.rs"}])).into_response()
        }
        "/repos/acme/app/pulls/2/files" => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

const GITHUB_TOKEN: &str = "ghp_e2eTokenThatMustNeverBeLogged";

fn changed_files_config() -> ConfigDir {
    ConfigDir::new().file(
        "changed.yaml",
        &format!(
            r#"
apiVersion: v1
kind: Secret
metadata: {{name: github-api, namespace: team-a}}
stringData: {{token: {GITHUB_TOKEN}}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: changed, namespace: team-a}}
spec:
  serviceAccountName: builder
  triggers:
    - name: pr
      interceptors:
        - ref: {{name: github}}
          params:
            - {{name: eventTypes, value: [pull_request]}}
            - name: addChangedFiles
              value: {{enabled: true, personalAccessToken: {{secretName: github-api, secretKey: token}}}}
        - cel: {{filter: "extensions.changed_files.startsWith('src/')"}}
      bindings:
        - {{name: files, value: $(extensions.changed_files)}}
        - {{name: number, value: $(body.number)}}
      template:
        spec:
          params: [{{name: files}}, {{name: number}}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {{generateName: pr-}}
              spec:
                pipelineRef: {{name: build}}
                params:
                  - {{name: files, value: $(tt.params.files)}}
                  - {{name: number, value: $(tt.params.number)}}
"#
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_github_interceptor_adds_a_pull_requests_changed_files_from_githubs_api() {
    let github = FakeGitHub::default();
    let port = free_port();
    let app = axum::Router::new()
        .fallback(fake_github)
        .with_state(github.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let api_url = format!("http://127.0.0.1:{port}");
    let stack = Stack::start(
        changed_files_config(),
        grant,
        &["--github-api-url", &api_url, "--interceptor-attempts", "3"],
    )
    .await;
    let Stack {
        api,
        ingest,
        dispatcher,
        ..
    } = &stack;
    let client = reqwest::Client::new();
    let url = ingest.hook_url("team-a", "changed");
    for number in [1, 2] {
        let body =
            json!({"action": "opened", "number": number, "repository": {"full_name": "acme/app"}})
                .to_string();
        let (status, answer) = post(
            &client,
            &url,
            body.as_bytes(),
            &[("X-GitHub-Event", "pull_request")],
        )
        .await;
        assert_eq!(status, 202, "{answer}");
    }
    let settled = eventually(Duration::from_secs(20), || async {
        trigger_outcomes(&dispatcher.metrics_url, "changed", "created").await == 1
            && trigger_outcomes(&dispatcher.metrics_url, "changed", "error").await == 1
    })
    .await;
    let logs = dispatcher.process.logs();
    assert!(settled, "{logs}");
    let runs = api.objects("tekton.dev", "pipelineruns", "team-a");
    assert_eq!(runs.len(), 1);
    assert_eq!(param(&runs[0], "number"), Some("1"));
    assert_eq!(
        param(&runs[0], "files"),
        Some("src/a.rs,src/b.rs"),
        "the 503 was retried and the cel filter saw the files"
    );
    assert!(
        github
            .authorizations
            .lock()
            .unwrap()
            .iter()
            .all(|a| a == &format!("Bearer {GITHUB_TOKEN}")),
        "the token from the Secret is sent"
    );
    assert!(
        logs.contains("401 Unauthorized") && logs.contains("Bad credentials"),
        "{logs}"
    );
    assert!(
        !logs.contains(GITHUB_TOKEN),
        "the token never reaches a log: {logs}"
    );
}
