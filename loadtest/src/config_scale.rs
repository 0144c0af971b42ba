//! `config-scale`: what reading Tekton Triggers' configuration from the Kubernetes API costs
//! with many namespaces.
//!
//! Each round starts afresh: a nats-server, the Kubernetes API double (in this process)
//! holding `--namespaces` × the objects `config` writes (Secrets stored as the API server
//! stores them, base64 `data`), then `sluice-ingest` with `KUBECONFIG` pointing at the double
//! and no configuration directory. Ingest is timed from spawn to `/readyz` 200 and its
//! memory read then; then one EventListener is added to the first namespace and timed from
//! the insert until a signed push to it is answered 202, and memory read again. Ingest is
//! stopped, so that every request the double records after that is the dispatcher's, and
//! `sluice-dispatcher` (writing runs to a directory, `--sink-dir`, so that it creates no runs
//! through the API) is timed to ready the same way, then until it has written the run of
//! that push, and until it has written every listener's status (it is granted what the
//! documented RBAC grants, so it takes the status Lease as when deployed). Both binaries'
//! API requests are counted by verb and resource (any the double does not serve, by method
//! and path without names), and the time each took to build a catalogue is read from their
//! logs (`build_ms`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use sluice_tests::api_double::{RecordedRequest, Verb};

use crate::cli::ConfigScaleArgs;
use crate::client;
use crate::config_dir::{as_stored, listener_object, namespace_objects, resource_of};
use crate::payload::{Ids, RequestFactory};
use crate::procstat;
use crate::report::{self, Spread};
use crate::scenario::Scenario;
use crate::stack::{self, Api, Nats, ProcessFigures, Service};

/// How often the added listener is tried, and the sink directory looked at.
const POLL: Duration = Duration::from_millis(5);

/// One round.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Round {
    pub ingest: ProcessFigures,
    /// Catalogue builds logged by ingest (`build_ms`), in order.
    pub ingest_builds_ms: Vec<u64>,
    /// From the insert of the new listener until a push to it was answered 202.
    pub change_to_served_ms: f64,
    /// Ingest's resident set when the change was served.
    pub ingest_rss_after_change_kib: u64,
    /// Ingest's peak resident set (`VmHWM`) when the change was served.
    pub ingest_peak_after_change_kib: u64,
    /// Ingest's requests to the API, by `verb resource`.
    pub ingest_requests: BTreeMap<String, u64>,
    /// From ingest's first GET of a Secret to the answer to its last.
    pub ingest_secret_reads_ms: f64,
    pub dispatcher: ProcessFigures,
    pub dispatcher_builds_ms: Vec<u64>,
    /// From the dispatcher's ready until it wrote the run of the push sent to ingest.
    pub ready_to_run_written_ms: Option<f64>,
    pub dispatcher_requests: BTreeMap<String, u64>,
    pub dispatcher_secret_reads_ms: f64,
    /// EventListener statuses the dispatcher wrote (PATCHes of `eventlisteners/status`
    /// answered 2xx).
    pub statuses_written: u64,
    /// From the dispatcher's ready until the answer to its last status PATCH.
    pub ready_to_statuses_written_ms: Option<f64>,
}

/// min / median / max across rounds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub ingest_ready_ms: Spread,
    pub ingest_rss_ready_mib: Spread,
    pub ingest_peak_ready_mib: Spread,
    pub ingest_first_build_ms: Spread,
    pub change_to_served_ms: Spread,
    pub ingest_rss_after_change_mib: Spread,
    pub ingest_peak_after_change_mib: Spread,
    pub dispatcher_ready_ms: Spread,
    pub dispatcher_rss_ready_mib: Spread,
    pub dispatcher_peak_mib: Spread,
    pub dispatcher_first_build_ms: Spread,
    pub ingest_secret_reads_ms: Spread,
}

/// The whole `config-scale` report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigScaleReport {
    pub scenario: Scenario,
    /// Objects held by the API double, by kind.
    pub objects: BTreeMap<String, u64>,
    pub rounds: Vec<Round>,
    pub summary: Summary,
}

