//! EventListener status and Events, for configuration read from the Kubernetes API: what
//! `kubectl get el`, `kubectl describe el` and `tkn eventlistener describe` show.
//!
//! One dispatcher replica at a time writes ([`lease`]): each second it compares every
//! listener's `status` with what the catalogue says of it ([`condition`]) and applies, through
//! the status subresource with server-side apply, only what differs. A listener that does not
//! serve also gets a Kubernetes Event on it naming why, once per reason and message, within a
//! budget so that a broken object cannot flood the API.

pub mod condition;
pub mod lease;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use sluice_runtime::cluster::ListenerObjects;
use sluice_triggers::catalogue::Catalogue;

use condition::{Desired, desired, is_current, status_patch};
use lease::Elector;

/// The Lease replicas take turns on.
pub const LEASE_NAME: &str = "sluice-status";
/// The field manager of Sluice's writes: `managedFields` shows who owns the status.
const FIELD_MANAGER: &str = "sluice-dispatcher";
/// Events one replica creates per [`EVENT_WINDOW`] at most.
const EVENT_BUDGET: usize = 20;
const EVENT_WINDOW: Duration = Duration::from_secs(60);
/// Kubernetes refuses an Event's message past 1 KiB (`note` of `events.k8s.io`).
const EVENT_MESSAGE_MAX: usize = 1024;

/// Where and how status is written.
#[derive(Clone, Debug)]
pub struct StatusSettings {
    /// `--public-url`: the base of `status.address.url`.
    pub public_url: Option<String>,
    /// Where the Lease is.
    pub lease_namespace: String,
    pub lease_duration: Duration,
    /// This replica in the Lease and in Events.
    pub identity: String,
}

/// Counts of what the writer did.
#[derive(Clone, Debug, Default)]
pub struct StatusMetrics {
    writer: Gauge,
    writes: Counter,
    events: Counter,
}

impl StatusMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "sluice_status_writer",
            "1 while this replica holds the status Lease and writes EventListener status",
            metrics.writer.clone(),
        );
        registry.register(
            "sluice_status_writes",
            "EventListener status updates applied",
            metrics.writes.clone(),
        );
        registry.register(
            "sluice_status_events",
            "Kubernetes Events created about listeners that do not serve",
            metrics.events.clone(),
        );
        metrics
    }
}

/// Writes status until the task is aborted; releases the Lease when `stop` fires.
pub fn spawn(
    client: kube::Client,
    catalogue: Arc<ArcSwap<Catalogue>>,
    listeners: ListenerObjects,
    settings: StatusSettings,
    metrics: StatusMetrics,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &settings.lease_namespace);
    let mut elector = Elector::new(
        leases,
        LEASE_NAME,
        &settings.identity,
        settings.lease_duration,
    );
    let mut writer = Writer {
        client,
        settings,
        written: BTreeMap::new(),
        reported: HashSet::new(),
        sent: VecDeque::new(),
    };
    // client-go retries every 2 s with a 15 s Lease; the same ratio for other durations.
    let period = (writer.settings.lease_duration / 7).max(Duration::from_millis(100));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => {
                    elector.release().await;
                    metrics.writer.set(0);
                    return;
                }
            }
            let leading = elector.try_lead().await;
            metrics.writer.set(i64::from(leading));
            if !leading {
                writer.written.clear();
                continue;
            }
            let catalogue = catalogue.load_full();
            writer.round(&catalogue, &listeners, &metrics).await;
        }
    })
}

struct Writer {
    client: kube::Client,
    settings: StatusSettings,
    /// What this replica last applied to each listener, and when.
    written: BTreeMap<(String, String), (Desired, Instant)>,
    /// (listener, reason, message) already reported as an Event.
    reported: HashSet<(String, String, String, String)>,
    /// When the Events of the current window were created.
    sent: VecDeque<Instant>,
}

