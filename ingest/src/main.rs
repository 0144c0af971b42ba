//! `sluice-ingest`: wires configuration, NATS, metrics and the HTTP servers together.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sluice_ingest::admission::AdmissionLimits;
use sluice_ingest::app::{AppState, BodyLimit, router};
use sluice_ingest::args::Args;
use sluice_ingest::metrics::IngestMetrics;
use sluice_ingest::publish::Publisher;
use sluice_ingest::server;
use sluice_runtime::flags::Loaded;
use sluice_runtime::{event_status, jetstream, ops};

/// A request allocates and frees a few dozen blocks on whichever worker thread runs it. At
/// saturation glibc's allocator took a fifth of ingest's CPU, part of it merging free lists
/// whenever a body or event buffer was allocated; mimalloc's per-thread pages take about
/// half as much (`docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    sluice_runtime::flags::run_main(args.common.worker_threads, run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let Loaded {
        catalogue,
        policy,
        synced,
        ..
    } = args.common.start("sluice-ingest").await?;
    let nats = args.common.nats.resolve()?;

    let client = jetstream::connect(&nats, "sluice-ingest")
        .await
        .context("failed to connect to NATS")?;
    // Known once connected: until then the flag stands, and ingest is not ready.
    let max_body_bytes = BodyLimit::new(args.max_body_bytes);
    let limit_read = Arc::new(AtomicBool::new(false));
    tokio::spawn(follow_max_payload(
        client.clone(),
        args.max_body_bytes,
        args.limits.max_header_bytes,
        max_body_bytes.clone(),
        limit_read.clone(),
    ));
    let js = jetstream::context(client.clone(), args.publish_timeout);
    let status = event_status::writer(&client, &js, args.common.status_settings());
    let stream = jetstream::StreamHealth::watch(
        client.clone(),
        js,
        args.common.stream_settings(),
        Duration::from_secs(1),
    )
    .await;

    let mut registry = sluice_runtime::metrics::registry();
    let metrics = IngestMetrics::register(&mut registry);
    sluice_runtime::metrics::follow_listeners(catalogue.clone(), Duration::from_secs(1), {
        let metrics = metrics.clone();
        move |added, removed| metrics.listeners_changed(added, removed)
    });
    // Ready once NATS and the events stream have been reached, and from then on through a
    // NATS outage: ingest answers senders `503 queue_unavailable` with `Retry-After` itself,
    // where a load balancer that dropped every unready replica would refuse connections.
    // Unready from the first shutdown signal on, whatever NATS says.
    let draining = ops::Draining::new();
    let ready = draining.readiness(ops::ready_once_reached(Arc::new(move || {
        synced.check()?;
        stream.check()?;
        if !limit_read.load(Ordering::Acquire) {
            return Err("reading nats-server's max_payload".to_owned());
        }
        Ok(())
    })));

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
        max_body_bytes: max_body_bytes.clone(),
        admission: Some(Arc::new(AdmissionLimits::new(policy))),
        status: Arc::new(status.counting_unrecorded(metrics.refusals_unrecorded())),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to bind {}", args.listen))?;
    let limits = &args.limits;
    tracing::info!(
        addr = %listener.local_addr()?,
        max_body_bytes = max_body_bytes.get(),
        max_header_bytes = limits.max_header_bytes,
        max_connections = limits.max_connections,
        max_concurrent_requests = limits.max_concurrent_requests,
        header_read_timeout_ms = limits.header_read_timeout.as_millis() as u64,
        body_read_timeout_ms = limits.body_read_timeout.as_millis() as u64,
        "webhook server listening"
    );
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
    sluice_runtime::telemetry::traces::shutdown().await;
    Ok(())
}

/// Keeps `limit` to what the connected server's messages carry: read when the connection
/// comes up, and again whenever the server's `max_payload` changes (a reconnection to another
/// server of the cluster). A cut is logged once per change. `read` is set once the limit
/// has been computed from a server's `max_payload`.
async fn follow_max_payload(
    client: async_nats::Client,
    flag: usize,
    max_header_bytes: usize,
    limit: BodyLimit,
    read: Arc<AtomicBool>,
) {
    let mut last = 0;
    loop {
        let max_payload = client.server_info().max_payload;
        if max_payload > 0 && max_payload != last {
            last = max_payload;
            limit.set(body_limit(flag, max_payload, max_header_bytes));
            read.store(true, Ordering::Release);
        }
        let pause = if last == 0 { 50 } else { 1000 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// The body limit ingest enforces: `--max-body-bytes`, cut to what one NATS message carries
/// with the envelope, so that a body NATS cannot carry is a `413` naming the limit rather
/// than a `503` that a sender would retry for ever.
fn body_limit(flag: usize, max_payload: usize, max_header_bytes: usize) -> usize {
    let Some(room) = sluice_ingest::publish::largest_body(max_payload, max_header_bytes) else {
        tracing::error!(
            nats_max_payload = max_payload,
            envelope_bytes = sluice_ingest::publish::ENVELOPE_FIXED_BYTES + 2 * max_header_bytes,
            "nats-server's max_payload leaves no room for a body once the envelope is counted: \
             every non-empty body is refused with 413; raise max_payload in the server's \
             configuration"
        );
        return 0;
    };
    if room < flag {
        tracing::warn!(
            max_body_bytes = flag,
            nats_max_payload = max_payload,
            effective_max_body_bytes = room,
            "--max-body-bytes is more than one NATS message carries with the envelope: larger \
             bodies are refused with 413; raise nats-server's max_payload to accept them"
        );
    }
    flag.min(room)
}
