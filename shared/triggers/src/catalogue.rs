//! The resolved catalogue: every valid EventListener with its triggers fully resolved
//! (bindings flattened into params, templates looked up, secrets attached), ready for
//! lock-free lookups on the request path.
//!
//! It is built by [`crate::config`] from Tekton Triggers documents; ingest and the
//! dispatcher only read it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;

use crate::body::FieldTree;
use crate::secret::SecretValue;
use sluice_cel as cel;

/// Every valid listener, plus the problems found while building it.
#[derive(Debug, Default)]
pub struct Catalogue {
    /// By namespace, then name: a lookup borrows the request's names, copying none.
    listeners: HashMap<String, HashMap<String, Arc<Listener>>>,
    issues: Vec<ConfigIssue>,
    /// The Secrets interceptors named (namespace, name), found or not.
    secrets_named: Vec<(String, String)>,
}

impl Catalogue {
    pub fn new(listeners: Vec<Listener>, issues: Vec<ConfigIssue>) -> Self {
        let mut by_namespace: HashMap<String, HashMap<String, Arc<Listener>>> = HashMap::new();
        for listener in listeners {
            by_namespace
                .entry(listener.namespace.clone())
                .or_default()
                .insert(listener.name.clone(), Arc::new(listener));
        }
        Self {
            listeners: by_namespace,
            issues,
            secrets_named: Vec::new(),
        }
    }

    /// The catalogue, knowing which Secrets its configuration named.
    pub(crate) fn with_secrets_named(mut self, secrets: Vec<(String, String)>) -> Self {
        self.secrets_named = secrets;
        self
    }

    /// The Secrets (namespace, name) that interceptors named, whether they were found or
    /// not, sorted: what a source that fetches Secrets one by one must read.
    pub fn secrets_named(&self) -> &[(String, String)] {
        &self.secrets_named
    }

    pub fn listener(&self, namespace: &str, name: &str) -> Option<&Arc<Listener>> {
        self.listeners.get(namespace)?.get(name)
    }

    /// Whether any listener is configured in `namespace`.
    pub fn has_namespace(&self, namespace: &str) -> bool {
        self.listeners.contains_key(namespace)
    }

    pub fn listeners(&self) -> impl Iterator<Item = &Arc<Listener>> {
        self.listeners.values().flat_map(HashMap::values)
    }

    /// Documents or references that were skipped, each naming file, document and field.
    pub fn issues(&self) -> &[ConfigIssue] {
        &self.issues
    }
}

/// A resolved EventListener.
#[derive(Debug, Clone)]
pub struct Listener {
    pub namespace: String,
    pub name: String,
    /// `metadata.uid`, or a stable UUID derived from namespace and name when the file has none.
    pub uid: String,
    pub triggers: Vec<Trigger>,
    /// Declared triggers that were skipped as invalid (each reported as a [`ConfigIssue`]).
    /// A listener left with no trigger answers that it is misconfigured instead of accepting
    /// webhooks that nothing would run.
    pub skipped_triggers: usize,
    /// Its `sluice.dev/…` annotations (a tenant lowering its own limits), as strings.
    pub annotations: BTreeMap<String, String>,
    /// Whether a body must be JSON (Tekton's payload validation): on unless the annotation
    /// `tekton.dev/payload-validation` is `"false"`, which lets any body through as it is.
    pub payload_validation: bool,
}

impl Listener {
    /// The trigger named `name`; names are unique within a listener.
    pub fn trigger(&self, name: &str) -> Option<&Trigger> {
        self.triggers.iter().find(|trigger| trigger.name == name)
    }
}

