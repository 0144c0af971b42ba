//! The event status API on the dispatcher's operations port: with the Kubernetes API as the
//! sink, a tenant's token reads its own namespace's events (TokenReview, then
//! SubjectAccessReview of `get eventlisteners`) and nothing else; with a directory sink the
//! API is open.

use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::NatsServer;
use sluice_tests::api_double::Verb;
use sluice_tests::procs::{Dispatcher, Ingest, SinkTarget, eventually, github_signature};

use crate::cluster::{ClusterStack, apply};
use crate::support::{ConfigDir, SECRET, github_listener, post, push_body};

const TEAM_A_SA: &str = "system:serviceaccount:team-a:builder";
const TEAM_B_SA: &str = "system:serviceaccount:team-b:builder";
const LISTENERS: &str = "triggers.tekton.dev";

/// A signed push to `namespace`'s `github` listener carrying `delivery`; its event id.
async fn push(
    client: &reqwest::Client,
    ingest: &Ingest,
    namespace: &str,
    delivery: &str,
) -> String {
    let body = push_body(&format!("{:040x}", delivery.len()));
    let (status, answer) = post(
        client,
        &ingest.hook_url(namespace, "github"),
        &body,
        &[
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", &github_signature(SECRET, &body)),
        ],
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    answer["eventID"].as_str().expect("eventID").to_owned()
}

/// `GET {base}{path}` with `token` as bearer, if any: the status, `WWW-Authenticate`, and
/// the body as JSON (or as text when it is not JSON).
async fn get(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut request = client
        .get(format!("{base}{path}"))
        .timeout(Duration::from_secs(15));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the operations port answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, challenge, body)
}

