//! `pkg/sink/validate_payload_test.go`: Tekton's sink answers `400` to a body that is not
//! JSON, unless its payload validation is off, and `202` otherwise.
//!
//! The tables' listener refers to a Trigger `test` that their resources do not declare;
//! Tekton's sink answers before it looks triggers up, while Sluice's ingest answers `500`
//! for a listener left with no valid trigger (the case "eventlistener with unknown
//! triggers" of the dispatcher's suite). Here the Trigger is declared, so the answer is the
//! body's.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use axum::body::Body;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::Request;
use prometheus_client::registry::Registry;
use sluice_ingest::app::{AppState, router};
use sluice_ingest::limits::LimitArgs;
use sluice_ingest::metrics::IngestMetrics;
use sluice_ingest::publish::{Publish, PublishError, Stored};
use tower::ServiceExt;

use crate::suite::{Compared, Suite};

const FILE: &str = "pkg/sink/validate_payload_test.go";

/// Stores every event in memory.
#[derive(Default)]
struct MemoryStore {
    stored: Mutex<Vec<Bytes>>,
}

impl Publish for MemoryStore {
    fn publish(
        &self,
        _subject: String,
        _message_id: String,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<Stored, PublishError>> {
        Box::pin(async move {
            let mut stored = self.stored.lock().unwrap();
            stored.push(payload);
            Ok(Stored::New {
                sequence: stored.len() as u64,
            })
        })
    }
}

/// The tables' EventListener `test-el` with `triggers: [{triggerRef: test}]`, its
/// annotations given, and the Trigger `test` it refers to.
pub fn resources(annotations: &str) -> String {
    format!(
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {{name: test, namespace: foo}}
spec:
  template:
    spec:
      resourcetemplates: [{{apiVersion: v1, kind: ConfigMap, metadata: {{generateName: c-}}}}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: test-el, namespace: foo{annotations}}}
spec:
  triggers: [{{triggerRef: test}}]
"#
    )
}

/// Posts `body` as `application/json` (as the tables' `http.Post` does) to `test-el`: the
/// status. An event is stored exactly when the answer is `202`.
fn post(yaml: &str, body: &'static [u8]) -> String {
    send(yaml, http::Method::POST, body)
}

/// Sends `body` with `method` as `application/json` to `test-el`: the status.
pub fn send(yaml: &str, method: http::Method, body: &'static [u8]) -> String {
    let request = Request::builder()
        .method(method)
        .uri("/hooks/foo/test-el")
        .header("Content-Type", "application/json")
        .body(Body::from(body))
        .unwrap();
    match answer(yaml, request) {
        Ok(answer) => answer.status.to_string(),
        Err(refused) => refused,
    }
}

/// What ingest answers.
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Ingest's answer to `request` with the configuration `yaml`, or why the configuration was
/// refused. An event is stored exactly when the answer is `202`.
pub fn answer(yaml: &str, request: Request<Body>) -> Result<Answer, String> {
    let catalogue = sluice_triggers::config::load_str("tables.yaml", yaml);
    if !catalogue.issues().is_empty() {
        let issues: Vec<String> = catalogue.issues().iter().map(|i| i.to_string()).collect();
        return Err(format!("configuration refused: {}", issues.join("; ")));
    }
    let store = Arc::new(MemoryStore::default());
    let state = AppState {
        catalogue: Arc::new(ArcSwap::from_pointee(catalogue)),
        publisher: store.clone(),
        metrics: IngestMetrics::register(&mut Registry::default()),
        max_body_bytes: (1 << 20).into(),
        admission: None,
        status: Arc::new(sluice_runtime::event_status::StatusWriter::disabled()),
    };
    let app = router(state, Arc::new(|| Ok(())), &LimitArgs::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, headers, body) = runtime.block_on(async {
        let response = app.oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status.as_u16(), parts.headers, body)
    });
    let stored = store.stored.lock().unwrap().len();
    assert_eq!(
        stored,
        usize::from(status == 202),
        "events stored, answered {status}"
    );
    Ok(Answer {
        status,
        headers,
        body,
    })
}

pub const JSON_BODY: &[u8] =
    br#"{"head_commit": {"id": "testrevision"}, "repository": {"url": "testurl"}}"#;
const XML_BODY: &[u8] = b"<test>xml</test>";

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);
    let tables = [
        ("TestSink_IsValidPayload", "", "400"),
        (
            "TestSink_IsValidPayload_PayloadValidation",
            ", annotations: {tekton.dev/payload-validation: \"false\"}",
            "202",
        ),
    ];
    for (function, annotations, non_json) in tables {
        let rows = [
            ("event with Json Body", JSON_BODY, "202"),
            ("event with non Json Body", XML_BODY, non_json),
        ];
        for (name, body, status) in rows {
            file.case(function, name, move || {
                Compared::new(
                    format!(
                        "POST application/json {:?} to listener test-el{annotations}",
                        String::from_utf8_lossy(body)
                    ),
                    status,
                    post(&resources(annotations), body),
                )
            });
        }
    }
}