/// One trigger of a listener, inline or via `triggerRef`, fully resolved.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// The trigger's name; an unnamed inline trigger is named from its position.
    pub name: String,
    /// Where its resources are created: the listener's namespace, or the Trigger object's
    /// when a selector picked it from another namespace.
    pub namespace: String,
    /// The trigger's service account, else the listener's, else `default`.
    pub service_account: String,
    /// Interceptors in the order they run: its trigger group's first, then its own.
    pub interceptors: Vec<Interceptor>,
    /// The trigger group that selected it, whose interceptors begin `interceptors`.
    pub group: Option<GroupRef>,
    /// Its template may create objects in other namespaces (the platform allows it); else
    /// such an object is refused.
    pub cross_namespace: bool,
    /// All bindings' params flattened in declaration order; names are unique.
    pub params: Vec<BindingParam>,
    /// What `params` read of the body, worked out when an event first needs it (a
    /// catalogue holds thousands of triggers, many of which may see no event): see
    /// [`crate::expr::trigger_body_reads`].
    pub(crate) body_reads: OnceLock<FieldTree>,
    pub template: Arc<TemplateSpec>,
}

/// A trigger's place in a trigger group: the group's interceptors run once per event for
/// every trigger of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    /// The group's `name`, or `group-<index>` when it has none.
    pub name: String,
    /// How many of the trigger's interceptors are the group's.
    pub interceptors: usize,
}

/// A binding param: a name and a value that may hold `$(body…)`-style expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingParam {
    pub name: String,
    pub value: String,
}

/// A TriggerTemplate's spec.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSpec {
    pub params: Vec<ParamSpec>,
    /// `spec.resourcetemplates`.
    pub resource_templates: ResourceTemplates,
    /// The template carries the `triggers.tekton.dev/old-escape-quotes` annotation (with any
    /// value, as Tekton reads it).
    pub old_escape_quotes: bool,
}

/// A template's `spec.resourcetemplates`, held as compact JSON text and parsed on first
/// use.
///
/// A catalogue of thousands of templates held as `serde_json::Value` trees would take tens
/// of MB (every object is a B-tree node of about 600 bytes). Ingest never renders, so it
/// keeps only the text; a dispatcher parses a template once, on its first render.
#[derive(Debug, Clone)]
pub struct ResourceTemplates {
    /// A JSON array of the resources.
    json: Box<str>,
    parsed: OnceLock<Result<Vec<Value>, String>>,
}

impl ResourceTemplates {
    /// From parsed resources.
    pub fn new(resources: Vec<Value>) -> Self {
        let json = Value::Array(resources).to_string();
        Self::from_json(json)
    }

    /// From the text of a JSON array, as `serde_json` wrote it.
    pub(crate) fn from_json(json: String) -> Self {
        Self {
            json: json.into_boxed_str(),
            parsed: OnceLock::new(),
        }
    }

    /// The resources, parsed on the first call.
    ///
    /// The text was written by `serde_json` from a document no deeper than the YAML and JSON
    /// parsers allow, so reading it back cannot fail; if it ever did, the reason is returned
    /// rather than an empty list.
    pub fn get(&self) -> Result<&[Value], &str> {
        let parsed = self
            .parsed
            .get_or_init(|| serde_json::from_str(&self.json).map_err(|error| error.to_string()));
        parsed.as_deref().map_err(String::as_str)
    }
}

impl PartialEq for ResourceTemplates {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

/// A declared template param.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub description: Option<String>,
    pub default: Option<String>,
}

