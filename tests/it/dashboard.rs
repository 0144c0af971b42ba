//! The Grafana dashboard (`charts/sluice/files/dashboard.json`, written by
//! `scripts/dashboard/generate.py`) against reality: NATS, ingest and a dispatcher reading
//! the Kubernetes API (the double) serve webhooks, some accepted, some refused, some
//! throttled and one dead-lettered, while a real Prometheus scrapes them and JetStream's
//! figures (through the NATS exporter's stand-in). Every query of every panel must parse and
//! return data.
//!
//! With `SLUICE_DASHBOARD_DATA=FILE`, the query results are written to FILE, from which
//! `scripts/dashboard/render.py` draws `docs/dashboard.png`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_tests::NatsServer;
use sluice_tests::nats_exporter::NatsExporter;
use sluice_tests::procs::{free_port, github_signature};
use sluice_tests::prometheus::{Job, Prometheus};

use crate::cluster::{ClusterStack, apply, grant_status_writer, status_of};
use crate::support::{SECRET, github_listener, post, push_body};

fn dashboard() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/sluice/files/dashboard.json");
    let text = std::fs::read_to_string(&path).expect("the dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// A panel query as Grafana sends it, its variables set as a fresh dashboard sets them (every
/// tenant, every Sluice job) and the rate interval as Grafana computes it for one-second
/// scrapes.
fn as_grafana_sends(expr: &str) -> String {
    expr.replace("$__rate_interval", "5s")
        .replace("$namespace", ".*")
        .replace("$job", ".*sluice.*")
}

/// Whether a `query_range` answer holds at least one value.
fn has_data(data: &Value) -> bool {
    data["result"].as_array().is_some_and(|series| {
        series.iter().any(|s| {
            s["values"].as_array().is_some_and(|values| {
                values
                    .iter()
                    .any(|v| v[1].as_str().is_some_and(|x| x != "NaN"))
            })
        })
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_panel_of_the_dashboard_shows_data_from_a_real_run() {
    let monitor = free_port();
    let nats = NatsServer::start_configured(
        &format!("http: \"127.0.0.1:{monitor}\""),
        async_nats::ConnectOptions::new,
    )
    .await;
    // team-b is held to 5 webhooks/s at ingest and 60 runs a minute (2 saved up): some of
    // its webhooks are refused (429), and its runs wait for their budget.
    let tenants_dir = tempfile::tempdir().expect("tempdir");
    let tenants = tenants_dir.path().join("tenants.yaml");
    std::fs::write(
        &tenants,
        "namespaces:\n  team-b: {admissionPerSecond: 5, runsPerMinute: 60, burst: 2}\n",
    )
    .expect("tenants file");
    let tenants = tenants.display().to_string();
    let stack = ClusterStack::start_on(
        nats,
        |api| {
            grant_status_writer(api);
            for team in ["team-a", "team-b", "team-c"] {
                apply(api, &github_listener(team, "builder"));
            }
            // team-c's service account may not create runs: its push is dead-lettered.
            for team in ["team-a", "team-b"] {
                let account = format!("system:serviceaccount:{team}:builder");
                api.grant(&account, &["create"], "tekton.dev", "pipelineruns", team);
            }
        },
        &["--tenants-file", &tenants],
        &[
            "--tenants-file",
            &tenants,
            "--public-url",
            "https://hooks.example.com",
        ],
    )
    .await;
    let exporter = NatsExporter::start(&format!("http://127.0.0.1:{monitor}")).await;
    let prometheus = Prometheus::start(&[
        Job {
            name: "sluice-ingest",
            targets: vec![(
                stack.ingest.metrics_url.clone(),
                vec![("pod", "sluice-ingest-0".to_owned())],
            )],
            honor_labels: true,
        },
        Job {
            name: "sluice-dispatcher",
            targets: vec![(
                stack.dispatcher.metrics_url.clone(),
                vec![("pod", "sluice-dispatcher-0".to_owned())],
            )],
            honor_labels: true,
        },
        Job {
            name: "nats",
            targets: vec![(exporter.url.clone(), vec![])],
            honor_labels: false,
        },
    ])
    .await;
    let started = Instant::now();
    while !prometheus.all_targets_up().await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "Prometheus never scraped every target"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Counters first seen at zero, so that the first increase shows.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let client = reqwest::Client::new();
    let team_a = stack.ingest.hook_url("team-a", "github");
    let team_b = stack.ingest.hook_url("team-b", "github");
    let unknown = stack.ingest.hook_url("team-a", "no-such-listener");
    let mut answered: std::collections::BTreeMap<(&str, u16), u32> = Default::default();
    let traffic = Duration::from_secs(16);
    let flowing = Instant::now();
    let mut tick = 0u32;
    while flowing.elapsed() < traffic {
        tick += 1;
        let body = push_body(&format!("rev-{tick}"));
        let status = status_of(&client, &team_a, &body, SECRET).await;
        *answered.entry(("team-a", status)).or_default() += 1;
        if tick.is_multiple_of(5) {
            let status = status_of(&client, &team_a, &body, "not-the-secret").await;
            *answered
                .entry(("team-a, wrong secret", status))
                .or_default() += 1;
        }
        if tick.is_multiple_of(10) {
            let status = status_of(&client, &unknown, &body, SECRET).await;
            *answered.entry(("unknown listener", status)).or_default() += 1;
        }
        for _ in 0..2 {
            let status = status_of(&client, &team_b, &body, SECRET).await;
            *answered.entry(("team-b", status)).or_default() += 1;
        }
        if tick == 40 {
            let (status, _) = post(
                &client,
                &stack.ingest.hook_url("team-c", "github"),
                &body,
                &[
                    ("X-GitHub-Event", "push"),
                    ("X-Hub-Signature-256", &github_signature(SECRET, &body)),
                ],
            )
            .await;
            *answered.entry(("team-c", status)).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("answers: {answered:?}");
    for expected in [
        ("team-a", 202),
        ("team-a, wrong secret", 401),
        ("unknown listener", 404),
        ("team-b", 202),
        ("team-b", 429),
        ("team-c", 202),
    ] {
        assert!(
            answered.contains_key(&expected),
            "no {expected:?} among {answered:?}"
        );
    }
    // The last runs created, the last scrapes taken.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let range = started.elapsed() + Duration::from_secs(5);
    let mut empty = Vec::new();
    let mut data = Vec::new();
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queries = 0;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap_or_default();
        let mut targets = Vec::new();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("expr");
            queries += 1;
            match prometheus.query_range(&as_grafana_sends(expr), range).await {
                Ok(result) => {
                    if !has_data(&result) {
                        empty.push(format!("{title}: {expr}"));
                    }
                    targets.push(json!({
                        "legend": target["legendFormat"],
                        "unit": panel["fieldConfig"]["defaults"]["unit"],
                        "result": result["result"],
                    }));
                }
                Err(error) => panic!("{title}: {expr} does not evaluate: {error}"),
            }
        }
        data.push(json!({"title": title, "gridPos": panel["gridPos"], "targets": targets}));
    }
    if let Some(path) = std::env::var_os("SLUICE_DASHBOARD_DATA") {
        let all = json!({"title": dashboard["title"], "panels": data, "rows": panels
            .iter()
            .filter(|p| p["type"] == "row")
            .map(|p| json!({"title": p["title"], "gridPos": p["gridPos"]}))
            .collect::<Vec<_>>()});
        std::fs::write(path, serde_json::to_vec_pretty(&all).expect("JSON")).expect("write");
    }
    assert!(queries >= 20, "{queries} queries");
    assert!(
        empty.is_empty(),
        "{} of {queries} queries returned no data:\n{}",
        empty.len(),
        empty.join("\n")
    );
}
