//! `sluice-dispatcher`: wires configuration, NATS, the sink, metrics and the pull loop together.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sluice_dispatcher::args::Args;
use sluice_dispatcher::consumer::{self, ConsumeSettings};
use sluice_dispatcher::dispatch::{DeadLetters, Dispatcher};
use sluice_dispatcher::events_api::{self, Access};
use sluice_dispatcher::interceptor::github::EnterpriseHosts;
use sluice_dispatcher::ledger::Ledger;
use sluice_dispatcher::metrics::DispatchMetrics;
use sluice_dispatcher::ratelimit::RateLimiter;
use sluice_dispatcher::sink::{Sink, dir::DirSink, kube::KubeSink};
use sluice_dispatcher::status;
use sluice_runtime::dlq::{DlqSettings, ensure_dlq_stream};
use sluice_runtime::event_status::StatusReader;
use sluice_runtime::flags::Loaded;
use sluice_runtime::retry::Backoff;
use sluice_runtime::{event_status, jetstream, ops, retry};

/// Each event allocates and frees many short-lived blocks (the envelope, the parsed body,
/// the rendered objects and their JSON) across the runtime's worker threads. On glibc's
/// allocator that was a quarter of the dispatcher's CPU while it drained a backlog;
/// mimalloc's per-thread pages cost less (`docs/performance.md`, "The dispatcher's
/// allocator").
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
        cluster,
    } = args.common.start("sluice-dispatcher").await?;
    let nats = args.common.nats.resolve()?;

    // The status API is open only where there is no cluster to ask whose token it is.
    let mut access = Access::open();
    let sink = match &args.sink_dir {
        Some(dir) => {
            tracing::info!(dir = %dir.display(), "writing objects to a directory; the event status API is open");
            Sink::Dir(DirSink::new(dir.clone()))
        }
        None => {
            let mut config = kube::Config::infer()
                .await
                .context("failed to configure the Kubernetes client (KUBECONFIG or in-cluster)")?;
            // Retries belong to the dispatcher: backed off through JetStream, counted and
            // logged, without holding a concurrency slot.
            config.default_retry = false;
            let client =
                kube::Client::try_from(config).context("failed to build the Kubernetes client")?;
            access = Access::kubernetes(client.clone());
            Sink::Kube(KubeSink::new(client, args.create_timeout))
        }
    };

    let client = jetstream::connect(&nats, "sluice-dispatcher")
        .await
        .context("failed to connect to NATS")?;
    let js = jetstream::context(client.clone(), Duration::from_secs(5));
    let status_writer = event_status::writer(&client, &js, args.common.status_settings());
    let stream = jetstream::StreamHealth::watch(
        client,
        js.clone(),
        args.common.stream_settings(),
        Duration::from_secs(1),
    )
    .await;

    let mut registry = sluice_runtime::metrics::registry();
    let metrics = DispatchMetrics::register(&mut registry);
    sluice_runtime::metrics::follow_listeners(catalogue.clone(), Duration::from_secs(1), {
        let metrics = metrics.clone();
        move |added, removed| metrics.listeners_changed(added, removed)
    });
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    if let Some(watching) = &cluster {
        let client = sluice_runtime::cluster::client()
            .await
            .context("failed to configure the Kubernetes client (KUBECONFIG or in-cluster)")?;
        let settings = status::StatusSettings {
            public_url: args.public_url.clone(),
            lease_namespace: args
                .lease_namespace
                .clone()
                .unwrap_or_else(|| status::default_lease_namespace(&client)),
            lease_duration: args.lease_duration,
            identity: status::identity(),
        };
        tracing::info!(
            lease_namespace = %settings.lease_namespace,
            identity = %settings.identity,
            "writing EventListener status while holding the `sluice-status` Lease"
        );
        status::spawn(
            client,
            catalogue.clone(),
            watching.objects.clone(),
            settings,
            status::StatusMetrics::register(&mut registry),
            shutdown.clone(),
        );
    }
    // Ready only once everything an event needs is open: the events stream, and below the
    // ledger, the dead-letter stream and the rate-limit buckets.
    let starting = ops::Starting::new("opening the dispatch ledger");
    let ready = starting.readiness(Arc::new(move || {
        synced.check()?;
        stream.check()
    }));
    ops::serve(
        args.common.metrics_addr,
        ops::router(Arc::new(registry), ready).merge(events_api::router(
            StatusReader::new(js.clone(), args.consumer.clone()),
            access,
        )),
    )
    .await
    .context("failed to bind the metrics address")?;

    let ledger = keep_trying("the dispatch ledger", || {
        Ledger::open(
            &js,
            args.ledger_ttl,
            args.common.stream_replicas,
            metrics.ledger_reads(),
        )
    })
    .await;
    starting.step("opening the dead-letter stream");
    let dlq = DlqSettings {
        max_age: args.dlq_max_age,
        replicas: args.common.stream_replicas,
    };
    keep_trying("the dead-letter stream", || ensure_dlq_stream(&js, &dlq)).await;
    starting.step("opening the rate-limit buckets");
    let limiter = keep_trying("the rate-limit buckets", || {
        RateLimiter::open(&js, args.common.stream_replicas)
    })
    .await;
    let interceptors = args.interceptors.interceptors_with(EnterpriseHosts {
        flags: args.common.policy.interceptor_allow.clone(),
        policy: Some(policy.clone()),
    });
    let redelivery = Backoff::new(args.retry_base, args.retry_max);
    let dispatcher = Arc::new(
        Dispatcher::new(
            catalogue,
            sink,
            metrics,
            interceptors,
            ledger,
            DeadLetters::new(js.clone()),
        )
        .with_limits(policy, limiter)
        .with_status(status_writer, redelivery),
    );
    let settings = ConsumeSettings {
        consumer: args.consumer,
        concurrency: args.concurrency.max(1),
        max_deliver: args.max_deliver.max(1),
        ack_wait: args.ack_wait,
        retry: redelivery,
        shutdown_timeout: args.shutdown_timeout,
        release_after: args.tenant_consumer_idle,
        stream: args.common.stream_settings(),
    };
    starting.done();
    tokio::spawn(async move {
        ops::shutdown_signal().await;
        let _ = stop.send(true);
    });
    consumer::run(js, dispatcher, settings, shutdown).await;
    sluice_runtime::telemetry::traces::shutdown().await;
    Ok(())
}

/// Opens what the dispatcher needs before it consumes, trying again after 200 ms doubling to
/// 5 s, jittered, until it opens; the first failure is logged, then one per longest wait.
async fn keep_trying<T, E, F>(what: &str, mut open: impl FnMut() -> F) -> T
where
    E: std::fmt::Display,
    F: Future<Output = Result<T, E>>,
{
    let mut retrying = retry::Retrying::new(Backoff::new(
        Duration::from_millis(200),
        Duration::from_secs(5),
    ));
    loop {
        match open().await {
            Ok(opened) => return opened,
            Err(error) => {
                let next = retrying.failed();
                if next.log {
                    tracing::warn!(%error, failures = next.failures, "cannot open {what}; retrying");
                }
                tokio::time::sleep(next.wait).await;
            }
        }
    }
}