/// An interceptor evaluated by Sluice. Interceptor kinds that Sluice does not evaluate make
/// their trigger invalid (fail closed): a trigger never runs with a check silently skipped.
///
/// Every secret is a [`SecretValue`], so the derived `Debug` of each variant prints none.
#[derive(Debug, Clone)]
pub enum Interceptor {
    /// GitHub: `X-Hub-Signature-256` HMAC of the body, and `X-GitHub-Event` in `event_types`.
    GitHub(GitHubInterceptor),
    /// GitLab: `X-Gitlab-Token` is the secret, and `X-Gitlab-Event` in `event_types`.
    GitLab(GitLabInterceptor),
    /// Bitbucket Cloud and Data Center: `X-Hub-Signature` HMAC of the body, and
    /// `X-Event-Key` in `event_types`.
    Bitbucket(BitbucketInterceptor),
    /// Gitee: `X-Gitee-Token` is the password or a timestamped signature, and
    /// `X-Gitee-Event` in `event_types`.
    Gitee(GiteeInterceptor),
    /// Slack: `X-Slack-Signature` HMAC of `v0:<timestamp>:<body>` with a fresh timestamp.
    Slack(SlackInterceptor),
    /// Any sender that signs the body with an HMAC in a header of its choice.
    Hmac(HmacInterceptor),
    /// An authentication interceptor whose Secret (or key) is missing, invalid or empty. It
    /// refuses every request: the listener answers that it is misconfigured rather than
    /// running the trigger unchecked or dropping it silently.
    Misconfigured(MisconfiguredInterceptor),
    /// Tekton's `cel` interceptor: a filter and overlays, run by the dispatcher.
    Cel(Arc<CelInterceptor>),
    /// A webhook interceptor (`ClusterInterceptor`, namespaced `Interceptor`, or the legacy
    /// `webhook:` form), called by the dispatcher.
    Webhook(Arc<WebhookInterceptor>),
}

impl Interceptor {
    /// Which authentication interceptor this is; `None` for the interceptors the dispatcher
    /// runs (`cel` and webhooks).
    pub fn kind(&self) -> Option<InterceptorKind> {
        Some(match self {
            Self::GitHub(_) => InterceptorKind::GitHub,
            Self::GitLab(_) => InterceptorKind::GitLab,
            Self::Bitbucket(_) => InterceptorKind::Bitbucket,
            Self::Gitee(_) => InterceptorKind::Gitee,
            Self::Slack(_) => InterceptorKind::Slack,
            Self::Hmac(_) => InterceptorKind::Hmac,
            Self::Misconfigured(misconfigured) => misconfigured.kind,
            Self::Cel(_) | Self::Webhook(_) => return None,
        })
    }

    /// Whether the dispatcher runs it (after ingest has authenticated the request), rather
    /// than ingest at the edge. A github interceptor that calls GitHub's API does both: its
    /// signature and event types are checked at the edge, its API calls in the dispatcher.
    pub fn runs_in_dispatcher(&self) -> bool {
        match self {
            Self::Cel(_) | Self::Webhook(_) => true,
            Self::GitHub(github) => github.calls_github(),
            Self::Slack(slack) => slack.requested_fields.is_some(),
            _ => false,
        }
    }

    /// Whether it authenticates the sender: it has a secret to check (or would have one, if
    /// it were not misconfigured). A GitHub, GitLab or Bitbucket interceptor without a
    /// `secretRef` only filters event types, as in Tekton Triggers.
    pub fn authenticates(&self) -> bool {
        match self {
            Self::GitHub(github) => github.secret.is_some(),
            Self::GitLab(gitlab) => gitlab.secret.is_some(),
            Self::Bitbucket(bitbucket) => bitbucket.secret.is_some(),
            Self::Gitee(_) | Self::Slack(_) | Self::Hmac(_) | Self::Misconfigured(_) => true,
            // They run after the 202: a caller they would refuse has already been accepted.
            Self::Cel(_) | Self::Webhook(_) => false,
        }
    }
}

/// The built-in interceptors, by their `ref` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterceptorKind {
    GitHub,
    GitLab,
    Bitbucket,
    Gitee,
    Slack,
    Hmac,
}

impl InterceptorKind {
    pub const ALL: [InterceptorKind; 6] = [
        Self::GitHub,
        Self::GitLab,
        Self::Bitbucket,
        Self::Gitee,
        Self::Slack,
        Self::Hmac,
    ];

    /// The name a trigger refers to it by (`ref: {name: …}`).
    pub fn name(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
            Self::Bitbucket => "bitbucket",
            Self::Gitee => "gitee",
            Self::Slack => "slack",
            Self::Hmac => "hmac",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl fmt::Display for InterceptorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Default)]