impl Writer {
    async fn round(
        &mut self,
        catalogue: &Catalogue,
        listeners: &ListenerObjects,
        metrics: &StatusMetrics,
    ) {
        let objects = listeners.all();
        self.written.retain(|key, _| objects.contains_key(key));
        self.reported
            .retain(|(ns, name, ..)| objects.contains_key(&(ns.clone(), name.clone())));
        for ((namespace, name), object) in objects {
            let want = desired(&object, catalogue, self.settings.public_url.as_deref());
            if !want.ready {
                self.report(&namespace, &name, &object, &want, metrics)
                    .await;
            } else {
                self.reported
                    .retain(|(ns, n, ..)| !(ns == &namespace && n == &name));
            }
            let current = object.get("status").cloned().unwrap_or(Value::Null);
            if is_current(&current, &want) {
                continue;
            }
            // Written a moment ago and not yet seen back through the watch.
            let key = (namespace.clone(), name.clone());
            if self
                .written
                .get(&key)
                .is_some_and(|(last, at)| *last == want && at.elapsed() < Duration::from_secs(10))
            {
                continue;
            }
            let status = status_patch(&current, &want, &Timestamp::now().to_string());
            match self.apply(&namespace, &name, &object, status).await {
                Ok(()) => {
                    metrics.writes.inc();
                    tracing::info!(
                        namespace = %namespace,
                        listener = %name,
                        ready = want.ready,
                        reason = %want.reason,
                        "listener status written"
                    );
                    self.written.insert(key, (want, Instant::now()));
                }
                Err(error) => tracing::warn!(
                    namespace = %namespace,
                    listener = %name,
                    "failed to write the listener's status: {}",
                    sluice_runtime::cluster::reflect::describe(&error)
                ),
            }
        }
    }

    async fn apply(
        &self,
        namespace: &str,
        name: &str,
        object: &Value,
        status: Value,
    ) -> kube::Result<()> {
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or("triggers.tekton.dev/v1beta1");
        let version = api_version.rsplit('/').next().unwrap_or("v1beta1");
        let resource = ApiResource {
            group: "triggers.tekton.dev".to_owned(),
            version: version.to_owned(),
            api_version: api_version.to_owned(),
            kind: "EventListener".to_owned(),
            plural: "eventlisteners".to_owned(),
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let patch = json!({
            "apiVersion": api_version,
            "kind": "EventListener",
            "status": status,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch_status(name, &params, &Patch::Apply(&patch))
            .await?;
        Ok(())
    }

    /// An Event on the listener, once per reason and message, within the budget.
    async fn report(
        &mut self,
        namespace: &str,
        name: &str,
        object: &Value,
        want: &Desired,
        metrics: &StatusMetrics,
    ) {
        let key = (
            namespace.to_owned(),
            name.to_owned(),
            want.reason.clone(),
            want.message.clone(),
        );
        if self.reported.contains(&key) {
            return;
        }
        while self
            .sent
            .front()
            .is_some_and(|at| at.elapsed() >= EVENT_WINDOW)
        {
            self.sent.pop_front();
        }
        if self.sent.len() >= EVENT_BUDGET {
            // Left for a later round, when the window has room.
            return;
        }
        let now = Time(Timestamp::now());
        let mut message = want.message.clone();
        if message.len() > EVENT_MESSAGE_MAX {
            let mut end = EVENT_MESSAGE_MAX - 3;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str("...");
        }
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{name}.")),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: object["apiVersion"].as_str().map(str::to_owned),
                kind: Some("EventListener".to_owned()),
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                uid: object
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                resource_version: object
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                ..ObjectReference::default()
            },
            reason: Some(want.reason.clone()),
            message: Some(message),
            type_: Some("Warning".to_owned()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            source: Some(EventSource {
                component: Some(FIELD_MANAGER.to_owned()),
                host: None,
            }),
            reporting_component: Some(FIELD_MANAGER.to_owned()),
            reporting_instance: Some(self.settings.identity.clone()),
            ..Event::default()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        match events.create(&PostParams::default(), &event).await {
            Ok(_) => {
                self.sent.push_back(Instant::now());
                self.reported.insert(key);
                metrics.events.inc();
            }
            Err(error) => tracing::warn!(
                namespace = %namespace,
                listener = %name,
                "failed to create an Event about the listener: {}",
                sluice_runtime::cluster::reflect::describe(&error)
            ),
        }
    }
}

/// This replica's name in the Lease: the pod's (`POD_NAME`, else `HOSTNAME`), made unique.
pub fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "sluice-dispatcher".to_owned());
    format!("{host}_{:08x}", fastrand::u32(..))
}

/// The pod's namespace (its service account's), else the kubeconfig context's.
pub fn default_lease_namespace(client: &kube::Client) -> String {
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .ok()
        .map(|ns| ns.trim().to_owned())
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| client.default_namespace().to_owned())
}
