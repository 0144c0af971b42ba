//! The open-loop generator: signed webhooks at a constant arrival rate over a fixed set of
//! keep-alive HTTP/1.1 connections, with latency measured from each request's intended send
//! time (see [`crate::schedule`]).
//!
//! It runs on its own threads (one current-thread tokio runtime each, `--threads`, default
//! 1), apart from whatever else the process runs (the Kubernetes API double in `e2e`), so it
//! neither steals from nor waits for them. Connections share one request counter: a free
//! connection takes the next index, waits until that request is due and sends it. When every
//! connection is busy, due requests wait for one, and that wait is part of their latency.
//!
//! A run ends when every request has been answered, or when requests are still unsent a
//! grace period after the last one was due: those are reported as `not_sent`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, anyhow};
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use tokio::sync::{mpsc, watch};

use crate::cli::LoadArgs;
use crate::client::{self, Base, Connection};
use crate::payload::{Ids, RequestFactory};
use crate::procstat;
use crate::progress::Progress;
use crate::report::{self, CpuUse, LatencySummary, RunReport, Timeline};
use crate::scenario::Scenario;
use crate::schedule::Schedule;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What is measured (`reference`, `ingest`…), for the report.
    pub label: String,
    /// The URL base, for the report.
    pub url: String,
    pub base: Base,
    pub scenario: Scenario,
    pub warmup: Duration,
    pub duration: Duration,
    pub schedule: Schedule,
    pub connections: usize,
    pub threads: usize,
    /// How long one request may take before it counts as failed.
    pub timeout: Duration,
    /// How long after the last request was due unsent requests may still be sent.
    pub grace: Duration,
    pub factory: Arc<RequestFactory>,
    /// Keep the indices of accepted requests, warm-up included (for `e2e`).
    pub keep_accepted: bool,
    /// The server's process, to report its CPU time.
    pub server_pid: Option<u32>,
    /// The nats-server the server publishes to, when this tool started it: its CPU time per
    /// request is reported too, since at saturation it shares the cores.
    pub nats_pid: Option<u32>,
}

/// Where and what a [`Plan`] sends.
pub struct Sending<'a> {
    /// What the report calls the server.
    pub label: &'a str,
    /// URL base: requests go to `<url>/hooks/{namespace}/{listener}`.
    pub url: &'a str,
    pub scenario: Scenario,
    /// The webhook secret every listener shares.
    pub secret: &'a str,
}

impl Plan {
    /// `load` sent to `sending`'s server, each request signed and given its delivery id from
    /// `ids`. Accepted requests are not kept, and no process's CPU is measured, until the
    /// caller says so.
    pub fn new(sending: Sending<'_>, load: &LoadArgs, ids: Ids) -> anyhow::Result<Plan> {
        let base = Base::parse(sending.url)?;
        let factory = RequestFactory::new(
            &sending.scenario,
            sending.secret,
            load.body_size,
            &base.host,
            &base.path_prefix,
            ids,
        )?;
        Ok(Plan {
            label: sending.label.to_owned(),
            url: sending.url.to_owned(),
            base,
            scenario: sending.scenario,
            warmup: load.warmup,
            duration: load.duration,
            schedule: Schedule::new(load.rate, load.warmup, load.duration)?,
            connections: load.connections,
            threads: load.threads,
            timeout: load.timeout,
            grace: load.grace,
            factory: Arc::new(factory),
            keep_accepted: false,
            server_pid: None,
            nats_pid: None,
        })
    }
}

/// What a run measured, plus what `e2e` needs to follow the requests further.
#[derive(Debug)]
pub struct Outcome {
    pub report: RunReport,
    /// Request `i` was due at `start_wall + schedule.offset(i)`.
    pub start_wall: SystemTime,
    /// Indices of the requests answered 2xx (warm-up included), when
    /// [`Plan::keep_accepted`].
    pub accepted_indices: Vec<u64>,
}

/// Shared by every connection of every generator thread.
struct Shared {
    plan: Plan,
    next: AtomicU64,
    progress: Arc<Progress>,
}

/// Why a request got no answer.
#[derive(Debug)]
enum Failure {
    Connect(String),
    Connection(String),
    Timeout,
}

