//! Sluice on a 3-node JetStream cluster, as production runs it, with the events stream and
//! every bucket replicated three times: the promises of the single-server fault tests hold
//! through the loss of a node.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sluice_tests::NatsCluster;
use sluice_tests::procs::{Dispatcher, Ingest, SinkTarget, eventually};

use crate::support::{ConfigDir, github_listener, param, post_push, push_body};

/// The events stream's leader, as its cluster info names it (`n1`…), once it has one.
async fn events_leader(urls: &str) -> Option<String> {
    let servers: Vec<&str> = urls.split(',').collect();
    let client = async_nats::connect(servers.as_slice()).await.ok()?;
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("SLUICE_EVENTS").await.ok()?;
    let info = stream.info().await.ok()?;
    info.cluster.as_ref()?.leader.clone()
}

/// What strikes the cluster while webhooks flow.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The events stream's leader `kill -9`ed at 3 s, started again at 8 s.
    Killed,
    /// The events stream's leader `SIGSTOP`ped at 3 s for 15 s: connections stay open and
    /// nothing answers. Ingest is given this node's URL only, so it must notice and leave for
    /// another node by itself.
    Stalled,
    /// From 3 s, each node in turn stopped cleanly and started again, the next one once the
    /// last answers again: a rolling upgrade.
    RollingRestart,
    /// The node the dispatcher was given (its only URL; it learns the others from the
    /// cluster) `kill -9`ed at 3 s, started again at 8 s.
    DispatchersNodeKilled,
}

/// The longest stretch of consecutive refusals, from the first to the last of them.
fn longest_refusal(answers: &[(Duration, String, u16)]) -> Duration {
    let mut longest = Duration::ZERO;
    let mut first_refused: Option<Duration> = None;
    for (at, _, status) in answers {
        if *status == 202 {
            first_refused = None;
        } else {
            let first = *first_refused.get_or_insert(*at);
            longest = longest.max(*at - first);
        }
    }
    longest
}

/// A 3-node cluster with the stream and buckets at three replicas, a dispatcher, webhooks
/// every 20 ms through ingest while `fault` strikes. Checks that every 202 became exactly
/// one run and that refusals were 503s only; returns the longest stretch of 503s.
async fn webhooks_through(fault: Fault) -> Duration {
    let cluster = NatsCluster::start(3).await;
    let urls = cluster.urls();
    let config = ConfigDir::new().file("github.yaml", &github_listener("team-a", "builder"));
    let api = sluice_tests::ApiDouble::start().await;
    api.grant(
        "system:serviceaccount:team-a:builder",
        &["create"],
        "tekton.dev",
        "pipelineruns",
        "team-a",
    );
    let kube_dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.write_kubeconfig(kube_dir.path());
    let replicated = ["--stream-replicas", "3"];
    let dispatchers_node = cluster.node("n2");
    let dispatcher_urls = match fault {
        Fault::DispatchersNodeKilled => dispatchers_node.url(),
        _ => urls.clone(),
    };
    let _dispatcher = Dispatcher::start(
        &dispatcher_urls,
        config.path(),
        SinkTarget::Kube(&kubeconfig),
        &replicated,
    )
    .await;
    let leader = events_leader(&urls).await.expect("the stream has a leader");
    let victim = match fault {
        Fault::DispatchersNodeKilled => dispatchers_node,
        _ => cluster.node(&leader),
    };
    let ingest_urls = match fault {
        Fault::Stalled => victim.url(),
        _ => urls.clone(),
    };
    let ingest = Ingest::start(&ingest_urls, config.path(), &replicated).await;
    ingest.wait_ready().await;

    let run = match fault {
        Fault::Killed | Fault::DispatchersNodeKilled => 16,
        Fault::Stalled => 22,
        Fault::RollingRestart => 30,
    };
    let strike = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        match fault {
            Fault::Killed | Fault::DispatchersNodeKilled => {
                victim.kill();
                tokio::time::sleep(Duration::from_secs(5)).await;
                victim.restart().await;
            }
            Fault::Stalled => {
                victim.pause();
                tokio::time::sleep(Duration::from_secs(15)).await;
                victim.resume();
            }
            Fault::RollingRestart => {
                for node in &cluster.nodes {
                    node.stop().await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    node.restart().await;
                    // Time to catch up with its peers before the next one goes.
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
            }
        }
    };
    let client = reqwest::Client::new();
    let url = ingest.hook_url("team-a", "github");
    let send = async {
        let started = Instant::now();
        let mut answers: Vec<(Duration, String, u16)> = Vec::new();
        let mut sent = 0;
        while started.elapsed() < Duration::from_secs(run) {
            sent += 1;
            let revision = format!("cluster-{sent}");
            let (status, _) = post_push(&client, &url, &push_body(&revision)).await;
            answers.push((started.elapsed(), revision, status));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answers
    };
    let ((), answers) = tokio::join!(strike, send);

    let accepted: Vec<&str> = answers
        .iter()
        .filter(|(_, _, status)| *status == 202)
        .map(|(_, revision, _)| revision.as_str())
        .collect();
    let refused: Vec<&(Duration, String, u16)> = answers
        .iter()
        .filter(|(_, _, status)| *status != 202)
        .collect();
    assert!(
        refused.iter().all(|(_, _, status)| *status == 503),
        "only 503 while the leader is elected: {refused:?}"
    );
    let unavailable = longest_refusal(&answers);
    println!(
        "{fault:?}: {} webhooks, {} accepted, {} answered 503, the longest stretch {unavailable:?}; leader {leader}",
        answers.len(),
        accepted.len(),
        refused.len()
    );

    // Every 202 became exactly one run.
    let runs_by_revision = || {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for run in api.objects("tekton.dev", "pipelineruns", "team-a") {
            if let Some(revision) = param(&run, "revision") {
                *counts.entry(revision.to_owned()).or_default() += 1;
            }
        }
        counts
    };
    let all_ran = eventually(Duration::from_secs(60), || async {
        let counts = runs_by_revision();
        accepted
            .iter()
            .all(|revision| counts.contains_key(*revision))
    })
    .await;
    let counts = runs_by_revision();
    let missing: Vec<&&str> = accepted
        .iter()
        .filter(|revision| !counts.contains_key(**revision))
        .collect();
    assert!(all_ran, "accepted but never run: {missing:?}");
    let doubled: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "run more than once: {doubled:?}");
    unavailable
}

