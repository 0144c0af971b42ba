//! `ingest`: sluice-ingest measured side by side with the reference pipeline in one run.
//!
//! Both run as separate processes on the same nats-server (each publishing to its own
//! stream with the same settings), on the same generated configuration and secret. The
//! generator runs against them alternately (reference, ingest, reference, ingest…) at the
//! same rate, so that whatever else the machine is doing lands on both; the streams are
//! emptied before each run. Reported per round: each side's throughput and latency, the
//! ratio ingest / reference, and CPU time per request of both servers; then min / median /
//! max of the ratios across rounds.
//!
//! With `--find-max`, each side's rate is stepped up (geometrically, then bisected) until a
//! step fails twice in a row — p99 over `--max-p99`, any error, requests left unsent, or
//! throughput below 95 % of the offered rate — and the highest rate that held is reported.
//!
//! Also reported for ingest: start-to-ready (spawn until `/readyz` is 200) and memory (RSS
//! when ready, peak `VmHWM` at the end), which with `--tenants 2000 --listeners 2` is the
//! memory and start-up benchmark.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use crate::cli::IngestArgs;
use crate::client::Base;
use crate::config_dir;
use crate::generator::{self, Plan};
use crate::payload::{Ids, RequestFactory};
use crate::procstat;
use crate::reference;
use crate::report::{self, RunReport, Spread};
use crate::scenario::Scenario;
use crate::schedule::Schedule;
use crate::stack::{self, Ingest, Nats, ProcessFigures, Reference};
use crate::svg;

/// One round: reference then ingest at the same rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Round {
    pub round: u32,
    pub reference: RunReport,
    pub ingest: RunReport,
    pub ratio: Ratios,
}

/// ingest / reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ratios {
    pub throughput: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    /// Server CPU time per request.
    pub cpu_per_request: Option<f64>,
}

impl Ratios {
    fn of(reference: &RunReport, ingest: &RunReport) -> Ratios {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        Ratios {
            throughput: ratio(ingest.throughput, reference.throughput),
            p50: ratio(
                ingest.latency.p50_us as f64,
                reference.latency.p50_us as f64,
            ),
            p99: ratio(
                ingest.latency.p99_us as f64,
                reference.latency.p99_us as f64,
            ),
            max: ratio(
                ingest.latency.max_us as f64,
                reference.latency.max_us as f64,
            ),
            cpu_per_request: ingest
                .cpu
                .server_us_per_request
                .zip(reference.cpu.server_us_per_request)
                .map(|(i, r)| ratio(i, r)),
        }
    }
}

/// Spreads across rounds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub throughput_ratio: Spread,
    pub p50_ratio: Spread,
    pub p99_ratio: Spread,
    pub cpu_per_request_ratio: Spread,
    pub reference_p50_ms: Spread,
    pub reference_p99_ms: Spread,
    pub ingest_p50_ms: Spread,
    pub ingest_p99_ms: Spread,
    pub reference_cpu_us_per_request: Spread,
    pub ingest_cpu_us_per_request: Spread,
    /// nats-server's CPU per request while each side ran (when this tool started it).
    #[serde(default)]
    pub reference_nats_cpu_us_per_request: Spread,
    #[serde(default)]
    pub ingest_nats_cpu_us_per_request: Spread,
}

/// One `--find-max` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub rate: f64,
    pub held: bool,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub not_sent: u64,
    pub server_cpu_us_per_request: Option<f64>,
    #[serde(default)]
    pub nats_cpu_us_per_request: Option<f64>,
}

/// The rate search of one side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateSearch {
    factor: f64,
    max_rate: f64,
    next: Option<f64>,
    refinements_left: u32,
    /// The highest rate that held (0 when none did).
    pub max_sustained: f64,
    /// The lowest rate that failed.
    pub first_failed: Option<f64>,
    /// A rate that failed once and is being tried again: on a shared machine one bad
    /// second can push a step's p99 over the bound, so a failure counts only when it
    /// repeats.
    retrying: Option<f64>,
    pub steps: Vec<Step>,
}

impl RateSearch {
    pub fn new(start: f64, factor: f64, refinements: u32, max_rate: f64) -> RateSearch {
        RateSearch {
            factor,
            max_rate,
            next: Some(start.min(max_rate)),
            refinements_left: refinements,
            max_sustained: 0.0,
            first_failed: None,
            retrying: None,
            steps: Vec::new(),
        }
    }

