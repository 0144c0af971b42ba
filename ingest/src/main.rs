//! `sluice-ingest`: wires configuration, NATS, metrics and the HTTP servers together.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::Parser;
use prometheus_client::registry::Registry;
use sluice_ingest::app::{AppState, router};
use sluice_ingest::args::Args;
use sluice_ingest::metrics::IngestMetrics;
use sluice_ingest::publish::Publisher;
use sluice_shared::{config, jetstream, ops, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init_logging(args.common.log_format);

    let catalogue = config::load_dir(&args.common.config_dir).with_context(|| {
        format!(
            "failed to read the configuration directory {}",
            args.common.config_dir.display()
        )
    })?;
    tracing::info!(
        listeners = catalogue.listeners().count(),
        issues = catalogue.issues().len(),
        "configuration loaded"
    );
    let catalogue = Arc::new(ArcSwap::from_pointee(catalogue));
    config::spawn_reloader(
        args.common.config_dir.clone(),
        catalogue.clone(),
        args.common.config_reload_interval,
    );

    let client = jetstream::connect(&args.common.nats_url, "sluice-ingest")
        .await
        .context("failed to connect to NATS")?;
    let js = jetstream::context(client.clone(), args.publish_timeout);
    let stream = jetstream::StreamHealth::watch(
        client,
        js.clone(),
        args.common.stream_settings(),
        Duration::from_secs(1),
    )
    .await;

    let mut registry = Registry::default();
    let metrics = IngestMetrics::register(&mut registry);
    let ready: ops::ReadinessCheck = Arc::new(move || stream.check());

    ops::serve(
        args.common.metrics_addr,
        ops::router(Arc::new(registry), ready.clone()),
    )
    .await
    .context("failed to bind the metrics address")?;

    let state = AppState {
        catalogue,
        publisher: Publisher::new(js, args.publish_timeout, metrics.clone()),
        metrics,
        max_body_bytes: args.max_body_bytes,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to bind {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "webhook server listening");
    axum::serve(listener, router(state, ready))
        .with_graceful_shutdown(ops::shutdown_signal())
        .await
        .context("webhook server failed")?;
    tracing::info!("stopped");
    Ok(())
}
