//! `sluice-loadtest` flags, each with its environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::payload::DEFAULT_SECRET;
use crate::reference::ReferenceArgs;
use crate::reference_dispatch::ReferenceDispatchArgs;
use crate::scenario::{ProviderMix, Scenario, positive};
use crate::schedule::{parse_duration, parse_rate};

/// Load tests for Sluice: an open-loop signed-webhook generator, the configuration it needs,
/// a reference pipeline to compare ingest with, and end-to-end and dispatcher benchmarks.
#[derive(Debug, Parser)]
#[command(name = "sluice-loadtest", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sends signed webhooks at a constant rate to a running server and reports latency.
    Run(RunArgs),
    /// Writes the Tekton Triggers configuration of a scenario into a directory.
    Config(ConfigArgs),
    /// Serves the reference pipeline: verify, publish to JetStream, await the ack, 202.
    Reference(ReferenceArgs),
    /// Runs the reference dispatcher: per event, ledger read, create, ledger write, ack.
    ReferenceDispatcher(ReferenceDispatchArgs),
    /// Measures sluice-ingest side by side with the reference pipeline.
    Ingest(IngestArgs),
    /// Measures webhook → PipelineRun latency through ingest, JetStream and the dispatcher.
    E2e(E2eArgs),
    /// Measures how fast sluice-dispatcher drains a backlog of events into runs.
    Dispatcher(DispatcherArgs),
    /// Measures start-up, memory and API requests of ingest and the dispatcher reading many
    /// namespaces' configuration from the Kubernetes API (the in-process API double).
    ConfigScale(ConfigScaleArgs),
    /// Runs webhooks at a fixed rate for a long time through a 3-node JetStream cluster and
    /// two dispatchers while faults are injected on a schedule; reports lost and duplicate
    /// runs and latency minute by minute.
    Soak(SoakArgs),
    /// Measures many tenants on a 3-node JetStream cluster: dispatcher start-up and
    /// consumers, NATS memory and CPU, every tenant's first events, and quiet tenants'
    /// latency while one tenant floods.
    TenantScale(TenantScaleArgs),
}

/// Which listeners exist and the secret they share.
#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    /// Namespaces (tenants): `team-0001`, `team-0002`…
    #[arg(long, env = "SLUICE_LOADTEST_TENANTS", default_value = "2", value_parser = positive)]
    pub tenants: u32,

    /// Listeners per namespace, named after their provider (`github`, `gitlab`, `github-2`…).
    #[arg(long, env = "SLUICE_LOADTEST_LISTENERS", default_value = "1", value_parser = positive)]
    pub listeners: u32,

    /// Which providers' pushes to send.
    #[arg(long, env = "SLUICE_LOADTEST_PROVIDER", value_enum, default_value_t = ProviderMix::Github)]
    pub provider: ProviderMix,

    /// The webhook secret: GitHub's HMAC key and GitLab's token.
    #[arg(long, env = "SLUICE_LOADTEST_SECRET", default_value = DEFAULT_SECRET, hide_default_value = true)]
    pub secret: String,
}

impl ScenarioArgs {
    pub fn scenario(&self) -> Scenario {
        Scenario {
            tenants: self.tenants,
            listeners: self.listeners,
            provider: self.provider,
        }
    }
}

/// How hard and how long to push.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Requests per second (constant arrival rate).
    #[arg(long, env = "SLUICE_LOADTEST_RATE", default_value = "1000", value_parser = parse_rate)]
    pub rate: f64,

    /// How long to record (`30`, `30s`, `2m`).
    #[arg(long, env = "SLUICE_LOADTEST_DURATION", default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,

    /// How long to send before recording starts.
    #[arg(long, env = "SLUICE_LOADTEST_WARMUP", default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Keep-alive HTTP/1.1 connections: at most this many requests are in flight.
    #[arg(long, env = "SLUICE_LOADTEST_CONNECTIONS", default_value_t = 64)]
    pub connections: usize,

    /// Generator threads (each a single-threaded runtime driving its share of connections).
    #[arg(long, env = "SLUICE_LOADTEST_THREADS", default_value_t = 1)]
    pub threads: usize,

    /// Bytes per request body; commits are added to a realistic push until it is this big.
    #[arg(long, env = "SLUICE_LOADTEST_BODY_SIZE", default_value_t = 1024)]
    pub body_size: usize,

    /// How long one request may take before it counts as failed.
    #[arg(long, env = "SLUICE_LOADTEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// How long after the last request was due requests still unsent may be sent; the rest
    /// are reported as not sent.
    #[arg(long, env = "SLUICE_LOADTEST_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
}

