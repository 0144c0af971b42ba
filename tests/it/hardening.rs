//! Hostile clients at the edge, over raw sockets so that nothing normalises what is sent:
//! slow headers and bodies are cut off at their timeouts, load beyond the concurrency limit is
//! shed with 503 and the server recovers, hostile paths and headers are refused without
//! harm, and after all of it memory is bounded and no secret reached a log line or a metric.

use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::NatsServer;
use sluice_tests::procs::{Ingest, eventually, github_signature};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{
    ConfigDir, SECRET, github_listener, post, post_push, push_body, stored_events,
};

/// A token value a hostile client sends in credential headers; it must never be logged.
const TOKEN: &str = "it-hostile-token-5f2a9c";

/// Generous ceiling for the ingest process's resident memory after the hostile run.
const RSS_CEILING_KIB: u64 = 100 * 1024;

async fn ingest_with_github_listener(extra: &[&str]) -> (NatsServer, ConfigDir, Ingest) {
    let nats = NatsServer::start().await;
    let config = ConfigDir::new().file("github.yaml", &github_listener("team-a", "builder"));
    let ingest = Ingest::start(&nats.url(), config.path(), extra).await;
    ingest.wait_ready().await;
    (nats, config, ingest)
}

fn addr(ingest: &Ingest) -> String {
    ingest.url.trim_start_matches("http://").to_owned()
}

/// A signed request head for the test listener with `Content-Length: len`.
fn signed_head(path: &str, body: &[u8], len: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: {}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
        github_signature(SECRET, body)
    )
}

/// An answer read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Value,
}

impl Answer {
    fn parse(raw: &[u8]) -> Option<Answer> {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
        Some(Answer {
            status,
            head: head.to_owned(),
            body,
        })
    }
}

/// Sends `request` on a new connection (the server may stop reading early) and reads until
/// the server closes it.
async fn exchange(addr: &str, request: Vec<u8>) -> Option<Answer> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        write // keep the write half open until the answer is read
    });
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut raw)).await;
    drop(writer.await);
    Answer::parse(&raw)
}

/// Writes `head`, then `drip` one byte at a time every `every`, until the server answers or
/// closes. Returns what it answered (if anything) and how long that took from the first byte.
async fn trickle(
    addr: &str,
    head: &[u8],
    drip: &[u8],
    every: Duration,
) -> (Option<Answer>, Duration) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    write.write_all(head).await.unwrap();
    let drip = drip.to_vec();
    let writer = tokio::spawn(async move {
        for byte in drip {
            tokio::time::sleep(every).await;
            if write.write_all(&[byte]).await.is_err() {
                break;
            }
        }
        write
    });
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut raw)).await;
    let took = started.elapsed();
    writer.abort();
    (Answer::parse(&raw), took)
}

