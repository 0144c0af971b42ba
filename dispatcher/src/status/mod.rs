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
use sluice_runtime::cluster::WatchedObjects;
use sluice_triggers::catalogue::{Catalogue, ConfigIssue};

use condition::{Desired, desired, has_read, is_current, reason_of, status_patch};
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
    objects: WatchedObjects,
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
        judged: BTreeMap::new(),
        judged_with: None,
        other_problems: Vec::new(),
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
            writer.round(&catalogue, &objects, &metrics).await;
        }
    })
}

struct Writer {
    client: kube::Client,
    settings: StatusSettings,
    /// What this replica last applied to each listener, and when.
    written: BTreeMap<(String, String), (Desired, Instant)>,
    /// Problems already reported as an Event.
    reported: HashSet<ProblemKey>,
    /// Each listener as last judged, when its status then showed what it should.
    judged: BTreeMap<(String, String), Judged>,
    /// The catalogue the listeners were judged with, and the problems of other objects in it.
    judged_with: Option<Arc<Catalogue>>,
    other_problems: Vec<Problem>,
    /// When the Events of the current window were created.
    sent: VecDeque<Instant>,
}

/// Something an Event reports: the object at fault and why.
#[derive(Clone)]
struct Problem {
    kind: String,
    namespace: String,
    name: String,
    object: Value,
    reason: String,
    message: String,
}

impl Problem {
    fn key(&self) -> ProblemKey {
        (
            format!("{}/{}/{}", self.kind, self.namespace, self.name),
            self.reason.clone(),
            self.message.clone(),
        )
    }
}

/// A listener as last judged: the texts it was judged from, and its problem if any.
struct Judged {
    object: Arc<str>,
    status: Option<Arc<str>>,
    problem: Option<Problem>,
}

