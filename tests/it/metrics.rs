//! `/metrics` as scrapers read it: Prometheus' text format unless OpenMetrics is asked for,
//! clean under `promtool check metrics`, each configured listener's counters present at
//! zero before its first webhook, and the `process_*` metrics of every server.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::{ConfigDir, Stack, github_listener};

/// promtool from `SLUICE_PROMTOOL`, else where `scripts/install-prometheus.sh` puts it.
fn promtool() -> PathBuf {
    let path = std::env::var_os("SLUICE_PROMTOOL").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/prometheus/usr/bin/promtool"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no promtool at {}: run scripts/install-prometheus.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// What `promtool check metrics` says of `text`: `Ok` when it finds nothing to fault.
fn promtool_check(text: &str) -> Result<(), String> {
    let mut check = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the metrics");
    let output = check.wait_with_output().expect("promtool ends");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// `/metrics` with `accept` (none: no header): its content type and text.
async fn scrape(metrics_url: &str, accept: Option<&str>) -> (String, String) {
    let mut request = reqwest::Client::new().get(format!("{metrics_url}/metrics"));
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let response = request.send().await.expect("metrics answer");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    (content_type, response.text().await.expect("text"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_scraper_reads_the_metrics_and_each_listener_starts_at_zero() {
    let config = ConfigDir::new()
        .file("team-a.yaml", &github_listener("team-a", "builder"))
        .file("team-b.yaml", &github_listener("team-b", "builder"));
    let stack = Stack::start(config, |_| {}, &[]).await;

    for (server, url) in [
        ("ingest", &stack.ingest.metrics_url),
        ("dispatcher", &stack.dispatcher.metrics_url),
    ] {
        // curl, promtool, Datadog, an older Prometheus: the text format.
        let (content_type, text) = scrape(url, None).await;
        assert_eq!(
            content_type, "text/plain; version=0.0.4; charset=utf-8",
            "{server}"
        );
        if let Err(faults) = promtool_check(&text) {
            panic!("promtool check metrics faults {server}'s /metrics:\n{faults}\n{text}");
        }
        for process in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(
                text.lines().any(|line| line.starts_with(process)),
                "{server} has no {process}:\n{text}"
            );
        }

        // Prometheus asks for OpenMetrics first.
        let (content_type, text) = scrape(
            url,
            Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
        )
        .await;
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{server}: {content_type}"
        );
        assert!(text.ends_with("# EOF\n"), "{server}");
    }

    // Before any webhook, every configured listener's counters are there, at zero: an
    // `increase()` sees the first dead letter, a ratio the first 5xx.
    let (_, ingest) = scrape(&stack.ingest.metrics_url, None).await;
    let (_, dispatcher) = scrape(&stack.dispatcher.metrics_url, None).await;
    for namespace in ["team-a", "team-b"] {
        let labels = format!("namespace=\"{namespace}\",listener=\"github\"");
        for outcome in ["accepted", "misconfigured", "unavailable"] {
            let line = format!("sluice_ingest_requests_total{{{labels},outcome=\"{outcome}\"}} 0");
            assert!(
                ingest.lines().any(|l| l == line),
                "no `{line}` in\n{ingest}"
            );
        }
        for kind in ["transient", "permanent", "bad_input"] {
            let line = format!("sluice_dispatch_dead_letters_total{{{labels},kind=\"{kind}\"}} 0");
            assert!(
                dispatcher.lines().any(|l| l == line),
                "no `{line}` in\n{dispatcher}"
            );
        }
        let created = format!("sluice_dispatch_triggers_total{{{labels},outcome=\"created\"}} 0");
        assert!(
            dispatcher.lines().any(|l| l == created),
            "no `{created}` in\n{dispatcher}"
        );
    }
}
