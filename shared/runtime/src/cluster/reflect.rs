//! One resource's objects kept in step with the API server, as a controller's informer
//! keeps them: list (in pages), then watch from the list's `resourceVersion` with bookmarks;
//! a watch that ends or breaks resumes from the last version seen, and `410 Gone` (the
//! version is too old for the server's watch cache) lists again. Every change wakes the
//! configuration builder.
//!
//! Full objects for the Tekton kinds; metadata only (`PartialObjectMetadata`) for Secrets,
//! whose contents are read one by one and never listed or watched.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use kube::api::{
    Api, DynamicObject, ListParams, ObjectList, PartialObjectMeta, WatchEvent, WatchParams,
};
use kube::core::{ApiResource, ObjectMeta, TypeMeta};
use tokio::sync::Notify;

use crate::retry;

/// Objects by namespace (empty for cluster-scoped ones) and name.
pub type Key = (String, String);

/// How long one watch request lasts before the server ends it and it is made again; below
/// the API server's own limit, like client-go's informers.
const WATCH_TIMEOUT_SECS: u32 = 290;
/// List pages: enough that a large namespace costs few round trips, small enough that no
/// page is a burden on the API server.
const PAGE_SIZE: u32 = 500;
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// What is read of each object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The whole object.
    Full,
    /// `metadata` only: what changes, never what it holds.
    Metadata,
}

/// The objects one reflector keeps (as JSON text: a few thousand objects cost their size,
/// not a tree of values), and whether its first list completed. An object's `status` is
/// kept apart: a change of status alone (a status writer's) changes no configuration. For a
/// metadata-only reflector, each object is its `resourceVersion`.
#[derive(Debug, Default)]
pub struct Store {
    objects: Mutex<BTreeMap<Key, Held>>,
    synced: AtomicBool,
}

/// One object: everything but its `status`, and its `status`.
#[derive(Clone, Debug)]
pub struct Held {
    pub object: Arc<str>,
    pub status: Option<Arc<str>>,
}

impl Store {
    /// Every object held (without its status), by key.
    pub fn snapshot(&self) -> BTreeMap<Key, Arc<str>> {
        self.lock()
            .iter()
            .map(|(key, held)| (key.clone(), held.object.clone()))
            .collect()
    }

    /// Every object held, with its status, by key.
    pub fn entries(&self) -> BTreeMap<Key, Held> {
        self.lock().clone()
    }

    /// The object `key` (without its status), when held.
    pub fn get(&self, key: &Key) -> Option<Arc<str>> {
        self.lock().get(key).map(|held| held.object.clone())
    }

