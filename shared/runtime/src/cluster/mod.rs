//! Tekton Triggers configuration from the Kubernetes API: what tenants `kubectl apply`.
//!
//! - [`reflect`]: one reflector per watched resource (and per namespace when
//!   `--watch-namespaces` lists them) keeps its objects in step with the API server;
//! - the builder (here) turns every object held into a [`Catalogue`] with the same loader and
//!   checks as a configuration directory, and swaps it in after each burst of changes;
//! - Secrets are read one by one, only those an interceptor names, and read again when the
//!   metadata-only watch of Secrets shows that one changed: their contents are never listed
//!   or watched.
//!
//! Tekton's CRDs serve `v1beta1` and `v1alpha1` of the same stored objects without
//! conversion (only `apiVersion` changes): the Trigger kinds are read at `v1beta1`, as
//! Tekton's controller reads them, the interceptor kinds at `v1alpha1` (the only version
//! they have).

pub mod reflect;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures_util::{FutureExt, StreamExt};
use kube::api::{Api, ApiResource, DynamicObject};
use serde_json::Value;
use sluice_triggers::catalogue::Catalogue;
use sluice_triggers::config::{LoadOptions, Objects, log_issue};
use tokio::sync::Notify;

use reflect::{Key, Shape, Store};

/// A resource Sluice reads configuration from.
struct Watched {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
}

const TRIGGERS: &str = "triggers.tekton.dev";

/// Tekton Triggers' kinds, in the order the builder adds them.
const WATCHED: [Watched; 7] = [
    Watched::tekton("v1beta1", "EventListener", "eventlisteners", true),
    Watched::tekton("v1beta1", "Trigger", "triggers", true),
    Watched::tekton("v1beta1", "TriggerBinding", "triggerbindings", true),
    Watched::tekton(
        "v1beta1",
        "ClusterTriggerBinding",
        "clustertriggerbindings",
        false,
    ),
    Watched::tekton("v1beta1", "TriggerTemplate", "triggertemplates", true),
    Watched::tekton(
        "v1alpha1",
        "ClusterInterceptor",
        "clusterinterceptors",
        false,
    ),
    Watched::tekton("v1alpha1", "Interceptor", "interceptors", true),
];

/// Secrets: their metadata only.
const SECRETS: Watched = Watched {
    group: "",
    version: "v1",
    kind: "Secret",
    plural: "secrets",
    namespaced: true,
};

impl Watched {
    const fn tekton(
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
        namespaced: bool,
    ) -> Self {
        Self {
            group: TRIGGERS,
            version,
            kind,
            plural,
            namespaced,
        }
    }

    fn resource(&self) -> ApiResource {
        let api_version = if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        };
        ApiResource {
            group: self.group.to_owned(),
            version: self.version.to_owned(),
            api_version,
            kind: self.kind.to_owned(),
            plural: self.plural.to_owned(),
        }
    }

    /// How an issue names one of its objects, as a file names a document.
    fn source(&self, (namespace, name): &Key) -> String {
        if namespace.is_empty() {
            format!("{}.{}/{name}", self.plural, self.group)
        } else if self.group.is_empty() {
            format!("{}/{namespace}/{name}", self.plural)
        } else {
            format!("{}.{}/{namespace}/{name}", self.plural, self.group)
        }
    }
}

/// What a burst of changes may take before the catalogue is rebuilt: long enough that a
/// `kubectl apply` of many objects costs one rebuild, short against the 2 s a change may take
/// to be served.
const SETTLE: Duration = Duration::from_millis(50);

/// Where configuration is read: every namespace, or those listed.
#[derive(Clone, Debug)]
pub enum Scope {
    AllNamespaces,
    Namespaces(Vec<String>),
}

impl Scope {
    /// `--watch-namespaces`: empty means every namespace.
    pub fn from_flag(namespaces: &[String]) -> Self {
        let mut listed: Vec<String> = namespaces
            .iter()
            .map(|ns| ns.trim().to_owned())
            .filter(|ns| !ns.is_empty())
            .collect();
        listed.sort();
        listed.dedup();
        if listed.is_empty() {
            Scope::AllNamespaces
        } else {
            Scope::Namespaces(listed)
        }
    }
}

