//! What `kubectl get el` and `kubectl describe el` show with the configuration read from the
//! Kubernetes API: each EventListener's URL and Ready/Available conditions written by one
//! dispatcher replica at a time, and Events on the listeners that do not serve.

use std::time::Duration;

use serde_json::Value;
use sluice_tests::ApiDouble;
use sluice_tests::procs::eventually;

use crate::cluster::{BROKEN_TEMPLATE, ClusterStack, apply, grant_status_writer};
use crate::support::{github_listener, metric_sum};

const TRIGGERS: &str = "triggers.tekton.dev";

fn listener(api: &ApiDouble, namespace: &str) -> Value {
    api.object(TRIGGERS, "eventlisteners", namespace, "github")
        .expect("the listener exists")
}

fn condition<'v>(listener: &'v Value, kind: &str) -> Option<&'v Value> {
    listener["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_listener_shows_its_url_and_why_it_does_not_serve() {
    let stack = ClusterStack::start_with(
        |api| {
            grant_status_writer(api);
            apply(api, &github_listener("team-a", "builder"));
            apply(api, &github_listener("team-b", "builder"));
            apply(api, BROKEN_TEMPLATE);
        },
        &[
            "--public-url",
            "https://hooks.example.com",
            "--lease-duration",
            "3s",
        ],
    )
    .await;
    let api = &stack.api;

    let written = eventually(Duration::from_secs(10), || async {
        condition(&listener(api, "team-a"), "Ready").is_some()
            && condition(&listener(api, "team-b"), "Ready").is_some()
    })
    .await;
    assert!(written, "{}", stack.dispatcher.process.logs());
    let good = listener(api, "team-a");
    assert_eq!(
        good["status"]["address"]["url"],
        "https://hooks.example.com/hooks/team-a/github"
    );
    for kind in ["Ready", "Available"] {
        let c = condition(&good, kind).expect("condition");
        assert_eq!(c["status"], "True", "{c}");
    }
    assert_eq!(
        good["status"]["observedGeneration"],
        good["metadata"]["generation"]
    );

    let bad = listener(api, "team-b");
    let ready = condition(&bad, "Ready").expect("Ready");
    assert_eq!(ready["status"], "False", "{ready}");
    assert_eq!(ready["reason"], "InvalidTemplate", "{ready}");
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("triggertemplates.triggers.tekton.dev/team-b/build")
            && message.contains("undeclared"),
        "the message names the object and what is wrong: {message}"
    );
    assert_eq!(
        condition(&bad, "Available").expect("Available")["status"],
        "False"
    );

    // An Event on the broken listener and one on the template at fault, once each.
    let reported = eventually(Duration::from_secs(5), || async {
        api.objects("", "events", "team-b").len() >= 2
    })
    .await;
    assert!(reported, "{}", stack.dispatcher.process.logs());
    let events = api.objects("", "events", "team-b");
    assert_eq!(events.len(), 2, "{events:?}");
    let on = |kind: &str| {
        events
            .iter()
            .find(|e| e["involvedObject"]["kind"] == kind)
            .unwrap_or_else(|| panic!("no Event on the {kind}: {events:?}"))
    };
    let el = on("EventListener");
    assert_eq!(el["reason"], "InvalidTemplate");
    assert_eq!(el["type"], "Warning");
    assert_eq!(el["involvedObject"]["name"], "github");
    assert_eq!(el["involvedObject"]["uid"], bad["metadata"]["uid"]);
    let template = on("TriggerTemplate");
    assert_eq!(template["reason"], "InvalidTemplate");
    assert_eq!(template["involvedObject"]["name"], "build");
    assert!(
        template["message"]
            .as_str()
            .unwrap_or_default()
            .contains("undeclared"),
        "{template}"
    );
    assert!(api.objects("", "events", "team-a").is_empty());

    // Written only when it changes: nothing more while nothing changes.
    let version = |ns: &str| listener(api, ns)["metadata"]["resourceVersion"].clone();
    let before = (version("team-a"), version("team-b"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!((version("team-a"), version("team-b")), before);
    assert_eq!(
        api.objects("", "events", "team-b").len(),
        2,
        "no repeated Event"
    );

    // Mended: Ready again.
    apply(api, &github_listener("team-b", "builder"));
    let mended = eventually(Duration::from_secs(5), || async {
        condition(&listener(api, "team-b"), "Ready").is_some_and(|c| c["status"] == "True")
    })
    .await;
    assert!(mended, "{}", stack.dispatcher.process.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn one_replica_writes_status_and_another_takes_over_when_it_dies() {
    let flags = ["--lease-duration", "2s"];
    let mut stack = ClusterStack::start_with(
        |api| {
            grant_status_writer(api);
            apply(api, &github_listener("team-a", "builder"));
        },
        &flags,
    )
    .await;
    let mut second = stack.another_dispatcher(&flags);
    second.wait_ready().await;

    let writers = || async {
        let first = metric_sum(&stack.dispatcher.metrics_url, "sluice_status_writer ", &[]).await;
        let other = metric_sum(&second.metrics_url, "sluice_status_writer ", &[]).await;
        (first, other)
    };
    let one = eventually(Duration::from_secs(10), || async {
        let (a, b) = writers().await;
        a + b == 1
    })
    .await;
    assert!(one, "exactly one writer: {:?}", writers().await);
    // It stays one over several renewals.
    for _ in 0..10 {
        let (a, b) = writers().await;
        assert_eq!(a + b, 1, "two writers at once");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let lease = stack
        .api
        .object("coordination.k8s.io", "leases", "default", "sluice-status")
        .expect("the Lease exists");
    let holder = lease["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // The writer killed: the other takes over within the Lease's duration (plus a renewal
    // period for it to notice), then writes what changes.
    let (first_writes, _) = writers().await;
    let survivor = if first_writes == 1 {
        stack.dispatcher.process.kill9();
        &second
    } else {
        second.process.kill9();
        &stack.dispatcher
    };
    let started = std::time::Instant::now();
    let took_over = eventually(Duration::from_secs(10), || async {
        metric_sum(&survivor.metrics_url, "sluice_status_writer ", &[]).await == 1
    })
    .await;
    let took = started.elapsed();
    println!("the other replica took the Lease over {took:?} after the writer was killed");
    assert!(took_over, "{}", survivor.process.logs());
    assert!(took <= Duration::from_secs(3), "took over after {took:?}");
    let lease = stack
        .api
        .object("coordination.k8s.io", "leases", "default", "sluice-status")
        .expect("the Lease exists");
    assert_ne!(lease["spec"]["holderIdentity"], holder.as_str());
    assert_eq!(lease["spec"]["leaseTransitions"], 1);

    apply(&stack.api, &github_listener("team-b", "builder"));
    let written = eventually(Duration::from_secs(5), || async {
        condition(&listener(&stack.api, "team-b"), "Ready").is_some()
    })
    .await;
    assert!(written, "{}", survivor.process.logs());
    drop(second);
}
