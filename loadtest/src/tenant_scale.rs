//! `tenant-scale`: what many tenants cost on a 3-node JetStream cluster, every stream kept in
//! three copies, one listener per tenant.
//!
//! 1. Ingest, then one dispatcher, start on `--tenants` namespaces' configuration (a
//!    directory): the dispatcher is timed to ready and until its common consumer exists.
//! 2. Every tenant gets `--events-per-tenant` webhooks, round robin at `--rate`: timed until
//!    every one of them has its run.
//! 3. One tenant (`team-0001`) floods at `--flood-rate` for `--flood-duration` while the
//!    others keep sending at `--quiet-rate` in all: the quiet tenants' webhook → run latency
//!    during the flood is the fairness figure.
//!
//! Each node's resident set and CPU time are read from `/proc` after each step, the
//! dispatcher's too, and the events stream's consumers are counted (the common one, and one
//! per tenant diverted to its own).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use sluice_runtime::jetstream::EVENTS_STREAM;
use sluice_tests::NatsCluster;

use crate::cli::{LoadArgs, TenantScaleArgs};
use crate::e2e::{self, StoredRun};
use crate::generator::{self, Plan, Sending};
use crate::payload::Ids;
use crate::procstat;
use crate::report::{self, LatencySummary};
use crate::scenario::{ProviderMix, Scenario};
use crate::schedule::Schedule;
use crate::stack::{self, Dispatcher, NODES, ProcessFigures, ReplicatedStack};

/// What the NATS nodes hold and have spent at one moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeFigures {
    /// Resident set of each node, MiB.
    pub rss_mib: Vec<f64>,
    /// Peak resident set (`VmHWM`) of each node, MiB.
    pub peak_rss_mib: Vec<f64>,
    /// CPU seconds each node has used since it started.
    pub cpu_seconds: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantScaleReport {
    pub tenants: u32,
    pub nodes_idle: NodeFigures,
    pub dispatcher: ProcessFigures,
    /// From the dispatcher's spawn until its common consumer existed.
    pub consumers_ready_ms: Option<f64>,
    pub consumers: u64,
    /// The consumers once every tenant's first events ran, and after the flood.
    pub consumers_after_first_events: u64,
    pub consumers_after_flood: u64,
    pub nodes_with_consumers: NodeFigures,
    /// Webhooks of step 2, and from the first one's intended send until the last run.
    pub first_events: u64,
    pub first_events_all_run_ms: f64,
    pub first_events_latency: LatencySummary,
    pub nodes_after_first_events: NodeFigures,
    /// Step 3.
    pub flood_accepted: u64,
    pub quiet_accepted: u64,
    pub flood_latency: LatencySummary,
    pub quiet_latency: LatencySummary,
    pub nodes_after_flood: NodeFigures,
    pub dispatcher_after_flood: ProcessFigures,
    /// Accepted webhooks without a run, and with more than one, over the whole run.
    pub missing: u64,
    pub duplicated: u64,
}

/// How long the common consumer may take to appear.
const CONSUMERS_TIMEOUT: Duration = Duration::from_secs(600);