/// The Tekton objects as the API server holds them (with `metadata.uid`,
/// `metadata.generation` and `status`, which the catalogue does not keep): what a status
/// writer compares against and what Events refer to.
#[derive(Clone, Debug, Default)]
pub struct WatchedObjects(Vec<(&'static str, Vec<Arc<Store>>)>);

impl WatchedObjects {
    /// Every EventListener held, by namespace and name: the object and its status, as JSON
    /// text.
    pub fn listeners(&self) -> BTreeMap<Key, reflect::Held> {
        self.stores("eventlisteners")
            .flat_map(|store| store.entries())
            .collect()
    }

    /// The object `name` of `plural` (`triggertemplates`…) in `namespace` (empty for
    /// cluster-scoped kinds).
    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (namespace.to_owned(), name.to_owned());
        let text = self.stores(plural).find_map(|store| store.get(&key))?;
        serde_json::from_str(&text).ok()
    }

    /// The object an issue's source names (`triggertemplates.triggers.tekton.dev/ns/name`).
    pub fn by_source(&self, source: &str) -> Option<Value> {
        let (resource, rest) = source.split_once('/')?;
        let plural = resource.strip_suffix(&format!(".{TRIGGERS}"))?;
        let (namespace, name) = rest.split_once('/').unwrap_or(("", rest));
        self.get(plural, namespace, name)
    }

    fn stores(&self, plural: &str) -> impl Iterator<Item = &Arc<Store>> {
        self.0
            .iter()
            .filter(move |(p, _)| *p == plural)
            .flat_map(|(_, stores)| stores)
    }
}

/// What [`start`] keeps current besides the catalogue.
#[derive(Clone, Debug)]
pub struct Watching {
    pub synced: Synced,
    pub objects: WatchedObjects,
}

/// Whether the first lists completed and the first catalogue was built from them.
#[derive(Clone, Debug, Default)]
pub struct Synced(Arc<AtomicBool>);

impl Synced {
    pub fn done() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    pub fn check(&self) -> Result<(), String> {
        if self.0.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err("reading the configuration from the Kubernetes API".to_owned())
        }
    }
}

/// A client from `KUBECONFIG` (or `~/.kube/config`), else the pod's service account.
/// Requests are not retried by the client: the reflectors back off themselves.
pub async fn client() -> kube::Result<kube::Client> {
    let mut config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    config.default_retry = false;
    kube::Client::try_from(config)
}