/// Where the report goes.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Writes the report as JSON to this file.
    #[arg(long, env = "SLUICE_LOADTEST_REPORT_JSON")]
    pub report_json: Option<PathBuf>,

    /// Writes the latency plot as SVG to this file.
    #[arg(long, env = "SLUICE_LOADTEST_REPORT_SVG")]
    pub report_svg: Option<PathBuf>,

    /// Exit 0 even when requests failed.
    #[arg(long, env = "SLUICE_LOADTEST_ALLOW_ERRORS")]
    pub allow_errors: bool,
}

/// Where the stack's parts come from.
#[derive(Debug, Clone, Args)]
pub struct StackArgs {
    /// Use this NATS server instead of starting one (`nats-server` from
    /// `$SLUICE_NATS_SERVER` or `PATH`; `scripts/install-nats.sh` prints one). Streams are
    /// purged between runs only on a server this tool started.
    #[arg(long, env = "SLUICE_LOADTEST_NATS")]
    pub nats: Option<String>,

    /// Directory of the release binaries (`sluice-ingest`, `sluice-dispatcher`); defaults
    /// to this binary's directory.
    #[arg(long, env = "SLUICE_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// URL base of the server: requests go to `<url>/hooks/{namespace}/{listener}`.
    #[arg(long, env = "SLUICE_LOADTEST_URL")]
    pub url: String,

    /// What the report calls the server.
    #[arg(long, env = "SLUICE_LOADTEST_LABEL", default_value = "run")]
    pub label: String,

    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,

    /// Directory to write into (created if missing).
    #[arg(long, env = "SLUICE_LOADTEST_OUT")]
    pub out: PathBuf,

    /// Write into a directory that already holds files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub stack: StackArgs,

    /// Runs at `--rate`, alternating reference and ingest (reference first); 0 measures only
    /// start-up and memory.
    #[arg(long, env = "SLUICE_LOADTEST_ROUNDS", default_value_t = 3)]
    pub rounds: u32,

    /// Also step the rate up, for each side, until p99 exceeds `--max-p99` or requests fail,
    /// and report the highest rate sustained.
    #[arg(long, env = "SLUICE_LOADTEST_FIND_MAX")]
    pub find_max: bool,

    /// The p99 latency a sustained rate must stay under.
    #[arg(long, env = "SLUICE_LOADTEST_MAX_P99", default_value = "20ms", value_parser = parse_duration)]
    pub max_p99: Duration,

    /// The first rate `--find-max` tries.
    #[arg(long, env = "SLUICE_LOADTEST_START_RATE", default_value = "2000", value_parser = parse_rate)]
    pub start_rate: f64,

    /// Each step of `--find-max` multiplies the rate by this until a step fails.
    #[arg(long, env = "SLUICE_LOADTEST_STEP_FACTOR", default_value = "1.25", value_parser = parse_factor)]
    pub step_factor: f64,

    /// How long each `--find-max` step records (after `--warmup`).
    #[arg(long, env = "SLUICE_LOADTEST_STEP_DURATION", default_value = "10s", value_parser = parse_duration)]
    pub step_duration: Duration,

    /// Bisections between the last rate that held and the first that failed.
    #[arg(long, env = "SLUICE_LOADTEST_REFINE", default_value_t = 2)]
    pub refine: u32,

    /// No `--find-max` step goes beyond this rate.
    #[arg(long, env = "SLUICE_LOADTEST_MAX_RATE", default_value = "100000", value_parser = parse_rate)]
    pub max_rate: f64,

    /// Extra flag for sluice-ingest (repeatable), e.g. `--ingest-arg=--max-concurrent-requests=4096`.
    #[arg(long = "ingest-arg", allow_hyphen_values = true)]
    pub ingest_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct E2eArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub stack: StackArgs,

    /// How long to wait, after the last webhook, for the dispatcher to create every run.
    #[arg(long, env = "SLUICE_LOADTEST_DRAIN_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Extra flag for sluice-dispatcher (repeatable).
    #[arg(long = "dispatcher-arg", allow_hyphen_values = true)]
    pub dispatcher_args: Vec<String>,

    /// Measures the reference pipeline instead of Sluice's: the `reference` server and the
    /// `reference-dispatcher`, the least work that keeps the same guarantees for an event
    /// with one trigger.
    #[arg(long)]
    pub reference: bool,
}

