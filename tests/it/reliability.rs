//! Nothing lost, nothing twice: under dispatcher crashes, a NATS crash, API failures and
//! outages, redeliveries and dead letters, every webhook that got a `202` yields exactly one
//! run per trigger. Each test prints its figures (`figures:` lines) for docs/reliability.md.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use sluice_tests::ApiDouble;
use sluice_tests::api_double::{Failure, FaultRule, Verb};
use sluice_tests::procs::{eventually, github_signature};

use crate::support::{ConfigDir, SECRET, Stack, metric_sum, param, post, push_body, sluice};

const SA: &str = "system:serviceaccount:team-a:builder";
const TRIGGERS: [&str; 2] = ["build", "lint"];

/// A GitHub listener whose every push runs two triggers, `build` and `lint`, each creating a
/// PipelineRun labelled with the push's revision.
fn two_trigger_listener() -> String {
    let template = |name: &str| {
        format!(
            r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {{name: {name}, namespace: team-a}}
spec:
  params: [{{name: revision}}]
  resourcetemplates:
    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata: {{generateName: {name}-}}
      spec:
        pipelineRef: {{name: {name}}}
        params: [{{name: revision, value: $(tt.params.revision)}}]
"#
        )
    };
    let trigger = |name: &str| {
        format!(
            r#"
    - name: {name}
      interceptors:
        - ref: {{name: github}}
          params:
            - {{name: secretRef, value: {{secretName: github, secretKey: token}}}}
            - {{name: eventTypes, value: [push]}}
      bindings: [{{name: revision, value: $(body.head_commit.id)}}]
      template: {{ref: {name}}}"#
        )
    };
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: github, namespace: team-a}}
stringData: {{token: {SECRET}}}
---
{}
---
{}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: github, namespace: team-a}}
spec:
  serviceAccountName: builder
  triggers:{}{}
"#,
        template(TRIGGERS[0]),
        template(TRIGGERS[1]),
        trigger(TRIGGERS[0]),
        trigger(TRIGGERS[1]),
    )
}

fn grant(api: &ApiDouble) {
    api.grant(SA, &["create"], "tekton.dev", "pipelineruns", "team-a");
}

/// Runs per (revision, trigger) in the API double.
fn runs_by_revision(api: &ApiDouble) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for run in api.objects("tekton.dev", "pipelineruns", "team-a") {
        let revision = param(&run, "revision").unwrap_or_default().to_owned();
        let trigger = run["metadata"]["labels"]["triggers.tekton.dev/trigger"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        *counts.entry((revision, trigger)).or_insert(0) += 1;
    }
    counts
}

/// Checks that every accepted revision has exactly one run per trigger, and that any other
/// run belongs to a request in `maybe` (answered 503 after JetStream may have stored it) and
/// is alone too. Returns (runs, duplicates).
fn assert_exactly_once(
    runs: &HashMap<(String, String), usize>,
    accepted: &HashSet<String>,
    maybe: &HashSet<String>,
) -> (usize, usize) {
    let mut missing = Vec::new();
    for revision in accepted {
        for trigger in TRIGGERS {
            if !runs.contains_key(&(revision.clone(), trigger.to_owned())) {
                missing.push(format!("{revision}/{trigger}"));
            }
        }
    }
    let duplicates: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    let strangers: Vec<_> = runs
        .keys()
        .filter(|(revision, _)| !accepted.contains(revision) && !maybe.contains(revision))
        .collect();
    assert!(
        missing.is_empty(),
        "{} accepted runs missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        duplicates.is_empty(),
        "{} runs created twice, e.g. {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(5)]
    );
    assert!(strangers.is_empty(), "runs for no request: {strangers:?}");
    (runs.values().sum(), duplicates.len())
}

