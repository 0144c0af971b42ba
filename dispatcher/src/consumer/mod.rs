//! The pull loops. Every replica pulls from one durable consumer of all events, the
//! *common* consumer (named `--consumer`), so the number of JetStream consumers (each an R3
//! Raft group on a cluster) does not grow with the tenants. A tenant whose events cannot
//! simply take their turn there (paused, over its rate or its cap on creates in flight, or
//! holding more than its share of this replica's slots) is *diverted*: it gets a durable
//! consumer of its own (`<consumer>-<namespace>`, filtered to its subjects, starting at the
//! first event diverted), its events on the common consumer from that sequence on are
//! acknowledged without running, and its own loop runs them with the tenant's policy, as
//! before: one tenant's backlog never stands in front of another's events. JetStream spreads
//! both kinds of consumer across replicas and redelivers whatever a crashed replica had in
//! flight. The set of diverted tenants is read back at start and every few seconds, so
//! every replica learns of a diversion another made; once a diverted tenant has been quiet
//! for `--tenant-consumer-idle`, its consumer is given back ([`release`]).
//!
//! An event diverted while another replica runs it from the common consumer runs twice
//! at most up to the create, where the ledger and the object's name make it one run.
//!
//! - this file: the settings, the loops' lifetime (the common loop, a loop per diverted
//!   tenant), binding consumers;
//! - [`common`]: the common consumer's loop and the choice to divert;
//! - [`diverted`]: what this replica knows of the diverted tenants, and when it may rely on
//!   it;
//! - [`tenant`]: one diverted tenant's pull loop;
//! - [`release`]: giving a quiet tenant's consumer back;
//! - [`cap`]: the tenant's cap on events in flight, followed as the policy changes;
//! - [`pause`]: a paused tenant's loop, pulling nothing until the policy resumes it;
//! - [`pulled`]: one pull as a loop reads it, and the start of each event;
//! - [`delivery`]: one message from decoding to acknowledgement, kept in progress meanwhile.

mod cap;
mod common;
mod delivery;
mod diverted;
mod pause;
mod pulled;
mod release;
mod tenant;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::{self};
use futures_util::StreamExt;
use sluice_runtime::jetstream::{EVENTS_STREAM, StreamSettings, ensure_events_stream};
use sluice_runtime::retry::Backoff;
use sluice_runtime::subject::{EVENTS_WILDCARD, namespace_filter, tenant_consumer};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::dispatch::Dispatcher;
use cap::TenantCap;
use common::common_loop;
use diverted::{Diversion, Diverted};
use tenant::tenant_loop;

/// How events are pulled and retried.
#[derive(Debug, Clone)]
pub struct ConsumeSettings {
    /// Name of the common durable consumer; a diverted tenant's is `<consumer>-<namespace>`.
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
    /// How long a diverted tenant's consumer goes without events before it is given back.
    pub release_after: Duration,
    pub stream: StreamSettings,
}

/// Events one tenant's loop holds at most while they wait for a processing slot: small, so
/// that a flooding tenant has few events queued ahead of another's.
const TENANT_BATCH: usize = 8;
/// How long one pull request waits for events when fewer arrive than it asked for.
const PULL_EXPIRY: Duration = Duration::from_secs(2);
/// The same once a pull came back empty. Events are delivered the moment they arrive
/// either way; a long wait only makes an idle tenant cheap (one request per tenant per
/// this period), and is given up at shutdown.
const IDLE_PULL_EXPIRY: Duration = Duration::from_secs(10);
/// How often the set of diverted tenants is read back from JetStream.
const TENANT_SCAN: Duration = Duration::from_secs(2);

impl ConsumeSettings {
    /// The durable consumer of `namespace`'s events once it is diverted.
    pub fn consumer_name(&self, namespace: &str) -> String {
        tenant_consumer(&self.consumer, namespace)
    }

    /// A diverted tenant's consumer: its events from `start` on (every stored one for 0,
    /// as consumers made before the common one were).
    fn consumer_config(&self, namespace: &str, start: u64) -> pull::Config {
        pull::Config {
            durable_name: Some(self.consumer_name(namespace)),
            deliver_policy: deliver_from(start),
            filter_subject: namespace_filter(namespace),
            max_ack_pending: 1000,
            ..self.base_config()
        }
    }

    /// The common consumer: every event, from the first stored, so that events stored
    /// before any dispatcher ran are delivered.
    fn common_config(&self) -> pull::Config {
        pull::Config {
            durable_name: Some(self.consumer.clone()),
            deliver_policy: DeliverPolicy::All,
            filter_subject: EVENTS_WILDCARD.to_owned(),
            // Room for every replica's slots and pulls, and for events waiting out a retry
            // delay; a diverted tenant's events are acknowledged as they come.
            max_ack_pending: 20_000,
            ..self.base_config()
        }
    }

    fn base_config(&self) -> pull::Config {
        pull::Config {
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            // Unlimited at the server: the dispatcher gives up itself, so that giving up is
            // always counted and logged rather than a silent stop of deliveries.
            max_deliver: -1,
            ..Default::default()
        }
    }

