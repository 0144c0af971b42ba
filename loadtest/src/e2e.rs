//! `e2e`: webhook → PipelineRun latency through the whole path: nats-server,
//! `sluice-ingest`, `sluice-dispatcher` and the Kubernetes API double (in this process, on
//! the runtime the generator does not use), on a generated configuration.
//!
//! The latency of a webhook is the moment the API double answered the create of the run
//! whose `delivery` param is the webhook's delivery id, minus the moment the webhook was
//! meant to be sent. Delivery ids encode the request index ([`crate::payload::Ids`]), so each
//! run is matched to its webhook exactly. Also reported: the HTTP side as `run` reports it,
//! and runs created against webhooks accepted, which must be equal.
//!
//! `--reference` puts the reference pipeline where ingest and the dispatcher were: the
//! [`reference`](crate::reference) server and the [reference
//! dispatcher](crate::reference_dispatch), which keep the same guarantees with the least work.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::bail;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_tests::api_double::Verb;

use crate::cli::E2eArgs;
use crate::config_dir;
use crate::generator::{self, Plan, Sending};
use crate::payload::Ids;
use crate::report::{self, CurvePoint, LatencySummary, RunReport, Timeline, TimelinePoint};
use crate::schedule::Schedule;
use crate::stack::{
    self, Api, Dispatcher, Ingest, Nats, ProcessFigures, Reference, ReferenceDispatcher, Service,
};
use crate::svg;

/// The whole `e2e` report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct E2eReport {
    /// The webhooks as the sender saw them.
    pub http: RunReport,
    /// From the intended send of each recorded webhook to the create of its run.
    pub end_to_end: LatencySummary,
    pub curve: Vec<CurvePoint>,
    pub timeline: Vec<TimelinePoint>,
    /// Webhooks answered 2xx, warm-up included.
    pub webhooks_accepted: u64,
    /// PipelineRuns stored by the API double.
    pub runs_created: u64,
    /// Accepted webhooks without a run.
    pub missing: u64,
    /// Webhooks with more than one run.
    pub duplicated: u64,
    /// Runs whose `delivery` param names no webhook of this run.
    pub unmatched: u64,
    /// Webhooks the sender saw no 2xx for (a timeout while the event was stored) that have
    /// a run: not lost, and a sender's retry would be told it is a duplicate.
    #[serde(default)]
    pub runs_without_2xx: u64,
    /// Answers to the dispatcher's creates, by status.
    pub create_statuses: BTreeMap<String, u64>,
    /// From the last webhook's intended send to the last create.
    pub drain_secs: f64,
    /// The reference pipeline's server and dispatcher stand for ingest and the dispatcher
    /// (`--reference`).
    #[serde(default)]
    pub reference: bool,
    pub ingest_process: ProcessFigures,
    pub dispatcher_process: ProcessFigures,
}

pub async fn run(args: E2eArgs) -> anyhow::Result<()> {
    let scenario = args.scenario.scenario();
    let nats = Nats::start(args.stack.nats.as_deref()).await?;
    let api = Api::start().await?;
    let config = tempfile::tempdir()?;
    config_dir::write(&scenario, &args.scenario.secret, config.path(), false)?;
    let mut pipeline = if args.reference {
        Pipeline::reference(&nats, &api, &args.scenario.secret).await?
    } else {
        let bin_dir = stack::bin_dir(args.stack.bin_dir.as_deref())?;
        Pipeline::sluice(&bin_dir, &nats, &api, config.path(), &args.dispatcher_args).await?
    };
    let [front, back] = process_names(args.reference);
    println!(
        "{front} ready in {:.0} ms, {back} ready in {:.0} ms",
        pipeline.front.figures.start_to_ready_ms, pipeline.back.figures.start_to_ready_ms
    );

    let load = &args.load;
    let url = pipeline.url.clone();
    let ids = Ids::random();
    let sending = Sending {
        label: "e2e",
        url: &url,
        scenario,
        secret: &args.scenario.secret,
    };
    let mut plan = Plan::new(sending, load, ids)?;
    plan.keep_accepted = true;
    plan.server_pid = Some(pipeline.front.pid());
    plan.nats_pid = nats.pid();
    let schedule = plan.schedule;
    let outcome = generator::run(plan).await?;
    let accepted = outcome.accepted_indices.len() as u64;

    let awaited = [Awaited {
        ids,
        accepted: &outcome.accepted_indices,
    }];
    await_runs(&api, &awaited, args.drain_timeout, || {
        pipeline.back.check_running()
    })
    .await?;
    pipeline.front.measure();
    pipeline.back.measure();

    let report = match_runs(
        &api,
        ids,
        schedule,
        outcome,
        accepted,
        Duration::from_secs(1),
    )?;
    let report = E2eReport {
        reference: args.reference,
        ingest_process: pipeline.front.figures.clone(),
        dispatcher_process: pipeline.back.figures.clone(),
        ..report
    };
    print!("{}", table(&report));
    if let Some(path) = &args.report.report_json {
        report::write_json(path, &report)?;
    }
    if let Some(path) = &args.report.report_svg {
        report::write_text(path, &plot(&report))?;
    }
    let mut problems = Vec::new();
    if report.http.failed() {
        problems.push(format!(
            "{} webhooks failed",
            report.http.errors + report.http.warmup_errors
        ));
    }
    if report.missing > 0 || report.duplicated > 0 || report.runs_created != accepted {
        problems.push(format!(
            "{} runs for {accepted} accepted webhooks ({} missing, {} duplicated)",
            report.runs_created, report.missing, report.duplicated
        ));
    }
    if !problems.is_empty() && !args.report.allow_errors {
        bail!("{}", problems.join("; "));
    }
    Ok(())
}

