//! The reference pipeline: the smallest server that does what ingest must, to tell how much
//! of ingest's cost is the job itself.
//!
//! One route, `POST /hooks/{namespace}/{listener}`: read the body, check GitHub's
//! HMAC-SHA256 signature (constant time) or GitLab's token against the one secret, publish
//! the body to JetStream with `Nats-Msg-Id` set to the delivery id, wait for the ack, answer
//! 202. Every request awaits its own ack; async-nats pipelines the publishes in flight on one
//! connection. No catalogue, no envelope, no metrics, no limits: whatever ingest spends
//! beyond this is the price of its features.
//!
//! Its stream `REFERENCE` (subjects `reference.>`) is kept as Sluice keeps its events stream
//! (file storage, limits retention, discard new, 7 days, 2-minute duplicate window, one
//! replica), so both pay JetStream the same. It runs in this binary, whose allocator is
//! ingest's (mimalloc), so both pay the same for memory too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The reference's stream and its subjects' prefix.
pub const STREAM: &str = "REFERENCE";
const SUBJECT_PREFIX: &str = "reference";

/// `sluice-loadtest reference` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ReferenceArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "SLUICE_REFERENCE_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    pub listen: SocketAddr,

    /// NATS server to publish to.
    #[arg(long, env = "SLUICE_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,

    /// JetStream stream to publish to; created (subjects `reference.>`, file storage) when
    /// missing.
    #[arg(long, env = "SLUICE_REFERENCE_STREAM", default_value = STREAM)]
    pub stream: String,

    /// The shared webhook secret (GitHub HMAC key, GitLab token).
    #[arg(long, env = "SLUICE_LOADTEST_SECRET", default_value = crate::payload::DEFAULT_SECRET, hide_default_value = true)]
    pub secret: String,

    /// How long to wait for JetStream's ack before answering 503 (ingest's default).
    #[arg(long, default_value = "1500ms", value_parser = crate::schedule::parse_duration)]
    pub publish_timeout: Duration,
}

struct Reference {
    js: jetstream::Context,
    keyed: Hmac<Sha256>,
    token: Vec<u8>,
    subject_prefix: String,
}

/// The events stream's settings (see `sluice_runtime::jetstream`), for another stream.
pub fn stream_config(name: &str, subjects: &str) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects: vec![subjects.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        max_age: Duration::from_secs(7 * 24 * 3600),
        num_replicas: 1,
        duplicate_window: sluice_runtime::jetstream::DEFAULT_DUPLICATE_WINDOW,
        max_bytes: -1,
        max_messages: -1,
        ..Default::default()
    }
}

/// Connects, makes sure the stream exists, and serves until the process ends.
pub async fn serve(args: ReferenceArgs) -> anyhow::Result<()> {
    let client = async_nats::ConnectOptions::new()
        .name("sluice-reference")
        .connect(&args.nats)
        .await
        .with_context(|| format!("failed to connect to NATS at {}", args.nats))?;
    let js = jetstream::ContextBuilder::new()
        .timeout(args.publish_timeout)
        .build(client);
    let subject_prefix = if args.stream == STREAM {
        SUBJECT_PREFIX.to_owned()
    } else {
        args.stream.to_lowercase()
    };
    js.get_or_create_stream(stream_config(&args.stream, &format!("{subject_prefix}.>")))
        .await
        .with_context(|| format!("failed to create or look up stream {}", args.stream))?;
    let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(args.secret.as_bytes())
        .map_err(|_| anyhow::anyhow!("the secret is not a usable HMAC key"))?;
    let state = Arc::new(Reference {
        js,
        keyed,
        token: args.secret.into_bytes(),
        subject_prefix,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to bind {}", args.listen))?;
    eprintln!("reference listening on {}", listener.local_addr()?);
    axum::serve(listener, router(state))
        .await
        .context("the reference server failed")
}

fn router(state: Arc<Reference>) -> Router {
    Router::new()
        .route("/hooks/{namespace}/{listener}", post(receive))
        .route("/readyz", get(|| async { StatusCode::OK }))
        // Ingest's default body limit.
        .layer(DefaultBodyLimit::max(4 * 1024 * 1024))
        .with_state(state)
}

fn refuse(status: StatusCode, code: &'static str) -> Response {
    (status, axum::Json(serde_json::json!({ "code": code }))).into_response()
}

/// A subject token that needs no encoding.
fn plain_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

async fn receive(
    State(state): State<Arc<Reference>>,
    Path((namespace, listener)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !plain_token(&namespace) || !plain_token(&listener) {
        return refuse(StatusCode::NOT_FOUND, "not_found");
    }
    let delivery = if let Some(signature) = headers.get("x-hub-signature-256") {
        let Some(hex) = signature.as_bytes().strip_prefix(b"sha256=") else {
            return refuse(StatusCode::UNAUTHORIZED, "unauthenticated");
        };
        let Ok(expected) = hex::decode(hex) else {
            return refuse(StatusCode::UNAUTHORIZED, "unauthenticated");
        };
        let mut mac = state.keyed.clone();
        mac.update(&body);
        if mac.verify_slice(&expected).is_err() {
            return refuse(StatusCode::UNAUTHORIZED, "unauthenticated");
        }
        headers.get("x-github-delivery")
    } else if let Some(token) = headers.get("x-gitlab-token") {
        if !bool::from(token.as_bytes().ct_eq(&state.token)) {
            return refuse(StatusCode::UNAUTHORIZED, "unauthenticated");
        }
        headers.get("x-gitlab-event-uuid")
    } else {
        return refuse(StatusCode::UNAUTHORIZED, "unauthenticated");
    };
    let delivery = delivery.and_then(|v| v.to_str().ok()).unwrap_or_default();
    let subject = format!("{}.{namespace}.{listener}", state.subject_prefix);
    let mut message = PublishMessage::build().payload(body);
    if !delivery.is_empty() {
        message = message.message_id(delivery);
    }
    let stored = async {
        state
            .js
            .send_publish(subject, message)
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())
    };
    match stored.await {
        Ok(ack) => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({
                "eventID": delivery,
                "sequence": ack.sequence,
                "duplicate": ack.duplicate,
            })),
        )
            .into_response(),
        Err(error) => {
            eprintln!("publish failed: {error}");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "queue_unavailable")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_become_subject_tokens() {
        assert!(plain_token("team-0001"));
        assert!(!plain_token("a.b"));
        assert!(!plain_token(">"));
        assert!(!plain_token(""));
    }

    #[test]
    fn the_stream_is_kept_like_the_events_stream() {
        let config = stream_config(STREAM, "reference.>");
        assert_eq!(config.storage, stream::StorageType::File);
        assert_eq!(config.discard, stream::DiscardPolicy::New);
        assert_eq!(config.duplicate_window, Duration::from_secs(120));
        assert_eq!(config.subjects, ["reference.>"]);
    }
}
