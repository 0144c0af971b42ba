//! From files to typed documents: reading, splitting multi-document YAML, picking out the
//! kinds Sluice reads, checking names, and parsing each document into its serde type.
//!
//! Everything here is per document: a document that cannot be parsed is reported and
//! skipped, and never affects its neighbours. References between documents are
//! [`super::resolve`]'s job.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_norway::Value;

use super::admission;
use super::documents::{
    EventListenerDoc, InterceptorDoc, SecretDoc, TriggerBindingDoc, TriggerDoc, TriggerTemplateDoc,
};
use super::split::split_documents;
use super::walk::{self, Format};
use crate::catalogue::ConfigIssue;
use crate::names::{is_dns1123_label, is_dns1123_subdomain};

const TRIGGERS_GROUP: &str = "triggers.tekton.dev";
/// The namespace of a namespaced object whose document names none, as `kubectl apply` does
/// with the default context.
pub(super) const DEFAULT_NAMESPACE: &str = "default";

/// The kinds Sluice reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Kind {
    EventListener,
    Trigger,
    TriggerBinding,
    ClusterTriggerBinding,
    TriggerTemplate,
    ClusterInterceptor,
    Interceptor,
    Secret,
}

impl Kind {
    const TEKTON: [Kind; 7] = [
        Kind::EventListener,
        Kind::Trigger,
        Kind::TriggerBinding,
        Kind::ClusterTriggerBinding,
        Kind::TriggerTemplate,
        Kind::ClusterInterceptor,
        Kind::Interceptor,
    ];

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::EventListener => "EventListener",
            Kind::Trigger => "Trigger",
            Kind::TriggerBinding => "TriggerBinding",
            Kind::ClusterTriggerBinding => "ClusterTriggerBinding",
            Kind::TriggerTemplate => "TriggerTemplate",
            Kind::ClusterInterceptor => "ClusterInterceptor",
            Kind::Interceptor => "Interceptor",
            Kind::Secret => "Secret",
        }
    }

    fn is_cluster_scoped(self) -> bool {
        matches!(self, Kind::ClusterTriggerBinding | Kind::ClusterInterceptor)
    }

    /// The longest name Tekton's admission webhook accepts for the kind, where it is shorter
    /// than a DNS-1123 subdomain's 253: an EventListener's becomes a Service's name after
    /// `el-`, and Triggers, bindings and templates are held to a DNS label's 63.
    fn max_name_len(self) -> Option<usize> {
        match self {
            Kind::EventListener => Some(60),
            Kind::Trigger
            | Kind::TriggerBinding
            | Kind::ClusterTriggerBinding
            | Kind::TriggerTemplate => Some(63),
            Kind::ClusterInterceptor | Kind::Interceptor | Kind::Secret => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The API version a document was written against; v1alpha1 allows deprecated spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ApiVersion {
    /// `triggers.tekton.dev/v1alpha1`.
    V1Alpha1,
    /// `triggers.tekton.dev/v1beta1`.
    V1Beta1,
    /// Kubernetes core `v1` (Secrets).
    CoreV1,
}

/// Where a document came from, for issues. `prefix` is the path of the object inside the
/// document when it is an item of a `v1` `List` (`items[2]`), else empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Origin {
    pub file: PathBuf,
    pub document: usize,
    pub prefix: String,
}

impl Origin {
    /// An issue about `field` of this object (`None`: the whole object).
    pub(super) fn issue(&self, field: Option<&str>, message: impl Into<String>) -> ConfigIssue {
        let field = match (self.prefix.as_str(), field) {
            ("", field) => field.map(str::to_owned),
            (prefix, None) => Some(prefix.to_owned()),
            (prefix, Some(field)) => Some(join_field(prefix, field)),
        };
        ConfigIssue {
            file: self.file.clone(),
            document: self.document,
            field,
            message: message.into(),
        }
    }

    fn item(&self, index: usize) -> Origin {
        Origin {
            prefix: join_field(&self.prefix, &format!("items[{index}]")),
            ..self.clone()
        }
    }
}

/// Joins two field paths: `a` + `b` = `a.b`, `a` + `[0]` = `a[0]`.
pub(super) fn join_field(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else if child.is_empty() || child == "." {
        parent.to_owned()
    } else if child.starts_with('[') {
        format!("{parent}{child}")
    } else {
        format!("{parent}.{child}")
    }
}

/// `(kind, namespace, name)`; cluster-scoped objects have an empty namespace.
pub(super) type ObjectKey = (Kind, String, String);

/// `(namespace, name)`.
pub(super) type NsName = (String, String);

/// A parsed document with its identity.
#[derive(Debug)]
pub(super) struct Entry<T> {
    pub origin: Origin,
    pub version: ApiVersion,
    pub namespace: String,
    pub name: String,
    pub doc: T,
}

impl Entry<()> {
    fn with<T>(self, doc: T) -> Entry<T> {
        Entry {
            origin: self.origin,
            version: self.version,
            namespace: self.namespace,
            name: self.name,
            doc,
        }
    }
}

/// Every document read, by kind and name, plus the issues found reading them.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    pub issues: Vec<ConfigIssue>,
    /// In file and document order.
    pub listeners: Vec<Entry<EventListenerDoc>>,
    pub triggers: BTreeMap<NsName, Entry<TriggerDoc>>,
    pub bindings: BTreeMap<NsName, Entry<TriggerBindingDoc>>,
    /// Keyed by name alone: ClusterTriggerBindings are cluster-scoped.
    pub cluster_bindings: BTreeMap<String, Entry<TriggerBindingDoc>>,
    pub templates: BTreeMap<NsName, Entry<TriggerTemplateDoc>>,
    /// Keyed by name alone: ClusterInterceptors are cluster-scoped.
    pub cluster_interceptors: BTreeMap<String, Entry<InterceptorDoc>>,
    pub interceptors: BTreeMap<NsName, Entry<InterceptorDoc>>,
    pub secrets: BTreeMap<NsName, Entry<SecretDoc>>,
    /// Objects that were declared but skipped for a problem in their own document, so that
    /// a reference to one can say "invalid" rather than "not found".
    pub invalid: HashSet<ObjectKey>,
    /// The first declaration of each object; a later one with the same key is a duplicate.
    declared: HashMap<ObjectKey, (PathBuf, usize)>,
}

