//! Configuration from the Kubernetes API: ingest and the dispatcher started without
//! `--config-dir` read the Tekton Triggers objects and Secrets tenants applied to the API
//! server (the double), serve them, and follow every change within two seconds.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_tests::api_double::{Failure, Verb};
use sluice_tests::procs::{
    ConfigFrom, Dispatcher, Ingest, SinkTarget, eventually, github_signature,
};
use sluice_tests::{ApiDouble, NatsServer};

use crate::support::{SECRET, github_listener, param, post, post_push, push_body};

const TEAM_A_SA: &str = "system:serviceaccount:team-a:builder";

/// Where an applied object is stored: its API group and resource, as its CRD (or the core
/// API) serves it.
fn resource_of(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "EventListener" => ("triggers.tekton.dev", "eventlisteners"),
        "Trigger" => ("triggers.tekton.dev", "triggers"),
        "TriggerBinding" => ("triggers.tekton.dev", "triggerbindings"),
        "ClusterTriggerBinding" => ("triggers.tekton.dev", "clustertriggerbindings"),
        "TriggerTemplate" => ("triggers.tekton.dev", "triggertemplates"),
        "Interceptor" => ("triggers.tekton.dev", "interceptors"),
        "ClusterInterceptor" => ("triggers.tekton.dev", "clusterinterceptors"),
        "Secret" => ("", "secrets"),
        other => panic!("no resource for kind {other}"),
    }
}

/// `kubectl apply` of a multi-document YAML text: each document stored as the API server
/// stores it (a Secret's `stringData` written into `data`, base64-encoded).
pub fn apply(api: &ApiDouble, yaml: &str) {
    for document in yaml.split("\n---") {
        let value: Value = serde_norway::from_str(document).expect("valid YAML");
        if value.is_null() {
            continue;
        }
        let mut object = value;
        let kind = object["kind"].as_str().expect("kind").to_owned();
        if kind == "Secret"
            && let Some(Value::Object(plain)) =
                object.as_object_mut().and_then(|o| o.remove("stringData"))
        {
            use base64::Engine;
            for (key, value) in plain {
                let text = value
                    .as_str()
                    .expect("stringData values are strings")
                    .to_owned();
                object["data"][key] = json!(base64::engine::general_purpose::STANDARD.encode(text));
            }
        }
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let (group, resource) = resource_of(&kind);
        api.insert(group, resource, &namespace, object);
    }
}

/// team-b's template `build`, broken: it uses a param no one declares.
pub const BROKEN_TEMPLATE: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: build, namespace: team-b}
spec:
  resourcetemplates:
    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata: {generateName: build-}
      spec: {params: [{name: x, value: $(tt.params.undeclared)}]}
"#;

/// `kubectl delete`.
pub fn delete(api: &ApiDouble, kind: &str, namespace: &str, name: &str) {
    let (group, resource) = resource_of(kind);
    api.remove(group, resource, namespace, name)
        .unwrap_or_else(|| panic!("no {kind} {namespace}/{name} to delete"));
}

/// What the dispatcher's service account needs to write status, Events and its Lease.
pub fn grant_status_writer(api: &ApiDouble) {
    let controller = api.controller_user().to_owned();
    api.grant(
        &controller,
        &["patch"],
        "triggers.tekton.dev",
        "eventlisteners/status",
        "*",
    );
    api.grant(&controller, &["create"], "", "events", "*");
    api.grant(
        &controller,
        &["get", "create", "update"],
        "coordination.k8s.io",
        "leases",
        "*",
    );
}

/// NATS, the API double holding the tenants' objects, and ingest plus one dispatcher
/// replica that read their configuration from it.
pub struct ClusterStack {
    pub nats: NatsServer,
    pub api: ApiDouble,
    pub ingest: Ingest,
    pub dispatcher: Dispatcher,
    kubeconfig: PathBuf,
    _kube_dir: tempfile::TempDir,
}

impl ClusterStack {
    pub async fn start(prepare: impl FnOnce(&ApiDouble)) -> ClusterStack {
        Self::start_with(prepare, &[]).await
    }

