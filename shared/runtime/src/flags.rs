//! Command-line flags that every Sluice binary shares, each with its environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::telemetry::{LogFormat, LogWrites};
use crate::tenants::{PolicyError, TenantPolicy};
use sluice_triggers::catalogue::Catalogue;
use sluice_triggers::config::{self, LoadOptions};
use sluice_triggers::duration::parse_duration;

/// Flags common to `sluice-ingest` and `sluice-dispatcher`.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// NATS server, credentials and TLS.
    #[command(flatten)]
    pub nats: crate::nats::NatsArgs,

    /// Directory of Tekton Triggers YAML documents (EventListener, Trigger, TriggerBinding,
    /// ClusterTriggerBinding, TriggerTemplate, Interceptor, ClusterInterceptor, Secret), read
    /// recursively. Without it, configuration is read from the Kubernetes API (`KUBECONFIG`,
    /// else the pod's service account).
    #[arg(long, env = "SLUICE_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,

    /// Namespaces whose Tekton Triggers objects are read from the Kubernetes API,
    /// comma-separated; every namespace when not set. Cluster-scoped kinds
    /// (ClusterTriggerBinding, ClusterInterceptor) are always read. Not with --config-dir.
    #[arg(
        long,
        env = "SLUICE_WATCH_NAMESPACES",
        value_delimiter = ',',
        conflicts_with = "config_dir"
    )]
    pub watch_namespaces: Vec<String>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// How often the configuration directory (or, with the Kubernetes API, the tenants file)
    /// is checked for changes.
    #[arg(long, env = "SLUICE_CONFIG_RELOAD_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub config_reload_interval: Duration,

    /// Address of the operations server: /metrics, /healthz, /readyz.
    #[arg(long, env = "SLUICE_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    pub metrics_addr: SocketAddr,

    /// Log line format.
    #[arg(long, env = "SLUICE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// How log lines reach stderr: `batched` hands them to a writer thread (a line after a
    /// quiet spell is written at once, a busy stream every 5 ms in one write); `direct`
    /// writes each line before the logging call returns, at a write per line.
    #[arg(long, env = "SLUICE_LOG_WRITES", value_enum, default_value_t = LogWrites::Batched)]
    pub log_writes: LogWrites,

    /// Threads the async runtime runs tasks on; 0: one per CPU the process may use (its CPU
    /// limit, else the host's CPUs). Set to the CPUs the process is given: workers beyond them
    /// spend CPU handing tasks to each other on cores the process shares.
    #[arg(long, env = "SLUICE_WORKER_THREADS", default_value_t = 0)]
    pub worker_threads: usize,

    /// How long the events stream keeps an event (e.g. `7d`, `12h`).
    #[arg(long, env = "SLUICE_STREAM_MAX_AGE", default_value = "7d", value_parser = parse_duration)]
    pub stream_max_age: Duration,

    /// Copies of the events stream kept by the NATS cluster (3 in production).
    #[arg(long, env = "SLUICE_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,

    /// How long the events stream remembers a delivery's id: the same webhook sent again
    /// within it is answered as a duplicate and not stored twice. At most the max age.
    #[arg(long, env = "SLUICE_STREAM_DUPLICATE_WINDOW", default_value = "2m", value_parser = parse_duration)]
    pub stream_duplicate_window: Duration,

    /// Bytes the events stream may hold (e.g. `10GiB`); when full, new webhooks are refused
    /// with 503 and nothing stored is dropped. Unlimited when not set.
    #[arg(long, env = "SLUICE_STREAM_MAX_BYTES", value_parser = parse_size)]
    pub stream_max_bytes: Option<u64>,

    /// Events the events stream may hold; when full, new webhooks are refused with 503 and
    /// nothing stored is dropped. Unlimited when not set.
    #[arg(long, env = "SLUICE_STREAM_MAX_MESSAGES", value_parser = parse_count)]
    pub stream_max_messages: Option<u64>,

    /// Consumers the events stream may have: the dispatchers' common one and one per tenant
    /// diverted to its own at the moment; nats-server's own default (1000 since 2.15) is
    /// replaced by this one.
    #[arg(long, env = "SLUICE_STREAM_MAX_CONSUMERS", default_value_t = crate::jetstream::DEFAULT_MAX_CONSUMERS)]
    pub stream_max_consumers: u32,

    /// Record what becomes of each event (`sluice events`, the status API) in the
    /// `SLUICE_STATUS` bucket and refused deliveries in `SLUICE_REFUSED`, kept as long as
    /// events and with as many replicas.
    #[arg(long, env = "SLUICE_EVENT_STATUS", default_value_t = true, action = clap::ArgAction::Set)]
    pub event_status: bool,
}

/// Runs a binary's `main` to its end on a runtime of `worker_threads` workers
/// (`--worker-threads`), then writes out the log lines its writer thread still holds.
pub fn run_main<T, E: From<std::io::Error>>(
    worker_threads: usize,
    main: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let runtime = runtime(worker_threads).map_err(|error| {
        std::io::Error::other(format!("failed to start the async runtime: {error}"))
    })?;
    let result = runtime.block_on(main);
    crate::telemetry::flush_logs();
    result
}