impl Loaded {
    /// Reads every configuration file under `dir`.
    pub(super) fn read_dir(&mut self, dir: &Path) -> io::Result<()> {
        for file in walk::config_files(dir, &mut self.issues)? {
            let Some(format) = Format::of(&file) else {
                continue;
            };
            match fs::read(&file) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => self.read_text(&file, &text, format),
                    Err(_) => self.issues.push(ConfigIssue {
                        file,
                        document: 0,
                        field: None,
                        message: "is not valid UTF-8".to_owned(),
                    }),
                },
                Err(error) => self.issues.push(ConfigIssue {
                    file,
                    document: 0,
                    field: None,
                    message: format!("cannot be read: {error}"),
                }),
            }
        }
        Ok(())
    }

    /// Reads the documents of one file's text.
    pub(super) fn read_text(&mut self, file: &Path, text: &str, format: Format) {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let origin = |document| Origin {
            file: file.to_owned(),
            document,
            prefix: String::new(),
        };
        match format {
            Format::Json => {
                if text.trim().is_empty() {
                    return;
                }
                let parsed = serde_json::from_str::<serde_json::Value>(text)
                    .map_err(|error| error.to_string())
                    .and_then(|json| serde_norway::to_value(json).map_err(|e| e.to_string()));
                match parsed {
                    Ok(value) => self.read_value(origin(0), value),
                    Err(message) => self.issues.push(origin(0).issue(None, message)),
                }
            }
            Format::Yaml => {
                for raw in split_documents(text) {
                    let parse = |text: &str| {
                        serde_norway::from_str::<Value>(text)
                            .and_then(|mut value| value.apply_merge().map(|()| value))
                    };
                    // Padding the text to its place in the file gives errors the file's line
                    // numbers, but costs a parse of every line before it: only an invalid
                    // document (rare) is parsed a second time, padded.
                    let parsed = parse(raw.text).or_else(|_| parse(&raw.text_at_file_lines()));
                    match parsed {
                        Ok(value) => self.read_value(origin(raw.index), value),
                        Err(error) => self
                            .issues
                            .push(origin(raw.index).issue(None, error.to_string())),
                    }
                }
            }
        }
    }

    /// Reads one object that arrived as JSON (from the API server), named `source`.
    pub(super) fn read_json(&mut self, source: &Path, object: serde_json::Value) {
        let origin = Origin {
            file: source.to_owned(),
            document: 0,
            prefix: String::new(),
        };
        match serde_norway::to_value(object) {
            Ok(value) => self.read_value(origin, value),
            Err(error) => self.issues.push(origin.issue(None, error.to_string())),
        }
    }

    /// Reads one object that arrived as JSON text, parsed straight into the loader's values.
    pub(super) fn read_json_text(&mut self, source: &Path, json: &str) {
        let origin = Origin {
            file: source.to_owned(),
            document: 0,
            prefix: String::new(),
        };
        match serde_json::from_str::<Value>(json) {
            Ok(value) => self.read_value(origin, value),
            Err(error) => self.issues.push(origin.issue(None, error.to_string())),
        }
    }

    /// Dispatches one document (or `List` item) on its `apiVersion` and `kind`.
    fn read_value(&mut self, origin: Origin, value: Value) {
        let Value::Mapping(object) = &value else {
            if !value.is_null() {
                tracing::debug!(file = %origin.file.display(), document = origin.document, "skipping a document that is not an object");
            }
            return;
        };
        let api_version = object.get("apiVersion").and_then(Value::as_str);
        let kind = object.get("kind").and_then(Value::as_str);
        match (api_version, kind) {
            (Some("v1"), Some("Secret")) => {
                self.read_object(origin, Kind::Secret, ApiVersion::CoreV1, value);
            }
            (Some("v1"), Some("List")) => self.read_list(&origin, object.get("items")),
            (Some(api_version), Some(kind)) => {
                let tekton_kind = Kind::TEKTON.into_iter().find(|k| k.as_str() == kind);
                let version = api_version
                    .strip_prefix(TRIGGERS_GROUP)
                    .and_then(|v| v.strip_prefix('/'));
                match (tekton_kind, version) {
                    (Some(kind), Some("v1beta1")) => {
                        self.read_object(origin, kind, ApiVersion::V1Beta1, value);
                    }
                    (Some(kind), Some("v1alpha1")) => {
                        self.read_object(origin, kind, ApiVersion::V1Alpha1, value);
                    }
                    (Some(kind), Some(_)) => self.issues.push(origin.issue(
                        Some("apiVersion"),
                        format!(
                            "{kind} `{api_version}` is not supported (use {TRIGGERS_GROUP}/v1beta1 or {TRIGGERS_GROUP}/v1alpha1); document skipped"
                        ),
                    )),
                    _ => skip_other(&origin, Some(api_version), Some(kind)),
                }
            }
            (api_version, kind) => skip_other(&origin, api_version, kind),
        }
    }

    fn read_list(&mut self, origin: &Origin, items: Option<&Value>) {
        match items {
            None | Some(Value::Null) => {}
            Some(Value::Sequence(items)) => {
                for (index, item) in items.iter().enumerate() {
                    self.read_value(origin.item(index), item.clone());
                }
            }
            Some(_) => self
                .issues
                .push(origin.issue(Some("items"), "must be a list; document skipped")),
        }
    }

    /// Checks the name, claims the key, parses the document into its type.
    fn read_object(&mut self, origin: Origin, kind: Kind, version: ApiVersion, value: Value) {
        let Some((namespace, name)) = self.identity(&origin, kind, &value) else {
            return;
        };
        let key = (kind, namespace.clone(), name.clone());
        if let Some((file, document)) = self.declared.get(&key) {
            let scope = if kind.is_cluster_scoped() {
                String::new()
            } else {
                format!(" in namespace `{namespace}`")
            };
            let issue = origin.issue(
                Some("metadata.name"),
                format!(
                    "duplicate {kind} `{name}`{scope} (first declared in {} document {document}); this one is skipped",
                    file.display()
                ),
            );
            self.issues.push(issue);
            return;
        }
        self.declared
            .insert(key.clone(), (origin.file.clone(), origin.document));

        let entry = Entry {
            origin: origin.clone(),
            version,
            namespace: namespace.clone(),
            name: name.clone(),
            doc: (),
        };
        let nsname = (namespace, name);
        let parsed = match kind {
            Kind::EventListener => parse(&origin, kind, value).map(|doc| {
                self.listeners.push(entry.with(doc));
            }),
            Kind::Trigger => parse(&origin, kind, value).map(|doc| {
                self.triggers.insert(nsname, entry.with(doc));
            }),
            Kind::TriggerBinding => parse(&origin, kind, value)
                .and_then(|doc| admit_binding(&origin, doc))
                .map(|doc| {
                    self.bindings.insert(nsname, entry.with(doc));
                }),
            Kind::ClusterTriggerBinding => parse(&origin, kind, value)
                .and_then(|doc| admit_binding(&origin, doc))
                .map(|doc| {
                    self.cluster_bindings.insert(nsname.1, entry.with(doc));
                }),
            Kind::TriggerTemplate => parse(&origin, kind, value).map(|doc| {
                self.templates.insert(nsname, entry.with(doc));
            }),
            Kind::ClusterInterceptor => parse(&origin, kind, value).map(|doc| {
                self.cluster_interceptors.insert(nsname.1, entry.with(doc));
            }),
            Kind::Interceptor => parse(&origin, kind, value).map(|doc| {
                self.interceptors.insert(nsname, entry.with(doc));
            }),
            Kind::Secret => parse(&origin, kind, value).map(|doc| {
                self.secrets.insert(nsname, entry.with(doc));
            }),
        };
        if let Err(issue) = parsed {
            self.issues.push(issue);
            self.invalid.insert(key);
        }
    }

    /// `(namespace, name)` from `metadata`, checked; cluster-scoped objects get an empty
    /// namespace whatever the document says, as the API server does.
    fn identity(&mut self, origin: &Origin, kind: Kind, value: &Value) -> Option<NsName> {
        let metadata = value.get("metadata");
        let field = |name: &str| metadata.and_then(|m| m.get(name));
        let name = match field("name") {
            Some(Value::String(name)) if is_dns1123_subdomain(name) => name.clone(),
            Some(Value::String(name)) => {
                return self.refuse(
                    origin,
                    "metadata.name",
                    format!(
                        "`{name}` is not a valid {kind} name (a DNS-1123 subdomain: at most 253 characters of lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit); document skipped"
                    ),
                );
            }
            None | Some(Value::Null) => {
                return self.refuse(origin, "metadata.name", "is required; document skipped");
            }
            Some(_) => {
                return self.refuse(
                    origin,
                    "metadata.name",
                    "must be a string; document skipped",
                );
            }
        };
        if let Some(max) = kind.max_name_len().filter(|&max| name.len() > max) {
            return self.refuse(
                origin,
                "metadata.name",
                format!(
                    "`{name}` is {} characters long; a {kind} name has at most {max}, as Tekton admits it; document skipped",
                    name.len()
                ),
            );
        }
        if kind.is_cluster_scoped() {
            return Some((String::new(), name));
        }
        let namespace = match field("namespace") {
            None | Some(Value::Null) => DEFAULT_NAMESPACE.to_owned(),
            Some(Value::String(namespace)) if namespace.is_empty() => DEFAULT_NAMESPACE.to_owned(),
            Some(Value::String(namespace)) if is_dns1123_label(namespace) => namespace.clone(),
            Some(Value::String(namespace)) => {
                return self.refuse(
                    origin,
                    "metadata.namespace",
                    format!(
                        "`{namespace}` is not a valid namespace (a DNS-1123 label: at most 63 characters of lower-case letters, digits and `-`, starting and ending with a letter or digit); document skipped"
                    ),
                );
            }
            Some(_) => {
                return self.refuse(
                    origin,
                    "metadata.namespace",
                    "must be a string; document skipped",
                );
            }
        };
        Some((namespace, name))
    }

    fn refuse<T>(&mut self, origin: &Origin, field: &str, message: impl Into<String>) -> Option<T> {
        self.issues.push(origin.issue(Some(field), message));
        None
    }
}