    /// The stack with team-a's GitHub listener ([`github_listener`]), whose runs its
    /// service account may create.
    pub async fn team_a() -> ClusterStack {
        Self::start(|api| {
            apply(api, &github_listener("team-a", "builder"));
            api.grant(
                TEAM_A_SA,
                &["create"],
                "tekton.dev",
                "pipelineruns",
                "team-a",
            );
        })
        .await
    }

    /// [`ClusterStack::start`] with flags for the dispatcher.
    pub async fn start_with(
        prepare: impl FnOnce(&ApiDouble),
        dispatcher_flags: &[&str],
    ) -> ClusterStack {
        Self::start_on(NatsServer::start().await, prepare, &[], dispatcher_flags).await
    }

    /// [`ClusterStack::start`] on a nats-server started by the caller, with flags for each
    /// binary.
    pub async fn start_on(
        nats: NatsServer,
        prepare: impl FnOnce(&ApiDouble),
        ingest_flags: &[&str],
        dispatcher_flags: &[&str],
    ) -> ClusterStack {
        let api = ApiDouble::start().await;
        prepare(&api);
        let kube_dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = api.write_kubeconfig(kube_dir.path());
        let ingest =
            Ingest::start_from(&nats.url(), ConfigFrom::Cluster(&kubeconfig), ingest_flags).await;
        ingest.wait_ready().await;
        let dispatcher = Dispatcher::spawn_from(
            &nats.url(),
            ConfigFrom::Cluster(&kubeconfig),
            SinkTarget::Kube(&kubeconfig),
            dispatcher_flags,
        );
        dispatcher.wait_ready().await;
        ClusterStack {
            nats,
            api,
            ingest,
            dispatcher,
            kubeconfig,
            _kube_dir: kube_dir,
        }
    }

    /// Another dispatcher replica reading the same API, not waited for.
    pub fn another_dispatcher(&self, flags: &[&str]) -> Dispatcher {
        Dispatcher::spawn_from(
            &self.nats.url(),
            ConfigFrom::Cluster(&self.kubeconfig),
            SinkTarget::Kube(&self.kubeconfig),
            flags,
        )
    }

    /// Another ingest replica reading the same API.
    pub async fn another_ingest(&self) -> Ingest {
        let ingest =
            Ingest::start_from(&self.nats.url(), ConfigFrom::Cluster(&self.kubeconfig), &[]).await;
        ingest.wait_ready().await;
        ingest
    }

    pub fn runs(&self, namespace: &str) -> Vec<Value> {
        self.api.objects("tekton.dev", "pipelineruns", namespace)
    }
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/config")
}

/// The push `examples/push.json` stands for, as GitHub would sign and send it.
async fn push_the_example(client: &reqwest::Client, ingest: &Ingest, body: &[u8]) {
    let (status, answer) = post(
        client,
        &ingest.hook_url("team-a", "github"),
        body,
        &[
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "cluster-delivery-1"),
            (
                "X-Hub-Signature-256",
                &github_signature("demo-webhook-secret", body),
            ),
        ],
    )
    .await;
    assert_eq!(status, 202, "{answer}");
}

/// What of a run both sources must agree on: everything but what the API server or the
/// event gives it (uid, the event id label…). Its name, made from the delivery id, too.
fn comparable(run: &Value) -> Value {
    let mut run = run.clone();
    let metadata = run["metadata"].as_object_mut().expect("metadata");
    for generated in ["uid", "resourceVersion", "creationTimestamp"] {
        metadata.remove(generated);
    }
    if let Some(labels) = metadata.get_mut("labels").and_then(Value::as_object_mut) {
        labels.remove("triggers.tekton.dev/triggers-eventid");
    }
    // Each stack gave the push its own event id (the delivery id is the same).
    if let Some(annotations) = metadata
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove("sluice.dev/event-id");
    }
    run
}

