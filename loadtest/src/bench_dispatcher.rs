//! `dispatcher`: how fast `sluice-dispatcher` turns a backlog of events into PipelineRuns.
//!
//! `--events N` envelopes are published straight to JetStream before the dispatcher starts,
//! exactly as ingest would store them (the shared envelope, subject and message id; the
//! events stream created and reconciled by the shared code with ingest's default settings),
//! spread round-robin over the scenario's listeners. Then the dispatcher starts against the
//! Kubernetes API double, and the report gives runs created per second from the first create
//! to the last (the double's recorded answer times), the drain time from spawn to the last
//! create, start-to-ready, peak memory (`VmHWM`) and CPU per run.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use async_nats::jetstream::message::PublishMessage;
use serde::{Deserialize, Serialize};
use sluice_runtime::clock::now_ms;
use sluice_runtime::envelope::{Envelope, EventMeta, SCHEMA_VERSION};
use sluice_runtime::jetstream::{StreamSettings, ensure_events_stream};
use sluice_runtime::subject::event_subject;
use sluice_tests::api_double::Verb;
use sluice_triggers::headers::Headers;
use sluice_triggers::idempotency::message_id;

use crate::cli::DispatcherArgs;
use crate::config_dir::{self, TRIGGER};
use crate::payload::{Ids, RequestFactory};
use crate::report;
use crate::scenario::{Provider, Scenario};
use crate::stack::{self, Api, Dispatcher, Nats, ProcessFigures};

/// Publishes awaiting their ack at once while the backlog is written.
const PUBLISH_WINDOW: usize = 1024;

/// The whole `dispatcher` report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DispatcherReport {
    pub scenario: Scenario,
    pub events: u64,
    pub body_bytes: usize,
    /// How long publishing the backlog took.
    pub publish_secs: f64,
    /// PipelineRuns stored by the API double.
    pub runs_created: u64,
    /// Answers to the dispatcher's creates, by status.
    pub create_statuses: BTreeMap<String, u64>,
    /// From the first create to the last.
    pub first_to_last_secs: f64,
    /// `(runs - 1) / first_to_last_secs`.
    pub runs_per_second: f64,
    /// From spawn to the last create.
    pub drain_secs: f64,
    /// From spawn to the first create (runs may be created before `/readyz` says ready).
    pub spawn_to_first_create_ms: f64,
    pub dispatcher_process: ProcessFigures,
    pub cpu_us_per_run: f64,
    /// Runs created in each second after the first create.
    pub runs_per_second_timeline: Vec<u64>,
}

