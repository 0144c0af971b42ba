//! `sluice-ingest`: wires configuration, NATS, metrics and the HTTP servers together.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use prometheus_client::registry::Registry;
use sluice_ingest::admission::AdmissionLimits;
use sluice_ingest::app::{AppState, router};
use sluice_ingest::args::Args;
use sluice_ingest::metrics::IngestMetrics;
use sluice_ingest::publish::Publisher;
use sluice_ingest::server;
use sluice_runtime::flags::Loaded;
use sluice_runtime::{jetstream, ops};

/// A request allocates and frees a few dozen blocks on whichever worker thread runs it. At
/// saturation glibc's allocator took a fifth of ingest's CPU, part of it merging free lists
/// whenever a body or event buffer was allocated; mimalloc's per-thread pages take about
/// half as much (`docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Loaded { catalogue, policy } = args.common.start()?;

    let client = jetstream::connect(&args.common.nats_url, "sluice-ingest")
        .await
        .context("failed to connect to NATS")?;
    let js = jetstream::context(client.clone(), args.publish_timeout);
    let stream = jetstream::StreamHealth::watch(
        client.clone(),
        js,
        args.common.stream_settings(),
        Duration::from_secs(1),
    )
    .await;

    let mut registry = Registry::default();
    let metrics = IngestMetrics::register(&mut registry);
    // Ready once NATS and the events stream have been reached, and from then on through a
    // NATS outage: ingest answers senders `503 queue_unavailable` with `Retry-After` itself,
    // where a load balancer that dropped every unready replica would refuse connections.
    // Unready from the first shutdown signal on, whatever NATS says.
    let draining = ops::Draining::new();
    let ready = draining.readiness(ops::ready_once_reached(Arc::new(move || stream.check())));

    ops::serve(
        args.common.metrics_addr,
        ops::router(Arc::new(registry), ready.clone()),
    )
    .await
    .context("failed to bind the metrics address")?;

    let state = AppState {
        catalogue,
        publisher: Arc::new(Publisher::new(
            client,
            args.publish_timeout,
            metrics.clone(),
        )),
        metrics: metrics.clone(),
        max_body_bytes: args.max_body_bytes,
        admission: Some(Arc::new(AdmissionLimits::new(policy))),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to bind {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, limits = ?args.limits, "webhook server listening");
    let shutdown = server::Shutdown {
        plan: args.shutdown.clone(),
        draining,
        signal: ops::termination_signal(),
        again: ops::termination_signal(),
    };
    let stopped = server::serve(
        listener,
        router(state, ready, &args.limits),
        &args.limits,
        metrics,
        shutdown,
    )
    .await;
    // Cut-off requests got no answer, so their senders retry; that is not a failure of the
    // shutdown, which is why both endings exit 0.
    tracing::info!(?stopped, "stopped");
    Ok(())
}
