//! The object store: objects by (group, resource) and (namespace, name), one global
//! `resourceVersion` counter as etcd's revision, the kinds the server knows, and the event
//! log that watches replay and follow.
//!
//! Objects are stored once per group and resource, whatever version they were written at,
//! as the API server stores one version and converts on read.

use std::collections::{HashMap, hash_map};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::status::GroupResource;

/// How many events a slow watcher may fall behind before its watch is closed (the client
/// then lists again, as with a real server).
const WATCH_BUFFER: usize = 16 * 1024;

/// Where an object lives: its namespace (`""` when cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        ObjectKey {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The key of a stored object, from its metadata.
    fn of(object: &Value) -> Self {
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
        ObjectKey::new(
            text("/metadata/namespace").unwrap_or(""),
            text("/metadata/name").unwrap_or(""),
        )
    }
}

/// A watch event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as recorded in the event log and sent to watchers.
#[derive(Clone, Debug)]
pub struct Event {
    pub resource_version: u64,
    pub event_type: EventType,
    pub resource: GroupResource,
    /// Shared with the store and every other watcher: an object is never copied to be
    /// logged or sent.
    pub object: Arc<Value>,
}

/// How a watch starts: the events to send first, and a receiver for what follows them.
pub type Started = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

/// The whole state of the cluster's objects.
#[derive(Debug)]
pub struct Store {
    revision: u64,
    /// The revision the event log was last compacted at: watches from older ones get
    /// `410 Gone`.
    compacted: u64,
    /// Hashed, for one probe per create among many objects; read in key order, as etcd's
    /// ranges are, by [`Store::list`] and the watches' initial state.
    collections: HashMap<GroupResource, HashMap<ObjectKey, Arc<Value>>>,
    kinds: HashMap<GroupResource, String>,
    log: Vec<Arc<Event>>,
    events: broadcast::Sender<Arc<Event>>,
}

impl Default for Store {
    fn default() -> Self {
        let kinds = [
            ("configmaps", "ConfigMap"),
            ("events", "Event"),
            ("namespaces", "Namespace"),
            ("pods", "Pod"),
            ("secrets", "Secret"),
            ("serviceaccounts", "ServiceAccount"),
            ("services", "Service"),
        ]
        .into_iter()
        .map(|(resource, kind)| (GroupResource::new("", resource), kind.to_owned()))
        .collect();
        Store {
            revision: 0,
            compacted: 0,
            collections: HashMap::new(),
            kinds,
            log: Vec::new(),
            events: broadcast::channel(WATCH_BUFFER).0,
        }
    }
}

impl Store {
    /// The current revision: the `resourceVersion` of the latest change.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The kind served for a resource, when known (built in, registered, or learned from a
    /// stored object).
    pub fn kind(&self, resource: &GroupResource) -> Option<&str> {
        self.kinds.get(resource).map(String::as_str)
    }

    /// Declares the kind of a resource, as installing its CRD would.
    pub fn register_kind(&mut self, resource: &GroupResource, kind: &str) {
        self.kinds.insert(resource.clone(), kind.to_owned());
    }

    pub fn contains(&self, resource: &GroupResource, key: &ObjectKey) -> bool {
        self.collections
            .get(resource)
            .is_some_and(|objects| objects.contains_key(key))
    }

    pub fn get(&self, resource: &GroupResource, key: &ObjectKey) -> Option<&Value> {
        self.collections
            .get(resource)?
            .get(key)
            .map(|object| &**object)
    }

    /// Objects of a resource in key order, in one namespace (`""`: cluster-scoped ones) or,
    /// with `None`, everywhere.
    pub fn list(&self, resource: &GroupResource, namespace: Option<&str>) -> Vec<&Value> {
        self.shared(resource, namespace)
            .map(|object| &**object)
            .collect()
    }

    fn shared(
        &self,
        resource: &GroupResource,
        namespace: Option<&str>,
    ) -> impl Iterator<Item = &Arc<Value>> {
        let mut objects: Vec<(&ObjectKey, &Arc<Value>)> = self
            .collections
            .get(resource)
            .into_iter()
            .flatten()
            .filter(|(key, _)| namespace.is_none_or(|ns| key.namespace == ns))
            .collect();
        objects.sort_unstable_by_key(|(key, _)| *key);
        objects.into_iter().map(|(_, object)| object)
    }

    /// Stores a new or replaced object under the next revision and tells watchers.
    /// The caller has checked everything else; this only versions and records.
    pub fn put(&mut self, resource: &GroupResource, mut object: Value) -> Arc<Value> {
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        let key = ObjectKey::of(&object);
        let object = Arc::new(object);
        let previous = self
            .collections
            .entry(resource.clone())
            .or_default()
            .insert(key, object.clone());
        let event_type = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.stored(event_type, resource, object.clone());
        object
    }

    /// Stores a new object under the next revision and tells watchers, as [`Store::put`];
    /// `None`, and nothing changes, when its name is taken.
    pub fn add(&mut self, resource: &GroupResource, mut object: Value) -> Option<Arc<Value>> {
        let key = ObjectKey::of(&object);
        let objects = self.collections.entry(resource.clone()).or_default();
        let hash_map::Entry::Vacant(slot) = objects.entry(key) else {
            return None;
        };
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        let object = Arc::new(object);
        slot.insert(object.clone());
        self.stored(EventType::Added, resource, object.clone());
        Some(object)
    }