    /// The rate to try next; `None` when the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        self.next
    }

    /// Records how a step at [`next_rate`](Self::next_rate) went and picks the next rate.
    pub fn record(&mut self, step: Step) {
        let rate = step.rate;
        let retry = self.retrying.take();
        if !step.held && retry != Some(rate) {
            self.retrying = Some(rate);
            self.steps.push(step);
            self.next = Some(rate);
            return;
        }
        if step.held {
            self.max_sustained = self.max_sustained.max(rate);
        } else {
            self.first_failed = Some(self.first_failed.map_or(rate, |f| f.min(rate)));
        }
        self.steps.push(step);
        self.next = match self.first_failed {
            None if rate >= self.max_rate => None,
            None => Some((rate * self.factor).min(self.max_rate).round()),
            Some(failed) => {
                if self.refinements_left == 0 {
                    None
                } else {
                    self.refinements_left -= 1;
                    let low = if self.max_sustained > 0.0 {
                        self.max_sustained
                    } else {
                        failed / self.factor / self.factor
                    };
                    let middle = ((low + failed) / 2.0).round();
                    // Not worth a step when the bracket is already within 2 %.
                    (failed - low > failed * 0.02).then_some(middle)
                }
            }
        };
    }
}

/// Whether a step held: no failure of any kind, p99 within bounds, throughput close to the
/// offered rate.
fn held(report: &RunReport, max_p99: Duration) -> bool {
    !report.failed()
        && report.not_sent == 0
        && report.latency.p99_us as u128 <= max_p99.as_micros()
        && report.throughput >= 0.95 * report.rate
}

/// Both sides' searches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindMax {
    pub max_p99_ms: f64,
    pub step_secs: f64,
    pub reference: RateSearch,
    pub ingest: RateSearch,
    /// ingest / reference of the highest sustained rates.
    pub ratio: f64,
}

/// The whole `ingest` report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestComparison {
    pub scenario: Scenario,
    pub rate: f64,
    pub duration_secs: f64,
    pub body_size: usize,
    pub connections: usize,
    pub ingest_process: ProcessFigures,
    pub reference_process: ProcessFigures,
    pub rounds: Vec<Round>,
    pub summary: Summary,
    pub find_max: Option<FindMax>,
    pub load_average_before: Option<f64>,
    pub load_average_after: Option<f64>,
}

/// Everything a run against one side needs.
struct Side<'a> {
    label: &'static str,
    url: String,
    pid: u32,
    stream: &'static str,
    args: &'a IngestArgs,
    scenario: Scenario,
}

