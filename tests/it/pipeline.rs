//! The whole path: signed webhooks → ingest → JetStream → dispatcher → Kubernetes API.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use sluice_tests::api_double::Verb;
use sluice_tests::procs::{eventually, github_signature};

use crate::support::{
    ConfigDir, SECRET, Stack, github_listener, metric_sum, param, post, post_push, push_body,
};

const SA_USER: &str = "system:serviceaccount:team-a:builder";

fn grant_builder(api: &sluice_tests::ApiDouble) {
    api.grant(SA_USER, &["create"], "tekton.dev", "pipelineruns", "team-a");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_webhooks_become_a_thousand_pipelineruns() {
    let config = ConfigDir::new().file("github.yaml", &github_listener("team-a", "builder"));
    let stack = Stack::start(
        config,
        |api| {
            api.grant(SA_USER, &["create"], "tekton.dev", "pipelineruns", "team-a");
        },
        &[],
    )
    .await;
    let Stack { api, ingest, .. } = &stack;

    let client = reqwest::Client::new();
    let url = ingest.hook_url("team-a", "github");
    let answers: Vec<(String, u16, serde_json::Value)> = futures_util::stream::iter(0..1000)
        .map(|i| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let revision = format!("{i:040x}");
                let (status, answer) = post_push(&client, &url, &push_body(&revision)).await;
                (revision, status, answer)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut expected = std::collections::HashMap::new();
    for (revision, status, answer) in &answers {
        assert_eq!(*status, 202, "{answer}");
        expected.insert(
            answer["eventID"].as_str().unwrap().to_owned(),
            revision.clone(),
        );
    }
    assert_eq!(expected.len(), 1000, "every webhook got its own event id");

    let all_created = eventually(Duration::from_secs(60), || async {
        api.object_count("tekton.dev", "pipelineruns", "team-a") >= 1000
    })
    .await;
    let runs = api.objects("tekton.dev", "pipelineruns", "team-a");
    assert!(all_created, "only {} runs were created", runs.len());
    // Give a stray duplicate the chance to show up before counting exactly.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs = api.objects("tekton.dev", "pipelineruns", "team-a");
    assert_eq!(runs.len(), 1000);

    let mut seen = HashSet::new();
    for run in &runs {
        let labels = &run["metadata"]["labels"];
        assert_eq!(labels["triggers.tekton.dev/eventlistener"], "github");
        assert_eq!(labels["triggers.tekton.dev/trigger"], "on-push");
        let event_id = labels["triggers.tekton.dev/triggers-eventid"]
            .as_str()
            .unwrap();
        let revision = expected
            .get(event_id)
            .expect("the run belongs to an accepted event");
        assert_eq!(param(run, "revision"), Some(revision.as_str()));
        assert_eq!(
            param(run, "url"),
            Some("https://github.com/example/app.git")
        );
        assert_eq!(param(run, "event"), Some("push"));
        assert!(
            run["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("build-")
        );
        assert!(seen.insert(event_id.to_owned()), "one run per event");
    }

    let creates = api.requests_for(Verb::Create, "pipelineruns");
    assert_eq!(creates.len(), 1000);
    for request in &creates {
        assert_eq!(request.impersonated_user.as_deref(), Some(SA_USER));
        assert_eq!(request.status, Some(201));
    }

    // Each run read the ledger once, alone or in a batch with others.
    let metrics = &stack.dispatcher.metrics_url;
    let reads = metric_sum(metrics, "sluice_dispatch_ledger_reads_per_request_sum", &[]).await;
    let requests = metric_sum(
        metrics,
        "sluice_dispatch_ledger_reads_per_request_count",
        &[],
    )
    .await;
    assert_eq!(reads, 1000, "{requests} requests");
}

#[tokio::test(flavor = "multi_thread")]
async fn rbac_refusal_is_not_retried_and_other_tenants_still_get_runs() {
    let config = ConfigDir::new()
        .file("a.yaml", &github_listener("team-a", "builder"))
        .file("b.yaml", &github_listener("team-b", "builder"));
    let stack = Stack::start(
        config,
        |api| {
            // Only team-b's service account may create runs.
            api.grant(
                "system:serviceaccount:team-b:builder",
                &["create"],
                "tekton.dev",
                "pipelineruns",
                "team-b",
            );
        },
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
    let (status, _) = post_push(
        &client,
        &ingest.hook_url("team-a", "github"),
        &push_body("a1"),
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = post_push(
        &client,
        &ingest.hook_url("team-b", "github"),
        &push_body("b1"),
    )
    .await;
    assert_eq!(status, 202);

    assert!(
        eventually(Duration::from_secs(20), || async {
            api.object_count("tekton.dev", "pipelineruns", "team-b") == 1
        })
        .await
    );
    // The 403 was final: one attempt, logged with the reason, counted as permanent.
    let metrics_url = format!("{}/metrics", dispatcher.metrics_url);
    assert!(
        eventually(Duration::from_secs(10), || async {
            let text = client.get(&metrics_url).send().await.unwrap().text().await.unwrap();
            text.contains(r#"sluice_dispatch_triggers_total{namespace="team-a",listener="github",outcome="permanent"} 1"#)
        })
        .await,
        "{}",
        dispatcher.process.logs()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let forbidden: Vec<_> = api
        .requests_for(Verb::Create, "pipelineruns")
        .into_iter()
        .filter(|r| r.namespace.as_deref() == Some("team-a"))
        .collect();
    assert_eq!(forbidden.len(), 1);
    assert_eq!(forbidden[0].status, Some(403));
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", "team-a"), 0);
    assert!(
        dispatcher.process.logs().contains("cannot create resource"),
        "the reason is logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_api_failures_are_retried_until_the_run_exists() {
    use sluice_tests::api_double::Failure;

    let config = ConfigDir::new().file("github.yaml", &github_listener("team-a", "builder"));
    let stack = Stack::start(
        config,
        |api| {
            api.grant(SA_USER, &["create"], "tekton.dev", "pipelineruns", "team-a");
            api.fail_next(Verb::Create, 2, Failure::InternalError);
            api.fail_next(
                Verb::Create,
                1,
                Failure::TooManyRequests {
                    retry_after_seconds: 1,
                },
            );
        },
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
    let (status, _) = post_push(
        &client,
        &ingest.hook_url("team-a", "github"),
        &push_body("r1"),
    )
    .await;
    assert_eq!(status, 202);
    assert!(
        eventually(Duration::from_secs(20), || async {
            api.object_count("tekton.dev", "pipelineruns", "team-a") == 1
        })
        .await,
        "{}",
        dispatcher.process.logs()
    );
    let creates = api.requests_for(Verb::Create, "pipelineruns");
    let attempts: Vec<_> = creates.iter().map(|r| r.status).collect();
    assert_eq!(attempts, [Some(500), Some(500), Some(429), Some(201)]);
    // The 429 asked for a second; the retry after it honoured that.
    let times: Vec<_> = creates.iter().map(|r| r.at).collect();
    let waited = times[3].duration_since(times[2]).unwrap();
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(api.object_count("tekton.dev", "pipelineruns", "team-a"), 1);
}

/// As in Tekton, a webhook that names no delivery is a new event each time: a `curl`
/// re-trigger of the same body runs again. One that names its delivery runs once.
#[tokio::test(flavor = "multi_thread")]
async fn the_same_body_without_a_delivery_id_runs_each_time_it_is_posted() {
    let config = ConfigDir::new().file("github.yaml", &github_listener("team-a", "builder"));
    let stack = Stack::start(config, grant_builder, &[]).await;
    let client = reqwest::Client::new();
    let url = stack.ingest.hook_url("team-a", "github");
    let body = push_body("re-triggered");
    let mut event_ids = HashSet::new();
    for _ in 0..2 {
        let (status, answer) = post_push(&client, &url, &body).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer.get("duplicate"), None, "{answer}");
        event_ids.insert(answer["eventID"].as_str().unwrap().to_owned());
    }
    assert_eq!(event_ids.len(), 2, "two events");
    let runs = || stack.api.objects("tekton.dev", "pipelineruns", "team-a");
    let both = eventually(Duration::from_secs(20), || async { runs().len() == 2 }).await;
    assert!(both, "{}", stack.dispatcher.process.logs());

    // Named twice, the same delivery runs once.
    let body = push_body("delivered");
    let signature = github_signature(SECRET, &body);
    let headers = [
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "d-once"),
        ("X-Hub-Signature-256", signature.as_str()),
    ];
    for _ in 0..2 {
        let (status, answer) = post(&client, &url, &body, &headers).await;
        assert_eq!(status, 202, "{answer}");
    }
    let three = eventually(Duration::from_secs(20), || async { runs().len() == 3 }).await;
    assert!(three, "{}", stack.dispatcher.process.logs());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(runs().len(), 3, "the named delivery ran once");
}

/// By default log lines go through a writer thread (`--log-writes batched`): every run's
/// line reaches the log whole, none cut into or lost, and what the dispatcher logs as it
/// stops is in the log once it has exited.
#[tokio::test(flavor = "multi_thread")]
async fn batched_log_lines_are_each_written_whole_and_the_last_before_exit() {
    const WEBHOOKS: usize = 40;
    let config = ConfigDir::new().file("github.yaml", &github_listener("team-a", "builder"));
    let mut stack = Stack::start(
        config,
        grant_builder,
        &["--log-writes", "batched", "--log-format", "json"],
    )
    .await;
    let client = reqwest::Client::new();
    let url = stack.ingest.hook_url("team-a", "github");
    let bodies: Vec<Vec<u8>> = (0..WEBHOOKS)
        .map(|i| push_body(&format!("rev-{i}")))
        .collect();
    let answers =
        futures_util::future::join_all(bodies.iter().map(|body| post_push(&client, &url, body)))
            .await;
    assert!(
        answers.iter().all(|(status, _)| *status == 202),
        "{answers:?}"
    );
    let api = &stack.api;
    let created = eventually(Duration::from_secs(30), || async {
        api.objects("tekton.dev", "pipelineruns", "team-a").len() >= WEBHOOKS
    })
    .await;
    assert!(created, "{}", stack.dispatcher.process.logs());
    assert!(stack.dispatcher.process.terminate(Duration::from_secs(20)));

    let logs = stack.dispatcher.process.logs();
    let messages: Vec<String> = logs
        .lines()
        .map(|line| {
            let line: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not one whole JSON line ({error}): {line}"));
            line["message"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    let runs = messages
        .iter()
        .filter(|message| *message == "trigger created its objects")
        .count();
    assert_eq!(runs, WEBHOOKS, "{logs}");
    assert!(
        messages
            .iter()
            .any(|message| message == "stopped consuming"),
        "the line logged as it stopped was lost: {logs}"
    );
}
