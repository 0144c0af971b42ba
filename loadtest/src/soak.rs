//! `soak`: a long run at a fixed rate through what production runs — a 3-node JetStream
//! cluster with every stream kept in three copies, one ingest and several dispatcher
//! replicas each given every node's URL, the Kubernetes API double in this process — while
//! faults come on a schedule: a dispatcher killed, a NATS node killed, a NATS node restarted
//! cleanly (a rolling upgrade's step). Each fault takes the next replica or node in turn.
//!
//! At the end every webhook answered 2xx must have exactly one run. The report gives the
//! lost and duplicate counts, the refusals senders saw (`503` while a stream has no leader),
//! and webhook → run latency minute by minute, each minute with the faults that began in it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use anyhow::bail;
use serde::{Deserialize, Serialize};

use crate::cli::SoakArgs;
use crate::e2e;
use crate::generator::{self, Plan, Sending};
use crate::payload::Ids;
use crate::report::{self, LatencySummary, RunReport, TimelinePoint};
use crate::stack::{self, Dispatcher, NODES, ReplicatedStack};

/// A fault the soak injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL a dispatcher replica; start it again after the downtime.
    DispatcherKill,
    /// SIGKILL a NATS node; start it again (same store) after the downtime.
    NatsKill,
    /// Stop a NATS node cleanly and start it again at once.
    NatsRestart,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Self::DispatcherKill => "dispatcher-kill",
            Self::NatsKill => "nats-kill",
            Self::NatsRestart => "nats-restart",
        }
    }
}

/// One injected fault.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRecord {
    pub fault: Fault,
    /// The replica (`dispatcher-2`) or node (`n1`) it hit.
    pub target: String,
    /// Seconds from the start of recording.
    pub at_secs: f64,
    /// From the fault until the process was ready again.
    pub back_after_secs: f64,
}

/// One minute of the run, by the webhooks' intended send time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Minute {
    pub minute: u32,
    /// Webhooks due in this minute whose run was created.
    pub runs: u64,
    /// Webhooks due in this minute that were not answered 2xx.
    pub refused: u64,
    /// Webhook → run.
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// The faults that began in this minute.
    pub faults: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakReport {
    /// The webhooks as the sender saw them.
    pub http: RunReport,
    /// From the intended send of each recorded webhook to the create of its run.
    pub end_to_end: LatencySummary,
    /// Webhooks answered 2xx, warm-up included.
    pub webhooks_accepted: u64,
    /// PipelineRuns stored by the API double.
    pub runs_created: u64,
    /// Accepted webhooks without a run.
    pub missing: u64,
    /// Webhooks with more than one run.
    pub duplicated: u64,
    /// Runs for webhooks the sender saw no 2xx for (a timeout while the event was stored):
    /// not lost, and a sender's retry would be told it is a duplicate.
    pub runs_without_2xx: u64,
    pub faults: Vec<FaultRecord>,
    pub minutes: Vec<Minute>,
    /// From the last webhook's intended send to the last create.
    pub drain_secs: f64,
}

pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    if args.faults.is_empty() {
        bail!("--faults names no fault");
    }
    let scenario = args.scenario.scenario();
    let bin_dir = stack::bin_dir(args.bin_dir.as_deref())?;
    let stack = ReplicatedStack::start(
        bin_dir,
        &scenario,
        &args.scenario.secret,
        &args.ingest_args,
        &args.dispatcher_args,
    )
    .await?;
    let (api, ingest) = (&stack.api, &stack.ingest);
    let mut dispatchers = Vec::new();
    for _ in 0..args.dispatchers {
        dispatchers.push(Some(stack.start_dispatcher().await?));
    }
    println!(
        "{NODES}-node JetStream cluster, sluice-ingest and {} sluice-dispatcher replicas ready",
        args.dispatchers
    );

    let load = &args.load;
    let url = ingest.url();
    let ids = Ids::random();
    let sending = Sending {
        label: "soak",
        url: &url,
        scenario,
        secret: &args.scenario.secret,
    };
    let mut plan = Plan::new(sending, load, ids)?;
    plan.keep_accepted = true;
    plan.server_pid = Some(ingest.service.pid());
    let schedule = plan.schedule;
    let injector = Injector {
        plan: &args.faults,
        every: args.fault_every,
        downtime: args.fault_downtime,
        until: Instant::now() + schedule.end(),
        stack: &stack,
    };
    let (outcome, injected) = tokio::join!(generator::run(plan), injector.run(&mut dispatchers));
    let outcome = outcome?;
    let injected = injected?;
    let accepted = outcome.accepted_indices.len() as u64;

    let awaited = [e2e::Awaited {
        ids,
        accepted: &outcome.accepted_indices,
    }];
    e2e::await_runs(api, &awaited, args.drain_timeout, || {
        for dispatcher in dispatchers.iter_mut().flatten() {
            dispatcher.service.check_running()?;
        }
        Ok(())
    })
    .await?;

    let measure_start = outcome.start_wall + schedule.measure_start();
    let http = outcome.report.clone();
    let matched = e2e::match_runs(
        api,
        ids,
        schedule,
        outcome,
        accepted,
        Duration::from_secs(60),
    )?;
    let faults: Vec<FaultRecord> = injected
        .into_iter()
        .map(|(at, record)| FaultRecord {
            at_secs: at
                .duration_since(measure_start)
                .map_or(0.0, |d| d.as_secs_f64()),
            ..record
        })
        .collect();
    let report = SoakReport {
        minutes: minutes(&matched.timeline, &http.timeline, &faults),
        end_to_end: matched.end_to_end.clone(),
        webhooks_accepted: accepted,
        runs_created: matched.runs_created,
        missing: matched.missing,
        duplicated: matched.duplicated,
        runs_without_2xx: matched.runs_without_2xx,
        drain_secs: matched.drain_secs,
        http,
        faults,
    };
    print!("{}", table(&report));
    if let Some(path) = &args.report.report_json {
        report::write_json(path, &report)?;
    }
    if (report.missing > 0 || report.duplicated > 0) && !args.report.allow_errors {
        bail!(
            "{} accepted webhooks without a run, {} with more than one",
            report.missing,
            report.duplicated
        );
    }
    Ok(())
}

/// Injects faults on a schedule while webhooks flow.
struct Injector<'a> {
    plan: &'a [Fault],
    every: Duration,
    downtime: Duration,
    /// No fault starts unless its process is back before the last webhook is due.
    until: Instant,
    stack: &'a ReplicatedStack,
}

impl Injector<'_> {
    /// The faults injected, each with the wall time it began.
    async fn run(
        &self,
        dispatchers: &mut [Option<Dispatcher>],
    ) -> anyhow::Result<Vec<(SystemTime, FaultRecord)>> {
        let start = Instant::now();
        let mut done = Vec::new();
        let (mut next_dispatcher, mut next_node) = (0, 0);
        for index in 0.. {
            let at = start + self.every * (index + 1);
            if at + self.downtime + Duration::from_secs(10) >= self.until {
                break;
            }
            tokio::time::sleep_until(at.into()).await;
            let fault = self.plan[index as usize % self.plan.len()];
            let began = SystemTime::now();
            let started = Instant::now();
            let target = match fault {
                Fault::DispatcherKill => {
                    let slot = next_dispatcher % dispatchers.len();
                    next_dispatcher += 1;
                    // Dropping a service kills it (SIGKILL).
                    drop(dispatchers[slot].take());
                    tokio::time::sleep(self.downtime).await;
                    dispatchers[slot] = Some(self.stack.start_dispatcher().await?);
                    format!("dispatcher-{}", slot + 1)
                }
                Fault::NatsKill => {
                    let node = &self.stack.cluster.nodes[next_node % NODES];
                    next_node += 1;
                    node.kill();
                    tokio::time::sleep(self.downtime).await;
                    node.restart().await;
                    format!("n{}", (next_node - 1) % NODES + 1)
                }
                Fault::NatsRestart => {
                    let node = &self.stack.cluster.nodes[next_node % NODES];
                    next_node += 1;
                    node.restart().await;
                    format!("n{}", (next_node - 1) % NODES + 1)
                }
            };
            let back_after_secs = started.elapsed().as_secs_f64();
            eprintln!(
                "[{:>7.1} s] {} {target}: back after {back_after_secs:.1} s",
                start.elapsed().as_secs_f64(),
                fault.name()
            );
            done.push((
                began,
                FaultRecord {
                    fault,
                    target,
                    at_secs: 0.0,
                    back_after_secs,
                },
            ));
        }
        Ok(done)
    }
}

