//! A test double of the Kubernetes API server: stateful, in memory, served over real HTTP on
//! 127.0.0.1 and spoken to by the real `kube` client.
//!
//! CI has no API server to run, so tests talk to this instead. It models the API server as
//! a client sees it, for any group, version and resource (as if every CRD were installed),
//! and never special-cases Sluice:
//!
//! - **Resources**: create, get, list, watch, update, patch and delete of namespaced
//!   objects, cluster-wide lists, cluster-scoped objects, and the `status` subresource of
//!   every resource (`request.rs` has the paths). Objects are JSON; the double keeps one copy
//!   per group and resource and serves it at any version.
//! - **Create**: `apiVersion`/`kind` defaulted from the URL and checked against it, namespace
//!   defaulted and checked, `generateName` (five characters from the API server's
//!   alphabet), `uid`, `resourceVersion` (one global counter, like etcd's revision),
//!   `creationTimestamp`, `generation`, metadata validation (names, label keys and values,
//!   annotation keys) with 422 `Invalid` and field causes, 409 `AlreadyExists`, `dryRun=All`.
//!   `status` is dropped, as for a custom resource with a status subresource.
//! - **Update and patch** (`write.rs`), of the object or of `/status`: a `resourceVersion`
//!   that is not the stored one is 409 `Conflict` ("the object has been modified"). As the
//!   registries' strategies say, an update without one is 422 for custom resources and
//!   Leases and unconditional for other built-in kinds, and a PUT of an absent object is
//!   404 except for Leases and Events, which it creates (201). Writes to the object ignore
//!   `status`, writes to `/status` ignore everything else; `generation` counts changes
//!   outside metadata and status. Patches: JSON merge patch (RFC 7386), JSON patch
//!   (RFC 6902; a failed operation is 422), strategic merge patch on built-in groups only
//!   (merged as a JSON merge patch; 415 for custom resources), and server-side apply
//!   (`fieldManager` required, 422 without; JSON or YAML bodies; creates an absent object,
//!   not through `/status`). Apply refuses (409, one `FieldManagerConflict` cause per
//!   field, the real message) to change a field another manager owns unless `force=true`,
//!   which takes it over; merges maps recursively, replaces lists and merges `conditions`
//!   lists by `type` (`listType=map`); and removes what the manager applied before and no
//!   longer does unless another manager owns it. `managedFields` gets one entry per
//!   manager, operation (`Apply`/`Update`) and subresource, with a `fieldsV1` set: for
//!   apply, the fields its configuration names; for update, the fields it changed (taken
//!   from other managers). A write that changes nothing stores nothing: same
//!   `resourceVersion`, no watch event. RBAC verbs `update` and `patch`, on
//!   `{plural}/status` for the subresource.
//! - **List and watch**: `labelSelector` (equality, set and existence forms),
//!   `fieldSelector` on `metadata.name`/`metadata.namespace`, `limit`/`continue`, list
//!   `resourceVersion`; watches replay from a `resourceVersion` or start from the current
//!   state, honour `timeoutSeconds`, and support streaming lists (`sendInitialEvents`).
//!   With `allowWatchBookmarks=true` a watch gets a `BOOKMARK` every
//!   [`set_bookmark_interval`](ApiDouble::set_bookmark_interval) (a minute by default) and
//!   one as it times out. After [`ApiDouble::compact`] a watch from an older version gets
//!   one `ERROR` event with a 410 `Expired` status, as does a list at such a version with
//!   `resourceVersionMatch=Exact`; other lists at old versions get the current state.
//!   [`ApiDouble::drop_watches`] closes every watch connection.
//! - **Metadata only**: `Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`
//!   on lists and `as=PartialObjectMetadata` on single objects and watches (what kube's
//!   `list_metadata`, `get_metadata` and `watch_metadata` send) answer `meta.k8s.io/v1`
//!   objects with only `metadata`; 406 when no offered form can be served.
//! - **Errors** are `metav1.Status` bodies with the real codes, reasons, details and message
//!   shapes (`status.rs`).
//! - **Security**: bearer-token authentication (401), `Impersonate-User`/`-Group`/`-Uid`
//!   checked against the `impersonate` verb, and RBAC on the effective user (403), from a
//!   small rule table the test edits (`rbac.rs`);
//!   and the review APIs servers use to check their own clients against the same tokens
//!   and table: TokenReview and SubjectAccessReview (`reviews.rs`).
//! - **Faults**: injected failures, latency and hangs (`faults.rs`); every request is
//!   recorded (`record.rs`).
//!
//! It does not model: the exact `fieldsV1` sets of the real structured-merge-diff
//! (schema-driven list types other than `conditions`, `managedFields` entries for creates,
//! defaulted fields), strategic merge patch directives, subresources other than `status`
//! (which every resource has, even kinds that have none, such as Secrets and Leases),
//! shared storage between core and `events.k8s.io` Events (two collections here), lists at
//! an exact past `resourceVersion` (the current state is served) and waiting for a future
//! one, expired `continue` tokens, finalizers and graceful deletion, garbage collection,
//! admission webhooks, the other access reviews (Local- and SelfSubjectAccessReview,
//! SelfSubjectRulesReview), token audiences and expiry, OpenAPI schema validation and
//! pruning of custom resources, defaulting beyond metadata, namespace existence,
//! discovery, protobuf and YAML responses, TLS, and consistent snapshots across list
//! pages.
//!
//! ```ignore
//! let api = ApiDouble::start().await;
//! api.grant("system:serviceaccount:tenant:builder", &["create"], "tekton.dev", "pipelineruns", "tenant");
//! let client = api.client().await; // authenticated as the controller
//! // … run the code under test …
//! assert_eq!(api.object_count("tekton.dev", "pipelineruns", "tenant"), 1);
//! ```

