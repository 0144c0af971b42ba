//! The routes without a socket: refusals that need neither NATS nor a Kubernetes API to
//! reach (those that do are in the integration tests).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use sluice_runtime::event_status::StatusReader;
use tower::ServiceExt;

use super::{Access, router};

/// A reader whose NATS never answers: nothing listens on port 1.
async fn unreachable_reader() -> StatusReader {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect("nats://127.0.0.1:1")
        .await
        .unwrap();
    StatusReader::new(
        sluice_runtime::jetstream::context(client, Duration::from_millis(200)),
        "sluice-dispatcher",
    )
}

/// Access through a Kubernetes API that refuses connections.
fn unreachable_cluster() -> Access {
    let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
    Access::kubernetes(kube::Client::try_from(config).unwrap())
}

async fn get(
    access: Access,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, header::HeaderMap, Value) {
    let mut request = Request::get(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = router(unreachable_reader().await, access)
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

const EVENT: &str = "/v1/namespaces/team-a/events/0b3f2c9e-1d2a-4e5f-8a9b-0c1d2e3f4a5b";

#[tokio::test]
async fn bad_names_and_values_are_400s_naming_the_parameter() {
    for (uri, parameter) in [
        ("/v1/namespaces/Team_A/events", "namespace"),
        ("/v1/namespaces/team-a/events?state=exploded", "state"),
        ("/v1/namespaces/team-a/events?since=yesterday", "since"),
        ("/v1/namespaces/team-a/events?limit=100000", "limit"),
        ("/v1/namespaces/team-a/refused?listener=..", "listener"),
        (
            "/v1/namespaces/team-a/eventlisteners/NOT%20A%20NAME/deliveries/d-1",
            "eventlistener",
        ),
        ("/v1/namespaces/%FF/events", "path"),
    ] {
        let (status, _, body) = get(Access::open(), uri, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["code"], "invalid_parameter", "{uri}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{parameter}:")),
            "{uri}: {message}"
        );
    }
}

#[tokio::test]
async fn an_id_that_is_no_uuid_is_no_event() {
    let (status, _, body) = get(
        Access::open(),
        "/v1/namespaces/team-a/events/..%2F..%2Fkube-system",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn nats_out_of_reach_is_a_503_to_retry() {
    let (status, headers, body) = get(Access::open(), EVENT, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "status_unavailable");
    assert_eq!(headers[header::RETRY_AFTER], "5");
}

#[tokio::test]
async fn with_a_cluster_a_bearer_token_is_required() {
    let (status, headers, body) = get(unreachable_cluster(), EVENT, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "token_required");
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
}

#[tokio::test]
async fn a_kubernetes_api_out_of_reach_is_a_503_that_shows_no_token() {
    let (status, headers, body) =
        get(unreachable_cluster(), EVENT, Some("secret-token-value")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "authorisation_unavailable");
    assert_eq!(headers[header::RETRY_AFTER], "5");
    assert!(!body.to_string().contains("secret-token-value"), "{body}");
}

#[tokio::test]
async fn a_bad_namespace_is_refused_before_any_review() {
    // The cluster is out of reach: had the token been reviewed, this would be a 503.
    let (status, _, body) = get(
        unreachable_cluster(),
        "/v1/namespaces/..%2Fkube-system/events",
        Some("some-token"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_parameter");
}
