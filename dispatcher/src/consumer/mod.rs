//! The pull loops: one per tenant namespace. Every replica binds the same durable consumer
//! per namespace (`<consumer>-<namespace>`, filtered to that namespace's subjects), so
//! JetStream spreads each tenant's events across replicas and redelivers whatever a crashed
//! replica had in flight, and one tenant's backlog never stands in front of another's
//! events: each tenant's loop pulls from its own consumer, and all loops take turns (first
//! come, first served) for this replica's processing slots.
//!
//! - this file: the settings, the loops' lifetime (started per configured tenant, stopped
//!   at shutdown), binding a tenant's consumer;
//! - [`tenant`]: one tenant's pull loop;
//! - [`cap`]: the tenant's cap on events in flight, followed as the policy changes;
//! - [`pause`]: a paused tenant's loop, pulling nothing until the policy resumes it;
//! - [`delivery`]: one message from decoding to acknowledgement, kept in progress meanwhile.

mod cap;
mod delivery;
mod pause;
mod tenant;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self};
use futures_util::StreamExt;
use sluice_runtime::jetstream::{EVENTS_STREAM, StreamSettings, ensure_events_stream};
use sluice_runtime::retry::Backoff;
use sluice_runtime::subject::{namespace_filter, tenant_consumer};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::dispatch::Dispatcher;
use tenant::tenant_loop;

/// How events are pulled and retried.
#[derive(Debug, Clone)]
pub struct ConsumeSettings {
    /// Prefix of the durable consumers' names; each tenant's is `<consumer>-<namespace>`.
    pub consumer: String,
    pub concurrency: usize,
    pub max_deliver: i64,
    pub ack_wait: Duration,
    /// The delay before a failed event's next delivery (`--retry-base`, `--retry-max`), by
    /// its delivery count; at least what the API asked for.
    pub retry: Backoff,
    /// After a shutdown signal, how long in-flight events may take before they are handed
    /// back to the stream.
    pub shutdown_timeout: Duration,
    pub stream: StreamSettings,
}

/// Events one tenant's loop holds at most while they wait for a processing slot: small, so
/// that a flooding tenant has few events queued ahead of another's.
const TENANT_BATCH: usize = 8;
/// How long one pull request waits for events when fewer arrive than it asked for.
const PULL_EXPIRY: Duration = Duration::from_secs(2);
/// The same once a pull came back empty. Events are delivered the moment they arrive
/// either way; a long wait only makes an idle tenant cheap (one request per tenant per
/// this period, which matters with thousands of tenants), and is given up at shutdown.
const IDLE_PULL_EXPIRY: Duration = Duration::from_secs(10);
/// How often the set of tenants is compared with the configuration.
const TENANT_SCAN: Duration = Duration::from_secs(2);

impl ConsumeSettings {
    /// The durable consumer of `namespace`'s events.
    pub fn consumer_name(&self, namespace: &str) -> String {
        tenant_consumer(&self.consumer, namespace)
    }

    fn consumer_config(&self, namespace: &str) -> pull::Config {
        let filter = namespace_filter(namespace);
        pull::Config {
            durable_name: Some(self.consumer_name(namespace)),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            // A tenant's consumer is created when its first listener is configured; events
            // stored before that (ingest reloaded first) are still delivered.
            deliver_policy: DeliverPolicy::All,
            filter_subject: filter,
            // Unlimited at the server: the dispatcher gives up itself, so that giving up is
            // always counted and logged rather than a silent stop of deliveries.
            max_deliver: -1,
            max_ack_pending: 1000,
            ..Default::default()
        }
    }

    /// How often an event held by this replica is reported in progress: well within the
    /// ack wait, so that JetStream never hands it to another replica meanwhile.
    fn progress_interval(&self) -> Duration {
        (self.ack_wait / 3).max(Duration::from_millis(100))
    }
}