impl Failure {
    fn kind(&self) -> &'static str {
        match self {
            Failure::Connect(_) => "connect",
            Failure::Connection(_) => "connection",
            Failure::Timeout => "timeout",
        }
    }

    fn message(&self, timeout: Duration) -> String {
        match self {
            Failure::Connect(message) | Failure::Connection(message) => message.clone(),
            Failure::Timeout => format!("no answer within {timeout:?}"),
        }
    }
}

/// One thread's measurements; merged at the end.
struct Recorder {
    latency: Histogram<u64>,
    service: Histogram<u64>,
    lag: Histogram<u64>,
    timeline: Timeline,
    statuses: BTreeMap<String, u64>,
    error_kinds: BTreeMap<String, u64>,
    error_examples: BTreeMap<String, String>,
    sent: u64,
    accepted: u64,
    errors: u64,
    warmup_errors: u64,
    last_done: Option<Instant>,
    accepted_indices: Vec<u64>,
}

impl Recorder {
    fn new() -> anyhow::Result<Recorder> {
        Ok(Recorder {
            latency: report::histogram()?,
            service: report::histogram()?,
            lag: report::histogram()?,
            timeline: Timeline::default(),
            statuses: BTreeMap::new(),
            error_kinds: BTreeMap::new(),
            error_examples: BTreeMap::new(),
            sent: 0,
            accepted: 0,
            errors: 0,
            warmup_errors: 0,
            last_done: None,
            accepted_indices: Vec::new(),
        })
    }

    fn merge(&mut self, other: Recorder) -> anyhow::Result<()> {
        let merge = |mine: &mut Histogram<u64>, theirs: &Histogram<u64>| {
            mine.add(theirs).context("failed to merge histograms")
        };
        merge(&mut self.latency, &other.latency)?;
        merge(&mut self.service, &other.service)?;
        merge(&mut self.lag, &other.lag)?;
        self.timeline.merge(other.timeline)?;
        for (key, count) in other.statuses {
            *self.statuses.entry(key).or_default() += count;
        }
        for (key, count) in other.error_kinds {
            *self.error_kinds.entry(key).or_default() += count;
        }
        for (key, example) in other.error_examples {
            self.error_examples.entry(key).or_insert(example);
        }
        self.sent += other.sent;
        self.accepted += other.accepted;
        self.errors += other.errors;
        self.warmup_errors += other.warmup_errors;
        self.last_done = self.last_done.max(other.last_done);
        self.accepted_indices.extend(other.accepted_indices);
        Ok(())
    }

    fn failure(&mut self, kind: String, example: impl FnOnce() -> String, second: Option<usize>) {
        *self.error_kinds.entry(kind.clone()).or_default() += 1;
        self.error_examples.entry(kind).or_insert_with(example);
        match second {
            Some(second) => {
                self.errors += 1;
                self.timeline.error(second);
            }
            None => self.warmup_errors += 1,
        }
    }
}

/// The timestamps of one request.
struct Sample {
    index: u64,
    due: Instant,
    sent: Instant,
    done: Instant,
}

impl Shared {
    fn record(
        &self,
        recorder: &mut Recorder,
        measure_start: Instant,
        sample: Sample,
        result: Result<u16, Failure>,
    ) -> anyhow::Result<()> {
        let schedule = &self.plan.schedule;
        recorder.sent += 1;
        // The second of the recorded span this request was due in; `None` in the warm-up.
        let second = schedule.is_measured(sample.index).then(|| {
            sample
                .due
                .saturating_duration_since(measure_start)
                .as_secs() as usize
        });
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        match result {
            Ok(status) => {
                *recorder.statuses.entry(status.to_string()).or_default() += 1;
                if (200..300).contains(&status) {
                    self.progress.accepted.fetch_add(1, Ordering::Relaxed);
                    if let Some(second) = second {
                        let latency = us(sample.done - sample.due);
                        recorder.accepted += 1;
                        recorder.latency.saturating_record(latency);
                        recorder
                            .service
                            .saturating_record(us(sample.done - sample.sent));
                        recorder.lag.saturating_record(us(sample
                            .sent
                            .saturating_duration_since(sample.due)));
                        recorder.timeline.record(second, latency)?;
                        recorder.last_done = recorder.last_done.max(Some(sample.done));
                    }
                    if self.plan.keep_accepted {
                        recorder.accepted_indices.push(sample.index);
                    }
                } else {
                    self.progress.errors.fetch_add(1, Ordering::Relaxed);
                    recorder.failure(
                        format!("status {status}"),
                        || format!("answered {status}"),
                        second,
                    );
                }
            }
            Err(failure) => {
                self.progress.errors.fetch_add(1, Ordering::Relaxed);
                recorder.failure(
                    failure.kind().to_owned(),
                    || failure.message(self.plan.timeout),
                    second,
                );
            }
        }
        Ok(())
    }
}