    /// How often an event held by this replica is reported in progress: well within the
    /// ack wait, so that JetStream never hands it to another replica meanwhile.
    fn progress_interval(&self) -> Duration {
        (self.ack_wait / 3).max(Duration::from_millis(100))
    }
}

fn deliver_from(start: u64) -> DeliverPolicy {
    match start {
        0 => DeliverPolicy::All,
        start_sequence => DeliverPolicy::ByStartSequence { start_sequence },
    }
}

/// What every loop shares.
struct Shared {
    js: jetstream::Context,
    dispatcher: Arc<Dispatcher>,
    settings: ConsumeSettings,
    /// This replica's processing slots, handed out first come, first served.
    slots: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
    /// Turns true `shutdown_timeout` after shutdown: events still in flight go back.
    abort: watch::Receiver<bool>,
    /// The diverted tenants, as last read back, and their loops.
    diverted: Diverted,
    /// Each tenant's events in flight in this replica, whichever consumer delivered them.
    caps: Mutex<HashMap<String, Arc<TenantCap>>>,
}

impl Shared {
    fn cap(&self, namespace: &str) -> Arc<TenantCap> {
        let mut caps = self.caps.lock().unwrap_or_else(PoisonError::into_inner);
        caps.entry(namespace.to_owned()).or_default().clone()
    }
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
    let (start_loop, mut to_start) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        js,
        dispatcher,
        slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
        settings,
        shutdown: shutdown.clone(),
        abort,
        diverted: Diverted::new(start_loop),
        caps: Mutex::default(),
    });
    let mut loops = JoinSet::new();
    // Tenants diverted earlier (by this replica's predecessors or by others) are served by
    // their own consumers from the start: the common loop must not run what they own.
    read_diverted(&shared).await;
    while let Ok(namespace) = to_start.try_recv() {
        start_tenant(&shared, &mut loops, namespace);
    }
    // Out of tokio's cooperative budget: passing over a diverted tenant's backlog is a run
    // of cheap acknowledgements, which would otherwise yield after every hundred or so to
    // every running event, and so take as long as running them.
    loops.spawn(tokio::task::unconstrained(common_loop(shared.clone())));
    let mut stop = shutdown;
    let mut scan = tokio::time::interval(TENANT_SCAN);
    scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(namespace) = to_start.recv() => {
                start_tenant(&shared, &mut loops, namespace);
            }
            _ = scan.tick() => read_diverted(&shared).await,
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    while loops.join_next().await.is_some() {}
    tracing::info!("stopped consuming");
}

fn start_tenant(shared: &Arc<Shared>, loops: &mut JoinSet<()>, namespace: String) {
    tracing::info!(%namespace, "consuming the tenant's events from its own consumer");
    let shared = shared.clone();
    loops.spawn(async move {
        tenant_loop(shared.clone(), namespace.clone()).await;
        shared.diverted.loop_ended(&namespace);
    });
}

/// Reads back the tenants that have their own consumer (of this prefix): where each starts,
/// and whether it is being given back. One paged request: a handful of diverted tenants
/// cost next to nothing to look up.
async fn read_diverted(shared: &Shared) {
    let prefix = tenant_consumer(&shared.settings.consumer, "");
    let Ok(stream) = shared.js.get_stream_no_info(EVENTS_STREAM).await else {
        return;
    };
    let mut consumers = stream.consumers();
    let mut read = Vec::new();
    while let Some(info) = consumers.next().await {
        let info = match info {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "cannot list the tenants' own consumers");
                return;
            }
        };
        if let Some(namespace) = info.name.strip_prefix(&prefix) {
            read.push((namespace.to_owned(), Diversion::of(&info.config)));
        }
    }
    shared.diverted.replace(read);
}

/// Why a consumer could not be bound; its loop tries again.
#[derive(Debug, thiserror::Error)]
enum BindError {
    #[error("the events stream cannot be looked up: {0}")]
    Lookup(#[from] jetstream::context::GetStreamError),
    #[error(transparent)]
    Stream(#[from] sluice_runtime::jetstream::Error),
    #[error("consumer {0} is gone")]
    Gone(String),
    #[error("failed to look up consumer {name}: {source}")]
    Info {
        name: String,
        #[source]
        source: jetstream::context::ConsumerInfoError,
    },
    #[error("failed to create consumer {name}: {source}")]
    Create {
        name: String,
        #[source]
        source: jetstream::stream::ConsumerError,
    },
}

/// The consumer `config` names, created if missing (and `create`; else it is
/// [`BindError::Gone`]). An existing consumer is bound as it is, whatever its start: the
/// first replica to create it decided that.
async fn bind(
    js: &jetstream::Context,
    settings: &ConsumeSettings,
    config: pull::Config,
    create: bool,
) -> Result<PullConsumer, BindError> {
    let name = config.durable_name.clone().unwrap_or_default();
    // One request: only when the consumer cannot be had is the stream made sure of, and the
    // bind tried again.
    let stream = js.get_stream_no_info(EVENTS_STREAM).await?;
    if !create {
        match stream.consumer_info(&name).await {
            Ok(_) => {}
            Err(error) if error.kind() == ConsumerInfoErrorKind::NotFound => {
                return Err(BindError::Gone(name));
            }
            Err(source) => return Err(BindError::Info { name, source }),
        }
    }
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