/// `GET` of `path` as [`get`] until `done` holds of its status and body, for at most
/// `limit`; whether it did, and the last status and body.
async fn get_until(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    limit: Duration,
    done: impl Fn(u16, &Value) -> bool,
) -> (bool, u16, Value) {
    let deadline = Instant::now() + limit;
    loop {
        let (status, _, body) = get(client, base, path, token).await;
        if done(status, &body) {
            return (true, status, body);
        }
        if Instant::now() >= deadline {
            return (false, status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The event at `path` once its single trigger has a state other than `pending`.
async fn settled_trigger(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
) -> Value {
    let (settled, status, body) = get_until(
        client,
        base,
        path,
        token,
        Duration::from_secs(20),
        |status, body| status == 200 && body["triggers"][0]["state"] != "pending",
    )
    .await;
    assert!(settled, "the trigger never left pending: {status} {body}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_token_reads_its_own_events_and_is_refused_another_namespace() {
    let stack = ClusterStack::start(|api| {
        apply(api, &github_listener("team-a", "builder"));
        apply(api, &github_listener("team-b", "builder"));
        api.grant(
            TEAM_A_SA,
            &["create"],
            "tekton.dev",
            "pipelineruns",
            "team-a",
        );
        api.grant(
            TEAM_B_SA,
            &["create"],
            "tekton.dev",
            "pipelineruns",
            "team-b",
        );
        // What the chart grants the dispatcher to check the API's bearer tokens.
        api.grant_reviews(api.controller_user());
        // team-a's developers through their group, team-b's reader by name.
        api.grant_group(
            "team-a-devs",
            &["get"],
            LISTENERS,
            "eventlisteners",
            "team-a",
        );
        api.grant("bob", &["get"], LISTENERS, "eventlisteners", "team-b");
    })
    .await;
    let alice = stack.api.add_token("alice", &["team-a-devs"]);
    let bob = stack.api.add_token("bob", &[]);
    let client = reqwest::Client::new();
    let base = stack.dispatcher.metrics_url.clone();

    let event_a = push(&client, &stack.ingest, "team-a", "delivery-a-1").await;
    let event_b = push(&client, &stack.ingest, "team-b", "delivery-b-1").await;
    let created = eventually(Duration::from_secs(20), || async {
        stack.runs("team-a").len() == 1 && stack.runs("team-b").len() == 1
    })
    .await;
    assert!(created, "{}", stack.dispatcher.process.logs());
    let run_a = stack.runs("team-a")[0]["metadata"]["name"]
        .as_str()
        .expect("run name")
        .to_owned();

    // team-a's event by id: the trigger created the run the API holds.
    let path_a = format!("/v1/namespaces/team-a/events/{event_a}");
    let event = settled_trigger(&client, &base, &path_a, Some(&alice)).await;
    assert_eq!(event["eventID"], event_a.as_str());
    assert_eq!(event["namespace"], "team-a");
    assert_eq!(event["eventListener"], "github");
    assert_eq!(event["deliveryID"], "delivery-a-1");
    let trigger = &event["triggers"][0];
    assert_eq!(trigger["name"], "on-push", "{event}");
    assert_eq!(trigger["state"], "created", "{event}");
    assert_eq!(trigger["objects"][0]["kind"], "PipelineRun", "{event}");
    assert_eq!(trigger["objects"][0]["name"], run_a.as_str(), "{event}");
    // An id typed in upper case is the same event.
    let upper = format!("/v1/namespaces/team-a/events/{}", event_a.to_uppercase());
    let (status, _, _) = get(&client, &base, &upper, Some(&alice)).await;
    assert_eq!(status, 200);

    // By GitHub's delivery id.
    let (status, _, found) = get(
        &client,
        &base,
        "/v1/namespaces/team-a/eventlisteners/github/deliveries/delivery-a-1",
        Some(&alice),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let items = found["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{found}");
    assert_eq!(items[0]["eventID"], event_a.as_str());

    // The namespace's listing shows its event, and only its own.
    let (status, _, listing) = get(
        &client,
        &base,
        "/v1/namespaces/team-a/events?listener=github&state=created&since=1h&limit=10",
        Some(&alice),
    )
    .await;
    assert_eq!(status, 200, "{listing}");
    let ids: Vec<&str> = listing["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["eventID"].as_str())
        .collect();
    assert_eq!(ids, [event_a.as_str()], "{listing}");
    assert_eq!(listing["truncated"], false);

    // A page of reads costs the API server no review while the decision is kept.
    stack.api.clear_requests();
    for _ in 0..20 {
        let (status, _, _) = get(&client, &base, &path_a, Some(&alice)).await;
        assert_eq!(status, 200);
    }
    let reviews = stack.api.requests_for(Verb::Create, "tokenreviews").len();
    assert!(reviews <= 1, "{reviews} TokenReviews for 20 reads");

    // team-b's event and listing are not team-a's to read, whatever it knows of them.
    for path in [
        format!("/v1/namespaces/team-b/events/{event_b}"),
        "/v1/namespaces/team-b/events".to_owned(),
        "/v1/namespaces/team-b/eventlisteners/github/deliveries/delivery-b-1".to_owned(),
        "/v1/namespaces/team-b/refused".to_owned(),
    ] {
        let (status, _, body) = get(&client, &base, &path, Some(&alice)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["code"], "forbidden", "{path}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("team-b"), "{message}");
        assert!(
            !message.contains(alice.as_str()),
            "the token is never echoed"
        );
    }
    // Nor is team-a's event found through team-b's namespace by team-b's reader.
    let (status, _, body) = get(
        &client,
        &base,
        &format!("/v1/namespaces/team-b/events/{event_a}"),
        Some(&bob),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let event = settled_trigger(
        &client,
        &base,
        &format!("/v1/namespaces/team-b/events/{event_b}"),
        Some(&bob),
    )
    .await;
    assert_eq!(event["triggers"][0]["state"], "created", "{event}");

    // No token, a token of another scheme, a token the API server does not know: 401.
    for token in [None, Some("not-a-token-anyone-issued")] {
        let (status, challenge, body) = get(&client, &base, &path_a, token).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(challenge.as_deref(), Some("Bearer"));
        assert!(
            ["token_required", "token_invalid"].contains(&body["code"].as_str().unwrap_or("")),
            "{body}"
        );
    }
    let basic = client
        .get(format!("{base}{path_a}"))
        .basic_auth("alice", Some("password"))
        .send()
        .await
        .expect("answer");
    assert_eq!(basic.status(), 401);

    // An event no one sent.
    let (status, _, body) = get(
        &client,
        &base,
        "/v1/namespaces/team-a/events/00000000-0000-4000-8000-000000000000",
        Some(&alice),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, _, body) = get(
        &client,
        &base,
        "/v1/namespaces/team-a/eventlisteners/github/deliveries/never-sent",
        Some(&alice),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // Hostile names and values: refused as the caller's mistake, never a server error.
    let long = "d".repeat(5000);
    for path in [
        "/v1/namespaces/team-a/events/..%2F..%2F..%2Fteam-b",
        "/v1/namespaces/team-a/events/%2A",
        "/v1/namespaces/team-a/events/x.%3E",
        "/v1/namespaces/Team-A%00/events",
        "/v1/namespaces/..%2Fteam-b/events",
        "/v1/namespaces/team-a/eventlisteners/..%2Fteam-b/deliveries/delivery-b-1",
        "/v1/namespaces/team-a/eventlisteners/github/deliveries/%0A",
        &format!("/v1/namespaces/team-a/eventlisteners/github/deliveries/{long}"),
        "/v1/namespaces/team-a/events?state=%2A",
        "/v1/namespaces/team-a/events?since=forever",
        "/v1/namespaces/team-a/events?limit=99999999999999999999999",
        "/v1/namespaces/team-a/events?listener=a.%3E",
        "/v1/namespaces/team-a/refused?limit=-1",
    ] {
        let (status, _, body) = get(&client, &base, path, Some(&alice)).await;
        assert!((400..500).contains(&status), "{path}: {status} {body}");
    }
    let (status, _, body) = get(
        &client,
        &base,
        "/v1/namespaces/team-a/events?state=exploded",
        Some(&alice),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("state:"),
        "the message names the parameter: {body}"
    );

    // A delivery ingest refused (a bad signature) is listed with its status.
    let body = push_body("bad");
    let (status, _) = post(
        &client,
        &stack.ingest.hook_url("team-a", "github"),
        &body,
        &[
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "delivery-a-forged"),
            ("X-Hub-Signature-256", &github_signature("wrong", &body)),
        ],
    )
    .await;
    assert_eq!(status, 401);
    let (listed, _, refused) = get_until(
        &client,
        &base,
        "/v1/namespaces/team-a/refused?listener=github",
        Some(&alice),
        Duration::from_secs(10),
        |status, body| {
            status == 200
                && body["items"].as_array().is_some_and(|items| {
                    items.iter().any(|r| r["deliveryID"] == "delivery-a-forged")
                })
        },
    )
    .await;
    assert!(listed, "{refused}");
    let record = refused["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|r| r["deliveryID"] == "delivery-a-forged")
        })
        .expect("the refused delivery");
    assert_eq!(record["status"], 401, "{record}");

    // Without the right to review tokens the dispatcher cannot tell who asks: 503, not 200.
    let controller = stack.api.controller_user().to_owned();
    stack.api.revoke(
        &controller,
        &["create"],
        "authentication.k8s.io",
        "tokenreviews",
        "*",
    );
    let carol = stack.api.add_token("carol", &["team-a-devs"]);
    let (status, _, body) = get(&client, &base, &path_a, Some(&carol)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "authorisation_unavailable");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_directory_sink_the_api_is_open() {
    let nats = NatsServer::start().await;
    let config = ConfigDir::new()
        .file("github.yaml", &github_listener("team-a", "builder"))
        .file("paused.yaml", &github_listener("team-b", "builder"));
    let sink = tempfile::tempdir().expect("tempdir");
    // team-b is paused: its events wait in its backlog.
    let policy = sink.path().join("tenants.yaml");
    std::fs::write(&policy, "namespaces:\n  team-b: {paused: true}\n").expect("policy");
    let ingest = Ingest::start(&nats.url(), config.path(), &[]).await;
    let dispatcher = Dispatcher::start(
        &nats.url(),
        config.path(),
        SinkTarget::Dir(sink.path()),
        &["--tenants-file", policy.to_str().expect("utf-8 path")],
    )
    .await;
    let client = reqwest::Client::new();

    let event_id = push(&client, &ingest, "team-a", "trial-delivery").await;
    let path = format!("/v1/namespaces/team-a/events/{event_id}");
    let event = settled_trigger(&client, &dispatcher.metrics_url, &path, None).await;
    let trigger = &event["triggers"][0];
    assert_eq!(trigger["state"], "created", "{event}");
    assert_eq!(trigger["objects"][0]["kind"], "PipelineRun", "{event}");

    let (status, _, listing) = get(
        &client,
        &dispatcher.metrics_url,
        "/v1/namespaces/team-a/events",
        None,
    )
    .await;
    assert_eq!(status, 200, "{listing}");
    assert_eq!(listing["items"][0]["eventID"], event_id.as_str());
    // Names are still checked.
    let (status, _, _) = get(
        &client,
        &dispatcher.metrics_url,
        "/v1/namespaces/Not_A_Namespace/events",
        None,
    )
    .await;
    assert_eq!(status, 400);

    // An event waiting in a paused tenant's backlog is told as such.
    let waiting_id = push(&client, &ingest, "team-b", "waiting-delivery").await;
    let (status, _, event) = get(
        &client,
        &dispatcher.metrics_url,
        &format!("/v1/namespaces/team-b/events/{waiting_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{event}");
    let trigger = &event["triggers"][0];
    assert_eq!(trigger["state"], "pending", "{event}");
    assert!(
        trigger["reason"]
            .as_str()
            .is_some_and(|r| r.contains("waiting for a dispatcher")),
        "{event}"
    );
    let (status, _, found) = get(
        &client,
        &dispatcher.metrics_url,
        "/v1/namespaces/team-b/eventlisteners/github/deliveries/waiting-delivery",
        None,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["items"][0]["eventID"], waiting_id.as_str(), "{found}");
}
