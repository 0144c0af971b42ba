//! `pkg/sink/sink_test.go`, the rows whose result is the HTTP answer, each a difference
//! docs/tekton.md documents:
//!
//! - `TestExecuteInterceptor_Sequential`: Tekton's sink takes a webhook with any method and
//!   runs the trigger's interceptors for it. Sluice's ingest takes webhooks as `POST` only and
//!   answers any other method `405 method_not_allowed`; the `POST` row runs in the
//!   dispatcher's suite, where the interceptors are.
//! - `TestHandleEvent_Error`, "missing eventListener": Tekton's sink serves one
//!   listener and answers `500` when it cannot read it; ingest routes by path and answers an
//!   unknown listener `404 unknown_listener`.
//! - `TestCloudEventHandling`: Tekton answers a CloudEvent request with a CloudEvent whose
//!   data names the event; ingest answers it as any webhook, `202` with the same JSON and no
//!   `Ce-*` headers. What the event creates is compared in the dispatcher's suite.

use axum::body::Body;
use http::{Method, Request};
use serde_json::Value;

use crate::suite::{Compared, Suite};
use crate::validate_payload::{JSON_BODY, answer, resources, send};

const FILE: &str = "pkg/sink/sink_test.go";

const POST_ONLY: &str = "docs/tekton.md, Where Sluice differs: Webhooks are posted";
const ANSWERS: &str = "docs/tekton.md, Where Sluice differs: Answers are ingest's own";

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
    ];
    for method in methods {
        let name = method.to_string();
        file.documented(
            "TestExecuteInterceptor_Sequential",
            &name,
            POST_ONLY,
            "405",
            move || {
                let input = format!("{method} application/json {{}} to listener test-el");
                Compared::new(input, "202", send(&resources(""), method, JSON_BODY))
            },
        );
    }

    file.documented(
        "TestHandleEvent_Error",
        "missing eventListener",
        ANSWERS,
        "404 unknown_listener",
        || {
            let request = Request::post("/hooks/foo/test-el")
                .header("Content-Type", "application/json")
                .body(Body::from(JSON_BODY))
                .unwrap();
            let yaml = resources("").replace("name: test-el", "name: another-el");
            let sluice = match answer(&yaml, request) {
                Ok(answer) => {
                    let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
                    format!("{} {}", answer.status, body["code"].as_str().unwrap_or(""))
                }
                Err(refused) => refused,
            };
            Compared::new(
                "POST to listener test-el, which does not exist",
                "500",
                sluice,
            )
        },
    );
    file.documented(
        "TestCloudEventHandling",
        "(the CloudEvent answered)",
        ANSWERS,
        "202 JSON {eventID, eventListener, eventListenerUID, namespace}, no Ce-* headers",
        || {
            let request = Request::post("/hooks/foo/test-el")
                .header("Ce-Specversion", "1.0")
                .header("Ce-Type", "testing.cloudevent")
                .header("Ce-Source", "testing")
                .header("Ce-Id", "7d6a3b0c-0d6f-4c5e-9f0a-0123456789ab")
                .header("Content-Type", "application/json")
                .body(Body::from(JSON_BODY))
                .unwrap();
            let sluice = match answer(&resources(""), request) {
                Ok(answer) => {
                    let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
                    let mut keys: Vec<&str> = body
                        .as_object()
                        .map(|o| o.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    keys.sort_unstable();
                    let cloud_event = answer
                        .headers
                        .keys()
                        .any(|name| name.as_str().starts_with("ce-"));
                    format!(
                        "{} JSON {{{}}}, {}",
                        answer.status,
                        keys.join(", "),
                        if cloud_event {
                            "Ce-* headers"
                        } else {
                            "no Ce-* headers"
                        }
                    )
                }
                Err(refused) => refused,
            };
            Compared::new(
                "a binary-mode CloudEvent (Ce-* headers, JSON data) to listener test-el",
                "a CloudEvent with data {eventID, eventListener, eventListenerUID, namespace}",
                sluice,
            )
        },
    );
}