/// What every tenant loop shares.
struct Shared {
    js: jetstream::Context,
    dispatcher: Arc<Dispatcher>,
    settings: ConsumeSettings,
    /// This replica's processing slots, handed out first come, first served.
    slots: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
    /// Turns true `shutdown_timeout` after shutdown: events still in flight go back.
    abort: watch::Receiver<bool>,
}

/// Consumes until `shutdown` turns true: then pulls no more, lets in-flight events finish
/// within `shutdown_timeout`, and hands the rest back to the stream.
pub async fn run(
    js: jetstream::Context,
    dispatcher: Arc<Dispatcher>,
    settings: ConsumeSettings,
    shutdown: watch::Receiver<bool>,
) {
    let (abort_tx, abort) = watch::channel(false);
    let mut deadline = shutdown.clone();
    let timeout = settings.shutdown_timeout;
    tokio::spawn(async move {
        if deadline.wait_for(|stop| *stop).await.is_ok() {
            tokio::time::sleep(timeout).await;
            let _ = abort_tx.send(true);
        }
    });
    let shared = Arc::new(Shared {
        js,
        dispatcher,
        slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
        settings,
        shutdown: shutdown.clone(),
        abort,
    });
    let mut loops = JoinSet::new();
    let mut running = BTreeSet::new();
    // Tenants whose consumers exist from earlier runs keep being served even when no
    // longer configured: their events are dead-lettered, not left to expire unseen.
    let mut tenants = existing_tenants(&shared).await;
    let mut stop = shutdown;
    loop {
        tenants.extend(shared.dispatcher.namespaces());
        for namespace in &tenants {
            if running.insert(namespace.clone()) {
                tracing::info!(%namespace, "consuming the tenant's events");
                loops.spawn(tenant_loop(shared.clone(), namespace.clone()));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TENANT_SCAN) => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    while loops.join_next().await.is_some() {}
    tracing::info!("stopped consuming");
}

/// Namespaces that already have a consumer of this prefix.
async fn existing_tenants(shared: &Shared) -> BTreeSet<String> {
    let prefix = format!("{}-", shared.settings.consumer);
    let mut found = BTreeSet::new();
    let Ok(stream) = shared.js.get_stream(EVENTS_STREAM).await else {
        return found;
    };
    let mut names = stream.consumer_names();
    while let Some(Ok(name)) = names.next().await {
        if let Some(namespace) = name.strip_prefix(&prefix) {
            found.insert(namespace.to_owned());
        }
    }
    found
}

/// Why a tenant's consumer could not be bound; the tenant's loop tries again.
#[derive(Debug, thiserror::Error)]
enum BindError {
    #[error("the events stream cannot be looked up: {0}")]
    Lookup(#[from] jetstream::context::GetStreamError),
    #[error(transparent)]
    Stream(#[from] sluice_runtime::jetstream::Error),
    #[error("failed to create consumer {name}: {source}")]
    Create {
        name: String,
        #[source]
        source: jetstream::stream::ConsumerError,
    },
}

/// The tenant's durable consumer, created if missing.
async fn bind(
    js: &jetstream::Context,
    settings: &ConsumeSettings,
    namespace: &str,
) -> Result<PullConsumer, BindError> {
    let name = settings.consumer_name(namespace);
    let config = settings.consumer_config(namespace);
    // One request per tenant: with thousands of tenants, looking the stream up (or
    // reconciling it) for each would multiply the start-up work. Only when the consumer
    // cannot be had is the stream made sure of, and the bind tried again.
    let stream = js.get_stream_no_info(EVENTS_STREAM).await?;
    if let Ok(consumer) = stream.get_or_create_consumer(&name, config.clone()).await {
        return Ok(consumer);
    }
    let stream = ensure_events_stream(js, &settings.stream).await?;
    let consumer = stream
        .get_or_create_consumer(&name, config)
        .await
        .map_err(|source| BindError::Create { name, source })?;
    Ok(consumer)
}
