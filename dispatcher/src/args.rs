//! `sluice-dispatcher` flags.

use std::path::PathBuf;
use std::time::Duration;

use sluice_cel as cel;
use sluice_runtime::flags::CommonArgs;
use sluice_triggers::duration::parse_duration;

use crate::interceptor::Interceptors;
use crate::interceptor::github::api::parse_api_url;
use crate::interceptor::github::{EnterpriseHosts, GitHubApi, GitHubSettings};
use crate::interceptor::webhook::{WebhookClient, WebhookSettings};

/// Consumes webhook events and creates Tekton runs.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "sluice-dispatcher", version)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub interceptors: InterceptorArgs,

    /// Write each object as a YAML file under this directory instead of creating it in
    /// Kubernetes (for trying Sluice without a cluster).
    #[arg(long, env = "SLUICE_SINK_DIR")]
    pub sink_dir: Option<PathBuf>,

    /// The base URL senders post webhooks to (`https://hooks.example.com`): with the
    /// configuration read from the Kubernetes API, each EventListener's `status.address.url`
    /// is `<public-url>/hooks/<namespace>/<name>`.
    #[arg(long, env = "SLUICE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Namespace of the `sluice-status` Lease that elects the one replica writing
    /// EventListener status; the pod's namespace when not set (else the kubeconfig's).
    #[arg(long, env = "SLUICE_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// How long the status writer's Lease lasts without renewal before another replica may
    /// take it over.
    #[arg(long, env = "SLUICE_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// Name of the durable JetStream consumer of every event that the dispatcher replicas
    /// share; a tenant diverted to a consumer of its own has `<consumer>-<namespace>`.
    #[arg(long, env = "SLUICE_CONSUMER", default_value = "sluice-dispatcher")]
    pub consumer: String,

    /// Events processed at once by this replica.
    #[arg(long, env = "SLUICE_CONCURRENCY", default_value_t = 64)]
    pub concurrency: usize,

    /// Deliveries of one event before it is given up (counted and logged).
    #[arg(long, env = "SLUICE_MAX_DELIVER", default_value_t = 10)]
    pub max_deliver: i64,

    /// How long an event may be in flight before JetStream redelivers it to any replica.
    #[arg(long, env = "SLUICE_ACK_WAIT", default_value = "60s", value_parser = parse_duration)]
    pub ack_wait: Duration,

    /// First retry delay after a transient failure; doubles per attempt, with jitter.
    #[arg(long, env = "SLUICE_RETRY_BASE", default_value = "1s", value_parser = parse_duration)]
    pub retry_base: Duration,

    /// Longest retry delay.
    #[arg(long, env = "SLUICE_RETRY_MAX", default_value = "60s", value_parser = parse_duration)]
    pub retry_max: Duration,

    /// How long the dispatch ledger remembers that a webhook's trigger ran, so that a
    /// redelivery (GitHub's "Redeliver", a replay) within it creates nothing new.
    #[arg(long, env = "SLUICE_LEDGER_TTL", default_value = "72h", value_parser = parse_duration)]
    pub ledger_ttl: Duration,

    /// How long a dead letter is kept for `sluice dlq replay` before it expires.
    #[arg(long, env = "SLUICE_DLQ_MAX_AGE", default_value = "14d", value_parser = parse_duration)]
    pub dlq_max_age: Duration,

    /// On SIGTERM: how long in-flight events may take before they are handed back to the
    /// stream for another replica.
    #[arg(long, env = "SLUICE_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// How long a tenant diverted to a consumer of its own (paused, at its limits or
    /// flooding) goes without events before the consumer is given back and its events go
    /// through the common consumer again.
    #[arg(long, env = "SLUICE_TENANT_CONSUMER_IDLE", default_value = "5m", value_parser = parse_duration)]
    pub tenant_consumer_idle: Duration,

    /// Deadline for one create request to the Kubernetes API.
    #[arg(long, env = "SLUICE_CREATE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub create_timeout: Duration,
}

/// How the dispatcher (and `sluice render`) runs `cel` and webhook interceptors.
#[derive(Debug, Clone, clap::Args)]
pub struct InterceptorArgs {
    /// Deadline for one call to a webhook interceptor.
    #[arg(long, env = "SLUICE_INTERCEPTOR_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub interceptor_timeout: Duration,

    /// Calls to a webhook interceptor that fails with a transport error, 5xx or 429 before
    /// the event is handed back for a later delivery.
    #[arg(long, env = "SLUICE_INTERCEPTOR_ATTEMPTS", default_value_t = 3)]
    pub interceptor_attempts: u32,

    /// Cost budget of one CEL evaluation (roughly, steps and elements touched).
    #[arg(long, env = "SLUICE_CEL_COST_LIMIT", default_value_t = 1_000_000)]
    pub cel_cost_limit: u64,

    /// Time budget of one CEL evaluation.
    #[arg(long, env = "SLUICE_CEL_TIME_LIMIT", default_value = "100ms", value_parser = parse_duration)]
    pub cel_time_limit: Duration,

    /// GitHub's REST API, called by the github interceptor's `addChangedFiles` and
    /// `githubOwners` for events from github.com (an event from GitHub Enterprise Server
    /// calls `https://HOST/api/v3` of the host it names, if `--interceptor-allow` lists it).
    /// Requests share the webhook interceptors' timeout and attempts.
    #[arg(long, env = "SLUICE_GITHUB_API_URL", default_value = crate::interceptor::github::DEFAULT_API_URL, value_parser = parse_api_url)]
    pub github_api_url: String,
}

impl InterceptorArgs {
    /// The interceptors, calling no GitHub Enterprise host; see [`Self::interceptors_with`].
    pub fn interceptors(&self) -> Interceptors {
        self.interceptors_with(EnterpriseHosts::default())
    }

    /// The interceptors, calling the GitHub Enterprise hosts `enterprise_hosts` allows.
    pub fn interceptors_with(&self, enterprise_hosts: EnterpriseHosts) -> Interceptors {
        let client = WebhookClient::new(WebhookSettings {
            timeout: self.interceptor_timeout,
            attempts: self.interceptor_attempts.max(1),
            ..WebhookSettings::default()
        });
        let limits = cel::Limits {
            max_cost: self.cel_cost_limit,
            max_time: self.cel_time_limit,
        };
        let settings = client.settings();
        let github = GitHubApi::new(GitHubSettings {
            api_url: self.github_api_url.clone(),
            enterprise_hosts,
            timeout: settings.timeout,
            attempts: settings.attempts,
            backoff: settings.backoff,
            max_response_bytes: settings.max_response_bytes,
        });
        Interceptors::new(client, limits).with_github(github)
    }
}