mod faults;
mod handlers;
mod rbac;
mod record;
mod request;
mod reviews;
mod selector;
mod server;
mod status;
mod store;
mod validation;
mod write;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_reviews;
#[cfg(test)]
mod tests_watch;
#[cfg(test)]
mod tests_writes;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::watch;

pub use faults::{Failure, FaultRule};
pub use record::RecordedRequest;
pub use request::Verb;

use rbac::Subject;
use server::{Shared, Shutdown, lock};
use status::GroupResource;
use store::ObjectKey;

/// The identity the controller's token authenticates as, unless the builder says otherwise.
pub const DEFAULT_CONTROLLER: &str = "system:serviceaccount:sluice-system:sluice";
/// The kubeconfig context's namespace, unless the builder says otherwise.
pub const DEFAULT_NAMESPACE: &str = "default";

/// What the impersonation right covers: users, groups, service accounts and uids.
const IMPERSONATED: [&str; 4] = ["users", "groups", "serviceaccounts", "uids"];

/// A running API server double. Serves until dropped.
pub struct ApiDouble {
    shared: Arc<Shared>,
    addr: SocketAddr,
    token: String,
    controller: String,
    namespace: String,
    /// Dropping it ends the server, its watches and its hung requests.
    _shutdown: watch::Sender<()>,
}

impl std::fmt::Debug for ApiDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of test output, like any credential.
        f.debug_struct("ApiDouble")
            .field("url", &self.url())
            .field("controller", &self.controller)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Options for [`ApiDouble`]: the controller's identity and the kubeconfig's namespace.
#[derive(Clone, Debug)]
pub struct Builder {
    controller: String,
    namespace: String,
}

impl Builder {
    /// The user the kubeconfig's token authenticates as.
    pub fn controller(mut self, user: &str) -> Self {
        user.clone_into(&mut self.controller);
        self
    }

    /// The default namespace of the kubeconfig's context.
    pub fn namespace(mut self, namespace: &str) -> Self {
        namespace.clone_into(&mut self.namespace);
        self
    }