pub async fn run(args: DispatcherArgs) -> anyhow::Result<()> {
    if args.events == 0 {
        bail!("--events must be at least 1");
    }
    let scenario = args.scenario.scenario();
    let bin_dir = stack::bin_dir(args.stack.bin_dir.as_deref())?;
    // Fail on a missing binary before spending time on the backlog.
    stack::binary(&bin_dir, "sluice-dispatcher")?;
    let nats = Nats::start(args.stack.nats.as_deref()).await?;
    let api = Api::start().await?;
    let config = tempfile::tempdir()?;
    config_dir::write(&scenario, &args.scenario.secret, config.path(), false)?;

    let js = nats.jetstream().await?;
    ensure_events_stream(&js, &StreamSettings::default())
        .await
        .context("failed to create the events stream")?;
    let started = Instant::now();
    publish_backlog(&js, &scenario, &args).await?;
    let publish_secs = started.elapsed().as_secs_f64();
    println!(
        "published {} events in {publish_secs:.2} s ({:.0}/s)",
        args.events,
        args.events as f64 / publish_secs.max(1e-9)
    );

    let spawned_wall = SystemTime::now();
    let (mut dispatcher, metrics) = Dispatcher::spawn(
        &bin_dir,
        &nats.url(),
        config.path(),
        &api.kubeconfig,
        &args.dispatcher_args,
    )?;
    dispatcher.wait_ready(metrics).await?;
    let ready_wall = SystemTime::now();
    println!(
        "sluice-dispatcher ({}) ready in {:.0} ms, RSS {} KiB",
        scenario.describe(),
        dispatcher.service.figures.start_to_ready_ms,
        dispatcher.service.figures.rss_ready_kib
    );

    // Look once a second, counting under the log's lock: the figures come from the recorded
    // answer times, not from when they were seen.
    let created = || api.double.count_answered(Verb::Create, "pipelineruns", 201) as u64;
    let mut last = (0, Instant::now());
    loop {
        dispatcher.service.check_running()?;
        let now = created();
        eprintln!("dispatcher: {now}/{} runs created", args.events);
        if now >= args.events {
            break;
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > args.drain_timeout {
            eprintln!("no run created for {:?}; giving up", args.drain_timeout);
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    dispatcher.service.measure();

    let creates = api.double.requests_for(Verb::Create, "pipelineruns");
    let mut create_statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut times: Vec<SystemTime> = Vec::new();
    for create in &creates {
        let status = create
            .status
            .map_or("no answer".to_owned(), |s| s.to_string());
        *create_statuses.entry(status).or_default() += 1;
        if create.status == Some(201)
            && let Some(at) = create.answered_at
        {
            times.push(at);
        }
    }
    times.sort_unstable();
    let runs_created = api.double.all_objects("tekton.dev", "pipelineruns").len() as u64;
    let first = times.first().copied().unwrap_or(ready_wall);
    let last_create = times.last().copied().unwrap_or(ready_wall);
    let first_to_last = last_create.duration_since(first).unwrap_or_default();
    let mut timeline: Vec<u64> = Vec::new();
    for at in &times {
        let second = at.duration_since(first).unwrap_or_default().as_secs() as usize;
        if timeline.len() <= second {
            timeline.resize(second + 1, 0);
        }
        timeline[second] += 1;
    }
    let figures = dispatcher.service.figures.clone();
    let report = DispatcherReport {
        scenario,
        events: args.events,
        body_bytes: args.body_size,
        publish_secs,
        runs_created,
        create_statuses,
        first_to_last_secs: first_to_last.as_secs_f64(),
        runs_per_second: (times.len().saturating_sub(1)) as f64
            / first_to_last.as_secs_f64().max(1e-9),
        drain_secs: last_create
            .duration_since(spawned_wall)
            .unwrap_or_default()
            .as_secs_f64(),
        spawn_to_first_create_ms: first
            .duration_since(spawned_wall)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        cpu_us_per_run: figures.cpu_seconds * 1e6 / (times.len().max(1) as f64),
        dispatcher_process: figures,
        runs_per_second_timeline: timeline,
    };
    print!("{}", table(&report));
    if let Some(path) = &args.report_json {
        report::write_json(path, &report)?;
    }
    if report.runs_created != args.events {
        bail!(
            "{} runs for {} events: the dispatcher did not create exactly one run per event",
            report.runs_created,
            args.events
        );
    }
    Ok(())
}

/// Publishes `--events` envelopes as ingest would store them, `PUBLISH_WINDOW` acks in
/// flight at a time.
async fn publish_backlog(
    js: &async_nats::jetstream::Context,
    scenario: &Scenario,
    args: &DispatcherArgs,
) -> anyhow::Result<()> {
    let ids = Ids::random();
    let factory = RequestFactory::new(
        scenario,
        &args.scenario.secret,
        args.body_size,
        "sluice-ingest",
        "",
        ids,
    )?;
    let mut pending = VecDeque::with_capacity(PUBLISH_WINDOW);
    for index in 0..args.events {
        let target = factory.target(index);
        let delivery = ids.delivery(index).to_string();
        let mut headers = Headers::new();
        headers.append("Content-Type", "application/json");
        let tag = match target.provider {
            Provider::GitHub => {
                headers.append("User-Agent", "GitHub-Hookshot/sluice-loadtest");
                headers.append("X-GitHub-Event", "push");
                headers.append("X-GitHub-Delivery", delivery.as_str());
                "github"
            }
            Provider::GitLab => {
                headers.append("User-Agent", "GitLab/17.11.0");
                headers.append("X-Gitlab-Event", "Push Hook");
                headers.append("X-Gitlab-Event-UUID", delivery.as_str());
                "gitlab"
            }
        };
        let idempotency_key = format!("{}/{}/{tag}:{delivery}", target.namespace, target.listener);
        let id = message_id(&idempotency_key);
        let envelope = Envelope {
            meta: EventMeta {
                schema: SCHEMA_VERSION,
                event_id: uuid::Uuid::new_v4().to_string(),
                namespace: target.namespace.clone(),
                listener: target.listener.clone(),
                received_at_ms: now_ms(),
                idempotency_key,
                triggers: vec![TRIGGER.to_owned()],
                traceparent: None,
                request_url: target.path(),
                headers,
            },
            body: factory.body(index),
        };
        let message = PublishMessage::build()
            .payload(envelope.encode())
            .message_id(&id);
        let ack = js
            .send_publish(event_subject(&target.namespace, &target.listener), message)
            .await
            .context("failed to publish an event")?;
        pending.push_back(ack);
        if pending.len() >= PUBLISH_WINDOW
            && let Some(ack) = pending.pop_front()
        {
            ack.await.context("JetStream did not store an event")?;
        }
    }
    for ack in pending {
        ack.await.context("JetStream did not store an event")?;
    }
    Ok(())
}

fn table(report: &DispatcherReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== dispatcher: {} events of {} B, {}",
        report.events,
        report.body_bytes,
        report.scenario.describe()
    );
    let statuses: Vec<String> = report
        .create_statuses
        .iter()
        .map(|(code, count)| format!("{code} × {count}"))
        .collect();
    let _ = writeln!(
        out,
        "   runs created {} ({}); create answers: {}",
        report.runs_created,
        if report.runs_created == report.events {
            "one per event"
        } else {
            "NOT one per event"
        },
        statuses.join(", ")
    );
    let _ = writeln!(
        out,
        "   throughput {:.0} runs/s (first to last create: {:.2} s); drain {:.2} s from spawn",
        report.runs_per_second, report.first_to_last_secs, report.drain_secs
    );
    let figures = &report.dispatcher_process;
    let _ = writeln!(
        out,
        "   start-to-ready {:.0} ms, first create {:.0} ms after spawn; RSS when ready {} KiB, peak RSS (VmHWM) {} KiB; CPU {:.1} s ({:.0} µs/run)",
        figures.start_to_ready_ms,
        report.spawn_to_first_create_ms,
        figures.rss_ready_kib,
        figures.peak_rss_kib,
        figures.cpu_seconds,
        report.cpu_us_per_run
    );
    out
}
