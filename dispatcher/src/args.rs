//! `sluice-dispatcher` flags.

use std::path::PathBuf;
use std::time::Duration;

use sluice_shared::cli::{CommonArgs, parse_duration};

/// Consumes webhook events and creates Tekton runs.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "sluice-dispatcher", version)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Write each object as a YAML file under this directory instead of creating it in
    /// Kubernetes (for trying Sluice without a cluster).
    #[arg(long, env = "SLUICE_SINK_DIR")]
    pub sink_dir: Option<PathBuf>,

    /// Name of the durable JetStream consumer that every dispatcher replica shares.
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

    /// Deadline for one create request to the Kubernetes API.
    #[arg(long, env = "SLUICE_CREATE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub create_timeout: Duration,
}