/// A multi-thread runtime of `worker_threads` workers; 0: one per CPU the process may use.
fn runtime(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if worker_threads > 0 {
        builder.worker_threads(worker_threads);
    }
    builder.build()
}

impl CommonArgs {
    /// What every binary does first: log as `--log-format` says and export traces as
    /// `service` when `OTEL_*` names a collector (see [`crate::telemetry::init`]), then
    /// [`Self::load`].
    pub async fn start(&self, service: &'static str) -> Result<Loaded, LoadError> {
        crate::telemetry::init(self.log_format, self.log_writes, service);
        self.load().await
    }

    /// Loads `--tenants-file` and the configuration (`--config-dir`, else the Kubernetes API)
    /// and keeps both current. Fails when the directory cannot be read, the Kubernetes client
    /// cannot be configured, or the policy file is invalid (at startup only: a reload that
    /// fails keeps what serves); every problem of the configuration itself is reported in the
    /// catalogue and logged.
    pub async fn load(&self) -> Result<Loaded, LoadError> {
        let policy = self.policy.load_policy()?;
        let options = self.policy.load_options_with(&policy);
        let tenants = policy.namespaces().count();
        let policy = Arc::new(ArcSwap::from_pointee(policy));
        if let Some(path) = &self.policy.tenants_file {
            crate::tenants::spawn_policy_reloader(
                path.clone(),
                policy.clone(),
                self.config_reload_interval,
            );
        }
        let flags = self.policy.clone();
        let current = policy.clone();
        let options_now = Arc::new(move || flags.load_options_with(&current.load()));
        let Some(dir) = &self.config_dir else {
            let client = crate::cluster::client().await.map_err(LoadError::Kube)?;
            let catalogue = Arc::new(ArcSwap::from_pointee(Catalogue::default()));
            let watching = crate::cluster::start(
                client,
                crate::cluster::Scope::from_flag(&self.watch_namespaces),
                options_now,
                catalogue.clone(),
                self.config_reload_interval,
            );
            tracing::info!(tenants, "reading the configuration from the Kubernetes API");
            return Ok(Loaded {
                catalogue,
                policy,
                synced: watching.synced.clone(),
                cluster: Some(watching),
            });
        };
        let catalogue =
            config::load_dir_with(dir, &options).map_err(|source| LoadError::Config {
                dir: dir.clone(),
                source,
            })?;
        tracing::info!(
            listeners = catalogue.listeners().count(),
            issues = catalogue.issues().len(),
            tenants,
            "configuration loaded"
        );
        let catalogue = Arc::new(ArcSwap::from_pointee(catalogue));
        crate::reload::spawn_reloader_watching(
            dir.clone(),
            catalogue.clone(),
            self.config_reload_interval,
            options_now,
            self.policy.tenants_file.clone(),
        );
        Ok(Loaded {
            catalogue,
            policy,
            synced: crate::cluster::Synced::done(),
            cluster: None,
        })
    }

    /// Where event status is kept; `None` with `--event-status=false`.
    pub fn status_settings(&self) -> Option<crate::event_status::StatusSettings> {
        self.event_status
            .then_some(crate::event_status::StatusSettings {
                max_age: self.stream_max_age,
                replicas: self.stream_replicas,
            })
    }

    pub fn stream_settings(&self) -> crate::jetstream::StreamSettings {
        crate::jetstream::StreamSettings {
            max_age: self.stream_max_age,
            replicas: self.stream_replicas,
            duplicate_window: self.stream_duplicate_window,
            max_bytes: self.stream_max_bytes,
            max_messages: self.stream_max_messages,
            max_consumers: self.stream_max_consumers,
        }
    }
}

/// The platform's policy for configurations, shared by the servers and the `sluice` CLI so
/// that `sluice validate` judges a directory as the servers will.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArgs {
    /// Refuse triggers that accept any caller: a trigger without an authentication
    /// interceptor (github, gitlab or bitbucket with a `secretRef`; gitee, slack, hmac) is
    /// reported as invalid and skipped.
    #[arg(long, env = "SLUICE_REQUIRE_AUTHENTICATION")]
    pub require_authentication: bool,

    /// Hosts webhook interceptors may call besides in-cluster services (`NAME.NAMESPACE.svc`):
    /// `host`, `host:port` or `*.domain`, comma-separated.
    #[arg(long, env = "SLUICE_INTERCEPTOR_ALLOW", value_delimiter = ',')]
    pub interceptor_allow: Vec<String>,

    /// Let an EventListener select Triggers in other namespaces (`namespaceSelector`), and a
    /// template create objects in another namespace.
    #[arg(long, env = "SLUICE_ALLOW_CROSS_NAMESPACE")]
    pub allow_cross_namespace: bool,

    /// The platform's policy file: per-tenant rate, concurrency and admission limits,
    /// `allowCrossNamespace` and `interceptorAllow` (see docs/tenants.md). Reloaded on change.
    #[arg(long, env = "SLUICE_TENANTS_FILE")]
    pub tenants_file: Option<PathBuf>,
}