pub async fn run(args: TenantScaleArgs) -> anyhow::Result<()> {
    let scenario = Scenario {
        tenants: args.tenants,
        listeners: 1,
        provider: ProviderMix::Github,
    };
    let bin_dir = stack::bin_dir(args.bin_dir.as_deref())?;
    let stack = ReplicatedStack::start(
        bin_dir,
        &scenario,
        &args.secret,
        &args.ingest_args,
        &args.dispatcher_args,
    )
    .await?;
    let (cluster, api, ingest) = (&stack.cluster, &stack.api, &stack.ingest);
    let nodes_idle = node_figures(cluster);
    println!(
        "{NODES}-node cluster and sluice-ingest ready with {} tenants; NATS RSS {:?} MiB",
        args.tenants, nodes_idle.rss_mib
    );

    let spawned = Instant::now();
    let mut dispatcher = stack.start_dispatcher().await?;
    println!(
        "sluice-dispatcher ready in {:.0} ms",
        dispatcher.service.figures.start_to_ready_ms
    );
    let js = jetstream(&stack.urls).await?;
    let (consumers, consumers_ready_ms) = await_consumers(&js, 1, spawned, &mut dispatcher).await?;
    let nodes_with_consumers = node_figures(cluster);
    println!(
        "{consumers} consumers after {}; NATS RSS {:?} MiB",
        consumers_ready_ms.map_or("(not all)".to_owned(), |ms| format!("{ms:.0} ms")),
        nodes_with_consumers.rss_mib
    );

    let url = ingest.url();
    let sender = Sender {
        url: &url,
        secret: &args.secret,
        connections: args.connections,
        timeout: args.timeout,
        ingest_pid: ingest.service.pid(),
    };

    // Step 2: a few events for every tenant.
    let first_count = u64::from(args.tenants) * u64::from(args.events_per_tenant);
    let first_duration = Duration::from_secs_f64(first_count as f64 / args.rate);
    let first = sender.plan("tenants", scenario, args.rate, first_duration)?;
    let first_outcome = generator::run(first.plan.clone()).await?;
    let accepted = first_outcome.accepted_indices.len() as u64;
    let awaited = [first.awaited(&first_outcome)];
    e2e::await_runs(api, &awaited, args.drain_timeout, || {
        dispatcher.service.check_running()
    })
    .await?;
    let (runs, _) = e2e::stored_runs(api);
    let first_runs = Matched::of(&runs, &first, &first_outcome, |_| true)?;
    let first_events_all_run_ms = first_runs.last_ms;
    let nodes_after_first_events = node_figures(cluster);
    let consumers_after_first_events = consumer_count(&js).await;
    println!(
        "{accepted} webhooks to {} tenants: every run created {first_events_all_run_ms:.0} ms \
         after the first was due; {consumers_after_first_events} consumers",
        args.tenants
    );

    // Step 3: one tenant floods, the others keep sending.
    let flood_scenario = Scenario {
        tenants: 1,
        ..scenario
    };
    let flood = sender.plan(
        "flood",
        flood_scenario,
        args.flood_rate,
        args.flood_duration,
    )?;
    let quiet = sender.plan("quiet", scenario, args.quiet_rate, args.flood_duration)?;
    let (flood_outcome, quiet_outcome) = tokio::join!(
        generator::run(flood.plan.clone()),
        generator::run(quiet.plan.clone())
    );
    let (flood_outcome, quiet_outcome) = (flood_outcome?, quiet_outcome?);
    let awaited = [
        first.awaited(&first_outcome),
        flood.awaited(&flood_outcome),
        quiet.awaited(&quiet_outcome),
    ];
    e2e::await_runs(api, &awaited, args.drain_timeout, || {
        dispatcher.service.check_running()
    })
    .await?;
    dispatcher.service.measure();
    let nodes_after_flood = node_figures(cluster);
    let consumers_after_flood = consumer_count(&js).await;
    let (runs, _) = e2e::stored_runs(api);
    let flooder = Scenario::namespace(0);
    let flood_runs = Matched::of(&runs, &flood, &flood_outcome, |_| true)?;
    let quiet_runs = Matched::of(&runs, &quiet, &quiet_outcome, |ns| ns != flooder)?;
    let quiet_all = Matched::of(&runs, &quiet, &quiet_outcome, |_| true)?;

    let report = TenantScaleReport {
        tenants: args.tenants,
        nodes_idle,
        dispatcher: dispatcher.service.figures.clone(),
        consumers_ready_ms,
        consumers,
        consumers_after_first_events,
        consumers_after_flood,
        nodes_with_consumers,
        first_events: first_outcome.accepted_indices.len() as u64,
        first_events_all_run_ms,
        first_events_latency: first_runs.latency.clone(),
        nodes_after_first_events,
        flood_accepted: flood_outcome.accepted_indices.len() as u64,
        quiet_accepted: quiet_outcome.accepted_indices.len() as u64,
        flood_latency: flood_runs.latency.clone(),
        quiet_latency: quiet_runs.latency.clone(),
        nodes_after_flood,
        dispatcher_after_flood: dispatcher.service.figures.clone(),
        missing: first_runs.missing + flood_runs.missing + quiet_all.missing,
        duplicated: first_runs.duplicated + flood_runs.duplicated + quiet_all.duplicated,
    };
    print!("{}", table(&report));
    if let Some(path) = &args.report_json {
        report::write_json(path, &report)?;
    }
    if report.missing > 0 || report.duplicated > 0 {
        bail!(
            "{} accepted webhooks without a run, {} with more than one",
            report.missing,
            report.duplicated
        );
    }
    Ok(())
}

