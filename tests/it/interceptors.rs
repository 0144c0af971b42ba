//! Interceptors the dispatcher runs, end to end: a CEL filter and overlay feeding a binding,
//! and a real HTTP interceptor behind a ClusterInterceptor gating runs, retried while down.

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

use crate::support::{ConfigDir, Stack, metric_sum, metrics_text, param, post};

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
