//! The resolved catalogue: every valid EventListener with its triggers fully resolved
//! (bindings flattened into params, templates looked up, secrets attached), ready for
//! lock-free lookups on the request path.
//!
//! It is built by [`crate::config`] from Tekton Triggers documents; ingest and the
//! dispatcher only read it.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::secret::SecretValue;

/// Every valid listener, plus the problems found while building it.
#[derive(Debug, Default)]
pub struct Catalogue {
    listeners: HashMap<ListenerKey, Arc<Listener>>,
    issues: Vec<ConfigIssue>,
}

/// `(namespace, name)` of an EventListener.
pub type ListenerKey = (String, String);

impl Catalogue {
    pub fn new(listeners: Vec<Listener>, issues: Vec<ConfigIssue>) -> Self {
        let listeners = listeners
            .into_iter()
            .map(|l| ((l.namespace.clone(), l.name.clone()), Arc::new(l)))
            .collect();
        Self { listeners, issues }
    }

    pub fn listener(&self, namespace: &str, name: &str) -> Option<&Arc<Listener>> {
        // Tuple keys need owned strings for `get`; listeners are few per request so the
        // allocation-free path via `raw_entry` is not worth the complexity here.
        self.listeners.get(&(namespace.to_owned(), name.to_owned()))
    }

    pub fn listeners(&self) -> impl Iterator<Item = &Arc<Listener>> {
        self.listeners.values()
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
    /// Where its resources are created: the listener's namespace.
    pub namespace: String,
    /// The trigger's service account, else the listener's, else `default`.
    pub service_account: String,
    /// Interceptors in declaration order.
    pub interceptors: Vec<Interceptor>,
    /// All bindings' params flattened in declaration order (later wins on a repeated name).
    pub params: Vec<BindingParam>,
    pub template: Arc<TemplateSpec>,
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
    /// `spec.resourcetemplates`, as JSON.
    pub resource_templates: Vec<serde_json::Value>,
    /// The template's `triggers.tekton.dev/old-escape-quotes` annotation is `"true"`.
    pub old_escape_quotes: bool,
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
#[derive(Debug, Clone)]
pub enum Interceptor {
    /// GitHub: `X-Hub-Signature-256` HMAC of the body, and `X-GitHub-Event` in `event_types`.
    GitHub(GitHubInterceptor),
}

#[derive(Debug, Clone)]
pub struct GitHubInterceptor {
    /// From `secretRef`; `None` when no secret is configured (signature not checked).
    pub secret: Option<SecretValue>,
    /// From `eventTypes`; empty means any event type.
    pub event_types: Vec<String>,
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