    /// Binds a free loopback port and starts serving.
    ///
    /// The controller may impersonate anyone and may get, list and watch everything; nothing
    /// else is granted to anyone.
    pub async fn start(self) -> ApiDouble {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("failed to bind the API server double to 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("failed to read the API server double's address");
        let (sender, shutdown) = Shutdown::new();
        let shared = Arc::new(Shared::new(shutdown.clone()));
        let token = uuid::Uuid::new_v4().simple().to_string();
        {
            let mut rbac = lock(&shared.rbac);
            rbac.add_token(&token, &self.controller);
            let controller = Subject::User(self.controller.clone());
            for resource in IMPERSONATED {
                rbac.grant(controller.clone(), &["impersonate"], "", resource, "*");
            }
            rbac.grant(controller, &["get", "list", "watch"], "*", "*", "*");
        }
        let app = server::router(shared.clone());
        tokio::spawn(async move {
            let stopped = async move { shutdown.wait().await };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
            {
                eprintln!("API server double stopped serving: {error}");
            }
        });
        ApiDouble {
            shared,
            addr,
            token,
            controller: self.controller,
            namespace: self.namespace,
            _shutdown: sender,
        }
    }
}

impl ApiDouble {
    /// Options: controller identity, default namespace.
    pub fn builder() -> Builder {
        Builder {
            controller: DEFAULT_CONTROLLER.to_owned(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
        }
    }

    /// Starts a double with the default controller identity and namespace.
    pub async fn start() -> ApiDouble {
        Self::builder().start().await
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The controller's bearer token (the kubeconfig's).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The user the controller's token authenticates as.
    pub fn controller_user(&self) -> &str {
        &self.controller
    }

    /// The kubeconfig context's namespace.
    pub fn default_namespace(&self) -> &str {
        &self.namespace
    }

    /// A kubeconfig for the controller: this server, its token, a context with the default
    /// namespace.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_for(&self.token)
    }

    fn kubeconfig_yaml_for(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: api-double\n  cluster:\n    server: {server}\n\
             users:\n\
             - name: controller\n  user:\n    token: {token}\n\
             contexts:\n\
             - name: api-double\n  context:\n    cluster: api-double\n    user: controller\n    namespace: {namespace}\n\
             current-context: api-double\n",
            server = self.url(),
            namespace = self.namespace,
        )
    }

