//! The reference dispatcher: the smallest consumer that does what `sluice-dispatcher` must do
//! for an event with one trigger, to tell how much of the pipeline's cost is the job itself.
//! With the [`reference`](crate::reference) server in front of it, it is the reference
//! pipeline `e2e --reference` measures.
//!
//! It pulls the reference stream (`REFERENCE`) through a durable consumer with explicit
//! acks, and for each event, as the dispatcher does on a first delivery:
//! 1. reads the event's entry in its ledger bucket (`REFERENCE_LEDGER`, kept as
//!    `SLUICE_LEDGER` is), keyed by the delivery id (`Nats-Msg-Id`); an event with an entry
//!    is acknowledged and nothing more;
//! 2. creates a PipelineRun in the event's namespace, as the namespace's service account
//!    (impersonated, as the dispatcher creates), carrying the delivery id as its `delivery`
//!    param; `409 AlreadyExists` counts as created;
//! 3. writes the ledger entry and waits for its ack;
//! 4. acknowledges the event.
//!
//! Anything that fails hands the event back (`nak`). At most `--concurrency` events are in
//! flight, each on a keep-alive connection to the API of its own. No interceptors, bindings,
//! templates, derived names, event status, metrics or logs: whatever the dispatcher spends
//! beyond this is the price of its features. It runs in this binary, with mimalloc, as the
//! dispatcher does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::{self, AckKind, kv, stream};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use tokio::sync::Semaphore;

use crate::client::{self, Base, Connection};
use crate::config_dir::SERVICE_ACCOUNT;

/// The reference dispatcher's ledger bucket.
pub const LEDGER: &str = "REFERENCE_LEDGER";
const CONSUMER: &str = "reference-dispatcher";

/// `sluice-loadtest reference-dispatcher` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ReferenceDispatchArgs {
    /// NATS server to consume from.
    #[arg(long, env = "SLUICE_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,

    /// The Kubernetes API (http only).
    #[arg(long, env = "SLUICE_REFERENCE_API")]
    pub api: String,

    /// Bearer token for the API.
    #[arg(long, env = "SLUICE_REFERENCE_API_TOKEN", hide_env_values = true)]
    pub api_token: String,

    /// Events in flight at most (the dispatcher's default).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,

    /// Where `/readyz` answers once the consumer exists.
    #[arg(long, default_value = "127.0.0.1:8091")]
    pub ready_addr: SocketAddr,
}

struct Reference {
    kv: kv::Store,
    api: Base,
    authorization: String,
    /// Idle keep-alive connections to the API.
    idle: Mutex<Vec<Connection>>,
}