pub struct GitHubInterceptor {
    /// From `secretRef`; `None` when no secret is configured (signature not checked).
    pub secret: Option<SecretValue>,
    /// From `eventTypes`; empty means any event type.
    pub event_types: Vec<String>,
    /// From `allowSha1`: a request with only the legacy `X-Hub-Signature` (HMAC-SHA1) is
    /// verified with it instead of being refused.
    pub allow_sha1: bool,
    /// From `addChangedFiles` when enabled: the dispatcher adds the files a `pull_request`
    /// (from GitHub's API) or a `push` (from its commits) changed as `changed_files`.
    pub changed_files: Option<ChangedFiles>,
    /// From `githubOwners` when enabled: the dispatcher asks GitHub whether the sender of a
    /// `pull_request` or `issue_comment` may run the trigger.
    pub owners: Option<GitHubOwners>,
}

impl GitHubInterceptor {
    /// Whether the dispatcher has work to do for it (calling GitHub's API), besides the
    /// authentication the edge did.
    pub fn calls_github(&self) -> bool {
        self.changed_files.is_some() || self.owners.is_some()
    }
}

/// A `personalAccessToken` for GitHub's API: `Ok(None)` when none is configured, or why
/// the Secret it names cannot be read (naming the Secret and key, never a value).
pub type GitHubToken = Result<Option<SecretValue>, String>;

/// The github interceptor's `addChangedFiles`.
#[derive(Debug, Clone)]
pub struct ChangedFiles {
    pub token: GitHubToken,
}

/// The github interceptor's `githubOwners`.
#[derive(Debug, Clone)]
pub struct GitHubOwners {
    pub token: GitHubToken,
    pub check: OwnersCheck,
}

/// `githubOwners.checkType`: whose membership lets a sender through, besides the `OWNERS`
/// file. Any value but `none` (an absent one included) needs a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnersCheck {
    /// No `checkType`: the `OWNERS` file only, and a token is required.
    Unset,
    /// `none`: the `OWNERS` file only.
    None,
    /// `orgMembers`: the organisation's public members, then `OWNERS`.
    OrgMembers,
    /// `repoMembers`: the repository's collaborators, then `OWNERS`.
    RepoMembers,
    /// `all`: both, then `OWNERS`.
    All,
}