/// A binding Tekton's admission webhook would refuse is reported and skipped.
fn admit_binding(
    origin: &Origin,
    doc: TriggerBindingDoc,
) -> Result<TriggerBindingDoc, ConfigIssue> {
    match admission::binding_spec(&doc.spec) {
        Ok(()) => Ok(doc),
        Err((field, problem)) => {
            Err(origin.issue(Some(&field), format!("{problem}; document skipped")))
        }
    }
}

/// Parses a document into its type; a failure names the field. A Secret's values never
/// appear in an issue, so for Secrets only the field is named.
fn parse<T: DeserializeOwned>(origin: &Origin, kind: Kind, value: Value) -> Result<T, ConfigIssue> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let field = (path != ".").then_some(path);
        let shows_values = kind != Kind::Secret
            || field
                .as_deref()
                .is_some_and(|field| field.starts_with("metadata"));
        let message = if shows_values {
            format!("{}; document skipped", error.inner())
        } else {
            "has an invalid type or value (not shown: it may hold a secret); document skipped"
                .to_owned()
        };
        origin.issue(field.as_deref(), message)
    })
}

fn skip_other(origin: &Origin, api_version: Option<&str>, kind: Option<&str>) {
    tracing::debug!(
        file = %origin.file.display(),
        document = origin.document,
        api_version = api_version.unwrap_or_default(),
        kind = kind.unwrap_or_default(),
        "skipping a document that is neither a Tekton Triggers resource nor a Secret"
    );
}
