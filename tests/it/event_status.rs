//! "What happened to my webhook?": `sluice events` against a whole stack (real nats-server,
//! ingest, dispatcher, the Kubernetes API double), for each way a push can end: created,
//! filtered by `cel`, refused by the API (403, dead-lettered), retrying on 500s, refused at
//! the edge (401), and duplicates — within the stream's duplicate window and past it.

use std::time::Duration;

use serde_json::Value;
use sluice_tests::api_double::{Failure, FaultRule, Verb};
use sluice_tests::procs::github_signature;

use crate::support::{CliRun, ConfigDir, SECRET, Stack, post, push_body, sluice_on};

/// team-a's listener: `on-push` builds every push; `release-only` lets only pushes to
/// `refs/heads/release` through its `cel` filter.
fn listener(namespace: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: github, namespace: {namespace}}}
stringData: {{token: {SECRET}}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {{name: push, namespace: {namespace}}}
spec:
  params:
    - {{name: revision, value: $(body.head_commit.id)}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {{name: build, namespace: {namespace}}}
spec:
  params:
    - name: revision
  resourcetemplates:
    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata:
        generateName: build-
      spec:
        pipelineRef: {{name: build}}
        params:
          - {{name: revision, value: $(tt.params.revision)}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: github, namespace: {namespace}}}
spec:
  serviceAccountName: builder
  triggers:
    - name: on-push
      interceptors:
        - ref: {{name: github}}
          params:
            - {{name: secretRef, value: {{secretName: github, secretKey: token}}}}
            - {{name: eventTypes, value: [push]}}
      bindings: [{{ref: push}}]
      template: {{ref: build}}
    - name: release-only
      interceptors:
        - ref: {{name: github}}
          params:
            - {{name: secretRef, value: {{secretName: github, secretKey: token}}}}
        - ref: {{name: cel}}
          params:
            - {{name: filter, value: "body.ref == 'refs/heads/release'"}}
      bindings: [{{ref: push}}]
      template: {{ref: build}}
"#
    )
}

/// team-a's service account may create PipelineRuns in team-a; nobody else may create
/// anything.
fn team_a_creates_runs(api: &sluice_tests::ApiDouble) {
    api.grant(
        "system:serviceaccount:team-a:builder",
        &["create"],
        "tekton.dev",
        "pipelineruns",
        "team-a",
    );
}

/// Posts a signed push with `delivery` as its `X-GitHub-Delivery`.
async fn push(url: &str, revision: &str, delivery: &str) -> (u16, Value) {
    let body = push_body(revision);
    let client = reqwest::Client::new();
    post(
        &client,
        url,
        &body,
        &[
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", &github_signature(SECRET, &body)),
        ],
    )
    .await
}

/// Runs `sluice events ARGS` against `nats_url`.
async fn events(nats_url: &str, args: &[&str]) -> CliRun {
    let mut all = vec!["events"];
    all.extend_from_slice(args);
    sluice_on(nats_url, &all).await
}

/// `sluice events ARGS --output json`, which must succeed, parsed.
async fn events_json(nats_url: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let run = events(nats_url, &all).await;
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

/// The ids of the events `sluice events list` shows for team-a/github with a trigger in
/// `state`, oldest first; and the listing.
async fn listed(nats_url: &str, state: &str) -> (Vec<String>, Value) {
    let listing = events_json(
        nats_url,
        &["list", "--listener", "team-a/github", "--state", state],
    )
    .await;
    let ids = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventID"].as_str().unwrap().to_owned())
        .collect();
    (ids, listing)
}

/// `sluice events get ID --output json`, parsed; `Value::Null` when not found.
async fn get(nats_url: &str, event_id: &str) -> Value {
    let run = events(nats_url, &["get", event_id, "--output", "json"]).await;
    match run.code {
        0 => serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}")),
        1 => Value::Null,
        _ => panic!("{run:?}"),
    }
}

