//! `sluice dlq` against a real nats-server: dead letters written as the dispatcher writes
//! them, then listed, shown, replayed into the events stream and purged by the real binary.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_runtime::dlq::{DeadLetter, DlqSettings, FailureKind, ensure_dlq_stream};
use sluice_runtime::envelope::{Envelope, EventMeta, SCHEMA_VERSION};
use sluice_runtime::jetstream::{StreamSettings, ensure_events_stream};
use sluice_tests::NatsServer;
use sluice_tests::procs::free_port;
use sluice_triggers::headers::Headers;

use crate::support::{CliRun, push_body, sluice_on};

/// Runs `sluice dlq ARGS` against `nats_url`.
async fn dlq(nats_url: &str, args: &[&str]) -> CliRun {
    let mut all = vec!["dlq"];
    all.extend_from_slice(args);
    sluice_on(nats_url, &all).await
}

/// `sluice dlq list --output json …`, parsed.
async fn list_json(nats_url: &str, filter: &[&str]) -> Vec<Value> {
    let mut args = vec!["list", "--output", "json"];
    args.extend_from_slice(filter);
    let run = dlq(nats_url, &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str::<Vec<Value>>(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

fn ids(rows: &[Value]) -> Vec<u64> {
    rows.iter().map(|row| row["id"].as_u64().unwrap()).collect()
}

fn envelope(
    event_id: &str,
    namespace: &str,
    listener: &str,
    triggers: &[&str],
    body: &[u8],
) -> Envelope {
    let mut headers = Headers::new();
    headers.append("x-github-event", "push");
    headers.append("content-type", "application/json");
    Envelope {
        meta: EventMeta {
            schema: SCHEMA_VERSION,
            event_id: event_id.to_owned(),
            namespace: namespace.to_owned(),
            listener: listener.to_owned(),
            received_at_ms: 1_764_000_000_123,
            idempotency_key: format!("{namespace}/{listener}/delivery-{event_id}"),
            triggers: triggers.iter().map(|t| t.to_string()).collect(),
            traceparent: None,
            request_url: format!("/hooks/{namespace}/{listener}"),
            headers,
        },
        body: Bytes::copy_from_slice(body),
    }
}

/// A nats-server holding four dead letters, stream sequences 1 to 4:
///
/// 1. team-a/github, trigger `lint` of event `ev-a` (accepted for `build` and `lint`),
///    transient, with a two-line reason;
/// 2. team-a/github, the whole event `ev-b` (triggers `build` and `lint`), permanent;
/// 3. team-b/gitlab, trigger `deploy` of event `ev-c`, whose body is not JSON;
/// 4. team-b/gitlab, the whole event, with a payload that is not an envelope.
struct Fixture {
    nats: NatsServer,
    js: jetstream::Context,
    /// The envelopes of dead letters 1, 2 and 3.
    envelopes: Vec<Envelope>,
}

impl Fixture {
    async fn start() -> Fixture {
        let nats = NatsServer::start().await;
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        ensure_dlq_stream(
            &js,
            &DlqSettings {
                max_age: Duration::from_secs(3600),
                replicas: 1,
            },
        )
        .await
        .unwrap();
        let envelopes = vec![
            envelope(
                "ev-a",
                "team-a",
                "github",
                &["build", "lint"],
                &push_body("rev-a"),
            ),
            envelope(
                "ev-b",
                "team-a",
                "github",
                &["build", "lint"],
                &push_body("rev-b"),
            ),
            envelope("ev-c", "team-b", "gitlab", &["deploy"], b"plain text body"),
        ];
        let letters = [
            letter(
                &envelopes[0],
                Some("lint"),
                "create of object 0 failed:\nthe API answered 503",
                FailureKind::Transient,
                5,
            ),
            letter(
                &envelopes[1],
                None,
                "listener team-a/github is gone",
                FailureKind::Permanent,
                1,
            ),
            letter(
                &envelopes[2],
                Some("deploy"),
                "the API answered 403",
                FailureKind::Permanent,
                1,
            ),
            DeadLetter {
                namespace: "team-b".into(),
                listener: "gitlab".into(),
                trigger: None,
                event_id: None,
                reason: "the stored event cannot be decoded".into(),
                kind: FailureKind::Permanent,
                attempts: 1,
                failed_at_ms: 1_764_000_004_000,
                event: Bytes::from_static(b"not an envelope"),
            },
        ];
        let fixture = Fixture {
            nats,
            js,
            envelopes,
        };
        for (index, letter) in letters.iter().enumerate() {
            let sequence = fixture.publish(letter).await;
            assert_eq!(sequence, index as u64 + 1);
        }
        fixture
    }

    fn url(&self) -> String {
        self.nats.url()
    }

    async fn publish(&self, letter: &DeadLetter) -> u64 {
        self.js
            .publish_with_headers(letter.subject(), letter.headers(), letter.event.clone())
            .await
            .unwrap()
            .await
            .unwrap()
            .sequence
    }

    async fn dlq_stream(&self) -> stream::Stream {
        self.js.get_stream("SLUICE_DLQ").await.unwrap()
    }

    async fn dlq_has(&self, id: u64) -> bool {
        self.dlq_stream().await.get_raw_message(id).await.is_ok()
    }
}

fn letter(
    envelope: &Envelope,
    trigger: Option<&str>,
    reason: &str,
    kind: FailureKind,
    attempts: u64,
) -> DeadLetter {
    DeadLetter {
        namespace: envelope.meta.namespace.clone(),
        listener: envelope.meta.listener.clone(),
        trigger: trigger.map(str::to_owned),
        event_id: Some(envelope.meta.event_id.clone()),
        reason: reason.to_owned(),
        kind,
        attempts,
        failed_at_ms: 1_764_000_000_000 + 1000 * envelope.meta.event_id.len() as u64,
        event: envelope.encode(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_shows_every_dead_letter_as_a_table_or_json_and_filters() {
    let fixture = Fixture::start().await;
    let url = fixture.url();

    let run = dlq(&url, &["list"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{run:?}");
    assert_eq!(
        lines[0],
        "ID  FAILED AT             LISTENER       TRIGGER  KIND       ATTEMPTS  EVENT ID  REASON"
    );
    assert_eq!(
        lines[1],
        "1   2025-11-24T16:00:04Z  team-a/github  lint     transient  5         ev-a      \
         create of object 0 failed: the API answered 503"
    );
    assert_eq!(
        lines[2],
        "2   2025-11-24T16:00:04Z  team-a/github  *        permanent  1         ev-b      \
         listener team-a/github is gone"
    );
    assert!(lines[3].starts_with("3   "), "{run:?}");
    assert!(lines[3].contains("team-b/gitlab  deploy"), "{run:?}");
    assert!(
        lines[4].starts_with(
            "4   2025-11-24T16:00:04Z  team-b/gitlab  *        permanent  1         -  "
        ),
        "{run:?}"
    );
    assert_eq!(lines[5], "4 dead letter(s)");

    let rows = list_json(&url, &[]).await;
    assert_eq!(ids(&rows), [1, 2, 3, 4]);
    assert_eq!(
        rows[0],
        json!({
            "id": 1,
            "failedAt": "2025-11-24T16:00:04Z",
            "namespace": "team-a",
            "listener": "github",
            "trigger": "lint",
            "kind": "transient",
            "attempts": 5,
            "eventId": "ev-a",
            "reason": "create of object 0 failed: the API answered 503",
        })
    );
    assert_eq!(rows[1]["trigger"], Value::Null, "a whole event");
    assert_eq!(rows[3]["eventId"], Value::Null);

    assert_eq!(
        ids(&list_json(&url, &["--namespace", "team-b"]).await),
        [3, 4]
    );
    assert_eq!(
        ids(&list_json(&url, &["--listener", "github"]).await),
        [1, 2]
    );
    assert_eq!(
        ids(&list_json(&url, &["--namespace", "team-b", "--listener", "gitlab"]).await),
        [3, 4]
    );
    let run = dlq(
        &url,
        &["list", "--namespace", "team-a", "--listener", "gitlab"],
    )
    .await;
    assert_eq!((run.code, run.stdout.as_str()), (0, "0 dead letter(s)\n"));

    // A message that is not a dead letter is reported, not listed, and does not stop the
    // listing.
    fixture
        .js
        .publish("sluice.dlq.team-c.junk", Bytes::from_static(b"junk"))
        .await
        .unwrap()
        .await
        .unwrap();
    let run = dlq(&url, &["list"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.ends_with("4 dead letter(s)\n"), "{run:?}");
    assert!(
        run.stderr.contains("message 5 of SLUICE_DLQ is skipped") && run.stderr.contains("purge 5"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_dead_letter_stream_means_no_dead_letters() {
    let nats = NatsServer::start().await;
    let run = dlq(&nats.url(), &["list"]).await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "0 dead letter(s)\n"),
        "{run:?}"
    );
    assert_eq!(list_json(&nats.url(), &[]).await, Vec::<Value>::new());
    let run = dlq(&nats.url(), &["show", "1"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no dead letter 1"), "{run:?}");
    let run = dlq(&nats.url(), &["replay", "--all"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("0 dead letter(s) replayed"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn show_decodes_the_event_headers_and_body() {
    let fixture = Fixture::start().await;
    let url = fixture.url();

    let run = dlq(&url, &["show", "1", "--output", "json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let details: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(details["id"], 1);
    assert_eq!(details["subject"], "sluice.dlq.team-a.github");
    assert_eq!(details["trigger"], "lint");
    assert_eq!(details["kind"], "transient");
    assert_eq!(details["attempts"], 5);
    assert_eq!(details["failedAt"], "2025-11-24T16:00:04.000Z");
    let event = &details["event"];
    assert_eq!(event["eventId"], "ev-a");
    assert_eq!(event["receivedAt"], "2025-11-24T16:00:00.123Z");
    assert_eq!(event["triggers"], json!(["build", "lint"]));
    assert_eq!(event["idempotencyKey"], "team-a/github/delivery-ev-a");
    assert_eq!(event["requestUrl"], "/hooks/team-a/github");
    assert_eq!(event["headers"]["X-Github-Event"], json!(["push"]));
    assert_eq!(event["bodyFormat"], "json");
    let body: Value = serde_json::from_slice(&push_body("rev-a")).unwrap();
    assert_eq!(event["body"], body);
    assert!(details.get("eventError").is_none());

    // YAML (the default) shows the body as pretty-printed JSON.
    let run = dlq(&url, &["show", "1"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("trigger: lint\n"), "{run:?}");
    assert!(
        run.stdout.contains("X-Github-Event:\n    - push"),
        "{run:?}"
    );
    assert!(run.stdout.contains("bodyFormat: json"), "{run:?}");
    assert!(
        run.stdout.contains("\"id\": \"rev-a\""),
        "pretty JSON body: {run:?}"
    );

    // A body that is not JSON is shown as text.
    let run = dlq(&url, &["show", "3", "--output", "json"]).await;
    let details: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(details["event"]["bodyFormat"], "text");
    assert_eq!(details["event"]["body"], "plain text body");

    // A payload that is not an event: the dead letter, why, and the bytes as text.
    let run = dlq(&url, &["show", "4", "--output", "json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let details: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(details["trigger"], Value::Null);
    assert_eq!(details["event"], Value::Null);
    assert_eq!(details["eventError"], "the message has no metadata line");
    assert_eq!(details["payload"], "not an envelope");

    for id in ["99", "0"] {
        let run = dlq(&url, &["show", id]).await;
        assert_eq!(run.code, 1, "{run:?}");
        assert_eq!(run.stderr, format!("error: no dead letter {id}\n"));
    }
}

/// The `Nats-Msg-Id` a replay of dead letter `id` must carry.
fn replay_msg_id(id: u64, envelope: &Envelope) -> String {
    let digest = Sha256::digest(envelope.meta.idempotency_key.as_bytes());
    format!("replay-{id}-{}", hex::encode(digest))
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_republishes_the_failed_trigger_then_deletes_the_dead_letter() {
    let fixture = Fixture::start().await;
    let url = fixture.url();
    let events = ensure_events_stream(&fixture.js, &StreamSettings::default())
        .await
        .unwrap();

    let run = dlq(&url, &["replay", "1"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "replayed 1 (team-a/github, trigger lint) as event ev-a\n"
    );
    let stored = events.get_raw_message(1).await.unwrap();
    assert_eq!(stored.subject.as_str(), "sluice.events.team-a.github");
    assert_eq!(
        stored
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned()),
        Some(replay_msg_id(1, &fixture.envelopes[0]))
    );
    let replayed = Envelope::decode(stored.payload).unwrap();
    assert_eq!(replayed.meta.triggers, ["lint"]);
    let original = &fixture.envelopes[0];
    assert_eq!(replayed.meta.event_id, original.meta.event_id);
    assert_eq!(replayed.meta.idempotency_key, original.meta.idempotency_key);
    assert_eq!(replayed.meta.headers, original.meta.headers);
    assert_eq!(replayed.body, original.body, "the body bytes, exactly");
    assert!(!fixture.dlq_has(1).await, "the dead letter is gone");

    let run = dlq(&url, &["replay", "1"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no dead letter 1"), "{run:?}");

    // --all with a filter: 3 is replayed; 4 cannot be, stays, and makes the exit 1.
    let run = dlq(&url, &["replay", "--all", "--namespace", "team-b"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "replayed 3 (team-b/gitlab, trigger deploy) as event ev-c\n\
         1 dead letter(s) replayed, 1 left in place\n"
    );
    assert!(
        run.stderr
            .contains("cannot replay 4 (team-b/gitlab, whole event)")
            && run.stderr.contains("cannot be decoded"),
        "{run:?}"
    );
    let stored = events.get_raw_message(2).await.unwrap();
    assert_eq!(stored.subject.as_str(), "sluice.events.team-b.gitlab");
    let replayed = Envelope::decode(stored.payload).unwrap();
    assert_eq!(replayed.meta.triggers, ["deploy"]);
    assert_eq!(replayed.body, fixture.envelopes[2].body);
    assert!(!fixture.dlq_has(3).await);
    assert!(fixture.dlq_has(4).await, "the undecodable one stays");
    assert!(fixture.dlq_has(2).await, "other listeners are untouched");

    // A whole event runs all its triggers again.
    let run = dlq(&url, &["replay", "2"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "replayed 2 (team-a/github, whole event) as event ev-b\n"
    );
    let stored = events.get_raw_message(3).await.unwrap();
    let replayed = Envelope::decode(stored.payload).unwrap();
    assert_eq!(replayed.meta.triggers, ["build", "lint"]);
    assert_eq!(replayed.meta.event_id, "ev-b");

    let run = dlq(&url, &["replay", "4"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(ids(&list_json(&url, &[]).await), [4]);
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_without_an_events_stream_keeps_the_dead_letter() {
    let fixture = Fixture::start().await;
    let run = dlq(&fixture.url(), &["replay", "1"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("SLUICE_EVENTS"), "{run:?}");
    assert!(fixture.dlq_has(1).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_deletes_by_id_or_by_filter_and_all_needs_yes() {
    let fixture = Fixture::start().await;
    let url = fixture.url();

    let run = dlq(&url, &["purge", "2"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "purged 2 (team-a/github, whole event, event ev-b)\n"
    );
    assert!(!fixture.dlq_has(2).await);
    let run = dlq(&url, &["purge", "2"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no dead letter 2"), "{run:?}");

    let run = dlq(&url, &["purge", "--all"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--yes"), "{run:?}");
    assert_eq!(ids(&list_json(&url, &[]).await), [1, 3, 4]);

    let run = dlq(&url, &["purge", "--all", "--listener", "gitlab"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "purged 3 (team-b/gitlab, trigger deploy, event ev-c)\n\
         purged 4 (team-b/gitlab, whole event)\n\
         2 dead letter(s) purged\n"
    );
    assert_eq!(ids(&list_json(&url, &[]).await), [1]);

    let run = dlq(&url, &["purge", "--all", "--yes"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "purged 1 (team-a/github, trigger lint, event ev-a)\n1 dead letter(s) purged\n"
    );
    let run = dlq(&url, &["list"]).await;
    assert_eq!(run.stdout, "0 dead letter(s)\n");

    // Usage errors are caught by the argument parser.
    assert_eq!(dlq(&url, &["purge"]).await.code, 2);
    assert_eq!(dlq(&url, &["purge", "1", "--all"]).await.code, 2);
    assert_eq!(dlq(&url, &["purge", "--namespace", "x"]).await.code, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_nats_fails_fast_with_a_message_and_no_credentials() {
    let port = free_port();
    let started = Instant::now();
    let run = dlq(
        "nats://ignored:4222",
        &[
            "list",
            "--nats-url",
            &format!("nats://operator:s3cret@127.0.0.1:{port}"),
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        run.stderr.contains(&format!(
            "cannot connect to NATS at nats://***@127.0.0.1:{port}"
        )),
        "{run:?}"
    );
    assert!(!run.stderr.contains("s3cret"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");

    // The environment variable is used too.
    let run = dlq(&format!("nats://127.0.0.1:{port}"), &["show", "1"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("cannot connect to NATS"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_ten_thousand_dead_letters_takes_seconds() {
    let fixture = Fixture::start().await;
    let envelope = &fixture.envelopes[0];
    let letter = letter(envelope, Some("build"), "r", FailureKind::Transient, 5);
    // In batches: the client bounds the acks in flight.
    for _ in 0..20 {
        let mut acks = Vec::new();
        for _ in 0..500 {
            acks.push(
                fixture
                    .js
                    .publish_with_headers(letter.subject(), letter.headers(), letter.event.clone())
                    .await
                    .unwrap(),
            );
        }
        for ack in acks {
            ack.await.unwrap();
        }
    }
    let started = Instant::now();
    let rows = list_json(&fixture.url(), &[]).await;
    assert_eq!(rows.len(), 10_004);
    assert_eq!(rows.last().unwrap()["id"], 10_004);
    let rows = list_json(&fixture.url(), &["--namespace", "team-b"]).await;
    assert_eq!(ids(&rows), [3, 4]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}
