//! Arbitrary requests through the real ingest router (`sluice_ingest::app::router`, with its
//! limit layers) by `oneshot`, no socket: method, target, headers and body bytes.
//!
//! Events are stored in memory (the router takes any `Publish`), so the whole request path
//! runs, publish included. The store de-duplicates by message id as JetStream does, across
//! inputs (remembering a bounded number of ids), so redeliveries are answered as duplicates. The first line is `METHOD TARGET [FLAGS]`, flags separated by commas:
//! `fail` makes the store refuse, `chunk=N` sends the body in chunks of N bytes.
//!
//! Invariants: no panic; only documented statuses; every refusal is small JSON with a known
//! `code` and echoes no secret; an event is stored only with a 202, for a configured
//! listener, with the exact body, no credential header, only triggers of that listener, and a
//! signature that verifies for every accepted trigger that has a secret; its message id is the
//! event's key (the digest of its idempotency key, which is scoped to its listener, or of its
//! event id when the request named no delivery); a duplicate stores nothing and names, if
//! any, the original's event id.

#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use libfuzzer_sys::fuzz_target;
use prometheus_client::registry::Registry;
use serde_json::Value;
use sluice_fuzz::{Input, ROUTING_CONFIG, SECRET_A, SECRET_B, github_value_signs};
use sluice_ingest::app::{AppState, router};
use sluice_ingest::limits::LimitArgs;
use sluice_ingest::metrics::IngestMetrics;
use sluice_ingest::publish::{Publish, PublishError, Stored};
use sluice_runtime::envelope::{Envelope, EventMeta};
use sluice_runtime::event_status::StatusWriter;
use sluice_triggers::catalogue::Catalogue;
use sluice_triggers::idempotency::event_key;
use tower::ServiceExt;

/// Bodies over this are refused with 413; small, so the fuzzer reaches the limit.
const MAX_BODY_BYTES: usize = 2048;

/// `code`s an answer may carry.
const CODES: &[&str] = &[
    "not_found",
    "method_not_allowed",
    "unknown_listener",
    "body_too_large",
    "body_unreadable",
    "invalid_json",
    "body_not_object",
    "signature_missing",
    "signature_invalid",
    "token_missing",
    "token_invalid",
    "timestamp_missing",
    "timestamp_invalid",
    "timestamp_outside_window",
    "queue_unavailable",
    "queue_full",
    "overloaded",
];

/// Credential headers that must never be stored (Go's canonical spelling).
const CREDENTIALS: &[&str] = &[
    "Authorization",
    "Cookie",
    "Proxy-Authorization",
    "X-Hub-Signature",
    "X-Hub-Signature-256",
];

/// Message ids the store remembers before it forgets them all (a bounded duplicate window).
const REMEMBERED_IDS: usize = 4096;

/// An in-memory event store that can be told to refuse, and de-duplicates by message id.
#[derive(Default)]
struct MemoryStore {
    fail: Mutex<bool>,
    /// This request's stored events: subject, message id, payload.
    stored: Mutex<Vec<(String, String, Bytes)>>,
    /// Message id → (sequence, metadata) of every event stored recently.
    seen: Mutex<HashMap<String, (u64, EventMeta)>>,
    sequence: Mutex<u64>,
}

