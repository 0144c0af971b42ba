//! A real Prometheus server (Debian's, unpacked by `scripts/install-prometheus.sh`; the path
//! from `SLUICE_PROMETHEUS`, else where that script puts it) scraping test processes every
//! second, and its query API.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::procs::free_port;

/// One scrape job: its name, the `/metrics` base URL of each target, and labels every
/// target gets (as Prometheus Operator adds `pod`).
pub struct Job<'a> {
    pub name: &'a str,
    pub targets: Vec<(String, Vec<(&'a str, String)>)>,
    /// Keep the target's own labels on a clash (a ServiceMonitor's `honorLabels: true`).
    pub honor_labels: bool,
}

pub struct Prometheus {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    let path = std::env::var_os("SLUICE_PROMETHEUS").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../.tools/prometheus/usr/bin/prometheus")
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no prometheus at {}: run scripts/install-prometheus.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

impl Prometheus {
    /// Starts scraping `jobs` every second; returns once the server answers.
    pub async fn start(jobs: &[Job<'_>]) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for job in jobs {
            config.push_str(&format!(
                "  - job_name: {}\n    honor_labels: {}\n    static_configs:\n",
                job.name, job.honor_labels
            ));
            for (url, labels) in &job.targets {
                let host = url.trim_start_matches("http://");
                config.push_str(&format!("      - targets: ['{host}']\n"));
                if !labels.is_empty() {
                    config.push_str("        labels:\n");
                    for (name, value) in labels {
                        config.push_str(&format!("          {name}: '{value}'\n"));
                    }
                }
            }
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let port = free_port();
        let child = Command::new(binary())
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        let prometheus = Prometheus {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = reqwest::get(format!("{}/-/ready", prometheus.url)).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return prometheus;
            }
            assert!(Instant::now() < deadline, "prometheus did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `/api/v1/query_range` over the last `range`, one point a second: the answer's `data`,
    /// or Prometheus' error (a query that does not parse, for one).
    pub async fn query_range(&self, query: &str, range: Duration) -> Result<Value, String> {
        let end = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        let start = end - range.as_secs_f64();
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query_range", self.url),
            &[
                ("query", query.to_owned()),
                ("start", format!("{start:.3}")),
                ("end", format!("{end:.3}")),
                ("step", "1".to_owned()),
            ],
        )
        .map_err(|e| e.to_string())?;
        let answer: Value = reqwest::get(url)
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if answer["status"] == "success" {
            Ok(answer["data"].clone())
        } else {
            Err(format!("{}: {}", answer["errorType"], answer["error"]))
        }
    }

    /// Whether every target of every job was scraped successfully last time.
    pub async fn all_targets_up(&self) -> bool {
        let Ok(answer) = reqwest::get(format!("{}/api/v1/targets", self.url)).await else {
            return false;
        };
        let Ok(answer) = answer.json::<Value>().await else {
            return false;
        };
        let targets = answer["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        !targets.is_empty() && targets.iter().all(|t| t["health"] == "up")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