    /// Writes the controller's kubeconfig to `dir/kubeconfig` and returns its path, for
    /// processes started with `KUBECONFIG`.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml())
            .unwrap_or_else(|e| panic!("failed to write {}: {e}", path.display()));
        path
    }

    /// The `kube::Config` the controller's kubeconfig yields (adjust it, e.g. turn off
    /// `default_retry`, before building a client).
    pub async fn config(&self) -> kube::Config {
        config_from_yaml(&self.kubeconfig_yaml()).await
    }

    /// A client authenticated as the controller, built from its kubeconfig.
    pub async fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config().await)
            .expect("failed to build a kube client for the API server double")
    }

    /// Registers a new token that authenticates as `user` and returns a client using it.
    pub async fn client_as(&self, user: &str) -> kube::Client {
        let token = uuid::Uuid::new_v4().simple().to_string();
        lock(&self.shared.rbac).add_token(&token, user);
        let config = config_from_yaml(&self.kubeconfig_yaml_for(&token)).await;
        kube::Client::try_from(config).expect("failed to build a kube client")
    }

    /// Registers a new bearer token that authenticates as `user` with `groups` (plus
    /// `system:authenticated`, and a service account's groups when `groups` is empty) and a
    /// fresh uid, as a token file or an identity provider would; returns the token. Requests
    /// may carry it, and a TokenReview of it answers this identity.
    pub fn add_token(&self, user: &str, groups: &[&str]) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut identity =
            rbac::Identity::new(user, groups.iter().map(|g| (*g).to_owned()).collect());
        identity.uid = Some(uuid::Uuid::new_v4().to_string());
        lock(&self.shared.rbac).add_identity(&token, identity);
        token
    }

    // --- RBAC -------------------------------------------------------------------------

    /// Allows `user` the `verbs` on `resource` of API `group` in `namespace`. Any of `verbs`,
    /// `group`, `resource` and `namespace` may be `*`; namespace `*` also covers the cluster
    /// scope. Use group `""` for the core group.
    pub fn grant(&self, user: &str, verbs: &[&str], group: &str, resource: &str, namespace: &str) {
        lock(&self.shared.rbac).grant(
            Subject::User(user.to_owned()),
            verbs,
            group,
            resource,
            namespace,
        );
    }

    /// Like [`grant`](Self::grant), for every member of a group (e.g.
    /// `system:serviceaccounts:tenant`).
    pub fn grant_group(
        &self,
        group_name: &str,
        verbs: &[&str],
        group: &str,
        resource: &str,
        namespace: &str,
    ) {
        lock(&self.shared.rbac).grant(
            Subject::Group(group_name.to_owned()),
            verbs,
            group,
            resource,
            namespace,
        );
    }

    /// Allows `user` everything, everywhere.
    pub fn grant_all(&self, user: &str) {
        self.grant(user, &["*"], "*", "*", "*");
    }

    /// Allows `user` to create TokenReviews and SubjectAccessReviews: what a server that
    /// checks its own clients' bearer tokens through the API needs.
    pub fn grant_reviews(&self, user: &str) {
        self.grant(
            user,
            &["create"],
            "authentication.k8s.io",
            "tokenreviews",
            "*",
        );
        self.grant(
            user,
            &["create"],
            "authorization.k8s.io",
            "subjectaccessreviews",
            "*",
        );
    }

    /// Removes what [`grant`](Self::grant) with the same arguments added.
    pub fn revoke(&self, user: &str, verbs: &[&str], group: &str, resource: &str, namespace: &str) {
        lock(&self.shared.rbac).revoke(
            &Subject::User(user.to_owned()),
            verbs,
            group,
            resource,
            namespace,
        );
    }

    /// Removes every rule naming `user` (for the controller, its impersonation and read
    /// rights too).
    pub fn revoke_all(&self, user: &str) {
        lock(&self.shared.rbac).revoke_all(&Subject::User(user.to_owned()));
    }

    /// Takes away the controller's right to impersonate.
    pub fn revoke_impersonation(&self) {
        let controller = Subject::User(self.controller.clone());
        let mut rbac = lock(&self.shared.rbac);
        for resource in IMPERSONATED {
            rbac.revoke(&controller, &["impersonate"], "", resource, "*");
        }
    }

    /// Whether `user` (with the groups the server gives it) may do `verb` on `resource` of
    /// `group` in `namespace` (`""`: cluster scope).
    pub fn is_allowed(
        &self,
        user: &str,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: &str,
    ) -> bool {
        let identity = rbac::Identity::new(user, Vec::new());
        let namespace = Some(namespace).filter(|ns| !ns.is_empty());
        lock(&self.shared.rbac).allows(&identity, verb, group, resource, namespace)
    }

    // --- Faults -------------------------------------------------------------------------

    /// Adds a fault rule.
    pub fn inject(&self, rule: FaultRule) {
        lock(&self.shared.faults).inject(rule);
    }

    /// The next `times` requests with `verb` fail with `failure`.
    pub fn fail_next(&self, verb: Verb, times: u32, failure: Failure) {
        self.inject(FaultRule::fail(failure).on(verb).times(times));
    }

    /// Every request with `verb` fails with `failure` until [`clear_faults`](Self::clear_faults)
    /// (an outage).
    pub fn fail_all(&self, verb: Verb, failure: Failure) {
        self.inject(FaultRule::fail(failure).on(verb).always());
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    // --- Recording ----------------------------------------------------------------------

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).clone()
    }

    /// The recorded requests with `verb` on `resource` (plural, any group).
    pub fn requests_for(&self, verb: Verb, resource: &str) -> Vec<RecordedRequest> {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.is(verb, resource))
            .cloned()
            .collect()
    }

    /// How many recorded requests with `verb` on `resource` were answered `status`; counts
    /// under the log's lock without copying it, for callers that look often while the log
    /// grows (a load test's progress).
    pub fn count_answered(&self, verb: Verb, resource: &str, status: u16) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.is(verb, resource) && r.status == Some(status))
            .count()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    // --- State --------------------------------------------------------------------------

    /// The objects of `resource` in API `group` (`""`: core) in `namespace` (`""`:
    /// cluster-scoped ones), ordered by name.
    pub fn objects(&self, group: &str, resource: &str, namespace: &str) -> Vec<Value> {
        let store = lock(&self.shared.store);
        store
            .list(&GroupResource::new(group, resource), Some(namespace))
            .into_iter()
            .cloned()
            .collect()
    }

    /// The objects of `resource` in every namespace, ordered by namespace and name.
    pub fn all_objects(&self, group: &str, resource: &str) -> Vec<Value> {
        let store = lock(&self.shared.store);
        store
            .list(&GroupResource::new(group, resource), None)
            .into_iter()
            .cloned()
            .collect()
    }

    /// How many objects [`objects`](Self::objects) would return.
    pub fn object_count(&self, group: &str, resource: &str, namespace: &str) -> usize {
        let store = lock(&self.shared.store);
        store
            .list(&GroupResource::new(group, resource), Some(namespace))
            .len()
    }

    /// One object, if it exists.
    pub fn object(
        &self,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let store = lock(&self.shared.store);
        store
            .get(
                &GroupResource::new(group, resource),
                &ObjectKey::new(namespace, name),
            )
            .cloned()
    }

    /// Seeds (or replaces) an object without going through HTTP, RBAC or validation, as
    /// another client of the cluster would have. The object needs `apiVersion`, `kind` and
    /// `metadata.name`; `namespace`, `uid` and `creationTimestamp` are filled in, the
    /// `resourceVersion` is the next one, and watchers see `ADDED` (or `MODIFIED`).
    /// Returns the stored object.
    pub fn insert(&self, group: &str, resource: &str, namespace: &str, object: Value) -> Value {
        let mut object = object;
        assert!(
            object.get("apiVersion").is_some_and(Value::is_string)
                && object.get("kind").is_some_and(Value::is_string)
                && object
                    .pointer("/metadata/name")
                    .is_some_and(Value::is_string),
            "ApiDouble::insert needs apiVersion, kind and metadata.name: {object}"
        );
        let metadata = &mut object["metadata"];
        if namespace.is_empty() {
            if let Some(metadata) = metadata.as_object_mut() {
                metadata.remove("namespace");
            }
        } else {
            metadata["namespace"] = json!(namespace);
        }
        if metadata.get("uid").is_none() {
            metadata["uid"] = json!(uuid::Uuid::new_v4().to_string());
        }
        if metadata.get("creationTimestamp").is_none() {
            metadata["creationTimestamp"] = json!(handlers::now());
        }
        let stored = lock(&self.shared.store).put(&GroupResource::new(group, resource), object);
        Value::clone(&stored)
    }

    /// Deletes an object without going through HTTP; watchers see `DELETED`.
    pub fn remove(
        &self,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        lock(&self.shared.store).delete(
            &GroupResource::new(group, resource),
            &ObjectKey::new(namespace, name),
        )
    }

    /// Declares the kind served for a resource, as installing its CRD would. Without it the
    /// double learns the kind from the first object stored.
    pub fn register_kind(&self, group: &str, resource: &str, kind: &str) {
        lock(&self.shared.store).register_kind(&GroupResource::new(group, resource), kind);
    }

    /// Deletes every object (watchers see each deletion). Faults, grants and the request log
    /// are kept.
    pub fn clear(&self) {
        lock(&self.shared.store).clear();
    }

    // --- Watches ------------------------------------------------------------------------

    /// Forgets the change history up to the current `resourceVersion`, as etcd's compaction
    /// does. A watch from an older version then gets one `ERROR` event carrying a `410`
    /// `Expired` status (`too old resource version: X (Y)`), and so does a list at such a
    /// version with `resourceVersionMatch=Exact`; other lists are served from the current
    /// state. Returns the compacted revision.
    pub fn compact(&self) -> u64 {
        let mut store = lock(&self.shared.store);
        store.compact();
        store.compacted()
    }

    /// Closes every open watch connection, as an API server restart or a load balancer
    /// does; each watch first sends what it had already queued.
    pub fn drop_watches(&self) {
        lock(&self.shared.store).drop_watches();
    }

    /// How often watches that allow bookmarks (`allowWatchBookmarks=true`) get a `BOOKMARK`
    /// event; applies to watches started afterwards. The real server's period, and the
    /// default, is about a minute.
    pub fn set_bookmark_interval(&self, interval: std::time::Duration) {
        *lock(&self.shared.bookmark_interval) = interval;
    }
}

async fn config_from_yaml(yaml: &str) -> kube::Config {
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(yaml).expect("the double's kubeconfig is valid YAML");
    kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .expect("the double's kubeconfig yields a kube config")
}
