//! Nothing lost, nothing twice: redelivered webhooks are stored once and answered with the
//! first `eventID`; a full stream refuses new webhooks without dropping stored ones; SIGTERM
//! under load drains without losing an accepted event or answering 2xx for one not stored.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::Value;
use sluice_tests::NatsServer;
use sluice_tests::procs::{Ingest, eventually, github_signature};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{
    ConfigDir, SECRET, github_listener, metrics_text, post, push_body, stored_envelopes,
    stored_events,
};

/// Posts a signed GitHub push, with `X-GitHub-Delivery` when `delivery` is given.
async fn post_delivery(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
    delivery: Option<&str>,
) -> (u16, Value) {
    let signature = github_signature(SECRET, body);
    let mut headers = vec![
        ("X-GitHub-Event", "push"),
        ("X-Hub-Signature-256", signature.as_str()),
    ];
    if let Some(delivery) = delivery {
        headers.push(("X-GitHub-Delivery", delivery));
    }
    post(client, url, body, &headers).await
}

fn event_id(answer: &Value) -> String {
    answer["eventID"]
        .as_str()
        .unwrap_or_else(|| panic!("no eventID in {answer}"))
        .to_owned()
}

async fn stored_event_ids(nats_url: &str) -> HashSet<String> {
    stored_envelopes(nats_url)
        .await
        .into_iter()
        .map(|envelope| envelope.meta.event_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn redeliveries_are_stored_once_and_answered_with_the_first_event_id() {
    let nats = NatsServer::start().await;
    let config = ConfigDir::new()
        .file("a.yaml", &github_listener("team-a", "builder"))
        .file("b.yaml", &github_listener("team-b", "builder"))
        .file(
            "c.yaml",
            &github_listener("team-c", "builder").replace(
                "metadata: {name: github, namespace: team-c}",
                "metadata: {name: github, namespace: team-c, annotations: {sluice.dev/deduplicate-by-body: \"true\"}}",
            ),
        );
    let ingest = Ingest::start(&nats.url(), config.path(), &[]).await;
    ingest.wait_ready().await;
    let client = reqwest::Client::new();
    let team_a = ingest.hook_url("team-a", "github");
    let team_b = ingest.hook_url("team-b", "github");
    let by_body = ingest.hook_url("team-c", "github");

    // GitHub redelivers with the same X-GitHub-Delivery.
    let delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let body = push_body("rev-1");
    let (status, first) = post_delivery(&client, &team_a, &body, Some(delivery)).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(
        first.get("duplicate"),
        None,
        "a first delivery is not a duplicate"
    );
    let (status, again) = post_delivery(&client, &team_a, &body, Some(delivery)).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(event_id(&again), event_id(&first));
    assert_eq!(again["eventListener"], "github");
    assert_eq!(again["namespace"], "team-a");
    assert_eq!(again["eventListenerUID"], first["eventListenerUID"]);
    assert_eq!(stored_events(&nats.url()).await, 1);

    // Without a delivery id, the same body posted again is another event (a `curl`
    // re-trigger runs again), unless the listener asks to recognise bodies.
    let body = push_body("rev-2");
    let (status, first_plain) = post_delivery(&client, &team_a, &body, None).await;
    assert_eq!(status, 202, "{first_plain}");
    let (status, again_plain) = post_delivery(&client, &team_a, &body, None).await;
    assert_eq!(status, 202, "{again_plain}");
    assert_eq!(again_plain.get("duplicate"), None, "{again_plain}");
    assert_ne!(event_id(&again_plain), event_id(&first_plain));
    assert_eq!(stored_events(&nats.url()).await, 3);
    let (status, first_by_body) = post_delivery(&client, &by_body, &body, None).await;
    assert_eq!(status, 202, "{first_by_body}");
    let (status, again_by_body) = post_delivery(&client, &by_body, &body, None).await;
    assert_eq!(status, 202, "{again_by_body}");
    assert_eq!(again_by_body["duplicate"], true, "{again_by_body}");
    assert_eq!(event_id(&again_by_body), event_id(&first_by_body));
    assert_eq!(stored_events(&nats.url()).await, 4);

    // The same delivery id to two listeners is two deliveries.
    let body = push_body("rev-3");
    let (status, in_a) = post_delivery(&client, &team_a, &body, Some("shared-id")).await;
    assert_eq!(status, 202, "{in_a}");
    let (status, in_b) = post_delivery(&client, &team_b, &body, Some("shared-id")).await;
    assert_eq!(status, 202, "{in_b}");
    assert_eq!(in_b.get("duplicate"), None, "{in_b}");
    assert_ne!(event_id(&in_a), event_id(&in_b));

    let stored = stored_envelopes(&nats.url()).await;
    let ids: HashSet<String> = stored.iter().map(|e| e.meta.event_id.clone()).collect();
    let expected: HashSet<String> = [
        &first,
        &first_plain,
        &again_plain,
        &first_by_body,
        &in_a,
        &in_b,
    ]
    .into_iter()
    .map(event_id)
    .collect();
    assert_eq!(ids, expected);
    let keys: Vec<&str> = stored
        .iter()
        .map(|e| e.meta.idempotency_key.as_str())
        .collect();
    assert_eq!(keys[0], format!("team-a/github/github:{delivery}"));
    assert_eq!(keys[1], "", "no delivery id, no key");
    assert_eq!(keys[2], "");
    assert!(keys[3].starts_with("team-c/github/sha256:"), "{}", keys[3]);
    assert_eq!(keys[4], "team-a/github/github:shared-id");
    assert_eq!(keys[5], "team-b/github/github:shared-id");

    let metrics = metrics_text(&client, &ingest.metrics_url).await;
    for tenant in ["team-a", "team-c"] {
        assert!(
            metrics.contains(&format!(
                r#"sluice_ingest_requests_total{{namespace="{tenant}",listener="github",outcome="duplicate"}} 1"#
            )),
            "{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_stream_refuses_new_webhooks_and_keeps_every_stored_one() {
    let nats = NatsServer::start().await;
    let config = ConfigDir::new().file("a.yaml", &github_listener("team-a", "builder"));
    let client = reqwest::Client::new();

    // The stream already exists, unlimited, with two events in it.
    let mut unlimited = Ingest::start(&nats.url(), config.path(), &[]).await;
    unlimited.wait_ready().await;
    let url = unlimited.hook_url("team-a", "github");
    let mut accepted = HashSet::new();
    for i in 0..2 {
        let delivery = format!("d-{i}");
        let (status, answer) = post_delivery(
            &client,
            &url,
            &push_body(&format!("rev-{i}")),
            Some(&delivery),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        accepted.insert(event_id(&answer));
    }
    assert!(unlimited.process.terminate(Duration::from_secs(10)));

    // Restarted with a limit: the existing stream is updated to it, not kept as it was.
    let ingest = Ingest::start(&nats.url(), config.path(), &["--stream-max-messages", "5"]).await;
    ingest.wait_ready().await;
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let info = js
        .get_stream("SLUICE_EVENTS")
        .await
        .unwrap()
        .cached_info()
        .clone();
    assert_eq!(info.config.max_messages, 5);
    assert_eq!(
        info.config.discard,
        jetstream::stream::DiscardPolicy::New,
        "a full stream refuses new events instead of dropping old ones"
    );
    assert!(
        ingest
            .process
            .logs()
            .contains("max_messages: unlimited -> 5"),
        "the update is logged:\n{}",
        ingest.process.logs()
    );

    let url = ingest.hook_url("team-a", "github");
    for i in 2..5 {
        let delivery = format!("d-{i}");
        let (status, answer) = post_delivery(
            &client,
            &url,
            &push_body(&format!("rev-{i}")),
            Some(&delivery),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        accepted.insert(event_id(&answer));
    }
    let response = client
        .post(&url)
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "push")
        .header(
            "X-Hub-Signature-256",
            github_signature(SECRET, &push_body("rev-5")),
        )
        .body(push_body("rev-5"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        503,
        "the sixth event is refused"
    );
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(retry_after.is_some_and(|s| s > 0), "{retry_after:?}");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["code"], "queue_full", "{answer}");

    // A redelivery of a stored event is still recognised while the stream is full.
    let (status, again) = post_delivery(&client, &url, &push_body("rev-3"), Some("d-3")).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["duplicate"], true, "{again}");
    assert!(accepted.contains(&event_id(&again)));

    assert_eq!(stored_event_ids(&nats.url()).await, accepted);
    assert_eq!(accepted.len(), 5);
}

/// Sends a signed request head on a new connection and returns the connection, for the body
/// to follow later; the request is in flight meanwhile.
async fn start_request(addr: &str, path: &str, body: &[u8]) -> TcpStream {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: {}\r\nContent-Length: {}\r\n\r\n",
        github_signature(SECRET, body),
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Finishes a request begun by [`start_request`] and reads its answer: status and JSON body.
async fn finish_request(mut stream: TcpStream, body: &[u8]) -> (u16, Value) {
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_drains_without_losing_or_inventing_an_accepted_event() {
    const WORKERS: usize = 200;
    /// A bound on the whole run, should the server never stop accepting.
    const MAX_POSTS: usize = 5000;
    let delay = Duration::from_secs(1);
    let timeout = Duration::from_secs(10);

    let nats = NatsServer::start().await;
    let config = ConfigDir::new().file("a.yaml", &github_listener("team-a", "builder"));
    let mut ingest = Ingest::start(
        &nats.url(),
        config.path(),
        &["--shutdown-delay", "1s", "--shutdown-timeout", "10s"],
    )
    .await;
    ingest.wait_ready().await;
    let url = ingest.hook_url("team-a", "github");
    let addr = ingest.url.trim_start_matches("http://").to_owned();
    let client = reqwest::Client::new();

    // Watches readiness on the operations port until the process is gone.
    let readyz = format!("{}/readyz", ingest.metrics_url);
    let went_unready = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn({
        let client = client.clone();
        let went_unready = went_unready.clone();
        async move {
            loop {
                match client.get(&readyz).send().await {
                    Ok(response) if response.status().as_u16() == 503 => {
                        went_unready.store(true, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(_) => return, // the process has exited
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });

    // Concurrent senders posting distinct events until the server has stopped accepting, so
    // that requests are in flight at the signal, through the delay, and at the drain.
    let next = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (next, answered, stop) = (next.clone(), answered.clone(), stop.clone());
        let (url, client) = (url.clone(), client.clone());
        workers.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= MAX_POSTS {
                    break;
                }
                let answer =
                    post_delivery(&client, &url, &push_body(&format!("load-{i}")), None).await;
                answered.fetch_add(1, Ordering::SeqCst);
                if answer.0 == 0 {
                    // Refused: the listener is closed. Do not spin.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                answers.push(answer);
            }
            answers
        }));
    }

    // SIGTERM while the load runs.
    assert!(
        eventually(Duration::from_secs(20), || async {
            answered.load(Ordering::SeqCst) >= 50
        })
        .await
    );
    let signalled = Instant::now();
    ingest.process.send_terminate();
    assert!(
        eventually(Duration::from_secs(2), || async {
            went_unready.load(Ordering::SeqCst)
        })
        .await,
        "/readyz did not turn 503 at the signal"
    );

    // A request whose head arrives during the delay and whose body arrives only once the
    // listening socket has closed is still in flight at the drain: it must be finished.
    let in_flight_body = push_body("in-flight");
    let in_flight = start_request(&addr, "/hooks/team-a/github", &in_flight_body).await;
    assert!(
        eventually(delay * 3, || async {
            TcpStream::connect(&addr).await.is_err()
        })
        .await,
        "ingest kept accepting connections after the shutdown delay"
    );
    assert!(
        signalled.elapsed() >= delay,
        "stopped accepting before the delay"
    );
    stop.store(true, Ordering::SeqCst);
    let (status, in_flight_answer) = finish_request(in_flight, &in_flight_body).await;
    assert_eq!(status, 202, "{in_flight_answer}");

    let exit = ingest
        .process
        .wait_exit(delay + timeout + Duration::from_secs(5))
        .await;
    let exited_after = signalled.elapsed();
    let exit = exit.expect("ingest did not exit within the shutdown delay and timeout");
    assert!(exit.success(), "ingest exited with {exit}");
    watcher.await.unwrap();
    assert!(went_unready.load(Ordering::SeqCst));

    let mut accepted = HashSet::from([event_id(&in_flight_answer)]);
    let mut refused = 0;
    let posts = next.load(Ordering::SeqCst).min(MAX_POSTS);
    for worker in workers {
        for (status, answer) in worker.await.unwrap() {
            match status {
                202 => {
                    assert_eq!(answer.get("duplicate"), None, "{answer}");
                    accepted.insert(event_id(&answer));
                }
                200..=299 => panic!("a 2xx other than 202: {status} {answer}"),
                _ => refused += 1,
            }
        }
    }
    let stored = stored_event_ids(&nats.url()).await;
    let lost: Vec<_> = accepted.difference(&stored).collect();
    assert!(lost.is_empty(), "accepted but not stored: {lost:?}");
    eprintln!(
        "SIGTERM under load: {posts} posts, {} accepted (all stored), {refused} not answered 202 (refused or cut), {} stored, exit {exit} after {exited_after:?}",
        accepted.len(),
        stored.len(),
    );
}
