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

/// What happens to the events stream's leader while webhooks flow.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `kill -9` at 3 s, started again at 8 s.
    Killed,
    /// `SIGSTOP` at 3 s for 15 s: connections stay open and nothing answers. Ingest is given
    /// this node's URL only, so it must notice and leave for another node by itself.
    Stalled,
}

/// A 3-node cluster with the stream and buckets at three replicas, a dispatcher given every
/// node, webhooks every 20 ms through ingest while `fault` strikes the events stream's
/// leader. Checks that every 202 became exactly one run and that refusals were 503s only;
/// returns how long the 503s lasted.
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
    let _dispatcher = Dispatcher::start(
        &urls,
        config.path(),
        SinkTarget::Kube(&kubeconfig),
        &replicated,
    )
    .await;
    let leader = events_leader(&urls).await.expect("the stream has a leader");
    let victim = cluster.node(&leader);
    let ingest_urls = match fault {
        Fault::Killed => urls.clone(),
        Fault::Stalled => victim.url(),
    };
    let ingest = Ingest::start(&ingest_urls, config.path(), &replicated).await;
    ingest.wait_ready().await;

    let (strike, heal, run) = match fault {
        Fault::Killed => (3, 8, 16),
        Fault::Stalled => (3, 18, 22),
    };
    let client = reqwest::Client::new();
    let url = ingest.hook_url("team-a", "github");
    let started = Instant::now();
    let mut answers: Vec<(Duration, String, u16)> = Vec::new();
    let (mut struck, mut healed) = (false, false);
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(run) {
        if !struck && started.elapsed() >= Duration::from_secs(strike) {
            match fault {
                Fault::Killed => victim.kill(),
                Fault::Stalled => victim.pause(),
            }
            struck = true;
        }
        if !healed && started.elapsed() >= Duration::from_secs(heal) {
            match fault {
                Fault::Killed => victim.restart().await,
                Fault::Stalled => victim.resume(),
            }
            healed = true;
        }
        sent += 1;
        let revision = format!("cluster-{sent}");
        let (status, _) = post_push(&client, &url, &push_body(&revision)).await;
        answers.push((started.elapsed(), revision, status));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

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
    let unavailable = match (refused.first(), refused.last()) {
        (Some(first), Some(last)) => last.0 - first.0,
        _ => Duration::ZERO,
    };
    println!(
        "{fault:?}: {} webhooks, {} accepted, {} answered 503 over {unavailable:?}; leader {leader}",
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
async fn a_stalled_node_costs_ingest_no_more_than_an_election() {
    let unavailable = webhooks_through(Fault::Stalled).await;
    // The node stalls for 15 s: ingest, which knew only it, must have left it well before
    // (it stayed with it, answering 503, for the whole 15 s before pinging it every second).
    assert!(
        unavailable <= Duration::from_secs(12),
        "503s lasted {unavailable:?} of a 15 s stall"
    );
}