/// Minute rows: runs and their latency by minute (`runs`, one point per minute), refusals
/// summed from the sender's per-second timeline, and the faults that began in each.
fn minutes(runs: &[TimelinePoint], http: &[TimelinePoint], faults: &[FaultRecord]) -> Vec<Minute> {
    let count = runs.len().max(http.len().div_ceil(60)).max(
        faults
            .iter()
            .map(|f| f.at_secs as usize / 60 + 1)
            .max()
            .unwrap_or(0),
    );
    (0..count)
        .map(|minute| {
            let point = runs.get(minute);
            Minute {
                minute: minute as u32,
                runs: point.map_or(0, |p| p.accepted),
                refused: http
                    .iter()
                    .filter(|p| p.second as usize / 60 == minute)
                    .map(|p| p.errors)
                    .sum(),
                p50_us: point.map_or(0, |p| p.p50_us),
                p99_us: point.map_or(0, |p| p.p99_us),
                max_us: point.map_or(0, |p| p.max_us),
                faults: faults
                    .iter()
                    .filter(|f| f.at_secs as usize / 60 == minute)
                    .map(|f| format!("{} {} at {:.0} s", f.fault.name(), f.target, f.at_secs))
                    .collect(),
            }
        })
        .collect()
}

fn table(report: &SoakReport) -> String {
    let mut out = report.http.table();
    let _ = writeln!(
        out,
        "== soak: webhook → PipelineRun, minute by minute (intended send time)"
    );
    let _ = writeln!(
        out,
        "   {:>6}  {:>8}  {:>7}  {:>9}  {:>9}  {:>9}  faults",
        "minute", "runs", "refused", "p50 ms", "p99 ms", "max ms"
    );
    for minute in &report.minutes {
        let _ = writeln!(
            out,
            "   {:>6}  {:>8}  {:>7}  {:>9}  {:>9}  {:>9}  {}",
            minute.minute,
            minute.runs,
            minute.refused,
            report::ms(minute.p50_us),
            report::ms(minute.p99_us),
            report::ms(minute.max_us),
            minute.faults.join("; ")
        );
    }
    let _ = writeln!(out, "   {}", report::latency_header());
    let _ = writeln!(
        out,
        "   {}",
        report::latency_row("webhook → run", &report.end_to_end)
    );
    let refusals: BTreeMap<&String, &u64> = report
        .http
        .statuses
        .iter()
        .filter(|(status, _)| !status.starts_with('2'))
        .collect();
    let _ = writeln!(
        out,
        "   accepted {}, runs {}: {} lost, {} duplicated; {} runs for webhooks not answered 2xx; \
         refusals {refusals:?}; errors {:?}",
        report.webhooks_accepted,
        report.runs_created,
        report.missing,
        report.duplicated,
        report.runs_without_2xx,
        report.http.error_kinds
    );
    let _ = writeln!(
        out,
        "   {} faults; last run {:.2} s after the last webhook was due",
        report.faults.len(),
        report.drain_secs
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(second: u32, accepted: u64, errors: u64) -> TimelinePoint {
        TimelinePoint {
            second,
            accepted,
            errors,
            p50_us: 1_000,
            p99_us: 9_000,
            max_us: 20_000,
        }
    }

    #[test]
    fn minutes_sum_refusals_by_minute_and_place_each_fault() {
        let runs = [point(0, 600, 0), point(1, 590, 0)];
        let http = [point(5, 10, 0), point(61, 10, 4), point(119, 10, 1)];
        let faults = [FaultRecord {
            fault: Fault::NatsKill,
            target: "n2".to_owned(),
            at_secs: 70.2,
            back_after_secs: 12.0,
        }];
        let rows = minutes(&runs, &http, &faults);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].runs, rows[0].refused), (600, 0));
        assert_eq!((rows[1].runs, rows[1].refused), (590, 5));
        assert!(rows[0].faults.is_empty());
        assert_eq!(rows[1].faults, ["nats-kill n2 at 70 s"]);
    }
}
