//! A real OTLP/HTTP trace receiver, one per test, on a free loopback port.
//!
//! [`OtlpReceiver::start`] runs `scripts/otlp-receiver.py` (through the launcher that
//! `scripts/install-otlp-receiver.sh` prints, named by `$SLUICE_OTLP_RECEIVER`): it decodes
//! each `ExportTraceServiceRequest` with the `opentelemetry-proto` package and appends one
//! JSON line per span to a file, read back by [`OtlpReceiver::spans`]. Killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;

/// Environment variable naming the receiver's launcher.
pub const RECEIVER_ENV: &str = "SLUICE_OTLP_RECEIVER";

/// One exported span as the receiver wrote it.
#[derive(Debug, Clone)]
pub struct ExportedSpan(pub Value);

impl ExportedSpan {
    pub fn name(&self) -> &str {
        self.0["name"].as_str().unwrap_or_default()
    }
    pub fn service(&self) -> &str {
        self.0["service"].as_str().unwrap_or_default()
    }
    pub fn trace_id(&self) -> &str {
        self.0["trace_id"].as_str().unwrap_or_default()
    }
    pub fn span_id(&self) -> &str {
        self.0["span_id"].as_str().unwrap_or_default()
    }
    /// Empty for a root span.
    pub fn parent_span_id(&self) -> &str {
        self.0["parent_span_id"].as_str().unwrap_or_default()
    }
    pub fn kind(&self) -> &str {
        self.0["kind"].as_str().unwrap_or_default()
    }
    /// An attribute as text (numbers and booleans as JSON writes them).
    pub fn attribute(&self, key: &str) -> Option<String> {
        match &self.0["attributes"][key] {
            Value::Null => None,
            Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        }
    }
    /// `(trace id, span id, sluice.link)` of each link.
    pub fn links(&self) -> Vec<(String, String, String)> {
        self.0["links"]
            .as_array()
            .map(|links| {
                links
                    .iter()
                    .map(|link| {
                        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                        (
                            text(&link["trace_id"]),
                            text(&link["span_id"]),
                            text(&link["attributes"]["sluice.link"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A running receiver owned by one test.
pub struct OtlpReceiver {
    child: Mutex<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl OtlpReceiver {
    /// Starts the receiver and waits until it listens. Panics, saying how to install it,
    /// when `$SLUICE_OTLP_RECEIVER` is not set.
    pub fn start() -> OtlpReceiver {
        let launcher = std::env::var(RECEIVER_ENV).unwrap_or_else(|_| {
            panic!(
                "{RECEIVER_ENV} is not set: the trace tests need the OTLP receiver; run \
                 `export {RECEIVER_ENV}=$(scripts/install-otlp-receiver.sh)` (scripts/test.sh does)"
            )
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let output = dir.path().join("spans.jsonl");
        let mut child = Command::new(&launcher)
            .args(["--port", "0", "--output"])
            .arg(&output)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start the OTLP receiver {launcher}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the receiver's first line");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("the OTLP receiver did not start: {line:?}")
            });
        OtlpReceiver {
            child: Mutex::new(child),
            port,
            dir,
        }
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for the binaries: the exporter appends `/v1/traces`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ExportedSpan> {
        let text = std::fs::read_to_string(self.dir.path().join("spans.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .map(ExportedSpan)
            .collect()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}