/// Posts `count` signed pushes (revisions `{prefix}-{i}`), `concurrency` at a time; returns
/// each revision with its status.
async fn post_many(
    url: &str,
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> Vec<(String, u16)> {
    let client = reqwest::Client::new();
    futures_util::stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            let revision = format!("{prefix}-{i:05}");
            async move {
                let body = push_body(&revision);
                let signature = github_signature(SECRET, &body);
                let (status, _) = post(
                    &client,
                    url,
                    &body,
                    &[
                        ("X-GitHub-Event", "push"),
                        ("X-Hub-Signature-256", &signature),
                    ],
                )
                .await;
                (revision, status)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

async fn wait_for_runs(api: &ApiDouble, expected: usize, timeout: Duration) -> bool {
    let complete = eventually(timeout, || async {
        api.object_count("tekton.dev", "pipelineruns", "team-a") >= expected
    })
    .await;
    // Anything still in flight would show up now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    complete
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_events_through_dispatchers_killed_at_random_run_exactly_once() {
    const EVENTS: usize = 10_000;
    let config = ConfigDir::new().file("github.yaml", &two_trigger_listener());
    let flags = ["--ack-wait", "5s", "--concurrency", "32"];
    let stack = Stack::start(config, grant, &flags).await;
    let mut replicas = vec![stack.replica(&flags).await, stack.replica(&flags).await];
    replicas.push(stack.dispatcher);
    let url = stack.ingest.hook_url("team-a", "github");
    let started = Instant::now();
    let posting = tokio::spawn(async move { post_many(&url, "r", EVENTS, 48).await });

    // While webhooks arrive, kill a random replica every 1–3 s and bring it back.
    let mut kills = 0;
    while !posting.is_finished() {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(1000..3000))).await;
        let victim = fastrand::usize(..replicas.len());
        replicas[victim].process.kill9();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(100..800))).await;
        replicas[victim].process.restart();
    }
    let answers = posting.await.unwrap();
    let posted_in = started.elapsed();
    let accepted: HashSet<String> = answers
        .iter()
        .filter(|(_, status)| *status == 202)
        .map(|(revision, _)| revision.clone())
        .collect();
    assert_eq!(accepted.len(), EVENTS, "every webhook was accepted");
    // One last crash with everything in flight.
    let victim = fastrand::usize(..replicas.len());
    replicas[victim].process.kill9();
    kills += 1;
    tokio::time::sleep(Duration::from_millis(500)).await;
    replicas[victim].process.restart();

    let expected = EVENTS * TRIGGERS.len();
    let complete = wait_for_runs(&stack.api, expected, Duration::from_secs(600)).await;
    let drained_in = started.elapsed();
    let runs = runs_by_revision(&stack.api);
    let created: usize = runs.values().sum();
    assert!(complete, "{created} of {expected} runs after 10 minutes");
    let (total, duplicates) = assert_exactly_once(&runs, &accepted, &HashSet::new());
    assert_eq!(total, expected);
    let mut redone = 0;
    for replica in &replicas {
        redone += metric_sum(
            &replica.metrics_url,
            "sluice_dispatch_triggers_total",
            &["outcome=\"duplicate\""],
        )
        .await;
    }
    eprintln!(
        "figures: kill-9 replicas: events={EVENTS} triggers={} accepted={} kills={kills} runs={total} lost=0 duplicates={duplicates} ledger-skips={redone} posted_in={:.1}s drained_in={:.1}s",
        TRIGGERS.len(),
        accepted.len(),
        posted_in.as_secs_f64(),
        drained_in.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_killed_mid_load_loses_nothing_that_got_a_202() {
    const EVENTS: usize = 2_000;
    let config = ConfigDir::new().file("github.yaml", &two_trigger_listener());
    // A SIGKILL can take messages JetStream acknowledged but had not yet written out, unless
    // the server syncs every write (docs/reliability.md, "What durable means").
    let nats = sluice_tests::NatsServer::start_synced().await;
    let stack = Stack::start_on(nats, config, grant, &[], &[]).await;
    let url = stack.ingest.hook_url("team-a", "github");
    let posting = tokio::spawn(async move { post_many(&url, "n", EVENTS, 16).await });
    assert!(
        eventually(Duration::from_secs(30), || async {
            stack
                .api
                .object_count("tekton.dev", "pipelineruns", "team-a")
                > 200
        })
        .await
    );
    stack.nats.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.nats.restart().await;
    let answers = posting.await.unwrap();

    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (_, status) in &answers {
        *by_status.entry(*status).or_insert(0) += 1;
    }
    let accepted: HashSet<String> = answers
        .iter()
        .filter(|(_, s)| *s == 202)
        .map(|(r, _)| r.clone())
        .collect();
    let refused: HashSet<String> = answers
        .iter()
        .filter(|(_, s)| *s == 503)
        .map(|(r, _)| r.clone())
        .collect();
    assert_eq!(
        accepted.len() + refused.len(),
        EVENTS,
        "every answer is 202 or 503: {by_status:?}"
    );
    assert!(!refused.is_empty(), "the outage was seen: {by_status:?}");

    let complete = wait_for_runs(
        &stack.api,
        accepted.len() * TRIGGERS.len(),
        Duration::from_secs(120),
    )
    .await;
    assert!(complete, "{}", stack.dispatcher.process.logs());
    let runs = runs_by_revision(&stack.api);
    let (total, _) = assert_exactly_once(&runs, &accepted, &refused);
    let stored_anyway = runs
        .keys()
        .filter(|(revision, _)| refused.contains(revision))
        .count()
        / TRIGGERS.len();
    eprintln!(
        "figures: nats kill-9: events={EVENTS} accepted={} refused_503={} other=0 runs={total} lost=0 duplicates=0 stored_despite_503={stored_anyway}",
        accepted.len(),
        refused.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_failures_429s_and_a_30_second_outage_drain_with_nothing_lost_or_doubled() {
    const EVENTS: usize = 300;
    let config = ConfigDir::new().file("github.yaml", &two_trigger_listener());
    let stack = Stack::start(
        config,
        |api| {
            grant(api);
            // Bursts of 500s and 429s with Retry-After, mixed into normal traffic.
            api.inject(
                FaultRule::fail(Failure::InternalError)
                    .on(Verb::Create)
                    .times(40),
            );
            api.inject(
                FaultRule::fail(Failure::TooManyRequests {
                    retry_after_seconds: 2,
                })
                .on(Verb::Create)
                .times(20),
            );
        },
        &["--max-deliver", "100"],
    )
    .await;
    let api = &stack.api;
    let url = stack.ingest.hook_url("team-a", "github");
    let first = post_many(&url, "a", EVENTS, 16).await;
    // Then the API goes away for 30 seconds while more webhooks arrive.
    api.inject(
        FaultRule::fail(Failure::ServiceUnavailable)
            .on(Verb::Create)
            .always(),
    );
    let outage = Instant::now();
    let second = post_many(&url, "b", EVENTS, 16).await;
    let during = api.object_count("tekton.dev", "pipelineruns", "team-a");
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(outage.elapsed())).await;
    assert_eq!(
        api.object_count("tekton.dev", "pipelineruns", "team-a"),
        during,
        "nothing is created while the API is down"
    );
    api.clear_faults();
    let recovered = Instant::now();

    let accepted: HashSet<String> = first
        .iter()
        .chain(&second)
        .filter(|(_, s)| *s == 202)
        .map(|(r, _)| r.clone())
        .collect();
    assert_eq!(accepted.len(), 2 * EVENTS);
    let complete = wait_for_runs(
        api,
        accepted.len() * TRIGGERS.len(),
        Duration::from_secs(120),
    )
    .await;
    assert!(complete, "{}", stack.dispatcher.process.logs());
    let backlog_drained = recovered.elapsed();
    let runs = runs_by_revision(api);
    let (total, _) = assert_exactly_once(&runs, &accepted, &HashSet::new());

    // Every create that followed a 429 for the same object waited its Retry-After.
    let creates = api.requests_for(Verb::Create, "pipelineruns");
    let mut last_429: HashMap<String, std::time::SystemTime> = HashMap::new();
    let mut checked = 0;
    for request in &creates {
        let Some(name) = request_name(request) else {
            continue;
        };
        if let Some(at) = last_429.remove(&name) {
            let waited = request.at.duration_since(at).unwrap_or_default();
            assert!(
                waited >= Duration::from_millis(1900),
                "{name} retried {waited:?} after a 429 asking for 2 s"
            );
            checked += 1;
        }
        if request.status == Some(429) {
            last_429.insert(name, request.at);
        }
    }
    assert!(checked > 0, "some 429 was followed by a retry");
    let statuses = creates
        .iter()
        .fold(BTreeMap::<u16, usize>::new(), |mut m, r| {
            *m.entry(r.status.unwrap_or(0)).or_insert(0) += 1;
            m
        });
    eprintln!(
        "figures: api faults: events={} runs={total} lost=0 duplicates=0 create_answers={statuses:?} retry_after_checked={checked} drained_after_outage_in={:.1}s",
        accepted.len(),
        backlog_drained.as_secs_f64()
    );
}

/// The object a create request was for (the API double records the body's name).
fn request_name(request: &sluice_tests::api_double::RecordedRequest) -> Option<String> {
    request.name.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_redelivered_within_and_after_the_dedup_window_runs_once() {
    let window = ["--stream-duplicate-window", "70s"];
    let config = ConfigDir::new().file("github.yaml", &two_trigger_listener());
    let stack = Stack::start_with(config, grant, &window, &window).await;
    let client = reqwest::Client::new();
    let url = stack.ingest.hook_url("team-a", "github");
    let body = push_body("redelivered");
    let signature = github_signature(SECRET, &body);
    let headers = [
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("X-Hub-Signature-256", signature.as_str()),
    ];
    let started = Instant::now();
    let (status, first) = post(&client, &url, &body, &headers).await;
    assert_eq!(status, 202, "{first}");
    assert!(
        wait_for_runs(&stack.api, TRIGGERS.len(), Duration::from_secs(20)).await,
        "{}",
        stack.dispatcher.process.logs()
    );

    // A minute later, inside the window: the same answer, marked as a duplicate.
    tokio::time::sleep(Duration::from_secs(60).saturating_sub(started.elapsed())).await;
    let (status, second) = post(&client, &url, &body, &headers).await;
    assert_eq!(status, 202, "{second}");
    assert_eq!(second["duplicate"], true, "{second}");
    assert_eq!(second["eventID"], first["eventID"]);

    // After the window the stream takes it as new; the ledger still knows the run is done.
    tokio::time::sleep(Duration::from_secs(75).saturating_sub(started.elapsed())).await;
    let (status, third) = post(&client, &url, &body, &headers).await;
    assert_eq!(status, 202, "{third}");
    assert_ne!(third["duplicate"], true, "past the window: {third}");
    let skipped = eventually(Duration::from_secs(20), || async {
        metric_sum(
            &stack.dispatcher.metrics_url,
            "sluice_dispatch_triggers_total",
            &["outcome=\"duplicate\""],
        )
        .await
            == TRIGGERS.len() as u64
    })
    .await;
    assert!(skipped, "{}", stack.dispatcher.process.logs());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let runs = runs_by_revision(&stack.api);
    assert_eq!(runs.len(), TRIGGERS.len(), "{runs:?}");
    assert!(runs.values().all(|n| *n == 1), "{runs:?}");
    eprintln!(
        "figures: redelivery: posts=3 (0 s, 60 s inside a 70 s window, 75 s after it) stored_events=2 runs={} duplicates=0",
        runs.len()
    );
}

/// A listener whose `build` trigger needs a field the pushes lack (a permanent binding
/// error) until `fixed`.
fn needs_field_listener(fixed: bool) -> String {
    let field = if fixed {
        "head_commit.id"
    } else {
        "head_commit.tree"
    };
    two_trigger_listener().replacen(
        "bindings: [{name: revision, value: $(body.head_commit.id)}]",
        &format!("bindings: [{{name: revision, value: $(body.{field})}}]"),
        1,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_failure_is_dead_lettered_then_replayed_once_after_the_fix() {
    let config = ConfigDir::new().file("github.yaml", &needs_field_listener(false));
    let config_path = config.path().to_owned();
    let stack = Stack::start(config, grant, &["--config-reload-interval", "200ms"]).await;
    let nats = stack.nats.url();
    let client = reqwest::Client::new();
    let url = stack.ingest.hook_url("team-a", "github");
    let body = push_body("needs-a-fix");
    let signature = github_signature(SECRET, &body);
    let headers = [
        ("X-GitHub-Event", "push"),
        ("X-Hub-Signature-256", signature.as_str()),
    ];
    let (status, answer) = post(&client, &url, &body, &headers).await;
    assert_eq!(status, 202, "{answer}");
    let event_id = answer["eventID"].as_str().unwrap().to_owned();

    // `lint` runs; `build` fails for good and lands in the dead-letter stream at once.
    let listed = Arc::new(AtomicBool::new(false));
    let found = eventually(Duration::from_secs(20), || {
        let listed = listed.clone();
        let nats = nats.clone();
        async move {
            let output = sluice(&["dlq", "list", "--nats-url", &nats, "--output", "json"]);
            let letters: Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
            let ok = letters.as_array().is_some_and(|l| l.len() == 1);
            listed.store(ok, Ordering::SeqCst);
            ok
        }
    })
    .await;
    assert!(found, "{}", stack.dispatcher.process.logs());
    let output = sluice(&["dlq", "list", "--nats-url", &nats, "--output", "json"]);
    let letters: Value = serde_json::from_slice(&output.stdout).unwrap();
    let letter = &letters[0];
    assert_eq!(letter["trigger"], "build", "{letter:#}");
    assert_eq!(letter["kind"], "permanent");
    assert_eq!(letter["attempts"], 1, "not retried: {letter:#}");
    assert_eq!(letter["eventId"], event_id.as_str(), "{letter:#}");
    let reason = letter["reason"].as_str().unwrap();
    assert!(reason.contains("body.head_commit.tree"), "{reason}");
    let id = letter["id"].to_string();
    let table =
        String::from_utf8_lossy(&sluice(&["dlq", "list", "--nats-url", &nats]).stdout).into_owned();
    assert!(
        table.contains("team-a/github") && table.contains("build"),
        "{table}"
    );
    let runs = runs_by_revision(&stack.api);
    assert_eq!(runs.len(), 1, "only lint ran: {runs:?}");

    // Fix the configuration; the dispatcher reloads it. Replay: the run is created once.
    std::fs::write(config_path.join("github.yaml"), needs_field_listener(true)).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let replay = sluice(&["dlq", "replay", &id, "--nats-url", &nats]);
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert!(
        wait_for_runs(&stack.api, 2, Duration::from_secs(20)).await,
        "{}",
        stack.dispatcher.process.logs()
    );
    let again = sluice(&["dlq", "replay", &id, "--nats-url", &nats]);
    assert!(!again.status.success(), "a replayed letter is gone");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let runs = runs_by_revision(&stack.api);
    assert_eq!(
        runs.get(&("needs-a-fix".to_owned(), "build".to_owned())),
        Some(&1),
        "{runs:?}"
    );
    assert_eq!(
        runs.get(&("needs-a-fix".to_owned(), "lint".to_owned())),
        Some(&1),
        "the replay ran only the trigger that had failed"
    );
    let output = sluice(&["dlq", "list", "--nats-url", &nats, "--output", "json"]);
    let letters: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(letters.as_array().map(Vec::len), Some(0));
    eprintln!("figures: dead letter: letters=1 replays=1 runs_after_replay=2 duplicates=0");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_a_partial_create_creates_only_what_is_missing() {
    let yaml = format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: github, namespace: team-a}}
stringData: {{token: {SECRET}}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: github, namespace: team-a}}
spec:
  serviceAccountName: builder
  triggers:
    - name: pair
      bindings: [{{name: revision, value: $(body.head_commit.id)}}]
      template:
        spec:
          params: [{{name: revision}}]
          resourcetemplates:
            - apiVersion: tekton.dev/v1
              kind: PipelineRun
              metadata: {{generateName: first-}}
              spec: {{params: [{{name: revision, value: $(tt.params.revision)}}]}}
            - apiVersion: tekton.dev/v1
              kind: TaskRun
              metadata: {{name: second-$(uid)}}
              spec: {{params: [{{name: revision, value: $(tt.params.revision)}}]}}
"#
    );
    let config = ConfigDir::new().file("pair.yaml", &yaml);
    let stack = Stack::start(
        config,
        |api| {
            api.grant(SA, &["create"], "tekton.dev", "*", "team-a");
            // The second object's first create fails; the first object's succeeds.
            api.inject(
                FaultRule::fail(Failure::InternalError)
                    .on(Verb::Create)
                    .resource("taskruns")
                    .times(1),
            );
        },
        &[],
    )
    .await;
    let api = &stack.api;
    let client = reqwest::Client::new();
    let body = push_body("pair");
    let signature = github_signature(SECRET, &body);
    let (status, answer) = post(
        &client,
        &stack.ingest.hook_url("team-a", "github"),
        &body,
        &[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &signature),
        ],
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let both = eventually(Duration::from_secs(20), || async {
        api.object_count("tekton.dev", "taskruns", "team-a") == 1
    })
    .await;
    assert!(both, "{}", stack.dispatcher.process.logs());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", "team-a"), 1);
    let first: Vec<Option<u16>> = api
        .requests_for(Verb::Create, "pipelineruns")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        first,
        [Some(201), Some(409)],
        "the retry found the first object by its name and key"
    );
    let second: Vec<Option<u16>> = api
        .requests_for(Verb::Create, "taskruns")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(second, [Some(500), Some(201)]);
    let runs = api.objects("tekton.dev", "pipelineruns", "team-a");
    let tasks = api.objects("tekton.dev", "taskruns", "team-a");
    let key = |o: &Value| o["metadata"]["annotations"]["sluice.dev/idempotency-key"].clone();
    assert_ne!(key(&runs[0]), Value::Null);
    assert_ne!(key(&runs[0]), key(&tasks[0]), "each object has its own key");
}

#[tokio::test(flavor = "multi_thread")]
async fn rolling_restarts_with_sigterm_lose_and_duplicate_nothing() {
    const EVENTS: usize = 3_000;
    let config = ConfigDir::new().file("github.yaml", &two_trigger_listener());
    // Slow creates keep events in flight while replicas are asked to stop.
    let flags = ["--concurrency", "16", "--shutdown-timeout", "1s"];
    let stack = Stack::start(
        config,
        |api| {
            grant(api);
            api.inject(
                FaultRule::delay(Duration::from_millis(5))
                    .on(Verb::Create)
                    .always(),
            );
        },
        &flags,
    )
    .await;
    let mut replicas = vec![stack.replica(&flags).await];
    replicas.push(stack.dispatcher);
    let url = stack.ingest.hook_url("team-a", "github");
    let posting = tokio::spawn(async move { post_many(&url, "s", EVENTS, 32).await });
    let started = Instant::now();
    let mut restarts = 0;
    let mut clean_exits = 0;
    while !posting.is_finished() || restarts < 4 {
        for replica in &mut replicas {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            // A rolling update: stop one replica gracefully, start its replacement.
            replica.process.send_terminate();
            if let Some(status) = replica.process.wait_exit(Duration::from_secs(10)).await {
                clean_exits += usize::from(status.success());
            }
            replica.process.restart();
            replica.wait_ready().await;
            restarts += 1;
        }
    }
    let answers = posting.await.unwrap();
    let accepted: HashSet<String> = answers
        .iter()
        .filter(|(_, s)| *s == 202)
        .map(|(r, _)| r.clone())
        .collect();
    assert_eq!(accepted.len(), EVENTS);
    assert_eq!(
        clean_exits, restarts,
        "every replica stopped on SIGTERM, exit 0"
    );
    let complete = wait_for_runs(
        &stack.api,
        EVENTS * TRIGGERS.len(),
        Duration::from_secs(300),
    )
    .await;
    assert!(complete);
    let (total, _) = assert_exactly_once(&runs_by_revision(&stack.api), &accepted, &HashSet::new());
    eprintln!(
        "figures: rolling restarts: events={EVENTS} restarts={restarts} clean_exits={clean_exits} runs={total} lost=0 duplicates=0 all_runs_in={:.1}s",
        started.elapsed().as_secs_f64()
    );
}
