//! Tenants share one ingest and one dispatcher fleet: one tenant's flood must not slow the
//! others down.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use sluice_tests::ApiDouble;
use sluice_tests::api_double::{FaultRule, Verb};
use sluice_tests::procs::{eventually, github_signature};

use crate::support::{ConfigDir, SECRET, Stack, github_listener, param, post, push_body};

/// Posts one signed push for `revision` to `url`; returns when it was sent and its status.
async fn push(client: &reqwest::Client, url: &str, revision: &str) -> (SystemTime, u16) {
    let body = push_body(revision);
    let signature = github_signature(SECRET, &body);
    let sent = SystemTime::now();
    let (status, _) = post(
        client,
        url,
        &body,
        &[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &signature),
        ],
    )
    .await;
    (sent, status)
}

/// Sends `count` pushes to `url` at `per_second`; returns each revision's send time.
async fn paced(
    url: &str,
    prefix: &str,
    count: usize,
    per_second: u64,
) -> HashMap<String, SystemTime> {
    let client = reqwest::Client::new();
    let mut sent = HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(1000 / per_second));
    for i in 0..count {
        ticker.tick().await;
        let revision = format!("{prefix}-{i:04}");
        let (at, status) = push(&client, url, &revision).await;
        assert_eq!(status, 202);
        sent.insert(revision, at);
    }
    sent
}

/// Webhook-to-run latencies of `namespace`'s runs whose revision is in `sent`: from the
/// webhook's send time to the API double answering the create that stored the run.
fn latencies(
    api: &ApiDouble,
    namespace: &str,
    sent: &HashMap<String, SystemTime>,
) -> Vec<Duration> {
    let created: HashMap<String, SystemTime> = api
        .requests_for(Verb::Create, "pipelineruns")
        .into_iter()
        .filter(|r| r.namespace.as_deref() == Some(namespace) && r.status == Some(201))
        .filter_map(|r| Some((r.name?, r.answered_at?)))
        .collect();
    let mut latencies: Vec<Duration> = api
        .objects("tekton.dev", "pipelineruns", namespace)
        .iter()
        .filter_map(|run| {
            let name = run["metadata"]["name"].as_str()?;
            let sent_at = sent.get(param(run, "revision")?)?;
            created.get(name)?.duration_since(*sent_at).ok()
        })
        .collect();
    latencies.sort();
    latencies
}

fn p99(latencies: &[Duration]) -> Duration {
    let index = (latencies.len() * 99).div_ceil(100).saturating_sub(1);
    latencies[index.min(latencies.len() - 1)]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenants_flood_does_not_hold_back_another_tenants_webhooks() {
    const FLOOD: usize = 20_000;
    let config = ConfigDir::new()
        .file("a.yaml", &github_listener("team-a", "builder"))
        .file("b.yaml", &github_listener("team-b", "builder"));
    let mut stack = Stack::start(
        config,
        |api| {
            for ns in ["team-a", "team-b"] {
                api.grant(
                    &format!("system:serviceaccount:{ns}:builder"),
                    &["create"],
                    "tekton.dev",
                    "pipelineruns",
                    ns,
                );
            }
            // Creates take 40 ms, so a flood builds a backlog the dispatcher works through.
            api.inject(
                FaultRule::delay(Duration::from_millis(40))
                    .on(Verb::Create)
                    .always(),
            );
        },
        &["--concurrency", "64"],
    )
    .await;
    let url_a = stack.ingest.hook_url("team-a", "github");
    let url_b = stack.ingest.hook_url("team-b", "github");

    // Tenant B alone: 100 webhooks at 10/s.
    let idle_sent = paced(&url_b, "idle", 100, 10).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            stack
                .api
                .object_count("tekton.dev", "pipelineruns", "team-b")
                == 100
        })
        .await
    );
    let idle = latencies(&stack.api, "team-b", &idle_sent);
    assert_eq!(idle.len(), 100);

    // Tenant A's 20,000 webhooks arrive while the dispatcher is down, then it comes back to
    // a 20,000-event backlog, and tenant B sends 100 more at 10/s.
    stack.dispatcher.process.kill9();
    let client = reqwest::Client::new();
    let flood_started = Instant::now();
    let accepted = futures_util::stream::iter(0..FLOOD)
        .map(|i| {
            let client = client.clone();
            let url = url_a.clone();
            async move { push(&client, &url, &format!("flood-{i:05}")).await.1 }
        })
        .buffer_unordered(64)
        .filter(|status| std::future::ready(*status == 202))
        .count()
        .await;
    assert_eq!(accepted, FLOOD);
    let flood_posted = flood_started.elapsed();
    stack.dispatcher.process.restart();
    stack.dispatcher.wait_ready().await;
    let busy_sent = paced(&url_b, "busy", 100, 10).await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            stack
                .api
                .object_count("tekton.dev", "pipelineruns", "team-b")
                == 200
        })
        .await
    );
    let backlog_left = FLOOD
        - stack
            .api
            .object_count("tekton.dev", "pipelineruns", "team-a");
    let busy = latencies(&stack.api, "team-b", &busy_sent);
    assert_eq!(busy.len(), 100);
    let (idle_p99, busy_p99) = (p99(&idle), p99(&busy));
    eprintln!(
        "figures: fairness: flood={FLOOD} posted_in={:.1}s tenant_b_p99_idle={}ms tenant_b_p99_during_flood={}ms tenant_b_median_during_flood={}ms tenant_a_backlog_when_b_done={backlog_left}",
        flood_posted.as_secs_f64(),
        idle_p99.as_millis(),
        busy_p99.as_millis(),
        busy[busy.len() / 2].as_millis(),
    );
    assert!(
        backlog_left > 0,
        "tenant A still had a backlog while B's webhooks ran"
    );
    assert!(busy_p99 < Duration::from_secs(1), "p99 {busy_p99:?}");
    assert!(
        busy_p99 <= idle_p99 * 3,
        "p99 {busy_p99:?} during the flood vs {idle_p99:?} alone"
    );
}