fn same_text(a: Option<&Arc<str>>, b: Option<&Arc<str>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// (kind/namespace/name, reason, message).
type ProblemKey = (String, String, String);

impl Writer {
    async fn round(
        &mut self,
        catalogue: &Arc<Catalogue>,
        watched: &WatchedObjects,
        metrics: &StatusMetrics,
    ) {
        // A listener is judged again only when it, its status or the catalogue changed: at
        // thousands of listeners, parsing each one every second would cost more than all the
        // rest.
        let same_catalogue = self
            .judged_with
            .as_ref()
            .is_some_and(|last| Arc::ptr_eq(last, catalogue));
        if !same_catalogue {
            self.other_problems = problems_of_other_objects(catalogue, watched);
            self.judged_with = Some(catalogue.clone());
        }
        let mut problems = self.other_problems.clone();
        let listeners = watched.listeners();
        self.written.retain(|key, _| listeners.contains_key(key));
        self.judged.retain(|key, _| listeners.contains_key(key));
        for (key, held) in listeners {
            if same_catalogue
                && let Some(judged) = self.judged.get(&key)
                && Arc::ptr_eq(&judged.object, &held.object)
                && same_text(judged.status.as_ref(), held.status.as_ref())
            {
                problems.extend(judged.problem.clone());
                continue;
            }
            let Ok(mut object) = serde_json::from_str::<Value>(&held.object) else {
                continue;
            };
            if let Some(status) = held.status.as_deref()
                && let Ok(status) = serde_json::from_str::<Value>(status)
            {
                object["status"] = status;
            }
            let (namespace, name) = key.clone();
            if !has_read(catalogue, &namespace, &name) {
                // Created since the catalogue was built: judged once the catalogue has read
                // it, rather than reported unreadable until then.
                continue;
            }
            let want = desired(&object, catalogue, self.settings.public_url.as_deref());
            let problem = (!want.ready).then(|| Problem {
                kind: "EventListener".to_owned(),
                namespace: namespace.clone(),
                name: name.clone(),
                object: object.clone(),
                reason: want.reason.clone(),
                message: want.message.clone(),
            });
            problems.extend(problem.clone());
            let current = self
                .write_status(&namespace, &name, &object, want, metrics)
                .await;
            if current {
                self.judged.insert(
                    key,
                    Judged {
                        object: held.object,
                        status: held.status,
                        problem,
                    },
                );
            }
        }
        // A problem mended (or its object deleted) is forgotten: if it comes back, it is
        // reported again.
        let current: HashSet<ProblemKey> = problems.iter().map(Problem::key).collect();
        self.reported.retain(|key| current.contains(key));
        for problem in &problems {
            self.report(problem, metrics).await;
        }
    }

    /// Applies `want` unless the object already shows it; whether it already did.
    async fn write_status(
        &mut self,
        namespace: &str,
        name: &str,
        object: &Value,
        want: Desired,
        metrics: &StatusMetrics,
    ) -> bool {
        let current = object.get("status").cloned().unwrap_or(Value::Null);
        if is_current(&current, &want) {
            return true;
        }
        // Written a moment ago and not yet seen back through the watch.
        let key = (namespace.to_owned(), name.to_owned());
        if self
            .written
            .get(&key)
            .is_some_and(|(last, at)| *last == want && at.elapsed() < Duration::from_secs(10))
        {
            return false;
        }
        let status = status_patch(&current, &want, &Timestamp::now().to_string());
        match self.apply(namespace, name, object, status).await {
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
        false
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

    /// An Event on the object at fault, once per reason and message, within the budget.
    async fn report(&mut self, problem: &Problem, metrics: &StatusMetrics) {
        let key = problem.key();
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
        let Problem {
            kind,
            namespace,
            name,
            object,
            reason,
            message,
        } = problem;
        let now = Time(Timestamp::now());
        let meta = |field: &str| {
            object
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        // Events of cluster-scoped objects go to `default`, as Kubernetes' recorders put them.
        let event_namespace = if namespace.is_empty() {
            "default"
        } else {
            namespace
        };
        let event = Event {
            metadata: ObjectMeta {
                // As client-go's recorders name Events: the object's name and the time.
                name: Some(format!("{name}.{:x}", unique_nanos())),
                namespace: Some(event_namespace.to_owned()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: object["apiVersion"].as_str().map(str::to_owned),
                kind: Some(kind.clone()),
                name: Some(name.clone()),
                namespace: (!namespace.is_empty()).then(|| namespace.clone()),
                uid: meta("uid"),
                resource_version: meta("resourceVersion"),
                ..ObjectReference::default()
            },
            reason: Some(reason.clone()),
            message: Some(truncate(message, EVENT_MESSAGE_MAX)),
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
        let events: Api<Event> = Api::namespaced(self.client.clone(), event_namespace);
        match events.create(&PostParams::default(), &event).await {
            Ok(_) => {
                self.sent.push_back(Instant::now());
                self.reported.insert(key);
                metrics.events.inc();
            }
            Err(error) => tracing::warn!(
                namespace = %namespace,
                kind = %kind,
                name = %name,
                "failed to create an Event about a configuration problem: {}",
                sluice_runtime::cluster::reflect::describe(&error)
            ),
        }
    }
}

/// The configuration issues of objects other than listeners (whose own problems their
/// condition carries), one per object: the first, with how many more there are.
fn problems_of_other_objects(catalogue: &Catalogue, watched: &WatchedObjects) -> Vec<Problem> {
    let mut by_source: BTreeMap<&str, Vec<&ConfigIssue>> = BTreeMap::new();
    for issue in catalogue.issues() {
        let Some(source) = issue.file.to_str() else {
            continue;
        };
        if !source.starts_with("eventlisteners.") {
            by_source.entry(source).or_default().push(issue);
        }
    }
    by_source
        .into_iter()
        .filter_map(|(source, issues)| {
            let object = watched.by_source(source)?;
            let first = issues[0];
            let mut message = match &first.field {
                Some(field) => format!("{field}: {}", first.message),
                None => first.message.clone(),
            };
            if issues.len() > 1 {
                message.push_str(&format!(" (and {} more)", issues.len() - 1));
            }
            let kind = object["kind"].as_str()?.to_owned();
            // A missing reference keeps its own reason; anything else is the object's.
            let reason = match reason_of(first) {
                "InvalidListener" | "InvalidTrigger" => match kind.as_str() {
                    "TriggerTemplate" => "InvalidTemplate",
                    "TriggerBinding" | "ClusterTriggerBinding" => "InvalidBinding",
                    "Interceptor" | "ClusterInterceptor" => "InvalidInterceptor",
                    _ => "InvalidTrigger",
                },
                specific => specific,
            };
            Some(Problem {
                kind,
                namespace: object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                name: object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)?
                    .to_owned(),
                reason: reason.to_owned(),
                message,
                object,
            })
        })
        .collect()
}

/// Nanoseconds since the epoch, never the same twice in this process.
fn unique_nanos() -> u128 {
    static LAST: std::sync::Mutex<u128> = std::sync::Mutex::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *last = now.max(*last + 1);
    *last
}

/// `text` cut to at most `max` bytes on a character boundary, marked when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
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