/// Sends one request on `connection`, reconnecting first when it is closed. A connection
/// that failed or timed out is dropped, so the next request opens a new one.
async fn send(
    connection: &mut Option<Connection>,
    shared: &Shared,
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> Result<u16, Failure> {
    let addr = shared.plan.base.addr;
    let attempt = async {
        if connection.as_ref().is_none_or(Connection::is_closed) {
            *connection = Some(
                client::connect(addr)
                    .await
                    .map_err(|e| Failure::Connect(format!("{e:#}")))?,
            );
        }
        let Some(sender) = connection.as_mut() else {
            return Err(Failure::Connect("no connection".to_owned()));
        };
        sender
            .ready()
            .await
            .map_err(|e| Failure::Connection(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Failure::Connection(e.to_string()))?;
        let status = response.status().as_u16();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure::Connection(format!("reading the answer: {e}")))?;
        Ok(status)
    };
    let result = match tokio::time::timeout(shared.plan.timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Timeout),
    };
    if result.is_err() {
        *connection = None;
    }
    result
}

/// One connection's loop: take the next index, wait until it is due, send, record.
async fn drive(
    shared: Arc<Shared>,
    start: Instant,
    mut connection: Option<Connection>,
    recorder: Rc<RefCell<Recorder>>,
) -> anyhow::Result<()> {
    let schedule = shared.plan.schedule;
    let deadline = start + schedule.end() + shared.plan.grace;
    let measure_start = start + schedule.measure_start();
    loop {
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= schedule.total() || Instant::now() > deadline {
            return Ok(());
        }
        let due = start + schedule.offset(index);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let request = shared.plan.factory.request(index);
        let sent = Instant::now();
        shared.progress.sent.fetch_add(1, Ordering::Relaxed);
        let result = send(&mut connection, &shared, request).await;
        let sample = Sample {
            index,
            due,
            sent,
            done: Instant::now(),
        };
        shared.record(&mut recorder.borrow_mut(), measure_start, sample, result)?;
    }
}

/// One generator thread: opens its connections, reports ready, waits for the common start,
/// then drives them.
fn generator_thread(
    shared: Arc<Shared>,
    connections: usize,
    ready: mpsc::UnboundedSender<anyhow::Result<()>>,
    mut start: watch::Receiver<Option<Instant>>,
) -> anyhow::Result<Recorder> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the generator's runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let mut opened = Vec::with_capacity(connections);
        for _ in 0..connections {
            match client::connect(shared.plan.base.addr).await {
                Ok(connection) => opened.push(connection),
                Err(error) => {
                    let message = format!("{error:#}");
                    let _ = ready.send(Err(error));
                    return Err(anyhow!(message));
                }
            }
        }
        let _ = ready.send(Ok(()));
        let start = loop {
            if let Some(start) = *start.borrow_and_update() {
                break start;
            }
            start
                .changed()
                .await
                .context("the run was called off before it started")?;
        };
        let recorder = Rc::new(RefCell::new(Recorder::new()?));
        let tasks: Vec<_> = opened
            .into_iter()
            .map(|connection| {
                tokio::task::spawn_local(drive(
                    shared.clone(),
                    start,
                    Some(connection),
                    recorder.clone(),
                ))
            })
            .collect();
        for task in tasks {
            task.await.context("a connection task failed")??;
        }
        Rc::try_unwrap(recorder)
            .map(RefCell::into_inner)
            .map_err(|_| anyhow!("a connection task outlived the run"))
    })
}