/// Keeps `catalogue` built from the API server's objects in `scope`, under the options
/// `options` gives (asked again at each build, and every `recheck`: a change of the
/// platform's policy rebuilds too). Returns at once; [`Synced`] says when the first build
/// is in.
pub fn start(
    client: kube::Client,
    scope: Scope,
    options: Arc<dyn Fn() -> LoadOptions + Send + Sync>,
    catalogue: Arc<ArcSwap<Catalogue>>,
    recheck: Duration,
) -> Watching {
    let changed = Arc::new(Notify::new());
    let reflectors = |watched: &Watched, shape: Shape| -> Vec<Arc<Store>> {
        let resource = watched.resource();
        let apis: Vec<(String, Api<DynamicObject>)> = match (&scope, watched.namespaced) {
            (Scope::Namespaces(namespaces), true) => namespaces
                .iter()
                .map(|ns| {
                    let api = Api::namespaced_with(client.clone(), ns, &resource);
                    (format!("{} in {ns}", watched.plural), api)
                })
                .collect(),
            _ => vec![(
                watched.plural.to_owned(),
                Api::all_with(client.clone(), &resource),
            )],
        };
        apis.into_iter()
            .map(|(what, api)| {
                let store = Arc::new(Store::default());
                reflect::spawn(
                    api,
                    resource.clone(),
                    shape,
                    what,
                    store.clone(),
                    changed.clone(),
                );
                store
            })
            .collect()
    };
    let kinds: Vec<(&'static Watched, Vec<Arc<Store>>)> = WATCHED
        .iter()
        .map(|watched| (watched, reflectors(watched, Shape::Full)))
        .collect();
    let objects = WatchedObjects(
        kinds
            .iter()
            .map(|(watched, stores)| (watched.plural, stores.clone()))
            .collect(),
    );
    let secret_metadata = reflectors(&SECRETS, Shape::Metadata);
    let synced = Synced::default();
    let builder = Builder {
        client,
        kinds,
        secret_metadata,
        secrets: HashMap::new(),
        options,
        catalogue,
        synced: synced.clone(),
    };
    tokio::spawn(builder.run(changed, recheck));
    Watching { synced, objects }
}

/// A Secret as last read: its `resourceVersion`, and the object as JSON text (`None`: not
/// readable).
struct CachedSecret {
    version: String,
    object: Option<Arc<str>>,
}

struct Builder {
    client: kube::Client,
    kinds: Vec<(&'static Watched, Vec<Arc<Store>>)>,
    secret_metadata: Vec<Arc<Store>>,
    secrets: HashMap<Key, CachedSecret>,
    options: Arc<dyn Fn() -> LoadOptions + Send + Sync>,
    catalogue: Arc<ArcSwap<Catalogue>>,
    synced: Synced,
}

impl Builder {
    async fn run(mut self, changed: Arc<Notify>, recheck: Duration) {
        while !self.stores().all(|store| store.synced()) {
            let _ = tokio::time::timeout(Duration::from_millis(100), changed.notified()).await;
        }
        // Guessed from the interceptors before the first build, so that the start usually
        // builds once: a wrong guess only costs the second build it saves.
        let mut named: Vec<Key> = self.interceptor_secrets();
        let mut reported: HashSet<String> = HashSet::new();
        loop {
            // What woke this build is in what it reads; only a change from here on must
            // wake the next (the first lists each left a wake-up, for one).
            let _ = changed.notified().now_or_never();
            let options = (self.options)();
            let started = Instant::now();
            let mut built = self.build(&named, &options).await;
            // A Secret named for the first time is read, and the catalogue built again with
            // it: twice only when the configuration names a new Secret.
            if built.secrets_named() != named.as_slice() {
                named = built.secrets_named().to_vec();
                // Gone before the next is built: two catalogues of thousands of listeners
                // at once are what a replica's memory peaks at.
                drop(built);
                built = self.build(&named, &options).await;
            }
            let first = !self.synced.0.load(Ordering::Acquire);
            let (new, resolved) = log_issue_changes(&mut reported, &built);
            tracing::info!(
                listeners = built.listeners().count(),
                issues = built.issues().len(),
                new_issues = new,
                resolved_issues = resolved,
                build_ms = started.elapsed().as_millis() as u64,
                "{}",
                if first {
                    "configuration loaded from the Kubernetes API"
                } else {
                    "configuration changed in the Kubernetes API"
                }
            );
            self.catalogue.store(Arc::new(built));
            self.synced.0.store(true, Ordering::Release);
            loop {
                tokio::select! {
                    () = changed.notified() => break,
                    () = tokio::time::sleep(recheck) => {
                        if (self.options)() != options {
                            break;
                        }
                    }
                }
            }
            tokio::time::sleep(SETTLE).await;
        }
    }

    /// The Secrets the interceptors of EventListeners and Triggers name (`secretName`
    /// anywhere inside an `interceptors` list), by the object's namespace, sorted: what the
    /// resolver will name, read from the objects without resolving them.
    fn interceptor_secrets(&self) -> Vec<Key> {
        let mut names = BTreeSet::new();
        let kinds = self
            .kinds
            .iter()
            .filter(|(watched, _)| matches!(watched.plural, "eventlisteners" | "triggers"));
        for (_, stores) in kinds {
            for store in stores {
                for ((namespace, _), text) in store.snapshot() {
                    if let Ok(object) = serde_json::from_str::<Value>(&text) {
                        collect_interceptor_secrets(&object, false, &namespace, &mut names);
                    }
                }
            }
        }
        names.into_iter().collect()
    }

    fn stores(&self) -> impl Iterator<Item = &Arc<Store>> {
        self.kinds
            .iter()
            .flat_map(|(_, stores)| stores)
            .chain(&self.secret_metadata)
    }

    async fn build(&mut self, secrets: &[Key], options: &LoadOptions) -> Catalogue {
        self.read_secrets(secrets).await;
        let mut objects = Objects::default();
        for (watched, stores) in &self.kinds {
            for store in stores {
                for (key, object) in store.snapshot() {
                    objects.add_json(&watched.source(&key), &object);
                }
            }
        }
        for key in secrets {
            if let Some(CachedSecret {
                object: Some(object),
                ..
            }) = self.secrets.get(key)
            {
                objects.add_json(&SECRETS.source(key), object);
            }
        }
        let options = options.clone();
        tokio::task::spawn_blocking(move || objects.build(&options))
            .await
            .unwrap_or_else(|_| Catalogue::new(Vec::new(), Vec::new()))
    }

    /// Brings the cache up to date for `wanted`: a Secret whose metadata shows a version the
    /// cache does not hold is read again; one that does not exist is dropped.
    async fn read_secrets(&mut self, wanted: &[Key]) {
        let versions: BTreeMap<&Key, String> = wanted
            .iter()
            .filter_map(|key| {
                let version = self.secret_metadata.iter().find_map(|s| s.get(key))?;
                Some((key, version.to_string()))
            })
            .collect();
        self.secrets.retain(|key, _| versions.contains_key(key));
        let stale: Vec<(Key, String)> = versions
            .into_iter()
            .filter(|(key, version)| {
                self.secrets
                    .get(*key)
                    .is_none_or(|cached| &cached.version != version)
            })
            .map(|(key, version)| (key.clone(), version))
            .collect();
        // A few at a time: thousands of tenants' Secrets at start would otherwise take a
        // round trip each, one after the other.
        let client = &self.client;
        let mut reads = futures_util::stream::iter(stale)
            .map(|(key, version)| async move {
                let object = read_secret(client, &key).await;
                (key, CachedSecret { version, object })
            })
            .buffer_unordered(SECRET_READS_AT_ONCE);
        while let Some((key, cached)) = reads.next().await {
            self.secrets.insert(key, cached);
        }
    }
}

/// Adds every `secretName` found inside an `interceptors` list of `value` to `names`.
fn collect_interceptor_secrets(
    value: &Value,
    in_interceptors: bool,
    namespace: &str,
    names: &mut BTreeSet<Key>,
) {
    match value {
        Value::Object(fields) => {
            for (field, inner) in fields {
                if in_interceptors
                    && field == "secretName"
                    && let Some(name) = inner.as_str()
                {
                    names.insert((namespace.to_owned(), name.to_owned()));
                }
                let inside = in_interceptors || field == "interceptors";
                collect_interceptor_secrets(inner, inside, namespace, names);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_interceptor_secrets(item, in_interceptors, namespace, names);
            }
        }
        _ => {}
    }
}

/// Secrets read at the same time.
const SECRET_READS_AT_ONCE: usize = 16;

/// One Secret, kept as the loader needs it: its name and `data`, nothing else (not the
/// copies of its values in `kubectl apply`'s annotation or in `managedFields`). `None`: it
/// does not exist or could not be read.
async fn read_secret(client: &kube::Client, (namespace, name): &Key) -> Option<Arc<str>> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &SECRETS.resource());
    match api.get_opt(name).await {
        Ok(Some(secret)) => {
            let kept = serde_json::json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "data": secret.data.get("data").cloned().unwrap_or_else(|| serde_json::json!({})),
            });
            Some(Arc::from(kept.to_string()))
        }
        Ok(None) => None,
        Err(error) => {
            // The name, never the contents; the listener reports the Secret as missing.
            tracing::warn!(
                namespace = %namespace,
                secret = %name,
                "failed to read a Secret an interceptor names: {}",
                reflect::describe(&error)
            );
            None
        }
    }
}

