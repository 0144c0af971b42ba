//! Every kind of configuration change in the Kubernetes API while webhooks flow: tenants
//! edit listeners, bindings, templates and Secrets of a running platform, and a sender of
//! another listener must neither notice nor lose a push.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::procs::{Ingest, eventually};

use crate::cluster::{
    BROKEN_TEMPLATE, ClusterStack, apply, delete, document_of, listener_named, status_of,
    time_until,
};
use crate::support::{SECRET, github_listener, param, push_body};

/// How long any change may take to be served.
const SERVED_WITHIN: Duration = Duration::from_secs(2);
/// How long a test waits for a change before it calls it lost.
const GIVE_UP: Duration = Duration::from_secs(10);

/// One push of the flow: its revision, when it was posted and what it was answered.
struct Sent {
    revision: String,
    posted: Instant,
    status: u16,
}

/// Posts team-a pushes to `urls` in turn, one every 20 ms, until `stop`.
async fn flow(client: reqwest::Client, urls: Vec<String>, stop: Arc<AtomicBool>) -> Vec<Sent> {
    let mut sent = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let revision = format!("flow-{}", sent.len());
        let url = &urls[sent.len() % urls.len()];
        let posted = Instant::now();
        let status = status_of(&client, url, &push_body(&revision), SECRET).await;
        sent.push(Sent {
            revision,
            posted,
            status,
        });
    }
    sent
}

/// How long until every replica in `ingests` answers `status` to a push for
/// `namespace/name` signed with `secret`.
async fn until_every_replica_answers(
    client: &reqwest::Client,
    ingests: &[&Ingest],
    (namespace, name): (&str, &str),
    secret: &str,
    status: u16,
) -> Option<Duration> {
    let urls: Vec<String> = ingests
        .iter()
        .map(|i| i.hook_url(namespace, name))
        .collect();
    let body = push_body("probe");
    time_until(GIVE_UP, || async {
        for url in &urls {
            if status_of(client, url, &body, secret).await != status {
                return false;
            }
        }
        true
    })
    .await
}

/// team-a's template with its PipelineRuns' `pipelineRef` naming `pipeline`.
fn template_running(pipeline: &str) -> String {
    document_of(&github_listener("team-a", "builder"), "TriggerTemplate").replace(
        "pipelineRef: {name: build}",
        &format!("pipelineRef: {{name: {pipeline}}}"),
    )
}

/// team-a's binding with the `event` param set to `event`.
fn binding_giving(event: &str) -> String {
    format!(
        "apiVersion: triggers.tekton.dev/v1beta1\nkind: TriggerBinding\nmetadata: {{name: push, namespace: team-a}}\nspec:\n  params:\n    - {{name: revision, value: $(body.head_commit.id)}}\n    - {{name: url, value: $(body.repository.clone_url)}}\n    - {{name: event, value: {event}}}\n"
    )
}

fn pipeline_of(run: &Value) -> Option<&str> {
    run["spec"]["pipelineRef"]["name"].as_str()
}

fn event_of(run: &Value) -> Option<&str> {
    param(run, "event")
}

/// A tenant's `kubectl apply` of a YAML text, or `kubectl delete` of a kind and name.
enum Edit<'a> {
    Apply(&'a str),
    Delete(&'static str, &'static str),
}

