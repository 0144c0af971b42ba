//! `sluice-ingest` flags.

use std::net::SocketAddr;
use std::time::Duration;

use sluice_runtime::flags::CommonArgs;
use sluice_triggers::duration::parse_duration;

/// Receives webhooks and stores them durably in NATS JetStream.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "sluice-ingest", version)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,

    #[command(flatten)]
    pub shutdown: crate::server::ShutdownArgs,

    /// Address the webhook server listens on.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "SLUICE_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// How long to wait for JetStream's ack before answering 503.
    #[arg(long, env = "SLUICE_PUBLISH_TIMEOUT", default_value = "1500ms", value_parser = parse_duration)]
    pub publish_timeout: Duration,
}