fn trigger<'e>(event: &'e Value, name: &str) -> &'e Value {
    event["triggers"]
        .as_array()
        .and_then(|triggers| triggers.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no trigger {name} in {event:#}"))
}

/// Waits until `event_id`'s trigger `name` is in `state`; the event as last read.
async fn until_state(nats_url: &str, event_id: &str, name: &str, state: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        last = get(nats_url, event_id).await;
        if !last.is_null()
            && last["triggers"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["name"] == name && t["state"] == state))
        {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} of {event_id} never became {state}: {last:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_way_a_push_can_end_is_told_by_event_and_by_delivery() {
    let config = ConfigDir::new()
        .file("a.yaml", &listener("team-a"))
        .file("b.yaml", &listener("team-b"));
    // A short duplicate window, so that a delivery can come back past it within the test.
    let window = ["--stream-duplicate-window", "1s"];
    let stack = Stack::start_with(
        config,
        // team-b's service account may create nothing: its creates are refused (403).
        team_a_creates_runs,
        &window,
        &window,
    )
    .await;
    let nats = stack.nats.url();
    let url_a = stack.ingest.hook_url("team-a", "github");

    // Created, and filtered by `cel`.
    let (status, answer) = push(&url_a, "a1", "delivery-created").await;
    assert_eq!(status, 202, "{answer}");
    let created_id = answer["eventID"].as_str().unwrap().to_owned();
    let event = until_state(&nats, &created_id, "on-push", "created").await;
    assert_eq!(event["namespace"], "team-a");
    assert_eq!(event["eventListener"], "github");
    assert_eq!(event["deliveryID"], "delivery-created");
    assert!(event["receivedAt"].as_str().unwrap().ends_with('Z'));
    let runs = stack.api.objects("tekton.dev", "pipelineruns", "team-a");
    assert_eq!(runs.len(), 1);
    let run_name = runs[0]["metadata"]["name"].as_str().unwrap();
    assert_eq!(
        trigger(&event, "on-push")["objects"],
        serde_json::json!([{"kind": "PipelineRun", "name": run_name}])
    );
    let annotations = &runs[0]["metadata"]["annotations"];
    assert_eq!(annotations["sluice.dev/event-id"], created_id.as_str());
    assert_eq!(annotations["sluice.dev/delivery-id"], "delivery-created");
    let event = until_state(&nats, &created_id, "release-only", "filtered").await;
    let filtered = trigger(&event, "release-only");
    assert_eq!(filtered["interceptor"], "cel");
    assert!(
        filtered["reason"]
            .as_str()
            .unwrap()
            .contains("refs/heads/release"),
        "the reason quotes the filter: {filtered}"
    );
    // By delivery id, the same event; the table says it in words.
    let found = events(
        &nats,
        &[
            "find",
            "--listener",
            "team-a/github",
            "--delivery",
            "delivery-created",
        ],
    )
    .await;
    assert_eq!(found.code, 0, "{found:?}");
    assert!(found.stdout.contains(&created_id), "{found:?}");
    let line = |name: &str| {
        found
            .stdout
            .lines()
            .find(|line| line.starts_with(name))
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("no line for {name}: {found:?}"))
    };
    assert_eq!(
        line("on-push"),
        format!("on-push created 1 PipelineRun/{run_name}")
    );
    assert!(line("release-only").starts_with("release-only filtered 1 cel: "));

    // Refused by the API (403): dead-lettered, with the API's answer.
    let (status, answer) = push(
        &stack.ingest.hook_url("team-b", "github"),
        "b1",
        "delivery-forbidden",
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let forbidden_id = answer["eventID"].as_str().unwrap().to_owned();
    let event = until_state(&nats, &forbidden_id, "on-push", "dead_lettered").await;
    let dead = trigger(&event, "on-push");
    assert_eq!(dead["error"]["status"], 403, "{dead}");
    assert_eq!(dead["error"]["kind"], "permanent");
    assert_eq!(dead["attempts"], 1);
    let shown = events(&nats, &["get", &forbidden_id]).await;
    assert!(shown.stdout.contains("dead_lettered"), "{shown:?}");
    assert!(shown.stdout.contains("(HTTP 403)"), "{shown:?}");

    // Retrying on 500s: told while it happens, with the next attempt; then created.
    stack.api.inject(
        FaultRule::fail(Failure::InternalError)
            .on(Verb::Create)
            .resource("pipelineruns")
            .always(),
    );
    let (status, answer) = push(&url_a, "a2", "delivery-retried").await;
    assert_eq!(status, 202, "{answer}");
    let retried_id = answer["eventID"].as_str().unwrap().to_owned();
    let mut event = until_state(&nats, &retried_id, "on-push", "retrying").await;
    for _ in 0..100 {
        if trigger(&event, "on-push")["attempts"].as_u64() >= Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        event = get(&nats, &retried_id).await;
    }
    let retrying = trigger(&event, "on-push");
    assert!(retrying["attempts"].as_u64() >= Some(2), "{retrying}");
    assert_eq!(retrying["error"]["status"], 500, "{retrying}");
    assert_eq!(retrying["error"]["kind"], "transient");
    assert!(retrying["nextAttemptAt"].as_str().is_some(), "{retrying}");
    let (ids, listing) = listed(&nats, "retrying").await;
    assert_eq!(
        ids,
        [retried_id.as_str()],
        "only the retrying event: {listing:#}"
    );
    stack.api.clear_faults();
    let event = until_state(&nats, &retried_id, "on-push", "created").await;
    assert!(trigger(&event, "on-push")["attempts"].as_u64() >= Some(2));

    // Refused at the edge (401): kept per listener.
    let body = push_body("forged");
    let (status, _) = post(
        &reqwest::Client::new(),
        &url_a,
        &body,
        &[
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "delivery-forged"),
            (
                "X-Hub-Signature-256",
                &github_signature("not-the-secret", &body),
            ),
        ],
    )
    .await;
    assert_eq!(status, 401);
    let mut refused = Value::Null;
    for _ in 0..50 {
        refused = events_json(&nats, &["refused", "--listener", "team-a/github"]).await;
        if !refused["items"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let items = refused["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{refused:#}");
    assert_eq!(items[0]["status"], 401);
    assert_eq!(items[0]["deliveryID"], "delivery-forged");
    assert!(!items[0]["message"].as_str().unwrap().contains(SECRET));

    // The same delivery again within the window: not stored again, and `find` says so.
    let (status, answer) = push(&url_a, "a1", "delivery-created").await;
    assert_eq!(status, 202);
    assert_eq!(answer["duplicate"], true, "{answer}");
    assert_eq!(answer["eventID"], created_id.as_str());
    let find_json = || {
        events_json(
            &nats,
            &[
                "find",
                "--listener",
                "team-a/github",
                "--delivery",
                "delivery-created",
            ],
        )
    };
    let mut found = Value::Null;
    for _ in 0..50 {
        found = find_json().await;
        if found["notStored"].as_array().is_some_and(|n| !n.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let not_stored = &found["notStored"][0];
    assert_eq!(not_stored["status"], 202, "{found:#}");
    assert_eq!(not_stored["code"], "duplicate");
    assert!(
        not_stored["message"]
            .as_str()
            .unwrap()
            .contains(&created_id),
        "names the stored event: {not_stored}"
    );
    // Past the window: stored as a new event, whose triggers the ledger finds done.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, answer) = push(&url_a, "a1", "delivery-created").await;
    assert_eq!(status, 202);
    assert_ne!(answer["duplicate"], true, "{answer}");
    let again_id = answer["eventID"].as_str().unwrap().to_owned();
    assert_ne!(again_id, created_id);
    let event = until_state(&nats, &again_id, "on-push", "duplicate").await;
    let duplicate = trigger(&event, "on-push");
    assert_eq!(duplicate["duplicateOf"], created_id.as_str());
    assert_eq!(duplicate["objects"][0]["name"], run_name);
    until_state(&nats, &again_id, "release-only", "duplicate").await;
    let found = find_json().await;
    let ids: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [created_id.as_str(), again_id.as_str()], "{found:#}");
    assert_eq!(
        stack
            .api
            .object_count("tekton.dev", "pipelineruns", "team-a"),
        2,
        "a1 and a2, once each"
    );

    // Redelivered once team-b may create: the dead-lettered trigger runs, the filtered one
    // is not run again, and a second redelivery creates nothing more.
    stack.api.grant(
        "system:serviceaccount:team-b:builder",
        &["create"],
        "tekton.dev",
        "pipelineruns",
        "team-b",
    );
    for _ in 0..2 {
        let run = events(&nats, &["redeliver", &forbidden_id]).await;
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stdout.contains("redelivered event"), "{run:?}");
    }
    let event = until_state(&nats, &forbidden_id, "on-push", "created").await;
    assert_eq!(trigger(&event, "release-only")["state"], "filtered");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stack
            .api
            .object_count("tekton.dev", "pipelineruns", "team-b"),
        1
    );

    // Unknown ids and hostile ones are "not found", never an error or another's event.
    for id in [
        "00000000-0000-0000-0000-000000000000",
        "*",
        ">",
        "a.b",
        "../x",
    ] {
        let run = events(&nats, &["get", id]).await;
        assert_eq!(run.code, 1, "{id}: {run:?}");
        assert!(run.stderr.contains("no event"), "{run:?}");
    }
}

/// An event that no dispatcher has taken yet (its tenant's backlog) has no record; `get`,
/// `find` and `list` still show it, `pending`, with how many of the namespace's events are
/// ahead of it, until a dispatcher runs it.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_waiting_in_the_backlog_is_shown_pending_until_it_runs() {
    let config = ConfigDir::new().file("a.yaml", &listener("team-a"));
    let mut stack = Stack::start(config, team_a_creates_runs, &[]).await;
    let nats = stack.nats.url();
    let url = stack.ingest.hook_url("team-a", "github");
    let (status, answer) = push(&url, "done", "delivery-done").await;
    assert_eq!(status, 202, "{answer}");
    let done_id = answer["eventID"].as_str().unwrap().to_owned();
    until_state(&nats, &done_id, "on-push", "created").await;

    // No dispatcher: what arrives now waits, behind the events before it.
    stack.dispatcher.process.kill9();
    let mut waiting = Vec::new();
    for n in 1..=3 {
        let (status, answer) = push(&url, &format!("w{n}"), &format!("delivery-w{n}")).await;
        assert_eq!(status, 202, "{answer}");
        waiting.push(answer["eventID"].as_str().unwrap().to_owned());
    }
    let third = get(&nats, &waiting[2]).await;
    assert_eq!(third["eventID"], waiting[2].as_str(), "{third:#}");
    assert_eq!(third["deliveryID"], "delivery-w3");
    for name in ["on-push", "release-only"] {
        let trigger = trigger(&third, name);
        assert_eq!(trigger["state"], "pending", "{third:#}");
        let reason = trigger["reason"].as_str().unwrap();
        assert!(
            reason.contains("waiting for a dispatcher") && reason.contains("2 earlier events"),
            "{reason}"
        );
    }
    let table = events(&nats, &["get", &waiting[0]]).await;
    assert_eq!(table.code, 0, "{table:?}");
    assert!(
        table.stdout.contains("pending") && table.stdout.contains("0 earlier events"),
        "{}",
        table.stdout
    );
    let found = events_json(
        &nats,
        &[
            "find",
            "--listener",
            "team-a/github",
            "--delivery",
            "delivery-w2",
        ],
    )
    .await;
    assert_eq!(
        found["items"][0]["eventID"],
        waiting[1].as_str(),
        "{found:#}"
    );
    assert_eq!(found["items"][0]["triggers"][0]["state"], "pending");
    let (ids, listing) = listed(&nats, "pending").await;
    assert_eq!(
        ids, waiting,
        "the waiting events, oldest first: {listing:#}"
    );
    let unknown = get(&nats, "00000000-0000-4000-8000-000000000000").await;
    assert!(unknown.is_null(), "{unknown:#}");

    // A dispatcher takes them: each is recorded as it ran.
    let _replica = stack.replica(&[]).await;
    for event_id in &waiting {
        until_state(&nats, event_id, "on-push", "created").await;
        until_state(&nats, event_id, "release-only", "filtered").await;
    }
    assert_eq!(
        stack
            .api
            .objects("tekton.dev", "pipelineruns", "team-a")
            .len(),
        4
    );
}

/// Refused deliveries are kept per listener, the last 100 of each: a flood of forgeries to
/// one listener keeps its newest 100 and leaves another listener's record alone.
#[tokio::test(flavor = "multi_thread")]
async fn refused_deliveries_are_kept_the_last_hundred_per_listener() {
    let config = ConfigDir::new()
        .file("a.yaml", &listener("team-a"))
        .file("b.yaml", &listener("team-b"));
    let stack = Stack::start(config, team_a_creates_runs, &[]).await;
    let nats = stack.nats.url();
    let client = reqwest::Client::new();
    let body = push_body("forged");
    let forged = github_signature("not-the-secret", &body);
    let refuse = |url: String, delivery: String| {
        let (client, body, forged) = (&client, &body, &forged);
        async move {
            let headers = [
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", delivery.as_str()),
                ("X-Hub-Signature-256", forged.as_str()),
            ];
            let (status, _) = post(client, &url, body, &headers).await;
            assert_eq!(status, 401);
        }
    };
    refuse(stack.ingest.hook_url("team-b", "github"), "b-forged".into()).await;
    for n in 0..130 {
        refuse(stack.ingest.hook_url("team-a", "github"), format!("a-{n}")).await;
    }

    let deliveries = |listing: &Value| -> Vec<String> {
        listing["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["deliveryID"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let mut kept = Vec::new();
    for _ in 0..50 {
        let listing = events_json(
            &nats,
            &["refused", "--listener", "team-a/github", "--limit", "1000"],
        )
        .await;
        kept = deliveries(&listing);
        if kept.last().map(String::as_str) == Some("a-129") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let newest: Vec<String> = (30..130).map(|n| format!("a-{n}")).collect();
    assert_eq!(kept, newest, "the newest 100, oldest first");
    let other = events_json(&nats, &["refused", "--listener", "team-b/github"]).await;
    assert_eq!(deliveries(&other), ["b-forged"]);
}