/// A change the dispatchers apply: what it set, read back from a run.
struct RunChange {
    kind: &'static str,
    applied: Instant,
    read: fn(&Value) -> Option<&str>,
    value: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_change_applies_within_two_seconds_while_pushes_flow_unharmed() {
    // 6 rounds of 6 listener changes and 2 run changes, then 8 changes of team-b: 56.
    let stack = ClusterStack::start(|api| {
        for team in ["team-a", "team-b"] {
            apply(api, &github_listener(team, "builder"));
            let account = format!("system:serviceaccount:{team}:builder");
            api.grant(&account, &["create"], "tekton.dev", "pipelineruns", team);
        }
    })
    .await;
    let second_ingest = stack.another_ingest().await;
    let ingests = [&stack.ingest, &second_ingest];
    let second_dispatcher = stack.another_dispatcher(&[]);
    second_dispatcher.wait_ready().await;
    let client = reqwest::Client::new();

    let stop = Arc::new(AtomicBool::new(false));
    let urls = ingests
        .iter()
        .map(|i| i.hook_url("team-a", "github"))
        .collect();
    let pushes = tokio::spawn(flow(client.clone(), urls, stop.clone()));

    let mut took: Vec<(String, Duration)> = Vec::new();
    let mut run_changes: Vec<RunChange> = Vec::new();
    for round in 0..6 {
        // Listeners added, then deleted: both ingest replicas answer as the API says.
        for extra in 0..3 {
            let name = format!("extra-{round}-{extra}");
            apply(&stack.api, &listener_named(&name));
            let added =
                until_every_replica_answers(&client, &ingests, ("team-a", &name), SECRET, 202);
            took.push((
                format!("{name} added"),
                added.await.expect("listener served"),
            ));
        }
        for extra in 0..3 {
            let name = format!("extra-{round}-{extra}");
            delete(&stack.api, "EventListener", "team-a", &name);
            let gone =
                until_every_replica_answers(&client, &ingests, ("team-a", &name), SECRET, 404);
            took.push((
                format!("{name} deleted"),
                gone.await.expect("listener gone"),
            ));
        }

        // team-a's own template and binding, changed under its flowing pushes: timed until
        // the first run shows the change.
        let changes = [
            (
                "template",
                template_running(&format!("build-{round}")),
                format!("build-{round}"),
                pipeline_of as fn(&Value) -> Option<&str>,
            ),
            (
                "binding",
                binding_giving(&format!("changed-{round}")),
                format!("changed-{round}"),
                event_of,
            ),
        ];
        for (what, yaml, value, read) in changes {
            let applied = Instant::now();
            apply(&stack.api, &yaml);
            let seen = time_until(GIVE_UP, || async {
                stack
                    .runs("team-a")
                    .iter()
                    .any(|run| read(run) == Some(value.as_str()))
            })
            .await;
            took.push((
                format!("{what} {round}"),
                seen.unwrap_or_else(|| panic!("{what} change {round} never reached a run")),
            ));
            run_changes.push(RunChange {
                kind: what,
                applied,
                read,
                value,
            });
            // Long enough that pushes posted past the deadline show whether every replica
            // applied it.
            tokio::time::sleep_until((applied + SERVED_WITHIN + Duration::from_millis(400)).into())
                .await;
        }
    }

    // team-b breaks its template, deletes its binding, its Secret and at last its listener,
    // repairing each in between, and rotates its Secret: each change timed until both ingest
    // replicas answer as it says.
    let team_b = github_listener("team-b", "builder");
    let rotated = "rotated-webhook-secret";
    let rotated_secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: github, namespace: team-b}}\nstringData: {{token: {rotated}}}\n"
    );
    let steps = [
        ("template broken", Edit::Apply(BROKEN_TEMPLATE), SECRET, 500),
        ("template repaired", Edit::Apply(&team_b), SECRET, 202),
        (
            "binding deleted",
            Edit::Delete("TriggerBinding", "push"),
            SECRET,
            500,
        ),
        ("binding applied", Edit::Apply(&team_b), SECRET, 202),
        (
            "Secret deleted",
            Edit::Delete("Secret", "github"),
            SECRET,
            500,
        ),
        ("Secret applied", Edit::Apply(&team_b), SECRET, 202),
        ("Secret rotated", Edit::Apply(&rotated_secret), rotated, 202),
        (
            "listener deleted",
            Edit::Delete("EventListener", "github"),
            rotated,
            404,
        ),
    ];
    for (what, edit, secret, status) in steps {
        match edit {
            Edit::Apply(yaml) => apply(&stack.api, yaml),
            Edit::Delete(kind, name) => delete(&stack.api, kind, "team-b", name),
        }
        let served =
            until_every_replica_answers(&client, &ingests, ("team-b", "github"), secret, status);
        took.push((
            format!("team-b {what}"),
            served
                .await
                .unwrap_or_else(|| panic!("team-b {what}: never answered {status}")),
        ));
    }

    stop.store(true, Ordering::Relaxed);
    let sent = pushes.await.expect("the flow");

    let mut times: Vec<Duration> = took.iter().map(|(_, t)| *t).collect();
    times.sort();
    let p99 = times[(times.len() * 99).div_ceil(100) - 1];
    println!(
        "{} changes served after: min {:?}, median {:?}, p99 {:?}; {} pushes flowed",
        times.len(),
        times[0],
        times[times.len() / 2],
        p99,
        sent.len()
    );
    assert!(took.len() >= 50, "{} changes", took.len());
    let slow: Vec<_> = took.iter().filter(|(_, t)| *t > SERVED_WITHIN).collect();
    assert!(
        slow.is_empty(),
        "served later than {SERVED_WITHIN:?}: {slow:?}"
    );

    // No push of the untouched listener was refused while everything around it changed.
    let refused: Vec<(&str, u16)> = sent
        .iter()
        .filter(|push| push.status != 202)
        .map(|push| (push.revision.as_str(), push.status))
        .collect();
    assert!(refused.is_empty(), "refused during changes: {refused:?}");

    // Each accepted push became exactly one run.
    let runs_by_revision = || {
        let mut by_revision: HashMap<String, Vec<Value>> = HashMap::new();
        for run in stack.runs("team-a") {
            if let Some(revision) = param(&run, "revision") {
                by_revision
                    .entry(revision.to_owned())
                    .or_default()
                    .push(run);
            }
        }
        by_revision
    };
    let all_ran = eventually(Duration::from_secs(30), || async {
        let runs = runs_by_revision();
        sent.iter().all(|push| runs.contains_key(&push.revision))
    })
    .await;
    let runs = runs_by_revision();
    assert!(all_ran, "runs for {} of {} pushes", runs.len(), sent.len());
    for push in &sent {
        assert_eq!(runs[&push.revision].len(), 1, "runs of {}", push.revision);
    }

    // Every push posted more than 2 s after a change (and before the next of the same
    // kind), whichever dispatcher replica took it, shows the change.
    for (index, change) in run_changes.iter().enumerate() {
        let next = run_changes[index + 1..]
            .iter()
            .find(|later| later.kind == change.kind)
            .map(|later| later.applied);
        let window = sent.iter().filter(|push| {
            push.posted >= change.applied + SERVED_WITHIN
                && next.is_none_or(|next| push.posted < next)
        });
        let mut checked = 0;
        for push in window {
            let run = &runs[&push.revision][0];
            assert_eq!(
                (change.read)(run),
                Some(change.value.as_str()),
                "{} posted {:?} after the change\n{}\n{}",
                push.revision,
                push.posted - change.applied,
                stack.dispatcher.process.logs(),
                second_dispatcher.process.logs(),
            );
            checked += 1;
        }
        assert!(checked > 0, "no push flowed after change {}", change.value);
    }
    drop(second_dispatcher);
}
