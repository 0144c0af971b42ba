//! Fixtures shared by the integration tests: configuration directories and webhook posts.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sluice_tests::procs::github_signature;

pub const SECRET: &str = "it-webhook-secret";

/// A temporary configuration directory.
pub struct ConfigDir(tempfile::TempDir);

impl ConfigDir {
    pub fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    pub fn file(self, name: &str, yaml: &str) -> Self {
        std::fs::write(self.0.path().join(name), yaml).expect("write config");
        self
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A GitHub listener in `namespace`: signature checked with [`SECRET`], push events only,
/// a PipelineRun per push created as service account `sa`.
pub fn github_listener(namespace: &str, sa: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: github, namespace: {namespace}}}
stringData: {{token: {SECRET}}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {{name: push, namespace: {namespace}}}
spec:
  params:
    - {{name: revision, value: $(body.head_commit.id)}}
    - {{name: url, value: $(body.repository.clone_url)}}
    - {{name: event, value: $(header.X-GitHub-Event)}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {{name: build, namespace: {namespace}}}
spec:
  params:
    - name: revision
    - name: url
    - name: event
  resourcetemplates:
    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata:
        generateName: build-
      spec:
        pipelineRef: {{name: build}}
        params:
          - {{name: revision, value: $(tt.params.revision)}}
          - {{name: url, value: $(tt.params.url)}}
          - {{name: event, value: $(tt.params.event)}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: github, namespace: {namespace}}}
spec:
  serviceAccountName: {sa}
  triggers:
    - name: on-push
      interceptors:
        - ref: {{name: github}}
          params:
            - {{name: secretRef, value: {{secretName: github, secretKey: token}}}}
            - {{name: eventTypes, value: [push]}}
      bindings: [{{ref: push}}]
      template: {{ref: build}}
"#
    )
}

/// A GitHub push body whose head commit is `revision`.
pub fn push_body(revision: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "repository": {"clone_url": "https://github.com/example/app.git", "full_name": "example/app"},
        "head_commit": {"id": revision, "message": "fix \"quotes\"\nand newlines"},
        "pusher": {"name": "octocat"}
    }))
    .expect("json")
}

/// Posts a signed GitHub push; returns the status and the JSON answer.
pub async fn post_push(client: &reqwest::Client, url: &str, body: &[u8]) -> (u16, Value) {
    post(
        client,
        url,
        body,
        &[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &github_signature(SECRET, body)),
        ],
    )
    .await
}

pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_vec())
        .timeout(Duration::from_secs(10));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        }
        Err(error) => (0, Value::String(error.to_string())),
    }
}

/// Messages stored in the events stream.
pub async fn stored_events(nats_url: &str) -> u64 {
    let client = async_nats::connect(nats_url).await.expect("connect");
    let js = jetstream::new(client);
    match js.get_stream("SLUICE_EVENTS").await {
        Ok(mut stream) => stream.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// The names of the events stream's consumers (the common one, and each diverted tenant's);
/// none while the stream cannot be read.
pub async fn event_consumers(nats_url: &str) -> Vec<String> {
    let client = async_nats::connect(nats_url).await.expect("connect");
    let Ok(stream) = jetstream::new(client).get_stream("SLUICE_EVENTS").await else {
        return Vec::new();
    };
    stream
        .consumer_names()
        .filter_map(|name| async move { name.ok() })
        .collect()
        .await
}

/// The value of a run's param by name.
pub fn param<'v>(run: &'v Value, name: &str) -> Option<&'v str> {
    run["spec"]["params"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)?["value"]
        .as_str()
}

/// The whole path on one configuration: a nats-server, the Kubernetes API double, ingest
/// (ready) and one dispatcher replica creating through the double.
pub struct Stack {
    pub nats: sluice_tests::NatsServer,
    pub api: sluice_tests::ApiDouble,
    pub ingest: sluice_tests::procs::Ingest,
    pub dispatcher: sluice_tests::procs::Dispatcher,
    _config: ConfigDir,
    kubeconfig: std::path::PathBuf,
    _kube_dir: tempfile::TempDir,
}

impl Stack {
    /// `prepare` sets up the API double (grants, faults) before the dispatcher starts.
    pub async fn start(
        config: ConfigDir,
        prepare: impl FnOnce(&sluice_tests::ApiDouble),
        dispatcher_flags: &[&str],
    ) -> Stack {
        Self::start_with(config, prepare, &[], dispatcher_flags).await
    }

