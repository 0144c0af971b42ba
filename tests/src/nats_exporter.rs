//! A stand-in for `prometheus-nats-exporter`, which has no build this machine can install:
//! it serves nats-server's JetStream figures (`/jsz`) as Prometheus metrics under the names
//! the exporter gives them when the official NATS Helm chart runs it (`-jsz=all
//! -prefix=nats`): `nats_stream_total_messages`, `nats_consumer_num_pending`…, labelled
//! `stream_name`, `consumer_name` and `account`.
//!
//! It models only what Sluice's dashboard and alerts read: the server's storage limit and
//! bytes stored, each stream's messages, bytes and sequences, and each consumer's pending,
//! unacknowledged, redelivered and waiting counts. Not modelled: the exporter's server,
//! cluster and leader labels, and every other endpoint (`varz`, `connz`…).

use std::fmt::Write;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

/// The stand-in, serving `/metrics` until dropped.
pub struct NatsExporter {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl NatsExporter {
    /// Serves the figures of the nats-server whose monitoring port answers at `monitor`
    /// (`http://127.0.0.1:8222`), read again at every scrape.
    pub async fn start(monitor: &str) -> NatsExporter {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the exporter");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let router = Router::new()
            .route("/metrics", get(metrics))
            .with_state(format!(
                "{monitor}/jsz?accounts=true&streams=true&consumers=true"
            ));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        NatsExporter { url, task }
    }
}

impl Drop for NatsExporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn metrics(State(jsz): State<String>) -> Response {
    let figures = match reqwest::get(&jsz).await {
        Ok(answer) => answer.json::<Value>().await,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    match figures {
        Ok(jsz) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            exposition(&jsz),
        )
            .into_response(),
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

/// A metric's name, help and samples (labels as text, value).
type Family = (&'static str, &'static str, Vec<(String, f64)>);

/// The Prometheus text of one `/jsz?accounts=true&streams=true&consumers=true` answer.
pub fn exposition(jsz: &Value) -> String {
    let mut families: Vec<Family> = vec![
        ("nats_server_max_storage", "JetStream Max Storage", vec![]),
        (
            "nats_server_total_message_bytes",
            "Total number of bytes stored in JetStream",
            vec![],
        ),
        (
            "nats_stream_total_messages",
            "Total number of messages from a stream",
            vec![],
        ),
        (
            "nats_stream_total_bytes",
            "Total stored bytes from a stream",
            vec![],
        ),
        (
            "nats_stream_last_seq",
            "Last sequence from a stream",
            vec![],
        ),
        (
            "nats_consumer_num_pending",
            "Number of pending messages from a consumer",
            vec![],
        ),
        (
            "nats_consumer_num_ack_pending",
            "Number of pending acks from a consumer",
            vec![],
        ),
        (
            "nats_consumer_num_redelivered",
            "Number of redelivered messages from a consumer",
            vec![],
        ),
        (
            "nats_consumer_num_waiting",
            "Number of inflight fetch requests from a pull consumer",
            vec![],
        ),
    ];
    let mut add = |name: &str, labels: String, value: Option<f64>| {
        if let (Some(family), Some(value)) = (families.iter_mut().find(|f| f.0 == name), value) {
            family.2.push((labels, value));
        }
    };
    add(
        "nats_server_max_storage",
        String::new(),
        jsz["config"]["max_storage"].as_f64(),
    );
    add(
        "nats_server_total_message_bytes",
        String::new(),
        jsz["bytes"].as_f64(),
    );
    for account in jsz["account_details"].as_array().into_iter().flatten() {
        let account_name = account["name"].as_str().unwrap_or_default();
        for stream in account["stream_detail"].as_array().into_iter().flatten() {
            let stream_name = stream["name"].as_str().unwrap_or_default();
            let labels = format!("account=\"{account_name}\",stream_name=\"{stream_name}\"");
            let state = &stream["state"];
            add(
                "nats_stream_total_messages",
                labels.clone(),
                state["messages"].as_f64(),
            );
            add(
                "nats_stream_total_bytes",
                labels.clone(),
                state["bytes"].as_f64(),
            );
            add(
                "nats_stream_last_seq",
                labels.clone(),
                state["last_seq"].as_f64(),
            );
            for consumer in stream["consumer_detail"].as_array().into_iter().flatten() {
                let consumer_name = consumer["name"].as_str().unwrap_or_default();
                let labels = format!("{labels},consumer_name=\"{consumer_name}\"");
                for (name, field) in [
                    ("nats_consumer_num_pending", "num_pending"),
                    ("nats_consumer_num_ack_pending", "num_ack_pending"),
                    ("nats_consumer_num_redelivered", "num_redelivered"),
                    ("nats_consumer_num_waiting", "num_waiting"),
                ] {
                    add(name, labels.clone(), consumer[field].as_f64());
                }
            }
        }
    }
    let mut text = String::new();
    for (name, help, samples) in families {
        if samples.is_empty() {
            continue;
        }
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            if labels.is_empty() {
                let _ = writeln!(text, "{name} {value}");
            } else {
                let _ = writeln!(text, "{name}{{{labels}}} {value}");
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_consumers_under_the_exporters_names() {
        let jsz = serde_json::json!({
            "config": {"max_storage": 1000},
            "bytes": 300,
            "account_details": [{"name": "$G", "stream_detail": [{
                "name": "SLUICE_EVENTS",
                "state": {"messages": 3, "bytes": 300, "last_seq": 3},
                "consumer_detail": [{"name": "sluice-team-a", "num_pending": 2,
                    "num_ack_pending": 1, "num_redelivered": 0, "num_waiting": 1}]
            }]}]
        });
        let text = exposition(&jsz);
        assert!(text.contains("nats_server_max_storage 1000\n"), "{text}");
        assert!(
            text.contains(
                "nats_consumer_num_pending{account=\"$G\",stream_name=\"SLUICE_EVENTS\",consumer_name=\"sluice-team-a\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "nats_stream_total_bytes{account=\"$G\",stream_name=\"SLUICE_EVENTS\"} 300\n"
            ),
            "{text}"
        );
    }
}