/// The two processes a webhook passes through, ready: `sluice-ingest` and
/// `sluice-dispatcher`, or the reference pipeline's server and dispatcher.
struct Pipeline {
    front: Service,
    back: Service,
    /// Where webhooks go.
    url: String,
}

/// What the report calls the two processes.
fn process_names(reference: bool) -> [&'static str; 2] {
    if reference {
        ["reference", "reference-dispatcher"]
    } else {
        ["ingest", "dispatcher"]
    }
}

impl Pipeline {
    async fn sluice(
        bin_dir: &Path,
        nats: &Nats,
        api: &Api,
        config: &Path,
        dispatcher_args: &[String],
    ) -> anyhow::Result<Pipeline> {
        let ingest = Ingest::start(bin_dir, &nats.url(), config, &[]).await?;
        let (mut dispatcher, metrics) = Dispatcher::spawn(
            bin_dir,
            &nats.url(),
            config,
            &api.kubeconfig,
            dispatcher_args,
        )?;
        dispatcher.wait_ready(metrics).await?;
        Ok(Pipeline {
            url: ingest.url(),
            front: ingest.service,
            back: dispatcher.service,
        })
    }

    async fn reference(nats: &Nats, api: &Api, secret: &str) -> anyhow::Result<Pipeline> {
        let server = Reference::start(&nats.url(), secret).await?;
        let dispatcher = ReferenceDispatcher::start(&nats.url(), api).await?;
        Ok(Pipeline {
            url: server.url(),
            front: server.service,
            back: dispatcher.service,
        })
    }
}

/// The webhooks of one generator run that must each get a run: their ids, and the indices
/// of those answered 2xx.
pub struct Awaited<'a> {
    pub ids: Ids,
    pub accepted: &'a [u64],
}