/// Sends webhooks to the ingest under test.
struct Sender<'a> {
    url: &'a str,
    secret: &'a str,
    connections: usize,
    timeout: Duration,
    ingest_pid: u32,
}

/// A generator run and what identifies its webhooks.
struct Planned {
    plan: Plan,
    ids: Ids,
    schedule: Schedule,
}

impl Sender<'_> {
    fn plan(
        &self,
        label: &str,
        scenario: Scenario,
        rate: f64,
        duration: Duration,
    ) -> anyhow::Result<Planned> {
        let load = LoadArgs {
            rate,
            duration,
            warmup: Duration::ZERO,
            connections: self.connections,
            threads: 1,
            body_size: 1024,
            timeout: self.timeout,
            grace: Duration::from_secs(5),
        };
        let sending = Sending {
            label,
            url: self.url,
            scenario,
            secret: self.secret,
        };
        let ids = Ids::random();
        let mut plan = Plan::new(sending, &load, ids)?;
        plan.keep_accepted = true;
        plan.server_pid = Some(self.ingest_pid);
        Ok(Planned {
            schedule: plan.schedule,
            plan,
            ids,
        })
    }
}

impl Planned {
    /// The webhooks of `outcome` (this plan's run) that must each get a run.
    fn awaited<'o>(&self, outcome: &'o generator::Outcome) -> e2e::Awaited<'o> {
        e2e::Awaited {
            ids: self.ids,
            accepted: &outcome.accepted_indices,
        }
    }
}

/// One generator run's webhooks paired with their runs.
struct Matched {
    /// Intended send → run created, of the runs in the namespaces kept.
    latency: LatencySummary,
    /// From the first webhook's intended send to the last run's create.
    last_ms: f64,
    missing: u64,
    duplicated: u64,
}

impl Matched {
    fn of(
        runs: &[StoredRun],
        planned: &Planned,
        outcome: &generator::Outcome,
        keep: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Matched> {
        let mut histogram = report::histogram()?;
        let mut seen: HashSet<u64> = HashSet::new();
        let mut duplicated = 0;
        let mut last_ms: f64 = 0.0;
        for run in runs {
            let Some(index) = run
                .delivery
                .as_deref()
                .and_then(|d| planned.ids.index_of(d))
            else {
                continue;
            };
            if !seen.insert(index) {
                duplicated += 1;
            }
            let Some(at) = run.at else { continue };
            let since_start = at
                .duration_since(outcome.start_wall)
                .unwrap_or_default()
                .as_secs_f64();
            last_ms = last_ms.max(since_start * 1000.0);
            if !keep(&run.namespace) {
                continue;
            }
            let due = outcome.start_wall + planned.schedule.offset(index);
            let latency = at.duration_since(due).unwrap_or_default();
            histogram.saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        }
        let missing = outcome
            .accepted_indices
            .iter()
            .filter(|index| !seen.contains(index))
            .count() as u64;
        Ok(Matched {
            latency: LatencySummary::from_histogram(&histogram),
            last_ms,
            missing,
            duplicated,
        })
    }
}

async fn jetstream(urls: &str) -> anyhow::Result<async_nats::jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .name("sluice-loadtest")
        // The others are learned from the cluster.
        .connect(urls.split(',').next().unwrap_or_default())
        .await
        .with_context(|| format!("failed to connect to NATS at {urls}"))?;
    Ok(async_nats::jetstream::new(client))
}