#[derive(Debug, Clone)]
pub struct GitLabInterceptor {
    /// From `secretRef`; `None` when no secret is configured (token not checked).
    pub secret: Option<SecretValue>,
    /// From `eventTypes` (`Push Hook`, `Merge Request Hook`…); empty means any.
    pub event_types: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct BitbucketInterceptor {
    /// From `secretRef`; `None` when no secret is configured (signature not checked).
    pub secret: Option<SecretValue>,
    /// From `eventTypes` (`repo:push`, `repo:refs_changed`…); empty means any.
    pub event_types: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct GiteeInterceptor {
    /// From `secretRef`: the webhook's password or signing key.
    pub secret: SecretValue,
    /// From `eventTypes` (`Push Hook`…); empty means any.
    pub event_types: Vec<String>,
    /// From `mode`.
    pub mode: GiteeMode,
    /// From `timestampWindow`: how far `X-Gitee-Timestamp` may be from the clock.
    pub timestamp_window: Duration,
}

/// How Gitee proves a webhook: its settings offer a password or a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiteeMode {
    /// `X-Gitee-Token` is the password itself.
    Password,
    /// `X-Gitee-Token` is Base64(HMAC-SHA256(secret, `<X-Gitee-Timestamp>\n<secret>`)).
    Signature,
    /// Either: the token is accepted when it equals the secret, else it must be a valid
    /// signature with a timestamp inside the window.
    Auto,
}

#[derive(Debug, Clone)]
pub struct SlackInterceptor {
    /// From `secretRef`: the Slack app's signing secret.
    pub secret: SecretValue,
    /// From `timestampWindow`: how far `X-Slack-Request-Timestamp` may be from the clock.
    pub timestamp_window: Duration,
    /// From `requestedFields`: the form fields copied into the extensions once the event is
    /// durable (see [`crate::body::requested_fields`]). `None`: the interceptor only
    /// authenticates.
    pub requested_fields: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct HmacInterceptor {
    /// From `secretRef`.
    pub secret: SecretValue,
    /// From `header`, lower case.
    pub header: String,
    pub algorithm: HmacAlgorithm,
    pub encoding: SignatureEncoding,
    /// From `prefix` (`sha256=`…); empty when the header holds only the encoded MAC.
    pub prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacAlgorithm {
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    Hex,
    Base64,
}

/// Tekton's `cel` interceptor, compiled when the configuration loads.
#[derive(Debug, Clone)]
pub struct CelInterceptor {
    /// From `filter`: the trigger runs only when it evaluates to `true`.
    pub filter: Option<cel::Program>,
    /// From `overlays`, in order; each adds its value to the extensions under its key.
    pub overlays: Vec<CelOverlay>,
    /// The Secrets `compareSecret` calls name, read from the trigger's namespace.
    pub secrets: BTreeMap<cel::SecretRef, SecretValue>,
}

impl cel::SecretSource for CelInterceptor {
    fn secret(&self, reference: &cel::SecretRef) -> Option<&[u8]> {
        self.secrets.get(reference).map(SecretValue::expose)
    }
}

/// One `overlays` entry: a dotted key under `extensions` and the expression giving its value.
#[derive(Debug, Clone)]
pub struct CelOverlay {
    pub key: String,
    pub expression: cel::Program,
}

/// A webhook interceptor: an HTTP service that sees the event and decides whether the
/// trigger continues, optionally adding extensions.
#[derive(Debug, Clone)]
pub struct WebhookInterceptor {
    /// How messages and metrics name it: `ClusterInterceptor/NAME`,
    /// `Interceptor/NAMESPACE/NAME`, or `webhook` for the legacy form.
    pub name: String,
    pub protocol: WebhookProtocol,
    /// Where it is called: `clientConfig.url`, or the address of `clientConfig.service`.
    pub url: url::Url,
    /// `clientConfig.caBundle` (PEM): the server certificate must chain to it. `None`: the
    /// platform's roots for `https`, none needed for `http`.
    pub ca_bundle: Option<Arc<[u8]>>,
    /// The trigger's `params` for it, sent as `interceptor_params`.
    pub params: serde_json::Map<String, Value>,
    /// The legacy form's `header` params, set on the forwarded request (a list value sets
    /// the header once per item).
    pub headers: Vec<(String, Vec<String>)>,
}

/// What a webhook interceptor speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookProtocol {
    /// Tekton's `InterceptorRequest` JSON in, `InterceptorResponse` JSON out
    /// (`ClusterInterceptor` and `Interceptor`).
    Tekton,
    /// The legacy `webhook:` interceptor: the event's body and headers are forwarded as they
    /// are; `200` continues, and the response's body and headers replace the event's.
    Legacy,
}

/// An authentication interceptor that cannot check anything because its secret is not
/// available. Holds no secret: only what is needed to say why, and which requests it would
/// have judged.
#[derive(Debug, Clone)]
pub struct MisconfiguredInterceptor {
    pub kind: InterceptorKind,
    /// The interceptor's `eventTypes`: a request of another type is not one it could have
    /// accepted.
    pub event_types: Vec<String>,
    /// What is wrong, naming the interceptor, the Secret and the key; never a value.
    pub reason: String,
}

/// A problem in the configuration: the document or reference is skipped, everything else
/// still serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub file: PathBuf,
    /// Zero-based index of the YAML document in its file.
    pub document: usize,
    /// The offending field, as a path like `spec.triggers[0].template.ref`.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {})", self.file.display(), self.document)?;
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}