/// Waits until every webhook of `awaited` has a run, or no run was created for
/// `drain_timeout` (then says how many are missing); `check` fails when a process it depends
/// on has exited. Creates are counted cheaply until there are as many as webhooks to wait
/// for; from then on runs are paired with webhooks, since runs of webhooks the sender saw
/// fail (stored all the same) count too.
pub async fn await_runs(
    api: &Api,
    awaited: &[Awaited<'_>],
    drain_timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let wanted: u64 = awaited.iter().map(|a| a.accepted.len() as u64).sum();
    let created = || api.double.count_answered(Verb::Create, "pipelineruns", 201) as u64;
    let mut last = (created(), Instant::now());
    loop {
        check()?;
        let now = created();
        if now != last.0 {
            last = (now, Instant::now());
        }
        let pause = if now >= wanted {
            let missing = without_run(api, awaited);
            if missing == 0 {
                return Ok(());
            }
            if last.1.elapsed() > drain_timeout {
                eprintln!(
                    "no run created for {drain_timeout:?}; {missing} of {wanted} accepted webhooks have none"
                );
                return Ok(());
            }
            Duration::from_secs(1)
        } else {
            if last.1.elapsed() > drain_timeout {
                eprintln!(
                    "no run created for {drain_timeout:?}; {now} runs for {wanted} accepted webhooks"
                );
                return Ok(());
            }
            Duration::from_millis(250)
        };
        tokio::time::sleep(pause).await;
    }
}

/// Accepted webhooks of `awaited` without a stored run.
fn without_run(api: &Api, awaited: &[Awaited<'_>]) -> u64 {
    let (runs, _) = stored_runs(api);
    let mut have: Vec<HashSet<u64>> = vec![HashSet::new(); awaited.len()];
    for delivery in runs.iter().filter_map(|run| run.delivery.as_deref()) {
        for (seen, awaited) in have.iter_mut().zip(awaited) {
            if let Some(index) = awaited.ids.index_of(delivery) {
                seen.insert(index);
            }
        }
    }
    awaited
        .iter()
        .zip(&have)
        .map(|(awaited, seen)| {
            awaited
                .accepted
                .iter()
                .filter(|index| !seen.contains(index))
                .count() as u64
        })
        .sum()
}

/// Pairs every stored run with its webhook and measures the time between them; the
/// timeline has one point per `bucket` of intended send time.
pub fn match_runs(
    api: &Api,
    ids: Ids,
    schedule: Schedule,
    outcome: generator::Outcome,
    accepted: u64,
    bucket: Duration,
) -> anyhow::Result<E2eReport> {
    let (runs, create_statuses) = stored_runs(api);
    let mut histogram = report::histogram()?;
    let mut timeline = Timeline::default();
    let mut runs_per_webhook: HashMap<u64, u32> = HashMap::new();
    let mut unmatched = 0;
    let mut last_create: Option<SystemTime> = None;
    let measure_start = outcome.start_wall + schedule.measure_start();
    for run in &runs {
        let Some(index) = run.delivery.as_deref().and_then(|d| ids.index_of(d)) else {
            unmatched += 1;
            continue;
        };
        *runs_per_webhook.entry(index).or_default() += 1;
        let Some(at) = run.at else {
            continue;
        };
        last_create = last_create.max(Some(at));
        if !schedule.is_measured(index) {
            continue;
        }
        let due = outcome.start_wall + schedule.offset(index);
        let latency = at.duration_since(due).unwrap_or_default();
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        histogram.saturating_record(us);
        let since_start = due.duration_since(measure_start).unwrap_or_default();
        let slot = (since_start.as_secs() / bucket.as_secs().max(1)) as usize;
        timeline.record(slot, us)?;
    }
    let missing = outcome
        .accepted_indices
        .iter()
        .filter(|i| !runs_per_webhook.contains_key(i))
        .count() as u64;
    let accepted_set: HashSet<u64> = outcome.accepted_indices.iter().copied().collect();
    let runs_without_2xx = runs_per_webhook
        .keys()
        .filter(|index| !accepted_set.contains(index))
        .count() as u64;
    let duplicated = runs_per_webhook.values().filter(|&&n| n > 1).count() as u64;
    let last_due = outcome.start_wall + schedule.offset(schedule.total().saturating_sub(1));
    let drain_secs = last_create
        .and_then(|at| at.duration_since(last_due).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    Ok(E2eReport {
        http: outcome.report,
        end_to_end: LatencySummary::from_histogram(&histogram),
        curve: report::percentile_curve(&histogram),
        timeline: timeline.points(),
        webhooks_accepted: accepted,
        runs_created: runs.len() as u64,
        missing,
        duplicated,
        unmatched,
        runs_without_2xx,
        create_statuses,
        drain_secs,
        reference: false,
        ingest_process: ProcessFigures::default(),
        dispatcher_process: ProcessFigures::default(),
    })
}

/// A PipelineRun the API double stores.
pub struct StoredRun {
    pub namespace: String,
    /// The webhook delivery its `delivery` param names.
    pub delivery: Option<String>,
    /// When the API double answered its create.
    pub at: Option<SystemTime>,
}

/// Every PipelineRun the API double stores, and the answers to creates by status.
pub fn stored_runs(api: &Api) -> (Vec<StoredRun>, BTreeMap<String, u64>) {
    let mut create_statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut stored_at: HashMap<(String, String), SystemTime> = HashMap::new();
    for create in api.double.requests_for(Verb::Create, "pipelineruns") {
        let status = create
            .status
            .map_or("no answer".to_owned(), |s| s.to_string());
        *create_statuses.entry(status).or_default() += 1;
        if create.status == Some(201)
            && let (Some(namespace), Some(name), Some(at)) =
                (create.namespace, create.name, create.answered_at)
        {
            stored_at.insert((namespace, name), at);
        }
    }
    let runs = api
        .double
        .all_objects("tekton.dev", "pipelineruns")
        .iter()
        .map(|run| {
            let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
            let key = (
                text(&run["metadata"]["namespace"]),
                text(&run["metadata"]["name"]),
            );
            StoredRun {
                at: stored_at.get(&key).copied(),
                namespace: key.0,
                delivery: delivery_param(run).map(str::to_owned),
            }
        })
        .collect();
    (runs, create_statuses)
}

/// The `delivery` param of a PipelineRun.
pub(crate) fn delivery_param(run: &Value) -> Option<&str> {
    run["spec"]["params"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == "delivery")?["value"]
        .as_str()
}

fn table(report: &E2eReport) -> String {
    use std::fmt::Write as _;
    let mut out = report.http.table();
    let _ = writeln!(
        out,
        "== end to end (intended webhook send → PipelineRun stored by the API double)"
    );
    let _ = writeln!(out, "   {}", report::latency_header());
    let _ = writeln!(
        out,
        "   {}",
        report::latency_row("webhook → run", &report.end_to_end)
    );
    let equal = if report.runs_created == report.webhooks_accepted && report.missing == 0 {
        "equal".to_owned()
    } else {
        format!(
            "NOT EQUAL: {} missing, {} duplicated, {} unmatched",
            report.missing, report.duplicated, report.unmatched
        )
    };
    let _ = writeln!(
        out,
        "   runs created {} vs webhooks accepted {}: {equal}",
        report.runs_created, report.webhooks_accepted
    );
    let statuses: Vec<String> = report
        .create_statuses
        .iter()
        .map(|(code, count)| format!("{code} × {count}"))
        .collect();
    let _ = writeln!(
        out,
        "   create answers: {}; last run {:.2} s after the last webhook was due",
        statuses.join(", "),
        report.drain_secs
    );
    for (name, figures) in process_names(report.reference)
        .into_iter()
        .zip([&report.ingest_process, &report.dispatcher_process])
    {
        let _ = writeln!(
            out,
            "   {name}: start-to-ready {:.0} ms, peak RSS (VmHWM) {} KiB, CPU {:.1} s ({:.1} µs/event)",
            figures.start_to_ready_ms,
            figures.peak_rss_kib,
            figures.cpu_seconds,
            figures.cpu_seconds * 1e6 / report.webhooks_accepted.max(1) as f64
        );
    }
    out
}

fn plot(report: &E2eReport) -> String {
    let (http_curve, _) = report.http.series("webhook accepted (HTTP 202)");
    let e2e_curve = svg::Series {
        label: "PipelineRun created".to_owned(),
        points: report
            .curve
            .iter()
            .map(|p| (p.percentile, p.latency_us as f64 / 1000.0))
            .collect(),
    };
    let per_second = |name: &str, pick: fn(&TimelinePoint) -> u64| svg::Series {
        label: name.to_owned(),
        points: report
            .timeline
            .iter()
            .map(|p| (f64::from(p.second), pick(p) as f64 / 1000.0))
            .collect(),
    };
    let timeline = [
        per_second("run created p99", |p| p.p99_us),
        per_second("run created p50", |p| p.p50_us),
        per_second("run created max", |p| p.max_us),
    ];
    let title = format!(
        "end to end: {:.0}/s for {:.0} s, {}",
        report.http.rate,
        report.http.duration_secs,
        report.http.scenario.describe()
    );
    svg::latency_plot(&title, &[http_curve, e2e_curve], &timeline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delivery_param_is_found_by_name() {
        let run = serde_json::json!({"spec": {"params": [
            {"name": "revision", "value": "abc"},
            {"name": "delivery", "value": "1234"}
        ]}});
        assert_eq!(delivery_param(&run), Some("1234"));
        assert_eq!(delivery_param(&serde_json::json!({"spec": {}})), None);
    }
}