/// Logs the issues `built` has that the previous build did not (a rebuild after each change
/// would otherwise repeat every standing issue); returns how many are new and how many
/// went away.
fn log_issue_changes(reported: &mut HashSet<String>, built: &Catalogue) -> (usize, usize) {
    let mut current = HashSet::with_capacity(built.issues().len());
    let mut new = 0;
    for issue in built.issues() {
        let text = issue.to_string();
        if !reported.contains(&text) {
            log_issue(issue);
            new += 1;
        }
        current.insert(text);
    }
    let resolved = reported.difference(&current).count();
    *reported = current;
    (new, resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_secrets_inside_interceptors_are_guessed() {
        let listener = serde_json::json!({
            "spec": {
                "triggers": [{
                    "interceptors": [{"params": [{"name": "secretRef",
                        "value": {"secretName": "github", "secretKey": "token"}}]}],
                    "template": {"spec": {"resourcetemplates": [{"spec": {"workspaces": [
                        {"name": "creds", "secret": {"secretName": "deploy-key"}}
                    ]}}]}}
                }],
                "triggerGroups": [{"interceptors": [{"github": {"secretRef":
                    {"secretName": "legacy", "secretKey": "t"}}}]}]
            }
        });
        let mut names = BTreeSet::new();
        collect_interceptor_secrets(&listener, false, "team-a", &mut names);
        let names: Vec<Key> = names.into_iter().collect();
        assert_eq!(
            names,
            [
                ("team-a".to_owned(), "github".to_owned()),
                ("team-a".to_owned(), "legacy".to_owned())
            ],
            "a workspace's Secret is no interceptor's"
        );
    }
}
