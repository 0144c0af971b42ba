//! Crashes and outages: a `kill -9`'d dispatcher and a stopped nats-server lose no event that
//! got a 202.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sluice_tests::ApiDouble;
use sluice_tests::api_double::{FaultRule, Verb};
use sluice_tests::procs::eventually;

use crate::support::{ConfigDir, Stack, event_consumers, github_listener, post_push, push_body};

const SA_USER: &str = "system:serviceaccount:team-a:builder";

fn event_ids_of_runs(api: &ApiDouble) -> HashSet<String> {
    api.objects("tekton.dev", "pipelineruns", "team-a")
        .iter()
        .filter_map(|r| {
            r["metadata"]["labels"]["triggers.tekton.dev/triggers-eventid"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn dispatcher_killed_mid_stream_still_creates_every_accepted_event() {
    let config = ConfigDir::new().file("github.yaml", &github_listener("team-a", "builder"));
    let mut stack = Stack::start(
        config,
        |api| {
            api.grant(SA_USER, &["create"], "tekton.dev", "pipelineruns", "team-a");
            // Slow creates keep events in flight when the dispatcher dies.
            api.inject(
                FaultRule::delay(Duration::from_millis(20))
                    .on(Verb::Create)
                    .always(),
            );
        },
        &["--ack-wait", "2s", "--concurrency", "8"],
    )
    .await;
    let Stack {
        api,
        ingest,
        dispatcher,
        ..
    } = &mut stack;

    let client = reqwest::Client::new();
    let url = ingest.hook_url("team-a", "github");
    let mut accepted = HashSet::new();
    for i in 0..300 {
        let (status, answer) = post_push(&client, &url, &push_body(&format!("rev-{i}"))).await;
        assert_eq!(status, 202, "{answer}");
        accepted.insert(answer["eventID"].as_str().unwrap().to_owned());
        if i == 100 {
            // Wait until the dispatcher is busy, then kill it without warning.
            assert!(
                eventually(Duration::from_secs(10), || async {
                    api.object_count("tekton.dev", "pipelineruns", "team-a") > 20
                })
                .await
            );
            dispatcher.process.kill9();
        }
        if i == 200 {
            dispatcher.process.restart();
            dispatcher.wait_ready().await;
        }
    }

    let complete = eventually(Duration::from_secs(60), || async {
        event_ids_of_runs(api).is_superset(&accepted)
    })
    .await;
    let created = event_ids_of_runs(api);
    let missing = accepted.difference(&created).count();
    assert!(complete, "{missing} accepted events have no run");
    assert!(
        created.is_subset(&accepted),
        "no run without an accepted event"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_outage_answers_503_then_recovers_without_restarts() {
    let config = ConfigDir::new().file("github.yaml", &github_listener("team-a", "builder"));
    let stack = Stack::start(
        config,
        |api| {
            api.grant(SA_USER, &["create"], "tekton.dev", "pipelineruns", "team-a");
        },
        &[],
    )
    .await;
    let Stack {
        nats, api, ingest, ..
    } = &stack;

    let client = reqwest::Client::new();
    let url = ingest.hook_url("team-a", "github");
    let mut accepted = HashSet::new();
    for i in 0..20 {
        let (status, answer) = post_push(&client, &url, &push_body(&format!("before-{i}"))).await;
        assert_eq!(status, 202, "{answer}");
        accepted.insert(answer["eventID"].as_str().unwrap().to_owned());
    }

    nats.stop().await;
    for i in 0..5 {
        let started = Instant::now();
        let response = client
            .post(&url)
            .header("X-GitHub-Event", "push")
            .header(
                "X-Hub-Signature-256",
                sluice_tests::procs::github_signature(
                    crate::support::SECRET,
                    &push_body(&format!("during-{i}")),
                ),
            )
            .body(push_body(&format!("during-{i}")))
            .send()
            .await
            .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(
            response.status().as_u16(),
            503,
            "request {i} during the outage"
        );
        assert!(response.headers().contains_key("retry-after"));
        assert!(elapsed < Duration::from_secs(2), "answered in {elapsed:?}");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["code"], "queue_unavailable");
        // Not confirmed is not "not stored": the answer says so, and which retry is safe.
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains("did not confirm"), "{message}");
        assert!(message.contains("same delivery id"), "{message}");
    }
    // Ingest stays ready through the outage, on both ports, so that a load balancer keeps
    // sending it webhooks and senders get the 503 above rather than refused connections.
    let readyz = format!("{}/readyz", ingest.url);
    let ops_readyz = format!("{}/readyz", ingest.metrics_url);
    for _ in 0..10 {
        for url in [&readyz, &ops_readyz] {
            let response = client.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert_eq!(status, 200, "{url} while NATS is down: {body}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    nats.restart().await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            client
                .get(&readyz)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await,
        "ingest is ready once NATS is back"
    );
    for i in 0..20 {
        let (status, answer) = post_push(&client, &url, &push_body(&format!("after-{i}"))).await;
        assert_eq!(status, 202, "{answer}");
        accepted.insert(answer["eventID"].as_str().unwrap().to_owned());
    }
    let complete = eventually(Duration::from_secs(60), || async {
        event_ids_of_runs(api).is_superset(&accepted)
    })
    .await;
    let missing = accepted.difference(&event_ids_of_runs(api)).count();
    assert!(
        complete,
        "{missing} of {} accepted events have no run",
        accepted.len()
    );
}

/// The dispatcher is ready only once everything an event needs is open. A stream that
/// claims the ledger's subjects keeps the ledger from being created: the dispatcher keeps
/// trying, and `/readyz` says what it is waiting for until the way is clear.
#[tokio::test(flavor = "multi_thread")]
async fn the_dispatcher_is_unready_until_its_ledger_dead_letters_and_rate_buckets_are_open() {
    use async_nats::jetstream::{self, stream};
    use sluice_tests::procs::{Dispatcher, SinkTarget};

    let nats = sluice_tests::NatsServer::start().await;
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    js.create_stream(stream::Config {
        name: "SQUATTER".to_owned(),
        subjects: vec!["$KV.SLUICE_LEDGER.>".to_owned()],
        ..Default::default()
    })
    .await
    .unwrap();
    let config = ConfigDir::new().file("a.yaml", &github_listener("team-a", "builder"));
    let sink = tempfile::tempdir().unwrap();
    let dispatcher = Dispatcher::spawn(
        &nats.url(),
        config.path(),
        SinkTarget::Dir(sink.path()),
        &[],
    );
    let client = reqwest::Client::new();
    let readyz = || async {
        let answer = client
            .get(format!("{}/readyz", dispatcher.metrics_url))
            .send()
            .await
            .ok()?;
        Some((
            answer.status().as_u16(),
            answer.text().await.unwrap_or_default(),
        ))
    };

    let tried = eventually(Duration::from_secs(20), || async {
        dispatcher
            .process
            .logs()
            .contains("cannot open the dispatch ledger")
    })
    .await;
    assert!(tried, "{}", dispatcher.process.logs());
    // Connected, events stream present, ledger not open: not ready, for as long as it lasts.
    for _ in 0..5 {
        let (status, body) = readyz().await.expect("the operations server answers");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("dispatch ledger"), "{body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        js.get_stream("SLUICE_DLQ").await.is_err(),
        "nothing opened past the ledger"
    );

    js.delete_stream("SQUATTER").await.unwrap();
    let ready = eventually(Duration::from_secs(15), || async {
        readyz().await.is_some_and(|(status, _)| status == 200)
    })
    .await;
    assert!(ready, "{}", dispatcher.process.logs());
    for opened in ["KV_SLUICE_LEDGER", "SLUICE_DLQ", "KV_SLUICE_RATES"] {
        assert!(
            js.get_stream(opened).await.is_ok(),
            "{opened} exists once ready"
        );
    }
}

/// `--nats-url` with several servers, the first of them down (a node of a cluster that is
/// being restarted): ingest, the dispatcher and the command line reach the one that answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_list_of_servers_is_served_by_the_one_that_answers() {
    use sluice_tests::procs::{Dispatcher, Ingest, SinkTarget, free_port};

    let nats = sluice_tests::NatsServer::start().await;
    let servers = format!("nats://127.0.0.1:{}, {}", free_port(), nats.url());
    let config = ConfigDir::new().file("github.yaml", &github_listener("team-a", "builder"));
    let ingest = Ingest::start(&servers, config.path(), &[]).await;
    ingest.wait_ready().await;
    let runs = tempfile::tempdir().expect("tempdir");
    let dispatcher =
        Dispatcher::start(&servers, config.path(), SinkTarget::Dir(runs.path()), &[]).await;

    let client = reqwest::Client::new();
    let (status, answer) = post_push(
        &client,
        &ingest.hook_url("team-a", "github"),
        &push_body("a1b2c3"),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let created = eventually(Duration::from_secs(20), || async {
        walk_files(runs.path()) == 1
    })
    .await;
    assert!(created, "{}", dispatcher.process.logs());
    let listed = crate::support::sluice(&["dlq", "list", "--nats-url", &servers]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
}

/// Files under `dir`, however deep.
fn walk_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() { walk_files(&path) } else { 1 }
        })
        .sum()
}

/// The consumer deleted under a running dispatcher (by an operator, or lost with a
/// JetStream cluster's state): its pull loop makes it again and carries on, backing off
/// meanwhile instead of pulling again at once; the events it delivers again from the start
/// of the stream do not run twice.
#[tokio::test(flavor = "multi_thread")]
async fn the_consumer_deleted_under_the_dispatcher_is_made_again_without_spinning() {
    let config = ConfigDir::new().file("github.yaml", &github_listener("team-a", "builder"));
    let stack = Stack::start(
        config,
        |api| {
            let account = "system:serviceaccount:team-a:builder";
            api.grant(account, &["create"], "tekton.dev", "pipelineruns", "team-a");
        },
        &[],
    )
    .await;
    let client = reqwest::Client::new();
    let url = stack.ingest.hook_url("team-a", "github");
    let runs = |count: usize| {
        let api = &stack.api;
        move || async move { api.objects("tekton.dev", "pipelineruns", "team-a").len() >= count }
    };
    let (status, answer) = post_push(&client, &url, &push_body("before")).await;
    assert_eq!(status, 202, "{answer}");
    assert!(eventually(Duration::from_secs(20), runs(1)).await);

    let names = event_consumers(&stack.nats.url()).await;
    // One tenant that never needed a consumer of its own: the common one alone.
    assert_eq!(names.len(), 1, "{names:?}");
    let failures_before = stack
        .dispatcher
        .process
        .logs()
        .matches("events failed")
        .count();
    let js = async_nats::jetstream::new(
        async_nats::connect(stack.nats.url())
            .await
            .expect("connect"),
    );
    let stream = js.get_stream("SLUICE_EVENTS").await.expect("events stream");
    stream
        .delete_consumer(&names[0])
        .await
        .expect("delete the consumer");

    let (status, answer) = post_push(&client, &url, &push_body("after")).await;
    assert_eq!(status, 202, "{answer}");
    let recovered = eventually(Duration::from_secs(20), runs(2)).await;
    let logs = stack.dispatcher.process.logs();
    assert!(recovered, "the event after the deletion never ran:\n{logs}");
    let failures = logs.matches("events failed").count() - failures_before;
    assert!(
        failures <= 10,
        "{failures} failed pulls logged: the loop spins\n{logs}"
    );
    // The first event came round again with the new consumer and found its run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stack
            .api
            .objects("tekton.dev", "pipelineruns", "team-a")
            .len(),
        2
    );
}