/// Consumes until the process ends.
pub async fn serve(args: ReferenceDispatchArgs) -> anyhow::Result<()> {
    let client = async_nats::ConnectOptions::new()
        .name("sluice-reference-dispatcher")
        .connect(&args.nats)
        .await
        .with_context(|| format!("failed to connect to NATS at {}", args.nats))?;
    let js = jetstream::new(client);
    let kv = js
        .create_key_value(kv::Config {
            bucket: LEDGER.to_owned(),
            history: 1,
            max_age: Duration::from_secs(72 * 3600),
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("failed to create the reference ledger")?;
    let stream = js
        .get_or_create_stream(crate::reference::stream_config(
            crate::reference::STREAM,
            "reference.>",
        ))
        .await
        .context("failed to create or look up the reference stream")?;
    let consumer = stream
        .get_or_create_consumer(
            CONSUMER,
            pull::Config {
                durable_name: Some(CONSUMER.to_owned()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 20_000,
                ..Default::default()
            },
        )
        .await
        .context("failed to create the reference consumer")?;
    let state = Arc::new(Reference {
        kv,
        api: Base::parse(&args.api)?,
        authorization: format!("Bearer {}", args.api_token),
        idle: Mutex::new(Vec::new()),
    });
    let ready = tokio::net::TcpListener::bind(args.ready_addr)
        .await
        .with_context(|| format!("failed to bind {}", args.ready_addr))?;
    tokio::spawn(async move {
        let router = Router::new().route("/readyz", get(|| async { StatusCode::OK }));
        let _ = axum::serve(ready, router).await;
    });

    let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut messages = consumer
        .messages()
        .await
        .context("failed to pull from the reference consumer")?;
    while let Some(message) = messages.next().await {
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                eprintln!("pull failed: {error}");
                continue;
            }
        };
        let slot = slots.clone().acquire_owned().await?;
        let state = state.clone();
        tokio::spawn(async move {
            let kind = match state.handle(&message).await {
                Ok(()) => AckKind::Ack,
                Err(error) => {
                    eprintln!("event handed back: {error:#}");
                    AckKind::Nak(Some(Duration::from_secs(1)))
                }
            };
            if let Err(error) = message.ack_with(kind).await {
                eprintln!("ack failed: {error}");
            }
            drop(slot);
        });
    }
    bail!("the reference consumer's messages ended")
}

impl Reference {
    async fn handle(&self, message: &jetstream::Message) -> anyhow::Result<()> {
        let delivery = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|id| id.as_str().to_owned())
            .context("the event has no delivery id")?;
        let namespace =
            namespace_of(&message.subject).context("the event's subject names no namespace")?;
        if self.kv.get(&delivery).await?.is_some() {
            return Ok(());
        }
        self.create(namespace, &delivery).await?;
        let entry = serde_json::json!({ "outcome": "created", "eventID": delivery });
        self.kv
            .put(&delivery, serde_json::to_vec(&entry)?.into())
            .await?;
        Ok(())
    }

    async fn create(&self, namespace: &str, delivery: &str) -> anyhow::Result<()> {
        let run = run_object(namespace, delivery);
        let request = http::Request::post(format!(
            "{}/apis/tekton.dev/v1/namespaces/{namespace}/pipelineruns",
            self.api.path_prefix
        ))
        .header(http::header::HOST, &self.api.host)
        .header(http::header::AUTHORIZATION, &self.authorization)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            "impersonate-user",
            format!("system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}"),
        )
        .header("impersonate-group", "system:serviceaccounts")
        .header(
            "impersonate-group",
            format!("system:serviceaccounts:{namespace}"),
        )
        .body(Full::new(Bytes::from(serde_json::to_vec(&run)?)))?;
        let idle = self
            .idle
            .lock()
            .map_err(|_| anyhow!("pool poisoned"))?
            .pop();
        let mut connection = match idle {
            Some(connection) if !connection.is_closed() => connection,
            _ => client::connect(self.api.addr).await?,
        };
        connection.ready().await?;
        let answer = connection.send_request(request).await?;
        let status = answer.status();
        // Read to the end, so that the connection can carry the next request.
        answer.into_body().collect().await?;
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(connection);
        }
        match status.as_u16() {
            200..=299 | 409 => Ok(()),
            other => bail!("the create was answered {other}"),
        }
    }
}

/// The namespace of an event on `reference.<namespace>.<listener>`.
fn namespace_of(subject: &str) -> Option<&str> {
    let mut tokens = subject.split('.');
    match (tokens.next(), tokens.next(), tokens.next(), tokens.next()) {
        (Some(_), Some(namespace), Some(_), None) if !namespace.is_empty() => Some(namespace),
        _ => None,
    }
}

/// The PipelineRun created for a delivery: named after it, carrying it as the `delivery`
/// param, which is how `e2e` pairs runs with webhooks.
fn run_object(namespace: &str, delivery: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": { "name": format!("run-{delivery}"), "namespace": namespace },
        "spec": {
            "pipelineRef": { "name": "build" },
            "params": [{ "name": "delivery", "value": delivery }],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Ids;

    #[test]
    fn the_namespace_is_the_subjects_second_token() {
        assert_eq!(
            namespace_of("reference.team-0001.github"),
            Some("team-0001")
        );
        assert_eq!(namespace_of("reference.team-0001"), None);
        assert_eq!(namespace_of("reference..github"), None);
        assert_eq!(namespace_of("reference.a.b.c"), None);
    }

    #[test]
    fn each_run_pairs_with_its_webhook_under_a_valid_name() {
        let ids = Ids::random();
        let delivery = ids.delivery(41).to_string();
        let run = run_object("team-0002", &delivery);
        assert_eq!(crate::e2e::delivery_param(&run), Some(delivery.as_str()));
        assert_eq!(ids.index_of(&delivery), Some(41));
        let name = run["metadata"]["name"].as_str().unwrap();
        assert!(name.len() <= 63, "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{name}"
        );
    }
}