#[tokio::test(flavor = "multi_thread")]
async fn the_examples_applied_to_the_api_carry_a_push_to_the_same_run_as_the_directory() {
    let stack = ClusterStack::start_with(
        |api| {
            for entry in std::fs::read_dir(examples_dir()).expect("examples") {
                let path = entry.expect("entry").path();
                apply(api, &std::fs::read_to_string(&path).expect("read example"));
            }
            // A Secret no interceptor names: never read.
            apply(
                api,
                "apiVersion: v1\nkind: Secret\nmetadata: {name: unrelated, namespace: team-a}\nstringData: {password: hunter2}\n",
            );
            api.grant(
                "system:serviceaccount:team-a:team-a-triggers",
                &["create"],
                "tekton.dev",
                "pipelineruns",
                "team-a",
            );
            grant_status_writer(api);
        },
        &["--public-url", "https://hooks.example.com"],
    )
    .await;
    let client = reqwest::Client::new();
    let body = push_body("0123abcd");
    push_the_example(&client, &stack.ingest, &body).await;
    let created = eventually(Duration::from_secs(20), || async {
        stack.runs("team-a").len() == 1
    })
    .await;
    assert!(created, "no run:\n{}", stack.dispatcher.process.logs());

    // The listener says where senders reach it and that it serves.
    let ready = eventually(Duration::from_secs(10), || async {
        stack
            .api
            .object("triggers.tekton.dev", "eventlisteners", "team-a", "github")
            .is_some_and(|listener| {
                listener["status"]["conditions"]
                    .as_array()
                    .is_some_and(|conditions| {
                        conditions
                            .iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
            })
    })
    .await;
    let listener = stack
        .api
        .object("triggers.tekton.dev", "eventlisteners", "team-a", "github")
        .expect("the listener");
    assert!(ready, "{listener}");
    assert_eq!(
        listener["status"]["address"]["url"],
        "https://hooks.example.com/hooks/team-a/github"
    );

    // Secrets: their contents read one by one, only the one an interceptor names; listed
    // and watched for metadata only.
    let secrets: Vec<_> = stack
        .api
        .requests()
        .into_iter()
        .filter(|request| request.resource.as_deref() == Some("secrets"))
        .collect();
    assert!(
        secrets.iter().any(|r| r.verb == Some(Verb::Watch))
            && secrets.iter().any(|r| r.verb == Some(Verb::Get)),
        "{secrets:?}"
    );
    for request in secrets {
        match request.verb {
            Some(Verb::List | Verb::Watch) => assert!(
                request.metadata_only(),
                "Secret contents listed or watched: {request:?}"
            ),
            Some(Verb::Get) => assert_eq!(
                (request.namespace.as_deref(), request.name.as_deref()),
                (Some("team-a"), Some("github-webhook")),
                "{request:?}"
            ),
            _ => panic!("unexpected request on Secrets: {request:?}"),
        }
    }

    // The same files as a configuration directory, on a NATS of their own, creating through
    // the same API: the same push makes the same run (the first one deleted, or the second
    // would find it there: its name comes from the delivery id).
    let from_api = comparable(&stack.runs("team-a")[0]);
    let name = from_api["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    stack
        .api
        .remove("tekton.dev", "pipelineruns", "team-a", &name)
        .expect("the run");
    let nats = NatsServer::start().await;
    let dir = examples_dir();
    let ingest = Ingest::start_from(&nats.url(), ConfigFrom::Dir(&dir), &[]).await;
    ingest.wait_ready().await;
    let dispatcher = Dispatcher::spawn_from(
        &nats.url(),
        ConfigFrom::Dir(&dir),
        SinkTarget::Kube(&stack.kubeconfig),
        &[],
    );
    dispatcher.wait_ready().await;
    push_the_example(&client, &ingest, &body).await;
    let again = eventually(Duration::from_secs(20), || async {
        stack.runs("team-a").len() == 1
    })
    .await;
    assert!(
        again,
        "no run from the directory:\n{}",
        dispatcher.process.logs()
    );
    assert_eq!(comparable(&stack.runs("team-a")[0]), from_api);
    let run = &from_api;
    assert_eq!(param(run, "git-revision"), Some("0123abcd"));
    assert_eq!(run["spec"]["pipelineRef"]["name"], "build-and-test");
    assert_eq!(
        run["metadata"]["annotations"]["example.com/github-delivery"],
        "cluster-delivery-1"
    );
}

/// How long until `check` holds, polling every 10 ms; `None` past `limit`.
pub async fn time_until<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// The document of `kind` in a multi-document YAML text.
pub fn document_of(yaml: &str, kind: &str) -> String {
    yaml.split("\n---")
        .find(|document| document.contains(&format!("\nkind: {kind}\n")))
        .unwrap_or_else(|| panic!("no {kind} in {yaml}"))
        .to_owned()
}

/// The EventListener of team-a's [`github_listener`], named `name`: another listener of the
/// same Secret, binding and template.
pub fn listener_named(name: &str) -> String {
    document_of(&github_listener("team-a", "builder"), "EventListener").replace(
        "metadata: {name: github, namespace: team-a}",
        &format!("metadata: {{name: {name}, namespace: team-a}}"),
    )
}

pub async fn status_of(client: &reqwest::Client, url: &str, body: &[u8], secret: &str) -> u16 {
    post(
        client,
        url,
        body,
        &[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &github_signature(secret, body)),
        ],
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread")]
async fn listeners_and_secrets_changed_in_the_api_are_served_within_two_seconds() {
    let stack = ClusterStack::team_a().await;
    let replicas = [&stack.ingest, &stack.another_ingest().await];
    let client = reqwest::Client::new();
    let body = push_body("feedface");
    let url = stack.ingest.hook_url("team-a", "github");
    assert_eq!(status_of(&client, &url, &body, SECRET).await, 202);
    // Until every replica answers `status` for `name` with `secret`.
    let all_answer = |name: String, secret: &'static str, status: u16| {
        let client = client.clone();
        let body = body.clone();
        let urls: Vec<String> = replicas
            .iter()
            .map(|r| r.hook_url("team-a", &name))
            .collect();
        move || {
            let (client, body, urls) = (client.clone(), body.clone(), urls.clone());
            async move {
                for url in &urls {
                    if status_of(&client, url, &body, secret).await != status {
                        return false;
                    }
                }
                true
            }
        }
    };

    // 25 listeners created and deleted: 50 changes, each timed until ingest answers as the
    // API now says.
    let limit = Duration::from_secs(10);
    let mut took = Vec::new();
    for round in 0..25 {
        let name = format!("added-{round}");
        let yaml = listener_named(&name);
        apply(&stack.api, &yaml);
        let served = time_until(limit, all_answer(name.clone(), SECRET, 202)).await;
        took.push(served.unwrap_or_else(|| panic!("listener {name} never served")));
        delete(&stack.api, "EventListener", "team-a", &name);
        let gone = time_until(limit, all_answer(name.clone(), SECRET, 404)).await;
        took.push(gone.unwrap_or_else(|| panic!("deleted listener {name} still served")));
    }
    took.sort();
    let p99 = took[took.len() * 99 / 100 - 1];
    println!(
        "change served after: min {:?}, median {:?}, p99 {:?}, max {:?}",
        took[0],
        took[took.len() / 2],
        p99,
        took[took.len() - 1]
    );
    assert!(
        p99 <= Duration::from_secs(2),
        "p99 {p99:?} over {} changes",
        took.len()
    );

    // A rotated Secret: the old secret's signature is refused, the new one's accepted.
    apply(
        &stack.api,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: github, namespace: team-a}\nstringData: {token: rotated-webhook-secret}\n",
    );
    let rotated = time_until(
        limit,
        all_answer("github".to_owned(), "rotated-webhook-secret", 202),
    )
    .await;
    assert!(
        rotated.is_some_and(|took| took <= Duration::from_secs(2)),
        "rotation took {rotated:?}"
    );
    assert_eq!(status_of(&client, &url, &body, SECRET).await, 401);

    // The dispatcher follows too: every push accepted above became a run (two replicas
    // each accepted one per listener, and one each for the first and the rotated secret).
    let runs = eventually(Duration::from_secs(20), || async {
        stack.runs("team-a").len() >= 2 * 25 + 3
    })
    .await;
    assert!(runs, "{}", stack.dispatcher.process.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_object_in_the_api_spoils_only_its_listener() {
    let stack = ClusterStack::start(|api| {
        apply(api, &github_listener("team-a", "builder"));
        apply(api, &github_listener("team-b", "builder"));
        api.grant(
            TEAM_A_SA,
            &["create"],
            "tekton.dev",
            "pipelineruns",
            "team-a",
        );
    })
    .await;
    let client = reqwest::Client::new();
    let body = push_body("cafe");
    let team_a = stack.ingest.hook_url("team-a", "github");
    let team_b = stack.ingest.hook_url("team-b", "github");

    // team-b's template now refers to a param no one declares: its trigger is skipped.
    apply(&stack.api, BROKEN_TEMPLATE);
    let broken = eventually(Duration::from_secs(5), || async {
        status_of(&client, &team_b, &body, SECRET).await == 500
    })
    .await;
    assert!(broken, "{}", stack.ingest.process.logs());
    let (status, answer) = post_push(&client, &team_b, &body).await;
    assert_eq!(status, 500);
    assert_eq!(answer["code"], "listener_misconfigured", "{answer}");
    assert!(
        stack
            .ingest
            .process
            .logs()
            .contains("triggertemplates.triggers.tekton.dev/team-b/build"),
        "the log names the object at fault:\n{}",
        stack.ingest.process.logs()
    );
    assert_eq!(status_of(&client, &team_a, &body, SECRET).await, 202);

    // A Secret deleted: the listener cannot verify anyone and says so; applied again, it
    // serves again.
    delete(&stack.api, "Secret", "team-a", "github");
    let unverifiable = eventually(Duration::from_secs(5), || async {
        status_of(&client, &team_a, &body, SECRET).await == 500
    })
    .await;
    assert!(unverifiable, "{}", stack.ingest.process.logs());
    apply(&stack.api, &github_listener("team-a", "builder"));
    let back = eventually(Duration::from_secs(5), || async {
        status_of(&client, &team_a, &body, SECRET).await == 202
    })
    .await;
    assert!(back, "{}", stack.ingest.process.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_is_unready_until_it_could_list_the_configuration() {
    let nats = NatsServer::start().await;
    let api = ApiDouble::start().await;
    apply(&api, &github_listener("team-a", "builder"));
    api.fail_all(Verb::List, Failure::ServiceUnavailable);
    let kube_dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.write_kubeconfig(kube_dir.path());
    let ingest = Ingest::start_from(&nats.url(), ConfigFrom::Cluster(&kubeconfig), &[]).await;

    let readyz = format!("{}/readyz", ingest.url);
    let logged = eventually(Duration::from_secs(10), || async {
        ingest
            .process
            .logs()
            .contains("Kubernetes API request failed")
    })
    .await;
    assert!(logged, "{}", ingest.process.logs());
    let response = reqwest::get(&readyz).await.expect("readyz");
    assert_eq!(response.status(), 503);
    let why = response.text().await.unwrap_or_default();
    assert!(why.contains("Kubernetes API"), "{why}");

    api.clear_faults();
    ingest.wait_ready().await;
    let client = reqwest::Client::new();
    let (status, answer) = post_push(
        &client,
        &ingest.hook_url("team-a", "github"),
        &push_body("abc"),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_or_expired_watch_misses_no_change() {
    let stack = ClusterStack::start(|api| {
        apply(api, &github_listener("team-a", "builder"));
    })
    .await;
    let client = reqwest::Client::new();
    let body = push_body("d00d");

    // Every watch connection closed, as an API server restart closes them: the watches
    // resume, and a listener applied meanwhile is served.
    stack.api.drop_watches();
    apply(&stack.api, &listener_named("after-drop"));
    let url = stack.ingest.hook_url("team-a", "after-drop");
    let served = eventually(Duration::from_secs(5), || async {
        status_of(&client, &url, &body, SECRET).await == 202
    })
    .await;
    assert!(served, "{}", stack.ingest.process.logs());

    // Watches refused while changes happen and the history is compacted: resuming from the
    // last version seen is answered 410 Gone, and listing again finds the change.
    stack.api.fail_all(Verb::Watch, Failure::ServiceUnavailable);
    stack.api.drop_watches();
    apply(&stack.api, &listener_named("after-compaction"));
    delete(&stack.api, "EventListener", "team-a", "after-drop");
    stack.api.compact();
    stack.api.clear_faults();
    let url = stack.ingest.hook_url("team-a", "after-compaction");
    let served = eventually(Duration::from_secs(20), || async {
        status_of(&client, &url, &body, SECRET).await == 202
    })
    .await;
    assert!(served, "{}", stack.ingest.process.logs());
    let dropped = stack.ingest.hook_url("team-a", "after-drop");
    assert_eq!(status_of(&client, &dropped, &body, SECRET).await, 404);
    assert!(
        stack.ingest.process.logs().contains("410 Gone"),
        "the watch was expired and listed again:\n{}",
        stack.ingest.process.logs()
    );
}