impl Side<'_> {
    async fn run(
        &self,
        nats: &Nats,
        js: &async_nats::jetstream::Context,
        rate: f64,
        duration: Duration,
        label: String,
    ) -> anyhow::Result<RunReport> {
        nats.purge(js, self.stream).await?;
        let load = &self.args.load;
        let base = Base::parse(&self.url)?;
        let factory = RequestFactory::new(
            &self.scenario,
            &self.args.scenario.secret,
            load.body_size,
            &base.host,
            &base.path_prefix,
            Ids::random(),
        )?;
        let plan = Plan {
            label,
            url: self.url.clone(),
            base,
            scenario: self.scenario,
            warmup: load.warmup,
            duration,
            schedule: Schedule::new(rate, load.warmup, duration)?,
            connections: load.connections,
            threads: load.threads,
            timeout: load.timeout,
            grace: load.grace,
            factory: Arc::new(factory),
            keep_accepted: false,
            server_pid: Some(self.pid),
            nats_pid: nats.pid(),
        };
        Ok(generator::run(plan).await?.report)
    }
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let scenario = args.scenario.scenario();
    let bin_dir = stack::bin_dir(args.stack.bin_dir.as_deref())?;
    let load_average_before = procstat::load_average();
    let nats = Nats::start(args.stack.nats.as_deref()).await?;
    let js = nats.jetstream().await?;
    let config = tempfile::tempdir()?;
    config_dir::write(&scenario, &args.scenario.secret, config.path(), false)?;

    let mut ingest = Ingest::start(&bin_dir, &nats.url(), config.path(), &args.ingest_args).await?;
    println!(
        "sluice-ingest ({}) ready in {:.0} ms, RSS {} KiB",
        scenario.describe(),
        ingest.service.figures.start_to_ready_ms,
        ingest.service.figures.rss_ready_kib
    );
    let mut reference = Reference::start(&nats.url(), &args.scenario.secret).await?;
    println!(
        "reference ready in {:.0} ms, RSS {} KiB",
        reference.service.figures.start_to_ready_ms, reference.service.figures.rss_ready_kib
    );

    let reference_side = Side {
        label: "reference",
        url: reference.url(),
        pid: reference.service.pid(),
        stream: reference::STREAM,
        args: &args,
        scenario,
    };
    let ingest_side = Side {
        label: "ingest",
        url: ingest.url(),
        pid: ingest.service.pid(),
        stream: sluice_runtime::jetstream::EVENTS_STREAM,
        args: &args,
        scenario,
    };

    let mut rounds = Vec::new();
    for round in 1..=args.rounds {
        let mut run_side = async |side: &Side<'_>| -> anyhow::Result<RunReport> {
            let label = format!("{} (round {round})", side.label);
            let report = side
                .run(&nats, &js, args.load.rate, args.load.duration, label)
                .await?;
            print!("{}", report.table());
            ingest.service.check_running()?;
            reference.service.check_running()?;
            Ok(report)
        };
        let reference_report = run_side(&reference_side).await?;
        let ingest_report = run_side(&ingest_side).await?;
        let ratio = Ratios::of(&reference_report, &ingest_report);
        println!(
            "   round {round}: ingest/reference throughput {:.3}, p50 {:.2}×, p99 {:.2}×, CPU/request {}\n",
            ratio.throughput,
            ratio.p50,
            ratio.p99,
            ratio
                .cpu_per_request
                .map_or("n/a".to_owned(), |r| format!("{r:.2}×"))
        );
        rounds.push(Round {
            round,
            reference: reference_report,
            ingest: ingest_report,
            ratio,
        });
    }

    let find_max = if args.find_max {
        Some(find_max(&args, &nats, &js, &reference_side, &ingest_side).await?)
    } else {
        None
    };

    ingest.service.measure();
    reference.service.measure();
    let comparison = IngestComparison {
        scenario,
        rate: args.load.rate,
        duration_secs: args.load.duration.as_secs_f64(),
        body_size: args.load.body_size,
        connections: args.load.connections,
        ingest_process: ingest.service.figures.clone(),
        reference_process: reference.service.figures.clone(),
        summary: summarise(&rounds),
        rounds,
        find_max,
        load_average_before,
        load_average_after: procstat::load_average(),
    };
    print!("{}", summary_table(&comparison));
    if let Some(path) = &args.report.report_json {
        report::write_json(path, &comparison)?;
    }
    if let Some(path) = &args.report.report_svg {
        report::write_text(path, &plot(&comparison))?;
    }
    let failed: u64 = comparison
        .rounds
        .iter()
        .flat_map(|r| [&r.reference, &r.ingest])
        .map(|r| r.errors + r.warmup_errors)
        .sum();
    if failed > 0 && !args.report.allow_errors {
        bail!("{failed} requests failed (pass --allow-errors to exit 0 anyway)");
    }
    Ok(())
}