    /// [`Stack::start`] with flags for ingest too.
    pub async fn start_with(
        config: ConfigDir,
        prepare: impl FnOnce(&sluice_tests::ApiDouble),
        ingest_flags: &[&str],
        dispatcher_flags: &[&str],
    ) -> Stack {
        let nats = sluice_tests::NatsServer::start().await;
        Self::start_on(nats, config, prepare, ingest_flags, dispatcher_flags).await
    }

    /// [`Stack::start_with`] on a nats-server started by the caller.
    pub async fn start_on(
        nats: sluice_tests::NatsServer,
        config: ConfigDir,
        prepare: impl FnOnce(&sluice_tests::ApiDouble),
        ingest_flags: &[&str],
        dispatcher_flags: &[&str],
    ) -> Stack {
        use sluice_tests::procs::{Dispatcher, Ingest, SinkTarget};

        let api = sluice_tests::ApiDouble::start().await;
        prepare(&api);
        let kube_dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = api.write_kubeconfig(kube_dir.path());
        let ingest = Ingest::start(&nats.url(), config.path(), ingest_flags).await;
        ingest.wait_ready().await;
        let dispatcher = Dispatcher::start(
            &nats.url(),
            config.path(),
            SinkTarget::Kube(&kubeconfig),
            dispatcher_flags,
        )
        .await;
        Stack {
            nats,
            api,
            ingest,
            dispatcher,
            _config: config,
            kubeconfig,
            _kube_dir: kube_dir,
        }
    }
}

impl Stack {
    /// Another dispatcher replica on the stack's NATS, API double and configuration.
    pub async fn replica(&self, flags: &[&str]) -> sluice_tests::procs::Dispatcher {
        sluice_tests::procs::Dispatcher::start(
            &self.nats.url(),
            self.config_dir(),
            sluice_tests::procs::SinkTarget::Kube(&self.kubeconfig),
            flags,
        )
        .await
    }

    /// The configuration directory every process of the stack reads.
    pub fn config_dir(&self) -> &Path {
        self._config.path()
    }
}

/// Every event stored in the events stream, decoded, in stream order.
pub async fn stored_envelopes(nats_url: &str) -> Vec<sluice_runtime::envelope::Envelope> {
    let client = async_nats::connect(nats_url).await.expect("connect");
    let js = jetstream::new(client);
    let Ok(mut stream) = js.get_stream("SLUICE_EVENTS").await else {
        return Vec::new();
    };
    let state = stream.info().await.expect("stream info").state.clone();
    let mut envelopes = Vec::new();
    for sequence in state.first_sequence..=state.last_sequence {
        if state.messages == 0 {
            break;
        }
        let message = stream
            .get_raw_message(sequence)
            .await
            .expect("stored message");
        envelopes.push(
            sluice_runtime::envelope::Envelope::decode(message.payload).expect("a Sluice event"),
        );
    }
    envelopes
}

/// Ingest's `/metrics` text.
pub async fn metrics_text(client: &reqwest::Client, metrics_url: &str) -> String {
    client
        .get(format!("{metrics_url}/metrics"))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text")
}

/// Runs the `sluice` command line (without a `SLUICE_CONFIG_DIR` from the environment).
pub fn sluice(args: &[&str]) -> std::process::Output {
    std::process::Command::new(sluice_tests::procs::bin_path("sluice"))
        .args(args)
        .env_remove("SLUICE_CONFIG_DIR")
        .output()
        .expect("run sluice")
}

/// The sum of a process's `name` samples whose labels contain every one of `labels`
/// (`outcome="created"`), from its `/metrics`.
/// Asserts that `metrics_url`'s dispatcher dead-lettered nothing: each listener's
/// dead-letter counters exist from the start, and all still read zero.
pub async fn assert_nothing_dead_lettered(metrics_url: &str) {
    assert_eq!(
        metric_sum(metrics_url, "sluice_dispatch_dead_letters_total", &[]).await,
        0,
        "dead letters counted: {}",
        metrics_text(&reqwest::Client::new(), metrics_url).await
    );
}

pub async fn metric_sum(metrics_url: &str, name: &str, labels: &[&str]) -> u64 {
    let text = metrics_text(&reqwest::Client::new(), metrics_url).await;
    text.lines()
        .filter(|line| line.starts_with(name) && labels.iter().all(|l| line.contains(l)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

/// What one run of the `sluice` command line did.
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for CliRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `sluice ARGS` against the NATS server at `nats_url` (`SLUICE_NATS_URL`).
pub async fn sluice_on(nats_url: &str, args: &[&str]) -> CliRun {
    let output = tokio::process::Command::new(sluice_tests::procs::bin_path("sluice"))
        .args(args)
        .env("SLUICE_NATS_URL", nats_url)
        .output()
        .await
        .expect("run sluice");
    CliRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