#[derive(Debug, Args)]
pub struct DispatcherArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[command(flatten)]
    pub stack: StackArgs,

    /// Events published to JetStream before the dispatcher starts.
    #[arg(long, env = "SLUICE_LOADTEST_EVENTS", default_value_t = 50_000)]
    pub events: u64,

    /// Bytes per event body.
    #[arg(long, env = "SLUICE_LOADTEST_BODY_SIZE", default_value_t = 1024)]
    pub body_size: usize,

    /// How long the dispatcher may take to create every run.
    #[arg(long, env = "SLUICE_LOADTEST_DRAIN_TIMEOUT", default_value = "600s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Extra flag for sluice-dispatcher (repeatable), e.g. `--dispatcher-arg=--concurrency=128`.
    #[arg(long = "dispatcher-arg", allow_hyphen_values = true)]
    pub dispatcher_args: Vec<String>,

    /// Writes the report as JSON to this file.
    #[arg(long, env = "SLUICE_LOADTEST_REPORT_JSON")]
    pub report_json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SoakArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub report: ReportArgs,

    /// Directory of the release binaries (`sluice-ingest`, `sluice-dispatcher`); defaults
    /// to this binary's directory.
    #[arg(long, env = "SLUICE_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Dispatcher replicas.
    #[arg(long, env = "SLUICE_LOADTEST_DISPATCHERS", default_value = "2", value_parser = positive)]
    pub dispatchers: u32,

    /// The faults injected, in turn, one every `--fault-every` (comma-separated):
    /// `dispatcher-kill` (SIGKILL a dispatcher, start it again after `--fault-downtime`),
    /// `nats-kill` (SIGKILL a NATS node, the same), `nats-restart` (a clean restart of a
    /// node, as in a rolling upgrade). Each fault takes the next replica or node in turn.
    #[arg(
        long,
        env = "SLUICE_LOADTEST_FAULTS",
        value_delimiter = ',',
        default_value = "dispatcher-kill,nats-kill,nats-restart"
    )]
    pub faults: Vec<crate::soak::Fault>,

    /// Time between faults; the first comes after one period.
    #[arg(long, env = "SLUICE_LOADTEST_FAULT_EVERY", default_value = "2m", value_parser = parse_duration)]
    pub fault_every: Duration,

    /// How long a killed process stays down.
    #[arg(long, env = "SLUICE_LOADTEST_FAULT_DOWNTIME", default_value = "10s", value_parser = parse_duration)]
    pub fault_downtime: Duration,

    /// How long to wait, after the last webhook, for every run to be created.
    #[arg(long, env = "SLUICE_LOADTEST_DRAIN_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Extra flag for sluice-dispatcher (repeatable).
    #[arg(long = "dispatcher-arg", allow_hyphen_values = true)]
    pub dispatcher_args: Vec<String>,

    /// Extra flag for sluice-ingest (repeatable).
    #[arg(long = "ingest-arg", allow_hyphen_values = true)]
    pub ingest_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TenantScaleArgs {
    /// Namespaces (tenants), one GitHub listener each.
    #[arg(long, env = "SLUICE_LOADTEST_TENANTS", default_value = "1000", value_parser = positive)]
    pub tenants: u32,

    /// Webhooks each tenant gets before the flood.
    #[arg(long, env = "SLUICE_LOADTEST_EVENTS_PER_TENANT", default_value = "2", value_parser = positive)]
    pub events_per_tenant: u32,

    /// The rate at which those are sent, round robin over the tenants.
    #[arg(long, env = "SLUICE_LOADTEST_RATE", default_value = "500", value_parser = parse_rate)]
    pub rate: f64,

    /// The flooding tenant's rate.
    #[arg(long, env = "SLUICE_LOADTEST_FLOOD_RATE", default_value = "1000", value_parser = parse_rate)]
    pub flood_rate: f64,

    /// How long the flood lasts.
    #[arg(long, env = "SLUICE_LOADTEST_FLOOD_DURATION", default_value = "30s", value_parser = parse_duration)]
    pub flood_duration: Duration,

    /// The other tenants' rate during the flood, in all.
    #[arg(long, env = "SLUICE_LOADTEST_QUIET_RATE", default_value = "20", value_parser = parse_rate)]
    pub quiet_rate: f64,

    /// Keep-alive connections of each sender.
    #[arg(long, env = "SLUICE_LOADTEST_CONNECTIONS", default_value_t = 64)]
    pub connections: usize,

    /// How long one request may take before it counts as failed.
    #[arg(long, env = "SLUICE_LOADTEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// How long to wait for runs once nothing moves.
    #[arg(long, env = "SLUICE_LOADTEST_DRAIN_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    #[arg(long, env = "SLUICE_LOADTEST_SECRET", default_value = DEFAULT_SECRET, hide_default_value = true)]
    pub secret: String,

    /// Directory of the release binaries; defaults to this binary's directory.
    #[arg(long, env = "SLUICE_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Extra flag for sluice-ingest (repeatable).
    #[arg(long = "ingest-arg", allow_hyphen_values = true)]
    pub ingest_args: Vec<String>,

    /// Extra flag for sluice-dispatcher (repeatable).
    #[arg(long = "dispatcher-arg", allow_hyphen_values = true)]
    pub dispatcher_args: Vec<String>,

    /// Writes the report as JSON to this file.
    #[arg(long, env = "SLUICE_LOADTEST_REPORT_JSON")]
    pub report_json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConfigScaleArgs {
    /// Namespaces (tenants) held in the API: `team-0001`, `team-0002`…
    #[arg(long, env = "SLUICE_LOADTEST_NAMESPACES", default_value = "2000", value_parser = positive)]
    pub namespaces: u32,

    /// EventListeners per namespace, named after their provider (`github`, `gitlab`, `github-2`…).
    #[arg(long, env = "SLUICE_LOADTEST_LISTENERS", default_value = "2", value_parser = positive)]
    pub listeners_per_namespace: u32,

    /// Which providers the listeners are for (by default GitHub and GitLab alternate, as in
    /// the other 2,000-namespace figures).
    #[arg(long, env = "SLUICE_LOADTEST_PROVIDER", value_enum, default_value_t = ProviderMix::Mixed)]
    pub provider: ProviderMix,

    /// The webhook secret held by every namespace's Secret.
    #[arg(long, env = "SLUICE_LOADTEST_SECRET", default_value = DEFAULT_SECRET, hide_default_value = true)]
    pub secret: String,

    /// Fresh runs (new nats-server, API double and processes each time).
    #[arg(long, env = "SLUICE_LOADTEST_ROUNDS", default_value = "3", value_parser = positive)]
    pub rounds: u32,

    /// How long the added listener may take to answer 202.
    #[arg(long, env = "SLUICE_LOADTEST_CHANGE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub change_timeout: Duration,

    #[command(flatten)]
    pub stack: StackArgs,

    /// Extra flag for sluice-ingest (repeatable).
    #[arg(long = "ingest-arg", allow_hyphen_values = true)]
    pub ingest_args: Vec<String>,

    /// Extra flag for sluice-dispatcher (repeatable).
    #[arg(long = "dispatcher-arg", allow_hyphen_values = true)]
    pub dispatcher_args: Vec<String>,

    /// Writes the report as JSON to this file.
    #[arg(long, env = "SLUICE_LOADTEST_REPORT_JSON")]
    pub report_json: Option<PathBuf>,
}

fn parse_factor(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(factor) if factor.is_finite() && factor > 1.0 => Ok(factor),
        Ok(_) => Err("must be greater than 1".to_owned()),
        Err(error) => Err(format!("`{text}`: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_the_documented_flags() {
        let cli = Cli::try_parse_from([
            "sluice-loadtest",
            "run",
            "--url",
            "http://127.0.0.1:8080",
            "--rate",
            "12000",
            "--duration",
            "20",
            "--provider",
            "mixed",
            "--tenants",
            "4",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.load.rate, 12_000.0);
        assert_eq!(args.load.duration, Duration::from_secs(20));
        assert_eq!(args.scenario.scenario().tenants, 4);
        assert_eq!(args.scenario.provider, ProviderMix::Mixed);
        assert!(
            Cli::try_parse_from(["sluice-loadtest", "run", "--url", "x", "--rate", "0"]).is_err()
        );
        assert!(parse_factor("1").is_err());
    }

    #[test]
    fn config_scale_defaults_to_two_thousand_namespaces() {
        let cli = Cli::try_parse_from(["sluice-loadtest", "config-scale"]).unwrap();
        let Command::ConfigScale(args) = cli.command else {
            panic!("not config-scale")
        };
        assert_eq!(args.namespaces, 2000);
        assert_eq!(args.listeners_per_namespace, 2);
        assert_eq!(args.rounds, 3);
        let cli = Cli::try_parse_from([
            "sluice-loadtest",
            "config-scale",
            "--namespaces",
            "500",
            "--listeners-per-namespace",
            "3",
            "--rounds",
            "1",
        ])
        .unwrap();
        let Command::ConfigScale(args) = cli.command else {
            panic!("not config-scale")
        };
        assert_eq!((args.namespaces, args.listeners_per_namespace), (500, 3));
        assert!(Cli::try_parse_from(["sluice-loadtest", "config-scale", "--rounds", "0"]).is_err());
    }
}