impl PolicyArgs {
    /// The tenants file, or the default policy (no limits) when none is given.
    pub fn load_policy(&self) -> Result<TenantPolicy, PolicyError> {
        match &self.tenants_file {
            Some(path) => TenantPolicy::load(path),
            None => Ok(TenantPolicy::default()),
        }
    }

    /// The options the flags and `policy` give together: an allowance in either counts.
    pub fn load_options_with(&self, policy: &TenantPolicy) -> LoadOptions {
        let mut interceptor_allow: Vec<String> = self
            .interceptor_allow
            .iter()
            .map(|host| host.trim().to_ascii_lowercase())
            .filter(|host| !host.is_empty())
            .collect();
        interceptor_allow.extend(policy.interceptor_allow().iter().cloned());
        interceptor_allow.sort();
        interceptor_allow.dedup();
        LoadOptions {
            require_authentication: self.require_authentication,
            interceptor_allow,
            allow_cross_namespace: self.allow_cross_namespace || policy.allow_cross_namespace(),
        }
    }
}

/// What [`CommonArgs::load`] keeps up to date.
pub struct Loaded {
    pub catalogue: Arc<ArcSwap<Catalogue>>,
    pub policy: Arc<ArcSwap<TenantPolicy>>,
    /// Whether the configuration was read: at once from a directory; from the Kubernetes
    /// API once the first lists completed. A server is not ready before.
    pub synced: crate::cluster::Synced,
    /// What is watched in the Kubernetes API; `None` with `--config-dir`.
    pub cluster: Option<crate::cluster::Watching>,
}

/// Why the configuration could not be loaded at startup.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to read the configuration directory {}", dir.display())]
    Config {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid tenants file: {0}")]
    Policy(#[from] PolicyError),
    #[error("failed to configure the Kubernetes client (KUBECONFIG or in-cluster)")]
    Kube(#[source] kube::Error),
}

/// Parses a positive count that JetStream can hold (at most `i64::MAX`).
fn parse_count(text: &str) -> Result<u64, String> {
    let count: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number"))?;
    check_limit(text, count)
}

/// Parses a byte size: a whole number, optionally followed by `KiB`, `MiB`, `GiB` or `TiB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a whole number"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => return Err(format!("`{other}` is not a unit; use KiB, MiB, GiB or TiB")),
    };
    let bytes = number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))?;
    check_limit(text, bytes)
}

/// A limit of 0 would read as "unlimited" to JetStream; leaving the flag out says that.
fn check_limit(text: &str, value: u64) -> Result<u64, String> {
    if value == 0 {
        return Err("must be at least 1; leave the flag out for no limit".to_owned());
    }
    if i64::try_from(value).is_err() {
        return Err(format!("`{text}` is too large"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts_parse_and_refuse_zero() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("2 MiB"), Ok(2 << 20));
        assert!(parse_size("0").unwrap_err().contains("at least 1"));
        assert!(parse_size("5GB").unwrap_err().contains("not a unit"));
        assert!(parse_size("99999999TiB").unwrap_err().contains("too large"));
        assert_eq!(parse_count("5"), Ok(5));
        assert!(parse_count("0").is_err());
        assert!(parse_count("-1").is_err());
        assert!(parse_count(&u64::MAX.to_string()).is_err());
    }

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[command(flatten)]
        common: CommonArgs,
    }

    #[test]
    fn stream_flags_default_to_a_two_minute_window_and_no_limits() {
        use clap::Parser;
        let flags = Flags::try_parse_from(["x", "--config-dir", "/c"]).unwrap();
        let settings = flags.common.stream_settings();
        assert_eq!(settings.duplicate_window, Duration::from_secs(120));
        assert_eq!(settings.max_bytes, None);
        assert_eq!(settings.max_messages, None);
        let flags = Flags::try_parse_from([
            "x",
            "--config-dir",
            "/c",
            "--stream-max-messages",
            "5",
            "--stream-max-bytes",
            "1MiB",
            "--stream-duplicate-window",
            "10m",
        ])
        .unwrap();
        let settings = flags.common.stream_settings();
        assert_eq!(settings.max_messages, Some(5));
        assert_eq!(settings.max_bytes, Some(1 << 20));
        assert_eq!(settings.duplicate_window, Duration::from_secs(600));
    }

    #[test]
    fn the_runtime_has_the_worker_threads_asked_for_else_one_per_cpu() {
        use clap::Parser;
        let workers = |args: &[&str]| {
            let mut argv = vec!["x", "--config-dir", "/c"];
            argv.extend(args);
            let flags = Flags::try_parse_from(argv).unwrap();
            runtime(flags.common.worker_threads)
                .unwrap()
                .metrics()
                .num_workers()
        };
        assert_eq!(workers(&["--worker-threads", "1"]), 1);
        assert_eq!(workers(&["--worker-threads", "3"]), 3);
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(workers(&[]), cpus);
        assert_eq!(workers(&["--worker-threads", "0"]), cpus);
        let refused = Flags::try_parse_from(["x", "--worker-threads", "many"]).unwrap_err();
        assert!(
            refused.to_string().contains("--worker-threads"),
            "{refused}"
        );
    }
}