    /// Whether the first list completed (and the store holds what it returned).
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Held>> {
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn replace(&self, objects: BTreeMap<Key, Held>) {
        *self.lock() = objects;
        self.synced.store(true, Ordering::Release);
    }

    /// Applies a change; whether anything but a status changed.
    fn apply(&self, change: Change) -> bool {
        let mut objects = self.lock();
        match change {
            Change::Upsert(key, held) => match objects.get_mut(&key) {
                Some(current) if current.object == held.object => {
                    current.status = held.status;
                    false
                }
                _ => {
                    objects.insert(key, held);
                    true
                }
            },
            Change::Remove(key) => objects.remove(&key).is_some(),
        }
    }
}

enum Change {
    Upsert(Key, Held),
    Remove(Key),
}

/// Why a watch stopped.
enum Ended {
    /// The server closed it (its timeout) or the connection broke: watch again from the
    /// last version seen.
    Resume,
    /// `410 Gone`: the version is too old; list again.
    Relist,
}

/// Keeps `store` in step with `api`'s objects until the task is aborted; `changed` is
/// notified on every change. `what` names the resource in logs.
pub fn spawn(
    api: Api<DynamicObject>,
    resource: ApiResource,
    shape: Shape,
    what: String,
    store: Arc<Store>,
    changed: Arc<Notify>,
) -> tokio::task::JoinHandle<()> {
    let types = TypeMeta {
        api_version: resource.api_version,
        kind: resource.kind,
    };
    tokio::spawn(async move {
        let mut backoff = Backoff::default();
        loop {
            let version = match list(&api, shape, &types).await {
                Ok((objects, version)) => {
                    tracing::debug!(resource = %what, objects = objects.len(), "listed");
                    store.replace(objects);
                    changed.notify_one();
                    backoff.reset();
                    version
                }
                Err(error) => {
                    backoff.failed(&what, "list", &error).await;
                    continue;
                }
            };
            let mut version = version;
            loop {
                match watch(&api, shape, &types, &mut version, &store, &changed).await {
                    Ok(Ended::Resume) => backoff.reset(),
                    Ok(Ended::Relist) => {
                        tracing::info!(resource = %what, "watch expired (410 Gone): listing again");
                        break;
                    }
                    Err(error) => {
                        if is_gone(&error) {
                            tracing::info!(resource = %what, "watch expired (410 Gone): listing again");
                            break;
                        }
                        backoff.failed(&what, "watch", &error).await;
                    }
                }
            }
        }
    })
}

/// Every object, page by page, and the list's resourceVersion to watch from.
async fn list(
    api: &Api<DynamicObject>,
    shape: Shape,
    types: &TypeMeta,
) -> kube::Result<(BTreeMap<Key, Held>, String)> {
    let mut objects = BTreeMap::new();
    let mut params = ListParams::default().limit(PAGE_SIZE);
    loop {
        let (items, meta) = match shape {
            Shape::Full => {
                let page: ObjectList<DynamicObject> = api.list(&params).await?;
                let items = page.items.into_iter().map(|object| full(object, types));
                let items = items.collect::<Vec<_>>();
                (items, page.metadata)
            }
            Shape::Metadata => {
                let page = api.list_metadata(&params).await?;
                let items = page.items.into_iter().map(metadata).collect::<Vec<_>>();
                (items, page.metadata)
            }
        };
        objects.extend(items.into_iter().flatten());
        match meta.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok((objects, meta.resource_version.unwrap_or_default())),
        }
    }
}

/// Watches from `version` until the watch ends, applying each event to `store`.
async fn watch(
    api: &Api<DynamicObject>,
    shape: Shape,
    types: &TypeMeta,
    version: &mut String,
    store: &Store,
    changed: &Notify,
) -> kube::Result<Ended> {
    let params = WatchParams {
        bookmarks: true,
        timeout: Some(WATCH_TIMEOUT_SECS),
        ..WatchParams::default()
    };
    match shape {
        Shape::Full => {
            let events = api.watch(&params, version).await?;
            follow(
                events,
                |object| full(object, types),
                version,
                store,
                changed,
            )
            .await
        }
        Shape::Metadata => {
            let events = api.watch_metadata(&params, version).await?;
            follow(events, metadata, version, store, changed).await
        }
    }
}

async fn follow<K, S>(
    events: S,
    read: impl Fn(K) -> Option<(Key, Held)>,
    version: &mut String,
    store: &Store,
    changed: &Notify,
) -> kube::Result<Ended>
where
    S: Stream<Item = kube::Result<WatchEvent<K>>>,
    K: kube::Resource,
{
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        let (object, deleted) = match event? {
            WatchEvent::Added(object) | WatchEvent::Modified(object) => (object, false),
            WatchEvent::Deleted(object) => (object, true),
            WatchEvent::Bookmark(bookmark) => {
                *version = bookmark.metadata.resource_version;
                continue;
            }
            WatchEvent::Error(status) if status.code == 410 => return Ok(Ended::Relist),
            WatchEvent::Error(status) => return Err(kube::Error::Api(status)),
        };
        if let Some(seen) = object.meta().resource_version.clone() {
            *version = seen;
        }
        let Some((key, value)) = read(object) else {
            continue;
        };
        let configuration_changed = store.apply(if deleted {
            Change::Remove(key)
        } else {
            Change::Upsert(key, value)
        });
        if configuration_changed {
            changed.notify_one();
        }
    }
    Ok(Ended::Resume)
}

fn key(meta: &ObjectMeta) -> Option<Key> {
    Some((
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone()?,
    ))
}

