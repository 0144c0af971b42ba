//! The request-level limits on a router without a socket: timeouts, load shedding, sizes.

use std::time::Instant;

use axum::Router;
use axum::handler::Handler;
use axum::http::Request as HttpRequest;
use axum::routing::post_service;
use clap::Parser;
use futures_util::StreamExt;
use prometheus_client::registry::Registry;
use tower::ServiceExt;

use super::*;

#[derive(Debug, clap::Parser)]
struct Flags {
    #[command(flatten)]
    limits: LimitArgs,
}

#[test]
fn defaults_are_the_flags_defaults() {
    let parsed = Flags::try_parse_from(["sluice-ingest"]).unwrap();
    assert_eq!(parsed.limits, LimitArgs::default());
}

#[test]
fn zero_limits_are_refused_at_start_up() {
    for flag in [
        "--max-concurrent-requests",
        "--max-connections",
        "--max-header-bytes",
    ] {
        let error = Flags::try_parse_from(["sluice-ingest", flag, "0"]).unwrap_err();
        assert!(error.to_string().contains("at least 1"), "{flag}: {error}");
    }
}

/// A router whose guarded handler reads the whole body, as the request path does.
fn guarded(limits: &LimitArgs) -> Router {
    let read_all = |body: Body| async move {
        match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => (StatusCode::OK, bytes).into_response(),
            Err(_) => StatusCode::BAD_REQUEST.into_response(),
        }
    };
    let metrics = IngestMetrics::register(&mut Registry::default());
    Router::new().route(
        "/hooks",
        post_service(limits.guard(read_all.with_state(()), metrics)),
    )
}

/// A body that sends one byte and then never finishes.
fn stalled_body() -> Body {
    let first = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{"))]);
    Body::from_stream(first.chain(futures_util::stream::pending()))
}

fn post_with(body: Body) -> HttpRequest<Body> {
    HttpRequest::post("/hooks").body(body).unwrap()
}

async fn json(response: Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_at_its_deadline() {
    let limits = LimitArgs {
        body_read_timeout: Duration::from_millis(200),
        ..LimitArgs::default()
    };
    let started = Instant::now();
    let response = guarded(&limits)
        .oneshot(post_with(stalled_body()))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(response.headers()[header::CONNECTION], "close");
    assert_eq!(json(response).await["code"], "body_timeout");
}

/// Posts `body` (which must amount to `{}`) and checks that the handler read all of it.
async fn assert_passes_through(limits: &LimitArgs, body: Body) {
    let response = guarded(limits).oneshot(post_with(body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 64)
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"{}");
}

#[tokio::test]
async fn a_body_that_arrives_in_time_passes_through() {
    assert_passes_through(&LimitArgs::default(), Body::from("{}")).await;
}

/// `{}` in two pieces, the second 100 ms after the first.
fn pausing_body() -> Body {
    let first = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{"))]);
    let rest = futures_util::stream::once(async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(Bytes::from_static(b"}"))
    });
    Body::from_stream(first.chain(rest))
}

#[tokio::test]
async fn a_body_that_pauses_but_ends_before_its_deadline_passes_through() {
    let limits = LimitArgs {
        body_read_timeout: Duration::from_secs(5),
        ..LimitArgs::default()
    };
    assert_passes_through(&limits, pausing_body()).await;
}

#[tokio::test]
async fn a_body_read_timeout_past_the_clocks_range_means_no_deadline() {
    // `--body-read-timeout` accepts up to u64::MAX milliseconds.
    let limits = LimitArgs {
        body_read_timeout: Duration::from_millis(u64::MAX),
        ..LimitArgs::default()
    };
    assert_passes_through(&limits, pausing_body()).await;
}

#[tokio::test]
async fn requests_over_the_concurrency_limit_are_shed_with_503_and_slots_come_back() {
    let limits = LimitArgs {
        max_concurrent_requests: 2,
        ..LimitArgs::default()
    };
    let app = guarded(&limits);
    let holders: Vec<_> = (0..2)
        .map(|_| tokio::spawn(app.clone().oneshot(post_with(stalled_body()))))
        .collect();
    // Both holders are inside the limit once a third request is shed.
    let mut shed = None;
    for _ in 0..100 {
        let response = app
            .clone()
            .oneshot(post_with(Body::from("{}")))
            .await
            .unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            shed = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shed = shed.expect("a third request is shed while two hold the slots");
    assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
    assert_eq!(json(shed).await["code"], "overloaded");

    for holder in holders {
        holder.abort();
        let _ = holder.await;
    }
    let response = app.oneshot(post_with(Body::from("{}"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "slots are released");
}

#[test]
fn http1_settings_accept_any_header_limit() {
    // hyper panics on read buffers under 8 KiB; small header limits must not reach it.
    for max_header_bytes in [1, 100, 8 * 1024, 1024 * 1024] {
        let _ = LimitArgs {
            max_header_bytes,
            ..LimitArgs::default()
        }
        .http1();
    }
}