/// Polls the events stream's consumer count until it reaches `wanted`; the count, and the
/// time from `spawned` when it did.
async fn await_consumers(
    js: &async_nats::jetstream::Context,
    wanted: u64,
    spawned: Instant,
    dispatcher: &mut Dispatcher,
) -> anyhow::Result<(u64, Option<f64>)> {
    let deadline = Instant::now() + CONSUMERS_TIMEOUT;
    let mut count = 0;
    while Instant::now() < deadline {
        dispatcher.service.check_running()?;
        count = consumer_count(js).await;
        if count >= wanted {
            return Ok((count, Some(spawned.elapsed().as_secs_f64() * 1000.0)));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok((count, None))
}

/// The events stream's consumers now (0 when it cannot be read).
async fn consumer_count(js: &async_nats::jetstream::Context) -> u64 {
    js.get_stream(EVENTS_STREAM)
        .await
        .map_or(0, |stream| stream.cached_info().state.consumer_count as u64)
}

fn node_figures(cluster: &NatsCluster) -> NodeFigures {
    let mut figures = NodeFigures::default();
    for node in &cluster.nodes {
        let pid = node.pid();
        let mib = |kib: Option<u64>| kib.map_or(0.0, |kib| kib as f64 / 1024.0);
        figures.rss_mib.push(mib(pid.and_then(procstat::rss_kib)));
        figures
            .peak_rss_mib
            .push(mib(pid.and_then(procstat::peak_rss_kib)));
        figures
            .cpu_seconds
            .push(procstat::cpu_seconds(pid).unwrap_or(0.0));
    }
    figures
}

fn table(report: &TenantScaleReport) -> String {
    let mut out = String::new();
    let nodes = |figures: &NodeFigures| {
        format!(
            "RSS {} MiB (peak {}), CPU {} s",
            join(&figures.rss_mib),
            join(&figures.peak_rss_mib),
            join(&figures.cpu_seconds)
        )
    };
    let _ = writeln!(
        out,
        "== tenant scale: {} tenants on a {NODES}-node cluster (R{NODES})",
        report.tenants
    );
    let _ = writeln!(
        out,
        "   NATS idle:                {}",
        nodes(&report.nodes_idle)
    );
    let _ = writeln!(
        out,
        "   dispatcher ready:         {:.0} ms; {} consumers after {}",
        report.dispatcher.start_to_ready_ms,
        report.consumers,
        report
            .consumers_ready_ms
            .map_or("(timed out)".to_owned(), |ms| format!("{ms:.0} ms"))
    );
    let _ = writeln!(
        out,
        "   NATS with consumers:      {}",
        nodes(&report.nodes_with_consumers)
    );
    let _ = writeln!(
        out,
        "   {} webhooks, every tenant: all run after {:.0} ms; p50 {} p99 {} max {} ms",
        report.first_events,
        report.first_events_all_run_ms,
        report::ms(report.first_events_latency.p50_us),
        report::ms(report.first_events_latency.p99_us),
        report::ms(report.first_events_latency.max_us)
    );
    let _ = writeln!(
        out,
        "   NATS after:               {}; {} consumers",
        nodes(&report.nodes_after_first_events),
        report.consumers_after_first_events
    );
    for (name, accepted, latency) in [
        (
            "flooding tenant",
            report.flood_accepted,
            &report.flood_latency,
        ),
        (
            "quiet tenants",
            report.quiet_accepted,
            &report.quiet_latency,
        ),
    ] {
        let _ = writeln!(
            out,
            "   {name:<16} {accepted:>7} webhooks: p50 {} p99 {} max {} ms",
            report::ms(latency.p50_us),
            report::ms(latency.p99_us),
            report::ms(latency.max_us)
        );
    }
    let _ = writeln!(
        out,
        "   NATS after the flood:     {}; {} consumers",
        nodes(&report.nodes_after_flood),
        report.consumers_after_flood
    );
    let _ = writeln!(
        out,
        "   dispatcher: peak RSS {} KiB, CPU {:.1} s; {} lost, {} duplicated",
        report.dispatcher_after_flood.peak_rss_kib,
        report.dispatcher_after_flood.cpu_seconds,
        report.missing,
        report.duplicated
    );
    out
}

fn join(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join("/")
}