async fn find_max(
    args: &IngestArgs,
    nats: &Nats,
    js: &async_nats::jetstream::Context,
    reference: &Side<'_>,
    ingest: &Side<'_>,
) -> anyhow::Result<FindMax> {
    let search = || {
        RateSearch::new(
            args.start_rate,
            args.step_factor,
            args.refine,
            args.max_rate,
        )
    };
    let mut searches = [search(), search()];
    let sides = [reference, ingest];
    // Alternate between the sides while either still has a step to run.
    while searches.iter().any(|s| s.next_rate().is_some()) {
        for (side, search) in sides.iter().zip(searches.iter_mut()) {
            let Some(rate) = search.next_rate() else {
                continue;
            };
            let label = format!("{} max-search {rate:.0}/s", side.label);
            let report = side.run(nats, js, rate, args.step_duration, label).await?;
            let step = Step {
                rate,
                held: held(&report, args.max_p99),
                throughput: report.throughput,
                p50_ms: report.latency.p50_us as f64 / 1000.0,
                p99_ms: report.latency.p99_us as f64 / 1000.0,
                errors: report.errors + report.warmup_errors,
                not_sent: report.not_sent,
                server_cpu_us_per_request: report.cpu.server_us_per_request,
                nats_cpu_us_per_request: report.cpu.nats_us_per_request,
            };
            let cpu = |us: Option<f64>| us.map_or_else(|| "-".to_owned(), |us| format!("{us:.1}"));
            println!(
                "   {}: {rate:.0}/s → {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, errors {}, not sent {}, CPU µs/request server {} nats {}: {}",
                side.label,
                step.throughput,
                step.p50_ms,
                step.p99_ms,
                step.errors,
                step.not_sent,
                cpu(step.server_cpu_us_per_request),
                cpu(step.nats_cpu_us_per_request),
                if step.held { "held" } else { "FAILED" }
            );
            search.record(step);
            // Let a server that fell behind finish what it still holds before the next step.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let [reference, ingest] = searches;
    Ok(FindMax {
        max_p99_ms: args.max_p99.as_secs_f64() * 1000.0,
        step_secs: args.step_duration.as_secs_f64(),
        ratio: if reference.max_sustained > 0.0 {
            ingest.max_sustained / reference.max_sustained
        } else {
            f64::NAN
        },
        reference,
        ingest,
    })
}

fn summarise(rounds: &[Round]) -> Summary {
    let spread = |f: &dyn Fn(&Round) -> Option<f64>| {
        Spread::of(&rounds.iter().filter_map(f).collect::<Vec<_>>())
    };
    let ms = |us: u64| us as f64 / 1000.0;
    Summary {
        throughput_ratio: spread(&|r| Some(r.ratio.throughput)),
        p50_ratio: spread(&|r| Some(r.ratio.p50)),
        p99_ratio: spread(&|r| Some(r.ratio.p99)),
        cpu_per_request_ratio: spread(&|r| r.ratio.cpu_per_request),
        reference_p50_ms: spread(&|r| Some(ms(r.reference.latency.p50_us))),
        reference_p99_ms: spread(&|r| Some(ms(r.reference.latency.p99_us))),
        ingest_p50_ms: spread(&|r| Some(ms(r.ingest.latency.p50_us))),
        ingest_p99_ms: spread(&|r| Some(ms(r.ingest.latency.p99_us))),
        reference_cpu_us_per_request: spread(&|r| r.reference.cpu.server_us_per_request),
        ingest_cpu_us_per_request: spread(&|r| r.ingest.cpu.server_us_per_request),
        reference_nats_cpu_us_per_request: spread(&|r| r.reference.cpu.nats_us_per_request),
        ingest_nats_cpu_us_per_request: spread(&|r| r.ingest.cpu.nats_us_per_request),
    }
}

fn summary_table(comparison: &IngestComparison) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let spread = |s: &Spread, unit: &str| {
        format!(
            "min {:.3}{unit}  median {:.3}{unit}  max {:.3}{unit}",
            s.min, s.median, s.max
        )
    };
    let summary = &comparison.summary;
    let _ = writeln!(
        out,
        "== ingest vs reference: {}, {:.0}/s, {} B bodies, {} rounds",
        comparison.scenario.describe(),
        comparison.rate,
        comparison.body_size,
        comparison.rounds.len()
    );
    if !comparison.rounds.is_empty() {
        for (label, ratios, unit) in [
            ("throughput ratio ", &summary.throughput_ratio, ""),
            ("p50 ratio        ", &summary.p50_ratio, "×"),
            ("p99 ratio        ", &summary.p99_ratio, "×"),
            ("CPU/request ratio", &summary.cpu_per_request_ratio, "×"),
        ] {
            let _ = writeln!(out, "   {label} {}", spread(ratios, unit));
        }
        let _ = writeln!(
            out,
            "   reference p50 {} | p99 {}",
            spread(&summary.reference_p50_ms, " ms"),
            spread(&summary.reference_p99_ms, " ms")
        );
        let _ = writeln!(
            out,
            "   ingest    p50 {} | p99 {}",
            spread(&summary.ingest_p50_ms, " ms"),
            spread(&summary.ingest_p99_ms, " ms")
        );
        let _ = writeln!(
            out,
            "   server CPU µs/request: reference {} | ingest {}",
            spread(&summary.reference_cpu_us_per_request, ""),
            spread(&summary.ingest_cpu_us_per_request, "")
        );
        if summary.ingest_nats_cpu_us_per_request.max > 0.0 {
            let _ = writeln!(
                out,
                "   nats-server CPU µs/request: with reference {} | with ingest {}",
                spread(&summary.reference_nats_cpu_us_per_request, ""),
                spread(&summary.ingest_nats_cpu_us_per_request, "")
            );
        }
    }
    for (name, figures) in [
        ("ingest", &comparison.ingest_process),
        ("reference", &comparison.reference_process),
    ] {
        let _ = writeln!(
            out,
            "   {name}: start-to-ready {:.0} ms, RSS when ready {} KiB, peak RSS (VmHWM) {} KiB, CPU {:.1} s",
            figures.start_to_ready_ms,
            figures.rss_ready_kib,
            figures.peak_rss_kib,
            figures.cpu_seconds
        );
    }
    if let Some(find_max) = &comparison.find_max {
        let _ = writeln!(
            out,
            "   max sustained rate (p99 ≤ {:.0} ms, no errors, {:.0} s steps): reference {:.0}/s, ingest {:.0}/s, ratio {:.3}",
            find_max.max_p99_ms,
            find_max.step_secs,
            find_max.reference.max_sustained,
            find_max.ingest.max_sustained,
            find_max.ratio
        );
    }
    let _ = writeln!(
        out,
        "   load average (1 min) before {} after {}",
        comparison
            .load_average_before
            .map_or("n/a".to_owned(), |l| format!("{l:.2}")),
        comparison
            .load_average_after
            .map_or("n/a".to_owned(), |l| format!("{l:.2}"))
    );
    out
}

/// Every round's percentile curves, and their p99 over time.
fn plot(comparison: &IngestComparison) -> String {
    let mut curves = Vec::new();
    let mut timeline = Vec::new();
    for round in &comparison.rounds {
        for report in [&round.reference, &round.ingest] {
            let (curve, mut per_second) = report.series(&report.label);
            curves.push(curve);
            // p99 only: p50 of six runs would crowd the panel.
            per_second.truncate(1);
            timeline.extend(per_second);
        }
    }
    let title = format!(
        "ingest vs reference: {}, {:.0}/s, {} B bodies",
        comparison.scenario.describe(),
        comparison.rate,
        comparison.body_size
    );
    svg::latency_plot(&title, &curves, &timeline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rate: f64, held: bool) -> Step {
        Step {
            rate,
            held,
            throughput: rate,
            p50_ms: 1.0,
            p99_ms: 2.0,
            errors: 0,
            not_sent: 0,
            server_cpu_us_per_request: None,
            nats_cpu_us_per_request: None,
        }
    }

    #[test]
    fn the_search_grows_until_a_failure_then_bisects() {
        let mut search = RateSearch::new(1000.0, 2.0, 2, 100_000.0);
        assert_eq!(search.next_rate(), Some(1000.0));
        search.record(step(1000.0, true));
        assert_eq!(search.next_rate(), Some(2000.0));
        search.record(step(2000.0, true));
        assert_eq!(search.next_rate(), Some(4000.0));
        search.record(step(4000.0, false));
        // A failure is tried again before it counts.
        assert_eq!(search.next_rate(), Some(4000.0));
        search.record(step(4000.0, false));
        assert_eq!(search.next_rate(), Some(3000.0));
        search.record(step(3000.0, true));
        assert_eq!(search.next_rate(), Some(3500.0));
        search.record(step(3500.0, false));
        search.record(step(3500.0, false));
        assert_eq!(search.next_rate(), None);
        assert_eq!(search.max_sustained, 3000.0);
        assert_eq!(search.first_failed, Some(3500.0));
        assert_eq!(search.steps.len(), 7);
    }

    #[test]
    fn the_search_stops_at_the_cap_and_handles_an_immediate_failure() {
        let mut noisy = RateSearch::new(1000.0, 2.0, 0, 100_000.0);
        noisy.record(step(1000.0, false));
        noisy.record(step(1000.0, true));
        assert_eq!(noisy.next_rate(), Some(2000.0));
        assert_eq!(noisy.first_failed, None);

        let mut capped = RateSearch::new(1000.0, 2.0, 2, 1500.0);
        capped.record(step(1000.0, true));
        assert_eq!(capped.next_rate(), Some(1500.0));
        capped.record(step(1500.0, true));
        assert_eq!(capped.next_rate(), None);
        assert_eq!(capped.max_sustained, 1500.0);

        let mut failing = RateSearch::new(1000.0, 2.0, 1, 100_000.0);
        failing.record(step(1000.0, false));
        failing.record(step(1000.0, false));
        assert_eq!(failing.next_rate(), Some(625.0));
        failing.record(step(625.0, true));
        assert_eq!(failing.next_rate(), None);
        assert_eq!(failing.max_sustained, 625.0);
    }

    #[test]
    fn ratios_are_ingest_over_reference() {
        let mut reference = report::tests::sample_report();
        reference.cpu.server_us_per_request = Some(10.0);
        let mut ingest = reference.clone();
        ingest.throughput = reference.throughput / 2.0;
        ingest.latency.p99_us = reference.latency.p99_us * 3;
        ingest.cpu.server_us_per_request = Some(25.0);
        let ratio = Ratios::of(&reference, &ingest);
        assert!((ratio.throughput - 0.5).abs() < 1e-9);
        assert!((ratio.p99 - 3.0).abs() < 1e-9);
        assert_eq!(ratio.cpu_per_request, Some(2.5));
        assert!(held(&reference, Duration::from_millis(20)));
        assert!(!held(&reference, Duration::from_millis(5)));
    }
}