#[tokio::test(flavor = "multi_thread")]
async fn the_events_streams_leader_killed_while_webhooks_flow_loses_and_doubles_nothing() {
    let unavailable = webhooks_through(Fault::Killed).await;
    // An election takes a few seconds; the 503s must end with it, well before the run does.
    assert!(
        unavailable <= Duration::from_secs(10),
        "503s lasted {unavailable:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_of_every_node_loses_and_doubles_nothing() {
    let unavailable = webhooks_through(Fault::RollingRestart).await;
    // Each node in turn: at most one election at a time, each over well within 10 s.
    assert!(
        unavailable <= Duration::from_secs(10),
        "503s lasted {unavailable:?} at a stretch"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dispatchers_node_killed_loses_and_doubles_nothing() {
    let unavailable = webhooks_through(Fault::DispatchersNodeKilled).await;
    assert!(
        unavailable <= Duration::from_secs(10),
        "503s lasted {unavailable:?} at a stretch"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_node_costs_ingest_no_more_than_an_election() {
    let unavailable = webhooks_through(Fault::Stalled).await;
    // The node stalls for 15 s: ingest, which knew only it, must have left it well before
    // (it stayed with it, answering 503, for the whole 15 s before pinging it every second).
    assert!(
        unavailable <= Duration::from_secs(12),
        "503s lasted {unavailable:?} of a 15 s stall"
    );
}

/// Every stream and bucket Sluice keeps, with its number of replicas.
async fn replicas_of_every_stream(urls: &str) -> Vec<(String, usize)> {
    use futures_util::TryStreamExt;

    let servers: Vec<&str> = urls.split(',').collect();
    let client = async_nats::connect(servers.as_slice())
        .await
        .expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut found: Vec<(String, usize)> = js
        .streams()
        .try_collect::<Vec<_>>()
        .await
        .expect("list streams")
        .into_iter()
        .map(|info| (info.config.name.clone(), info.config.num_replicas))
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn every_stream_and_bucket_follows_stream_replicas_when_it_changes() {
    let cluster = NatsCluster::start(3).await;
    let urls = cluster.urls();
    let config = ConfigDir::new().file("github.yaml", &github_listener("team-a", "builder"));
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = dir.path().join("out");
    // First with one copy of each, as a trial installation makes them.
    let mut single = Dispatcher::start(
        &urls,
        config.path(),
        SinkTarget::Dir(&sink),
        &["--stream-replicas", "1"],
    )
    .await;
    single.wait_ready().await;
    let expected = [
        "KV_SLUICE_LEDGER",
        "KV_SLUICE_RATES",
        "KV_SLUICE_STATUS",
        "SLUICE_DLQ",
        "SLUICE_EVENTS",
        "SLUICE_REFUSED",
    ];
    let all_made = eventually(Duration::from_secs(20), || async {
        let names: Vec<String> = replicas_of_every_stream(&urls)
            .await
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        expected.iter().all(|name| names.iter().any(|n| n == name))
    })
    .await;
    let before = replicas_of_every_stream(&urls).await;
    assert!(all_made, "{before:?}");
    assert!(
        before.iter().all(|(_, replicas)| *replicas <= 1),
        "{before:?}"
    );
    single.process.kill9();

    // Then three, as production runs: a restarted dispatcher brings every one to three.
    let replicated = Dispatcher::start(
        &urls,
        config.path(),
        SinkTarget::Dir(&sink),
        &["--stream-replicas", "3"],
    )
    .await;
    replicated.wait_ready().await;
    let followed = eventually(Duration::from_secs(30), || async {
        let now = replicas_of_every_stream(&urls).await;
        expected
            .iter()
            .all(|name| now.iter().any(|(n, replicas)| n == name && *replicas == 3))
    })
    .await;
    let after = replicas_of_every_stream(&urls).await;
    assert!(followed, "{after:?}\n{}", replicated.process.logs());
}