/// The annotation `kubectl apply` keeps a second copy of the whole object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The whole object as JSON text, with its `apiVersion` and `kind` (which list items may
/// leave out), without what only the API server's bookkeeping needs: `managedFields` and
/// `kubectl apply`'s copy of the object, which would double what thousands of objects cost.
fn full(mut object: DynamicObject, types: &TypeMeta) -> Option<(Key, Held)> {
    let key = key(&object.metadata)?;
    if object.types.is_none() {
        object.types = Some(types.clone());
    }
    object.metadata.managed_fields = None;
    // Changes with every write, status ones included; nothing Sluice reads.
    object.metadata.resource_version = None;
    if let Some(annotations) = &mut object.metadata.annotations {
        annotations.remove(LAST_APPLIED);
    }
    let status = object
        .data
        .as_object_mut()
        .and_then(|fields| fields.remove("status"))
        .map(|status| Arc::from(status.to_string()));
    let text = serde_json::to_string(&object).ok()?;
    Some((
        key,
        Held {
            object: Arc::from(text),
            status,
        },
    ))
}

/// The object's name and `resourceVersion`: all a metadata-only watch keeps.
fn metadata(object: PartialObjectMeta<DynamicObject>) -> Option<(Key, Held)> {
    let key = key(&object.metadata)?;
    let version = object.metadata.resource_version.unwrap_or_default();
    Some((
        key,
        Held {
            object: Arc::from(version),
            status: None,
        },
    ))
}

fn is_gone(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 410)
}

/// Waits between failed requests ([`retry::Backoff`] from [`BACKOFF_FIRST`] to
/// [`BACKOFF_MAX`]), and logs a failure that repeats once per wait at its longest.
struct Backoff(retry::Retrying);

impl Default for Backoff {
    fn default() -> Self {
        Self(retry::Retrying::new(retry::Backoff::new(
            BACKOFF_FIRST,
            BACKOFF_MAX,
        )))
    }
}

impl Backoff {
    fn reset(&mut self) {
        self.0.reset();
    }

    async fn failed(&mut self, what: &str, request: &str, error: &kube::Error) {
        let next = self.0.failed();
        if next.log {
            tracing::warn!(
                resource = what,
                request,
                failures = next.failures,
                retry_in_ms = next.wait.as_millis() as u64,
                "Kubernetes API request failed: {}",
                describe(error)
            );
        }
        tokio::time::sleep(next.wait).await;
    }
}

/// An API error as a log line shows it: the server's status message, else the error.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(version: &str, status: &str, spec: &str) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "triggers.tekton.dev/v1beta1",
            "kind": "EventListener",
            "metadata": {
                "name": "github", "namespace": "team-a", "resourceVersion": version,
                "annotations": {LAST_APPLIED: "{\"a copy\": true}", "team": "a"},
                "managedFields": [{"manager": "kubectl"}]
            },
            "spec": {"serviceAccountName": spec},
            "status": {"conditions": [{"type": "Ready", "status": status}]}
        }))
        .unwrap()
    }

    fn held(object: DynamicObject) -> (Key, Held) {
        let types = TypeMeta {
            api_version: "triggers.tekton.dev/v1beta1".to_owned(),
            kind: "EventListener".to_owned(),
        };
        full(object, &types).unwrap()
    }

    #[test]
    fn a_change_of_status_alone_is_no_change_of_configuration() {
        let store = Store::default();
        let (key, first) = held(listener("1", "Unknown", "builder"));
        assert!(!first.object.contains("a copy"), "{}", first.object);
        assert!(!first.object.contains("managedFields"), "{}", first.object);
        assert!(!first.object.contains("status"), "{}", first.object);
        assert!(first.object.contains("\"team\":\"a\""), "{}", first.object);
        assert!(store.apply(Change::Upsert(key.clone(), first)));

        let (_, written) = held(listener("2", "True", "builder"));
        assert!(!store.apply(Change::Upsert(key.clone(), written)));
        let kept = store.entries().remove(&key).unwrap();
        assert!(
            kept.status.unwrap().contains("True"),
            "the new status is kept"
        );

        let (_, edited) = held(listener("3", "True", "deployer"));
        assert!(store.apply(Change::Upsert(key.clone(), edited)));
        assert!(store.apply(Change::Remove(key)));
    }
}