impl Publish for MemoryStore {
    fn publish(
        &self,
        subject: String,
        message_id: String,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<Stored, PublishError>> {
        Box::pin(async move {
            if *self.fail.lock().expect("store lock") {
                return Err(PublishError::Timeout(std::time::Duration::ZERO));
            }
            let mut seen = self.seen.lock().expect("store lock");
            if let Some((sequence, meta)) = seen.get(&message_id) {
                return Ok(Stored::Duplicate {
                    sequence: *sequence,
                    original: Some(Box::new(meta.clone())),
                });
            }
            let meta = Envelope::decode(payload.clone())
                .expect("ingest publishes envelopes")
                .meta;
            let mut sequence = self.sequence.lock().expect("store lock");
            *sequence += 1;
            if seen.len() >= REMEMBERED_IDS {
                seen.clear();
            }
            seen.insert(message_id.clone(), (*sequence, meta));
            self.stored
                .lock()
                .expect("store lock")
                .push((subject, message_id, payload));
            Ok(Stored::New {
                sequence: *sequence,
            })
        })
    }
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    app: Router,
    store: Arc<MemoryStore>,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let catalogue = catalogue(ROUTING_CONFIG);
    let store = Arc::new(MemoryStore::default());
    let state = AppState {
        catalogue,
        publisher: store.clone(),
        metrics: metrics(),
        max_body_bytes: MAX_BODY_BYTES.into(),
        admission: None,
        status: Arc::new(StatusWriter::disabled()),
    };
    let app = router(state, Arc::new(|| Ok(())), &LimitArgs::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    Harness {
        runtime,
        app,
        store,
    }
});

fn catalogue(yaml: &str) -> Arc<ArcSwap<Catalogue>> {
    let catalogue = sluice_triggers::config::load_str("fuzz.yaml", yaml);
    assert!(
        catalogue.issues().is_empty(),
        "the fuzzing configuration must load cleanly: {:?}",
        catalogue.issues()
    );
    Arc::new(ArcSwap::from_pointee(catalogue))
}

fn metrics() -> IngestMetrics {
    IngestMetrics::register(&mut Registry::default())
}

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let Some((start, header_lines)) = input.lines.split_first() else {
        return;
    };
    let mut words = start.split(|&b| b == b' ');
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return;
    };
    let flags = words.next().unwrap_or_default();
    let Ok(method) = Method::from_bytes(method) else {
        return;
    };
    let headers = input.headers(header_lines);
    let mut request = Request::builder().method(method).uri(target);
    if let Some(map) = request.headers_mut() {
        *map = headers.clone();
    }
    let body = chunked_body(input.body, flags);
    // Targets hyper would refuse (not a valid URI) never reach the router.
    let Ok(request) = request.body(body) else {
        return;
    };

    let harness = &*HARNESS;
    *harness.store.fail.lock().expect("store lock") = flag(flags, b"fail").is_some();
    let response = harness
        .runtime
        .block_on(harness.app.clone().oneshot(request))
        .expect("the router is infallible");
    let status = response.status();
    let retry_after = response.headers().contains_key(header::RETRY_AFTER);
    let answer = harness
        .runtime
        .block_on(axum::body::to_bytes(response.into_body(), 64 * 1024))
        .expect("answers are small");
    // Taken out, so the store holds one request's events at most and memory stays flat.
    let stored = std::mem::take(&mut *harness.store.stored.lock().expect("store lock"));

    assert!(
        [200, 202, 400, 401, 404, 405, 413, 503].contains(&status.as_u16()),
        "unexpected status {status}"
    );
    assert!(
        answer.len() <= 1024,
        "answers stay small: {} bytes",
        answer.len()
    );
    for secret in [SECRET_A, SECRET_B] {
        if !contains(data, secret.as_bytes()) {
            assert!(
                !contains(&answer, secret.as_bytes()),
                "the answer leaks a secret"
            );
        }
    }
    if status.is_client_error() || status.is_server_error() {
        let answer: Value = serde_json::from_slice(&answer).expect("refusals are JSON");
        let code = answer["code"].as_str().expect("refusals have a code");
        assert!(CODES.contains(&code), "unknown code {code}");
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(retry_after, "503 says when to retry");
        }
    }
    if status != StatusCode::ACCEPTED {
        assert!(
            stored.is_empty(),
            "an event was stored but answered {status}"
        );
        return;
    }
    let answer: Value = serde_json::from_slice(&answer).expect("202 is JSON");
    let Some(event_id) = answer["eventID"].as_str() else {
        // A filtered webhook (no trigger wants its event type) names no event: none is stored.
        assert!(stored.is_empty(), "an event was stored but the answer names none");
        return;
    };
    assert_eq!(event_id.len(), 36, "eventID is a UUID");
    assert!(stored.len() <= 1, "one request stores at most one event");
    if answer.get("duplicate").is_some() {
        assert_eq!(answer["duplicate"], true, "duplicate is only ever true");
        assert!(stored.is_empty(), "a duplicate is not stored again");
    }
    for (subject, stored_message_id, payload) in &stored {
        let envelope = Envelope::decode(payload.clone()).expect("a stored event decodes");
        let meta = &envelope.meta;
        assert_eq!(meta.event_id, event_id);
        assert_eq!(
            stored_message_id,
            &event_key(&meta.idempotency_key, &meta.event_id),
            "the message id is the event's key"
        );
        assert!(
            meta.idempotency_key.is_empty()
                || meta
                    .idempotency_key
                    .starts_with(&format!("{}/{}/", meta.namespace, meta.listener)),
            "an idempotency key is scoped to its listener: {}",
            meta.idempotency_key
        );
        assert_eq!(answer["namespace"], meta.namespace.as_str());
        assert_eq!(answer["eventListener"], meta.listener.as_str());
        assert_eq!(
            subject,
            &format!("sluice.events.{}.{}", meta.namespace, meta.listener),
            "configured names are plain subject tokens"
        );
        assert_eq!(
            &envelope.body[..],
            input.body,
            "the body is stored byte for byte"
        );
        for credential in CREDENTIALS {
            assert!(
                envelope.meta.headers.get_all(credential).is_none(),
                "{credential} was stored"
            );
        }
        assert!(
            !meta.triggers.is_empty(),
            "a stored event names its triggers"
        );
        let signatures: Vec<&[u8]> = headers
            .get_all("x-hub-signature-256")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        let signed_by = |secret: &str| {
            signatures
                .iter()
                .any(|value| github_value_signs(value, secret.as_bytes(), input.body))
        };
        for trigger in &meta.triggers {
            match (
                meta.namespace.as_str(),
                meta.listener.as_str(),
                trigger.as_str(),
            ) {
                ("team-a", "github", "push") => assert!(signed_by(SECRET_A), "push unsigned"),
                ("team-a", "github", "any-event") => assert!(signed_by(SECRET_B), "any unsigned"),
                ("team-a", "open", "anyone") | ("team-a", "unsigned", "pings") => {}
                other => panic!("an event for {other:?}, which is not configured"),
            }
        }
    }
});

/// The body as one chunk, or in chunks of `chunk=N` bytes.
fn chunked_body(body: &[u8], flags: &[u8]) -> Body {
    let size = flag(flags, b"chunk=")
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0);
    match size {
        None => Body::from(body.to_vec()),
        Some(size) => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = body
                .chunks(size)
                .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
                .collect();
            Body::from_stream(futures_util::stream::iter(chunks))
        }
    }
}

/// The rest of the comma-separated flag that starts with `name`.
fn flag<'f>(flags: &'f [u8], name: &[u8]) -> Option<&'f [u8]> {
    flags
        .split(|&b| b == b',')
        .find_map(|f| f.strip_prefix(name))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