/// Runs `plan` and reports what it measured.
pub async fn run(plan: Plan) -> anyhow::Result<Outcome> {
    let threads = plan.threads.clamp(1, plan.connections.max(1));
    let connections = plan.connections.max(1);
    let progress = Arc::new(Progress::new(&plan.label, plan.schedule.total()));
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        next: AtomicU64::new(0),
        progress: progress.clone(),
    });
    let (ready_sender, mut ready) = mpsc::unbounded_channel();
    let (start_sender, start) = watch::channel(None);
    let mut handles = Vec::with_capacity(threads);
    for thread in 0..threads {
        let share = connections / threads + usize::from(thread < connections % threads);
        let shared = shared.clone();
        let ready = ready_sender.clone();
        let start = start.clone();
        let handle = std::thread::Builder::new()
            .name(format!("generator-{thread}"))
            .spawn(move || generator_thread(shared, share, ready, start))
            .context("failed to start a generator thread")?;
        handles.push(handle);
    }
    drop(ready_sender);
    for _ in 0..threads {
        ready
            .recv()
            .await
            .context("a generator thread ended before it was ready")?
            .with_context(|| format!("failed to open the connections to {}", plan.url))?;
    }

    let own_cpu = procstat::cpu_seconds(None);
    let process_cpu = |pid: Option<u32>| pid.and_then(|pid| procstat::cpu_seconds(Some(pid)));
    let server_cpu = process_cpu(plan.server_pid);
    let nats_cpu = process_cpu(plan.nats_pid);
    // A moment for every thread to see the start before the first request is due.
    let lead = Duration::from_millis(20);
    let start = Instant::now() + lead;
    let start_wall = SystemTime::now() + lead;
    start_sender
        .send(Some(start))
        .map_err(|_| anyhow!("the generator threads ended before the start"))?;
    let reporter = progress.clone().spawn_reporter(start);

    let joined = tokio::task::spawn_blocking(move || {
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .map_err(|_| anyhow!("a generator thread panicked"))?
            })
            .collect::<anyhow::Result<Vec<Recorder>>>()
    })
    .await
    .context("failed to wait for the generator threads")?;
    reporter.abort();
    progress.finish();
    let mut recorders = joined?.into_iter();
    let mut recorder = recorders.next().context("the generator ran no thread")?;
    for other in recorders {
        recorder.merge(other)?;
    }

    let cpu = cpu_use(
        (own_cpu, procstat::cpu_seconds(None)),
        (server_cpu, process_cpu(plan.server_pid)),
        (nats_cpu, process_cpu(plan.nats_pid)),
        recorder.sent,
    );
    let schedule = plan.schedule;
    let measure_start = start + schedule.measure_start();
    let measured = recorder
        .last_done
        .map_or(Duration::ZERO, |done| {
            done.saturating_duration_since(measure_start)
        })
        .max(schedule.measured_span());
    let measured_secs = measured.as_secs_f64();
    let (github_bytes, gitlab_bytes) = plan.factory.body_sizes();
    let report = RunReport {
        label: plan.label.clone(),
        target: plan.url.clone(),
        scenario: plan.scenario,
        rate: schedule.rate(),
        duration_secs: plan.duration.as_secs_f64(),
        warmup_secs: plan.warmup.as_secs_f64(),
        connections,
        body_bytes: (github_bytes, gitlab_bytes),
        intended: schedule.total(),
        sent: recorder.sent,
        not_sent: schedule.total().saturating_sub(recorder.sent),
        accepted: recorder.accepted,
        errors: recorder.errors,
        warmup_errors: recorder.warmup_errors,
        statuses: recorder.statuses,
        error_kinds: recorder.error_kinds,
        error_examples: recorder.error_examples,
        measured_secs,
        throughput: recorder.accepted as f64 / measured_secs.max(1e-9),
        latency: LatencySummary::from_histogram(&recorder.latency),
        service_time: LatencySummary::from_histogram(&recorder.service),
        send_lag: LatencySummary::from_histogram(&recorder.lag),
        curve: report::percentile_curve(&recorder.latency),
        timeline: recorder.timeline.points(),
        cpu,
    };
    let mut accepted_indices = recorder.accepted_indices;
    accepted_indices.sort_unstable();
    Ok(Outcome {
        report,
        start_wall,
        accepted_indices,
    })
}