/// A signed request for the test listener whose body is sent chunked, with no length.
fn chunked_request(body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /hooks/team-a/github HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: {}\r\n\r\n",
        github_signature(SECRET, body)
    )
    .into_bytes();
    for chunk in body.chunks(64 * 1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

/// A request that holds a concurrency slot: its head, then one byte of a 100-byte body.
async fn hold_a_slot(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = [b'{'; 100];
    stream
        .write_all(signed_head("/hooks/team-a/github", &body, body.len()).as_bytes())
        .await
        .unwrap();
    stream.write_all(b"{").await.unwrap();
    stream
}

/// Whether the server already answered on this connection (without waiting).
fn was_answered(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    !matches!(stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

async fn metrics_text(ingest: &Ingest) -> String {
    reqwest::get(format!("{}/metrics", ingest.metrics_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn rss_kib(ingest: &Ingest) -> u64 {
    let pid = ingest.process.pid().expect("ingest runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

#[tokio::test]
async fn headers_sent_slowly_are_cut_off_at_the_header_read_timeout() {
    let (nats, _config, ingest) =
        ingest_with_github_listener(&["--header-read-timeout", "1s"]).await;
    let addr = addr(&ingest);

    // A header line that never ends, one byte every 100 ms: the clock counts the whole head,
    // so the trickle does not keep the connection alive.
    let (answer, took) = trickle(
        &addr,
        b"POST /hooks/team-a/github HTTP/1.1\r\nHost: sluice\r\nX-Slow: ",
        &[b'a'; 150],
        Duration::from_millis(100),
    )
    .await;
    assert!(
        answer.is_none(),
        "no answer, the connection is closed: {answer:?}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );

    // An idle keep-alive connection is closed by the same clock.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    let (status, _) = post_push(
        &reqwest::Client::new(),
        &ingest.hook_url("team-a", "github"),
        &push_body("after"),
    )
    .await;
    assert_eq!(status, 202, "a prompt client is still served");
    assert_eq!(stored_events(&nats.url()).await, 1);
}

#[tokio::test]
async fn a_body_sent_slowly_is_answered_408_at_the_body_read_timeout() {
    let (nats, _config, ingest) = ingest_with_github_listener(&["--body-read-timeout", "1s"]).await;
    let body = push_body("slow");
    let head = signed_head("/hooks/team-a/github", &body, body.len());

    let (answer, took) = trickle(
        &addr(&ingest),
        head.as_bytes(),
        &body,
        Duration::from_millis(100),
    )
    .await;
    let answer = answer.expect("an answer before the connection closes");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.body["code"], "body_timeout");
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{}",
        answer.head
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "answered after {took:?}"
    );
    assert_eq!(
        stored_events(&nats.url()).await,
        0,
        "a timed-out body is not queued"
    );
    assert!(
        metrics_text(&ingest)
            .await
            .contains(r#"sluice_ingest_limited_requests_total{limit="body_read_timeout"} 1"#)
    );
}

#[tokio::test]
async fn requests_over_the_concurrency_limit_are_shed_with_503_and_the_server_recovers() {
    let (nats, _config, ingest) = ingest_with_github_listener(&[
        "--max-concurrent-requests",
        "2",
        "--body-read-timeout",
        "30s",
    ])
    .await;
    let addr = addr(&ingest);
    let client = reqwest::Client::new();
    let url = ingest.hook_url("team-a", "github");

    let mut holders = vec![hold_a_slot(&addr).await, hold_a_slot(&addr).await];
    let mut accepted = 0;
    let mut attempt = 0;
    // Shed at once, not queued behind the two slow bodies.
    let deadline = Instant::now() + Duration::from_secs(10);
    let shed = loop {
        // A holder whose head arrived after a probe took its slot was shed itself: replace
        // it, so that two slow bodies really hold both slots.
        for holder in &mut holders {
            if was_answered(holder) {
                *holder = hold_a_slot(&addr).await;
            }
        }
        let started = Instant::now();
        // Each attempt is its own webhook: an identical body would be the same delivery.
        attempt += 1;
        let body = push_body(&format!("third-{attempt}"));
        let (status, answer) = post_push(&client, &url, &body).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a shed request does not wait"
        );
        if status == 503 {
            break answer;
        }
        if status == 202 {
            accepted += 1; // it won a slot from a holder not yet in flight
        }
        assert!(
            Instant::now() < deadline,
            "a third request is shed while two hold the slots: {status} {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(shed["code"], "overloaded");
    let response = client
        .post(&url)
        .body(push_body("fourth"))
        .header("X-GitHub-Event", "push")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");

    let health = client
        .get(format!("{}/healthz", ingest.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "probes are not shed");
    assert!(
        metrics_text(&ingest)
            .await
            .contains(r#"sluice_ingest_limited_requests_total{limit="concurrency"}"#)
    );

    // The slow senders go away: their slots come back.
    drop(holders);
    let recovered = eventually(Duration::from_secs(10), || async {
        post_push(&client, &url, &push_body("after")).await.0 == 202
    })
    .await;
    assert!(recovered, "the server accepts again once slots are free");
    assert_eq!(
        stored_events(&nats.url()).await,
        accepted + 1,
        "only accepted pushes are queued"
    );
}

#[tokio::test]
async fn hostile_raw_paths_are_404_before_any_lookup() {
    let (nats, _config, ingest) = ingest_with_github_listener(&[]).await;
    let addr = addr(&ingest);
    let body = push_body("abc");
    let long_name = "a".repeat(254);
    let long_path = format!("/hooks/team-a/{}", "b".repeat(10 * 1024));
    for path in [
        "/hooks/team-a/..%2F..%2Fx",
        "/hooks/%2e%2e/x",
        "/hooks/team-a/%2e%2e",
        "/hooks/team-a/%00",
        "/hooks/team-a/github%00",
        "/hooks/team-a/%ff%fe",
        "/hooks/team-a/github%2F..%2Fgithub",
        "/hooks/team-a/../team-a/github",
        "/hooks/team-a/./github",
        "/hooks//github",
        "/hooks/team-a/github/",
        "/hooks/team-a/git%2Ehub",
        "/hooks/team-a/sluice.events.%3E",
        "/hooks/team-a/%2A",
        &format!("/hooks/team-a/{long_name}"),
        &long_path,
    ] {
        let mut request = signed_head(path, &body, body.len()).into_bytes();
        request.extend_from_slice(&body);
        let answer = exchange(&addr, request)
            .await
            .unwrap_or_else(|| panic!("{path}: no answer"));
        let shown: String = path.chars().take(60).collect();
        assert_eq!(answer.status, 404, "{shown} -> {answer:?}");
        let code = answer.body["code"].as_str().unwrap_or_default();
        assert!(
            code == "unknown_listener" || code == "not_found",
            "{shown} -> {answer:?}"
        );
        let message = answer.body["message"].as_str().unwrap_or_default();
        assert!(message.len() < 200, "error bodies stay small: {message}");
    }
    assert_eq!(stored_events(&nats.url()).await, 0);
}

/// A request for the test listener, signed for `body`, with the event type `event` and the
/// raw header lines `extra` (each ending in `\r\n`).
fn raw_request(body: &[u8], event: &[u8], extra: &[u8]) -> Vec<u8> {
    [
        b"POST /hooks/team-a/github HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n".as_slice(),
        format!(
            "X-Hub-Signature-256: {}\r\nContent-Length: {}\r\nX-GitHub-Event: ",
            github_signature(SECRET, body),
            body.len()
        )
        .as_bytes(),
        event,
        b"\r\n",
        extra,
        b"\r\n",
        body,
    ]
    .concat()
}

#[tokio::test]
async fn oversized_invalid_and_repeated_headers_are_refused_without_harm() {
    let (nats, _config, ingest) = ingest_with_github_listener(&[]).await;
    let addr = addr(&ingest);
    let body = push_body("abc");
    let status = |answer: &Option<Answer>| answer.as_ref().map(|a| a.status);

    // 100 KB of header: refused by the server before the request path.
    let big = format!("X-Big: {}\r\n", "x".repeat(100 * 1024));
    let answer = exchange(&addr, raw_request(&body, b"push", big.as_bytes())).await;
    assert!(matches!(status(&answer), Some(431 | 400)), "{answer:?}");

    // More header lines than the server keeps.
    let many: String = (0..200).map(|i| format!("X-Many-{i}: v\r\n")).collect();
    let answer = exchange(&addr, raw_request(&body, b"push", many.as_bytes())).await;
    assert!(matches!(status(&answer), Some(431 | 400)), "{answer:?}");

    // A control character in a header value.
    let answer = exchange(&addr, raw_request(&body, b"push", b"X-Bad: a\x01b\r\n")).await;
    assert_eq!(status(&answer), Some(400), "{answer:?}");

    // Invalid UTF-8 in ordinary headers of a correctly signed push: served and stored.
    let extra = b"X-GitHub-Delivery: \xff\xfe\xc3\x28\r\nX-Note: caf\xe9\r\n";
    let answer = exchange(&addr, raw_request(&body, b"push", extra)).await;
    assert_eq!(status(&answer), Some(202), "{answer:?}");

    // Invalid UTF-8 as the event type: authentic, but not a push, so filtered.
    let answer = exchange(&addr, raw_request(&body, b"pu\xffsh", b"")).await;
    assert_eq!(status(&answer), Some(202), "{answer:?}");

    // The event type twice: neither is guessed, so filtered and not run.
    let answer = exchange(
        &addr,
        raw_request(&body, b"push", b"X-GitHub-Event: push\r\n"),
    )
    .await;
    assert_eq!(status(&answer), Some(202), "{answer:?}");

    // The signature header twice, one of them right: refused, not guessed.
    let wrong = format!(
        "X-Hub-Signature-256: {}\r\n",
        github_signature("wrong", &body)
    );
    let answer = exchange(&addr, raw_request(&body, b"push", wrong.as_bytes()))
        .await
        .unwrap();
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.body["code"], "signature_invalid");

    assert_eq!(
        stored_events(&nats.url()).await,
        1,
        "only the one clean push is queued"
    );
    let client = reqwest::Client::new();
    let (status, _) = post_push(
        &client,
        &ingest.hook_url("team-a", "github"),
        &push_body("after"),
    )
    .await;
    assert_eq!(status, 202, "the server is unharmed");
}

#[tokio::test]
async fn after_hostile_traffic_memory_is_bounded_and_no_secret_is_logged_or_exported() {
    let (nats, _config, ingest) = ingest_with_github_listener(&[
        "--max-body-bytes",
        "1048576",
        "--body-read-timeout",
        "1s",
        "--header-read-timeout",
        "2s",
    ])
    .await;
    let addr = addr(&ingest);
    let client = reqwest::Client::new();
    let url = ingest.hook_url("team-a", "github");

    // Warm up: one accepted push, so the baseline includes the first-use allocations.
    assert_eq!(post_push(&client, &url, &push_body("warm-up")).await.0, 202);
    let before = rss_kib(&ingest);

    for round in 0..3 {
        // Bad signatures, some carrying the secret and tokens where credentials go.
        for i in 0..30 {
            let body = push_body(&format!("bad-{round}-{i}"));
            let wrong = github_signature("not-the-secret", &body);
            let leaky = format!("sha256={SECRET}");
            let bearer = format!("Bearer {TOKEN}");
            let signature = if i % 2 == 0 {
                wrong.as_str()
            } else {
                leaky.as_str()
            };
            let (status, answer) = post(
                &client,
                &url,
                &body,
                &[
                    ("X-GitHub-Event", "push"),
                    ("X-Hub-Signature-256", signature),
                    ("Authorization", &bearer),
                    ("X-Gitlab-Token", TOKEN),
                    ("Cookie", &format!("session={TOKEN}")),
                ],
            )
            .await;
            assert_eq!(status, 401, "{answer}");
            let text = answer.to_string();
            assert!(!text.contains(SECRET) && !text.contains(TOKEN), "{text}");
        }
        // Huge bodies: declared and chunked.
        let huge = vec![b'x'; 8 * 1024 * 1024];
        for _ in 0..5 {
            let (status, _) = post_push(&client, &url, &huge).await;
            assert!(status == 413 || status == 0, "{status}");
            let answer = exchange(&addr, chunked_request(&huge)).await;
            assert!(matches!(answer.map(|a| a.status), Some(413) | None));
        }
        // Slow bodies, concurrently, each cut off at the body read timeout.
        let slow: Vec<_> = (0..10)
            .map(|i| {
                let addr = addr.clone();
                tokio::spawn(async move {
                    let body = push_body(&format!("slow-{i}"));
                    let head = signed_head("/hooks/team-a/github", &body, body.len());
                    trickle(&addr, head.as_bytes(), &body, Duration::from_millis(200)).await
                })
            })
            .collect();
        for task in slow {
            let (answer, _) = task.await.unwrap();
            assert_eq!(answer.map(|a| a.status), Some(408));
        }
        // Hostile paths and oversized heads.
        for i in 0..50 {
            let path = match i % 5 {
                0 => format!("/hooks/team-a/..%2F..%2F{i}"),
                1 => format!("/hooks/%2e%2e/{SECRET}"),
                2 => format!("/hooks/team-a/{}", "z".repeat(10 * 1024)),
                3 => format!("/hooks/team-a/%ff{TOKEN}"),
                _ => "/hooks/team-a/%00".to_owned(),
            };
            let answer = exchange(&addr, signed_head(&path, b"{}", 2).into_bytes()).await;
            assert!(matches!(answer.map(|a| a.status), Some(404 | 400)));
        }
        let big = format!("X-Big: {}\r\n\r\n", "y".repeat(100 * 1024));
        let _ = exchange(
            &addr,
            format!("POST /hooks/team-a/github HTTP/1.1\r\nHost: s\r\n{big}").into_bytes(),
        )
        .await;
    }

    assert_eq!(
        post_push(&client, &url, &push_body("still-fine")).await.0,
        202
    );
    let after = rss_kib(&ingest);
    assert!(
        after < RSS_CEILING_KIB,
        "RSS {after} KiB after the hostile run (ceiling {RSS_CEILING_KIB} KiB)"
    );
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert_eq!(
        stored_events(&nats.url()).await,
        2,
        "only the two clean pushes are queued"
    );

    let metrics = metrics_text(&ingest).await;
    let logs = ingest.process.logs();
    assert!(!logs.is_empty());
    for (what, text) in [("metrics", &metrics), ("logs", &logs)] {
        for secret in [SECRET, TOKEN] {
            let line = text.lines().find(|line| line.contains(secret));
            assert!(line.is_none(), "the {what} contain a secret: {line:?}");
        }
    }
}