    /// Learns the resource's kind from its first object, and tells watchers.
    fn stored(&mut self, event_type: EventType, resource: &GroupResource, object: Arc<Value>) {
        if !self.kinds.contains_key(resource)
            && let Some(kind) = object.get("kind").and_then(Value::as_str)
        {
            self.kinds.insert(resource.clone(), kind.to_owned());
        }
        self.emit(event_type, resource, object);
    }

    /// Removes an object under the next revision and tells watchers. Returns it as it was.
    pub fn delete(&mut self, resource: &GroupResource, key: &ObjectKey) -> Option<Value> {
        let object = self.collections.get_mut(resource)?.remove(key)?;
        self.revision += 1;
        let mut tombstone = Value::clone(&object);
        tombstone["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.emit(EventType::Deleted, resource, Arc::new(tombstone));
        Some(Arc::unwrap_or_clone(object))
    }

    /// Deletes every object (watchers see each deletion).
    pub fn clear(&mut self) {
        let keys: Vec<(GroupResource, ObjectKey)> = self
            .collections
            .iter()
            .flat_map(|(resource, objects)| {
                let mut keys: Vec<&ObjectKey> = objects.keys().collect();
                keys.sort_unstable();
                keys.into_iter().map(|key| (resource.clone(), key.clone()))
            })
            .collect();
        for (resource, key) in keys {
            self.delete(&resource, &key);
        }
    }

    /// The oldest revision a watch may still start from.
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Forgets the event log up to the current revision, as etcd's compaction does: a watch
    /// from an older revision then fails with `410 Gone`.
    pub fn compact(&mut self) {
        self.compacted = self.revision;
        self.log.clear();
    }

    /// Ends every open watch (each sees its stream close once it has sent what it had).
    pub fn drop_watches(&mut self) {
        self.events = broadcast::channel(WATCH_BUFFER).0;
    }

    /// The events a new watch starts with, and a receiver for what follows them.
    ///
    /// With no resource version (or `0`) the watch starts from the current state: one
    /// `ADDED` per existing object. With a resource version it replays every change after it,
    /// or, when that version was compacted away, answers `Err` with the compacted revision.
    pub fn watch(&self, resource: &GroupResource, since: Option<u64>) -> Result<Started, u64> {
        if since.is_some_and(|since| since != 0 && since < self.compacted) {
            return Err(self.compacted);
        }
        let initial = match since {
            None | Some(0) => self
                .shared(resource, None)
                .map(|object| {
                    Arc::new(Event {
                        resource_version: resource_version(object),
                        event_type: EventType::Added,
                        resource: resource.clone(),
                        object: object.clone(),
                    })
                })
                .collect(),
            Some(since) => {
                let start = self.log.partition_point(|e| e.resource_version <= since);
                self.log[start..]
                    .iter()
                    .filter(|e| &e.resource == resource)
                    .cloned()
                    .collect()
            }
        };
        Ok((initial, self.events.subscribe()))
    }

    fn emit(&mut self, event_type: EventType, resource: &GroupResource, object: Arc<Value>) {
        let event = Arc::new(Event {
            resource_version: self.revision,
            event_type,
            resource: resource.clone(),
            object,
        });
        self.log.push(event.clone());
        // No receiver is fine: nobody watches.
        let _ = self.events.send(event);
    }
}

/// The numeric `metadata.resourceVersion` of a stored object.
pub fn resource_version(object: &Value) -> u64 {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(namespace: &str, name: &str) -> Value {
        json!({"kind": "PipelineRun", "metadata": {"name": name, "namespace": namespace}})
    }

    #[test]
    fn every_change_takes_the_next_revision() {
        let mut store = Store::default();
        let gr = GroupResource::new("tekton.dev", "pipelineruns");
        let a = store.put(&gr, run("ns", "a"));
        let b = store.put(&gr, run("other", "b"));
        assert_eq!((resource_version(&a), resource_version(&b)), (1, 2));
        assert_eq!(store.kind(&gr), Some("PipelineRun"));
        assert_eq!(store.list(&gr, Some("ns")).len(), 1);
        assert_eq!(store.list(&gr, None).len(), 2);
        store.delete(&gr, &ObjectKey::new("ns", "a")).unwrap();
        assert_eq!(store.revision(), 3);

        let (replay, _) = store.watch(&gr, Some(1)).unwrap();
        let types: Vec<_> = replay.iter().map(|e| e.event_type).collect();
        assert_eq!(types, vec![EventType::Added, EventType::Deleted]);
        let (current, _) = store.watch(&gr, None).unwrap();
        assert_eq!(current.len(), 1);

        store.compact();
        assert_eq!(store.watch(&gr, Some(2)).err(), Some(3));
        let (after, _) = store.watch(&gr, Some(3)).unwrap();
        assert!(after.is_empty());
        assert_eq!(store.watch(&gr, Some(0)).unwrap().0.len(), 1);
    }
}