pub async fn run(args: ConfigScaleArgs) -> anyhow::Result<()> {
    if args.secret.is_empty() {
        bail!("the webhook secret must not be empty");
    }
    let scenario = Scenario {
        tenants: args.namespaces,
        listeners: args.listeners_per_namespace,
        provider: args.provider,
    };
    let bin_dir = stack::bin_dir(args.stack.bin_dir.as_deref())?;
    stack::binary(&bin_dir, "sluice-ingest")?;
    stack::binary(&bin_dir, "sluice-dispatcher")?;
    let mut objects = BTreeMap::new();
    let mut rounds = Vec::new();
    for round in 1..=args.rounds {
        eprintln!(
            "config-scale: round {round}/{}, {}",
            args.rounds,
            scenario.describe()
        );
        let (figures, counted) = one_round(&args, &scenario, &bin_dir).await?;
        print!("{}", round_table(round, &figures));
        objects = counted;
        rounds.push(figures);
    }
    let report = ConfigScaleReport {
        scenario,
        objects,
        summary: summarise(&rounds),
        rounds,
    };
    print!("{}", summary_table(&report));
    if let Some(path) = &args.report_json {
        report::write_json(path, &report)?;
    }
    Ok(())
}

/// One fresh run; the round's figures and the objects stored, by kind.
async fn one_round(
    args: &ConfigScaleArgs,
    scenario: &Scenario,
    bin_dir: &Path,
) -> anyhow::Result<(Round, BTreeMap<String, u64>)> {
    let nats = Nats::start(args.stack.nats.as_deref()).await?;
    let api = Api::start().await?;
    grant_status_writer(&api);
    let mut objects: BTreeMap<String, u64> = BTreeMap::new();
    let started = Instant::now();
    for tenant in 0..scenario.tenants {
        for object in namespace_objects(scenario, tenant, &args.secret) {
            insert(&api, object, &mut objects)?;
        }
    }
    eprintln!(
        "config-scale: {} objects stored in {:.2} s",
        objects.values().sum::<u64>(),
        started.elapsed().as_secs_f64()
    );
    let mut round = Round::default();

    // Ingest: ready, then one listener added.
    let mut ingest = spawn(
        bin_dir,
        "sluice-ingest",
        &nats.url(),
        &api.kubeconfig,
        &args.ingest_args,
    )?;
    ingest.service.wait_ready(ingest.addr, "/readyz").await?;
    let added = Scenario {
        listeners: scenario.listeners + 1,
        ..*scenario
    };
    let changed = Instant::now();
    insert(
        &api,
        listener_object(&added, 0, scenario.listeners),
        &mut BTreeMap::new(),
    )?;
    push_until_accepted(&mut ingest, &added, &args.secret, args.change_timeout).await?;
    round.change_to_served_ms = changed.elapsed().as_secs_f64() * 1000.0;
    round.ingest_rss_after_change_kib = procstat::rss_kib(ingest.service.pid()).unwrap_or(0);
    round.ingest_peak_after_change_kib = procstat::peak_rss_kib(ingest.service.pid()).unwrap_or(0);
    let ingest_figures = ingest.service.figures.clone();
    // The rebuild after the change is logged just after the catalogue is swapped in.
    tokio::time::sleep(Duration::from_millis(200)).await;
    round.ingest_builds_ms = builds_ms(&ingest.service.log());
    drop(ingest);
    round.ingest = ingest_figures;
    let requests = api.double.requests();
    round.ingest_requests = by_verb_and_resource(&requests);
    round.ingest_secret_reads_ms = secret_reads_ms(&requests);
    let seen = requests.len();

    // The dispatcher: ready, then the run of that push written.
    let sink = tempfile::tempdir().context("failed to create a temporary directory")?;
    let mut extra = vec!["--sink-dir".to_owned(), sink.path().display().to_string()];
    extra.extend(args.dispatcher_args.iter().cloned());
    let mut dispatcher = spawn(
        bin_dir,
        "sluice-dispatcher",
        &nats.url(),
        &api.kubeconfig,
        &extra,
    )?;
    dispatcher
        .service
        .wait_ready(dispatcher.addr, "/readyz")
        .await?;
    let ready = Instant::now();
    let ready_wall = SystemTime::now();
    while ready.elapsed() < args.change_timeout {
        dispatcher.service.check_running()?;
        if files_under(sink.path()) > 0 {
            round.ready_to_run_written_ms = Some(ready.elapsed().as_secs_f64() * 1000.0);
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    // Then every listener's status, once: wait until the PATCHes stop.
    let listeners = u64::from(scenario.tenants) * u64::from(scenario.listeners) + 1;
    let mut last = (0, Instant::now());
    while ready.elapsed() < args.change_timeout {
        dispatcher.service.check_running()?;
        let written = status_patches(&api);
        if written.len() as u64 >= listeners {
            break;
        }
        if written.len() != last.0 {
            last = (written.len(), Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let written = status_patches(&api);
    round.statuses_written = written.len() as u64;
    round.ready_to_statuses_written_ms = written
        .iter()
        .filter_map(|r| r.answered_at)
        .max()
        .and_then(|at| at.duration_since(ready_wall).ok())
        .map(|span| span.as_secs_f64() * 1000.0);
    dispatcher.service.measure();
    round.dispatcher = dispatcher.service.figures.clone();
    round.dispatcher_builds_ms = builds_ms(&dispatcher.service.log());
    let requests = &api.double.requests()[seen..];
    round.dispatcher_requests = by_verb_and_resource(requests);
    round.dispatcher_secret_reads_ms = secret_reads_ms(requests);
    drop(dispatcher);
    Ok((round, objects))
}

/// What the dispatcher's service account is granted to write EventListener status, Events
/// and its Lease (the RBAC `docs/kubernetes.md` gives), so that it runs as deployed.
fn grant_status_writer(api: &Api) {
    let controller = api.double.controller_user().to_owned();
    let double = &api.double;
    double.grant(
        &controller,
        &["patch"],
        "triggers.tekton.dev",
        "eventlisteners/status",
        "*",
    );
    double.grant(&controller, &["create"], "", "events", "*");
    double.grant(
        &controller,
        &["get", "create", "update"],
        "coordination.k8s.io",
        "leases",
        "*",
    );
}

/// The dispatcher's PATCHes of EventListener status answered 2xx.
fn status_patches(api: &Api) -> Vec<RecordedRequest> {
    let mut patches = api.double.requests_for(Verb::Patch, "eventlisteners");
    patches.retain(|r| {
        r.subresource.as_deref() == Some("status") && r.status.is_some_and(|s| s / 100 == 2)
    });
    patches
}

/// Stores `object` in the double as the API server would hold it, counting it by kind.
fn insert(
    api: &Api,
    object: serde_json::Value,
    counts: &mut BTreeMap<String, u64>,
) -> anyhow::Result<()> {
    let object = as_stored(object);
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let (group, resource) =
        resource_of(&kind).with_context(|| format!("no resource is known for kind `{kind}`"))?;
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    api.double.insert(group, resource, &namespace, object);
    *counts.entry(kind).or_default() += 1;
    Ok(())
}

/// A started binary reading its configuration from the API, and the port its `/readyz`
/// answers on (ingest's webhook port, the dispatcher's ops port).
struct Started {
    service: Service,
    addr: SocketAddr,
}

fn spawn(
    bin_dir: &Path,
    name: &str,
    nats_url: &str,
    kubeconfig: &Path,
    extra: &[String],
) -> anyhow::Result<Started> {
    let program = stack::binary(bin_dir, name)?;
    let metrics = stack::free_addr()?;
    let mut args = vec!["--metrics-addr".to_owned(), metrics.to_string()];
    let addr = if name == "sluice-ingest" {
        let listen = stack::free_addr()?;
        args.extend(["--listen".to_owned(), listen.to_string()]);
        listen
    } else {
        metrics
    };
    args.extend(extra.iter().cloned());
    let env = [
        ("SLUICE_NATS_URL", nats_url.to_owned()),
        ("KUBECONFIG", kubeconfig.display().to_string()),
    ];
    let service = Service::spawn(name, &program, &args, &env)?;
    Ok(Started { service, addr })
}

/// Posts signed pushes to the listener just added (the last of the first namespace) until
/// one is answered 202, a fresh delivery each time.
async fn push_until_accepted(
    ingest: &mut Started,
    added: &Scenario,
    secret: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let one_namespace = Scenario {
        tenants: 1,
        ..*added
    };
    let factory = RequestFactory::new(
        &one_namespace,
        secret,
        1024,
        &ingest.addr.to_string(),
        "",
        Ids::random(),
    )?;
    // Requests `listener + k × listeners` all go to the added listener.
    let first = u64::from(added.listeners - 1);
    let step = u64::from(added.listeners);
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    let mut attempt = 0;
    loop {
        ingest.service.check_running()?;
        if Instant::now() > deadline {
            bail!(
                "the added listener {} was not answering 202 within {timeout:?} (last: {last})",
                factory.target(first).path()
            );
        }
        let request = factory.request(first + attempt * step);
        attempt += 1;
        let answer = async {
            let mut connection = client::connect(ingest.addr).await?;
            let response = connection.send_request(request).await?;
            anyhow::Ok(response.status().as_u16())
        };
        match tokio::time::timeout(Duration::from_secs(5), answer).await {
            Ok(Ok(202)) => return Ok(()),
            Ok(Ok(status)) => last = format!("status {status}"),
            Ok(Err(error)) => last = format!("{error:#}"),
            Err(_) => last = "no answer within 5 s".to_owned(),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Requests by `verb resource` (`get secrets`, `patch eventlisteners/status`). Requests the
/// double does not serve have no verb and are keyed by method, resource and subresource;
/// answers other than 2xx are appended (`→ 405`).
fn by_verb_and_resource(requests: &[RecordedRequest]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for request in requests {
        let mut key = match (&request.verb, &request.resource) {
            (Some(verb), Some(resource)) => match &request.subresource {
                Some(subresource) => format!("{verb} {resource}/{subresource}"),
                None => format!("{verb} {resource}"),
            },
            _ => unresolved(request.method.as_str(), &request.path),
        };
        if let Some(status) = request.status.filter(|status| !(200..300).contains(status)) {
            key.push_str(&format!(" → {status}"));
        }
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// `patch eventlisteners/status` for a path the double did not resolve.
fn unresolved(method: &str, path: &str) -> String {
    let method = method.to_ascii_lowercase();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segments.as_slice() {
        ["api", _, rest @ ..] | ["apis", _, _, rest @ ..] => rest,
        _ => return format!("{method} {path}"),
    };
    let rest = match rest {
        ["namespaces", _, rest @ ..] if !rest.is_empty() => rest,
        rest => rest,
    };
    match rest {
        [resource, _, subresource, ..] => format!("{method} {resource}/{subresource}"),
        [resource, ..] => format!("{method} {resource}"),
        [] => format!("{method} {path}"),
    }
}

/// From the first GET of a Secret to the answer to the last (0 without any).
fn secret_reads_ms(requests: &[RecordedRequest]) -> f64 {
    let gets = requests.iter().filter(|r| r.is(Verb::Get, "secrets"));
    let first = gets.clone().map(|r| r.at).min();
    let last = gets.filter_map(|r| r.answered_at).max();
    match (first, last) {
        (Some(first), Some(last)) => last
            .duration_since(first)
            .map_or(0.0, |span| span.as_secs_f64() * 1000.0),
        _ => 0.0,
    }
}

/// Every `build_ms` a log holds, in order (text or JSON logs).
fn builds_ms(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|line| {
            let at = line.find("build_ms")? + "build_ms".len();
            let rest = line[at..].trim_start_matches(['=', '"', ':', ' ']);
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// Regular files under `dir`, at any depth.
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => files_under(&entry.path()),
            Ok(kind) if kind.is_file() => 1,
            _ => 0,
        })
        .sum()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn summarise(rounds: &[Round]) -> Summary {
    let spread = |f: &dyn Fn(&Round) -> Option<f64>| {
        Spread::of(&rounds.iter().filter_map(f).collect::<Vec<_>>())
    };
    let first = |builds: &[u64]| builds.first().map(|&ms| ms as f64);
    Summary {
        ingest_ready_ms: spread(&|r| Some(r.ingest.start_to_ready_ms)),
        ingest_rss_ready_mib: spread(&|r| Some(mib(r.ingest.rss_ready_kib))),
        ingest_peak_ready_mib: spread(&|r| Some(mib(r.ingest.peak_rss_kib))),
        ingest_first_build_ms: spread(&|r| first(&r.ingest_builds_ms)),
        change_to_served_ms: spread(&|r| Some(r.change_to_served_ms)),
        ingest_rss_after_change_mib: spread(&|r| Some(mib(r.ingest_rss_after_change_kib))),
        ingest_peak_after_change_mib: spread(&|r| Some(mib(r.ingest_peak_after_change_kib))),
        dispatcher_ready_ms: spread(&|r| Some(r.dispatcher.start_to_ready_ms)),
        dispatcher_rss_ready_mib: spread(&|r| Some(mib(r.dispatcher.rss_ready_kib))),
        dispatcher_peak_mib: spread(&|r| Some(mib(r.dispatcher.peak_rss_kib))),
        dispatcher_first_build_ms: spread(&|r| first(&r.dispatcher_builds_ms)),
        ingest_secret_reads_ms: spread(&|r| Some(r.ingest_secret_reads_ms)),
    }
}

fn requests_line(requests: &BTreeMap<String, u64>) -> String {
    let total: u64 = requests.values().sum();
    let each: Vec<String> = requests
        .iter()
        .map(|(what, count)| format!("{what} × {count}"))
        .collect();
    format!("{total} ({})", each.join(", "))
}

fn round_table(number: u32, round: &Round) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let builds = |builds: &[u64]| {
        builds
            .iter()
            .map(|ms| format!("{ms} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "-- round {number}");
    let _ = writeln!(
        out,
        "   ingest     ready {:.0} ms; RSS {:.1} MiB, peak {:.1} MiB; catalogue builds: {}",
        round.ingest.start_to_ready_ms,
        mib(round.ingest.rss_ready_kib),
        mib(round.ingest.peak_rss_kib),
        builds(&round.ingest_builds_ms)
    );
    let _ = writeln!(
        out,
        "              listener added → 202 in {:.0} ms; RSS {:.1} MiB, peak {:.1} MiB",
        round.change_to_served_ms,
        mib(round.ingest_rss_after_change_kib),
        mib(round.ingest_peak_after_change_kib)
    );
    let _ = writeln!(
        out,
        "              API requests {}; Secrets read in {:.0} ms",
        requests_line(&round.ingest_requests),
        round.ingest_secret_reads_ms
    );
    let _ = writeln!(
        out,
        "   dispatcher ready {:.0} ms; RSS {:.1} MiB, peak {:.1} MiB; catalogue builds: {}; run written {}",
        round.dispatcher.start_to_ready_ms,
        mib(round.dispatcher.rss_ready_kib),
        mib(round.dispatcher.peak_rss_kib),
        builds(&round.dispatcher_builds_ms),
        round
            .ready_to_run_written_ms
            .map_or("NOT within the timeout".to_owned(), |ms| format!(
                "{ms:.0} ms after ready"
            ))
    );
    let _ = writeln!(
        out,
        "              {} EventListener statuses written{}",
        round.statuses_written,
        round
            .ready_to_statuses_written_ms
            .map_or(String::new(), |ms| format!(
                ", the last {ms:.0} ms after ready"
            ))
    );
    let _ = writeln!(
        out,
        "              API requests {}; Secrets read in {:.0} ms",
        requests_line(&round.dispatcher_requests),
        round.dispatcher_secret_reads_ms
    );
    out
}

fn summary_table(report: &ConfigScaleReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let spread = |s: &Spread, unit: &str| {
        format!(
            "min {:.1}{unit}  median {:.1}{unit}  max {:.1}{unit}",
            s.min, s.median, s.max
        )
    };
    let objects: Vec<String> = report
        .objects
        .iter()
        .map(|(kind, count)| format!("{count} {kind}"))
        .collect();
    let _ = writeln!(
        out,
        "== config-scale: {} namespaces × {} listeners ({}), {} rounds",
        report.scenario.tenants,
        report.scenario.listeners,
        report.scenario.describe(),
        report.rounds.len()
    );
    let _ = writeln!(
        out,
        "   objects in the API: {} ({})",
        report.objects.values().sum::<u64>(),
        objects.join(", ")
    );
    let s = &report.summary;
    for (label, value, unit) in [
        ("ingest ready             ", &s.ingest_ready_ms, " ms"),
        ("ingest RSS when ready    ", &s.ingest_rss_ready_mib, " MiB"),
        (
            "ingest peak when ready   ",
            &s.ingest_peak_ready_mib,
            " MiB",
        ),
        ("ingest first build       ", &s.ingest_first_build_ms, " ms"),
        (
            "ingest Secrets read in   ",
            &s.ingest_secret_reads_ms,
            " ms",
        ),
        ("listener added → 202     ", &s.change_to_served_ms, " ms"),
        (
            "ingest RSS after change  ",
            &s.ingest_rss_after_change_mib,
            " MiB",
        ),
        (
            "ingest peak after change ",
            &s.ingest_peak_after_change_mib,
            " MiB",
        ),
        ("dispatcher ready         ", &s.dispatcher_ready_ms, " ms"),
        (
            "dispatcher RSS when ready",
            &s.dispatcher_rss_ready_mib,
            " MiB",
        ),
        ("dispatcher peak          ", &s.dispatcher_peak_mib, " MiB"),
        (
            "dispatcher first build   ",
            &s.dispatcher_first_build_ms,
            " ms",
        ),
    ] {
        let _ = writeln!(out, "   {label} {}", spread(value, unit));
    }
    if let Some(last) = report.rounds.last() {
        let _ = writeln!(
            out,
            "   API requests (last round): ingest {}; dispatcher {}",
            requests_line(&last.ingest_requests),
            requests_line(&last.dispatcher_requests)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_times_are_read_from_text_and_json_logs() {
        let log = "2026-01-01T00:00:00Z  INFO sluice_runtime::cluster: configuration loaded listeners=4000 issues=0 build_ms=812\n\
                   {\"fields\":{\"listeners\":4001,\"build_ms\":95}}\n\
                   unrelated line\n";
        assert_eq!(builds_ms(log), [812, 95]);
    }

    #[test]
    fn unserved_requests_are_grouped_without_their_names() {
        assert_eq!(
            unresolved(
                "PATCH",
                "/apis/triggers.tekton.dev/v1beta1/namespaces/team-0001/eventlisteners/github/status"
            ),
            "patch eventlisteners/status"
        );
        assert_eq!(
            unresolved(
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/default/leases/sluice-status"
            ),
            "put leases"
        );
        assert_eq!(unresolved("GET", "/version"), "get /version");
    }

    #[test]
    fn files_are_counted_at_any_depth() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(files_under(dir.path()), 0);
        std::fs::create_dir_all(dir.path().join("team-0001/pipelineruns")).unwrap();
        std::fs::write(dir.path().join("team-0001/pipelineruns/a.yaml"), "x").unwrap();
        std::fs::write(dir.path().join("b.yaml"), "x").unwrap();
        assert_eq!(files_under(dir.path()), 2);
    }

    #[test]
    fn the_summary_names_every_figure() {
        let round = Round {
            ingest_builds_ms: vec![800, 90],
            ingest_requests: BTreeMap::from([("get secrets".to_owned(), 2000)]),
            ..Round::default()
        };
        let report = ConfigScaleReport {
            scenario: Scenario {
                tenants: 2000,
                listeners: 2,
                provider: crate::scenario::ProviderMix::Github,
            },
            objects: BTreeMap::from([("EventListener".to_owned(), 4000)]),
            summary: summarise(std::slice::from_ref(&round)),
            rounds: vec![round.clone()],
        };
        let table = summary_table(&report);
        assert!(table.contains("2000 namespaces × 2 listeners"));
        assert!(table.contains("4000 EventListener"));
        assert!(table.contains("get secrets × 2000"));
        assert!(table.contains("ingest first build        min 800.0 ms"));
        assert!(round_table(1, &round).contains("800 ms, 90 ms"));
    }
}