/// CPU time per process over the run, from `(before, after)` readings of the generator,
/// the server and nats-server.
fn cpu_use(
    own: (Option<f64>, Option<f64>),
    server: (Option<f64>, Option<f64>),
    nats: (Option<f64>, Option<f64>),
    requests: u64,
) -> CpuUse {
    let per_request = |seconds: f64| seconds * 1e6 / (requests.max(1) as f64);
    let used = |(before, after): (Option<f64>, Option<f64>)| {
        before.zip(after).map(|(before, after)| after - before)
    };
    let generator_seconds = used(own).unwrap_or(0.0);
    let server_seconds = used(server);
    let nats_seconds = used(nats);
    CpuUse {
        server_seconds,
        server_us_per_request: server_seconds.map(per_request),
        generator_seconds,
        generator_us_per_request: per_request(generator_seconds),
        nats_seconds,
        nats_us_per_request: nats_seconds.map(per_request),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use axum::http::StatusCode;

    use super::*;
    use crate::payload::Ids;
    use crate::scenario::ProviderMix;

    /// The request the server holds, and for how long.
    const STALLED: usize = 20;
    const STALL: Duration = Duration::from_millis(300);

    /// A server on loopback that answers 202 at once, except request [`STALLED`], which it
    /// holds for [`STALL`].
    async fn stalling_server() -> String {
        let seen = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().fallback(move || {
            let seen = seen.clone();
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) == STALLED {
                    tokio::time::sleep(STALL).await;
                }
                StatusCode::ACCEPTED
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stall_shows_in_latency_from_the_intended_send_time() {
        let url = stalling_server().await;
        let base = Base::parse(&url).unwrap();
        let scenario = Scenario {
            tenants: 1,
            listeners: 1,
            provider: ProviderMix::Github,
        };
        let factory =
            RequestFactory::new(&scenario, "s3cret", 256, &base.host, "", Ids::new(7)).unwrap();
        // One connection at 100/s for 1 s: the ~30 requests due during the stall wait behind
        // the held one, unsent.
        let plan = Plan {
            label: "stall".to_owned(),
            url,
            base,
            scenario,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            schedule: Schedule::new(100.0, Duration::ZERO, Duration::from_secs(1)).unwrap(),
            connections: 1,
            threads: 1,
            timeout: Duration::from_secs(5),
            grace: Duration::from_secs(5),
            factory: Arc::new(factory),
            keep_accepted: false,
            server_pid: None,
            nats_pid: None,
        };
        let report = run(plan).await.unwrap().report;
        assert_eq!(report.accepted, 100);
        let figures = format!(
            "latency {:?}, service time {:?}, send lag {:?}",
            report.latency, report.service_time, report.send_lag
        );
        let stall_us = STALL.as_micros() as u64;
        // The held request itself.
        assert!(report.service_time.max_us >= stall_us, "{figures}");
        // A closed-loop view (time from send to answer) shows one slow request in 100…
        assert!(report.service_time.p90_us < stall_us / 3, "{figures}");
        // …while a fifth of the requests were answered over 100 ms after they were due.
        assert!(report.latency.p90_us >= stall_us / 3, "{figures}");
        assert!(report.send_lag.max_us >= stall_us / 2, "{figures}");
    }

    #[test]
    fn cpu_time_is_shared_out_per_request() {
        let cpu = cpu_use(
            (Some(1.0), Some(3.0)),
            (Some(10.0), Some(15.0)),
            (Some(4.0), Some(8.5)),
            1_000_000,
        );
        assert!((cpu.generator_us_per_request - 2.0).abs() < 1e-9);
        assert_eq!(cpu.server_seconds, Some(5.0));
        assert!((cpu.server_us_per_request.unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(cpu.nats_seconds, Some(4.5));
        assert!((cpu.nats_us_per_request.unwrap() - 4.5).abs() < 1e-9);
        let unknown = cpu_use((None, None), (None, None), (None, None), 0);
        assert_eq!(unknown.server_seconds, None);
        assert_eq!(unknown.nats_us_per_request, None);
        assert_eq!(unknown.generator_seconds, 0.0);
    }
}
