//! From documents to the catalogue: resolving each listener's triggers through their
//! references (Trigger, TriggerBinding, ClusterTriggerBinding, TriggerTemplate, Secret),
//! within the listener's namespace only.
//!
//! Problems are reported at the narrowest scope that can be skipped safely: a bad reference
//! or an interceptor Sluice does not evaluate skips that trigger, a listener field that
//! would change which triggers run skips the listener, and the rest keeps serving.
//! Interceptors and their secrets are in [`interceptors`] and [`dispatched`], selectors in
//! [`selection`], bindings and templates in [`templates`].

mod dispatched;
mod interceptors;
mod selection;
mod templates;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use serde_json::Value as JsonValue;
use sha2::{Digest, Sha256};

use super::LoadOptions;
use super::documents::{EventListenerDoc, TriggerSpecDoc};
use super::load::{ApiVersion, Entry, Kind, Loaded, NsName, Origin, join_field};
use crate::catalogue::{
    BindingParam, ConfigIssue, Interceptor, InterceptorKind, Listener, TemplateSpec, Trigger,
};
use crate::names::is_dns1123_subdomain;
use crate::secret::SecretValue;
use selection::{Selection, is_label_value};
use templates::TemplateSite;

/// The TriggerTemplate annotation that makes `"` in param values be inserted as `\"`.
const OLD_ESCAPE_QUOTES: &str = "triggers.tekton.dev/old-escape-quotes";
/// The service account of a trigger when neither it nor its listener names one.
const DEFAULT_SERVICE_ACCOUNT: &str = "default";

const TRIGGER_SKIPPED: &str = "trigger skipped";
const LISTENER_SKIPPED: &str = "listener skipped";
/// Tekton's EventListener annotation that turns off the check that a body is JSON.
const PAYLOAD_VALIDATION: &str = "tekton.dev/payload-validation";
const TEMPLATE_SKIPPED: &str = "template skipped";

/// Resolves every listener; returns them with the issues of loading and resolving.
pub(super) fn resolve(loaded: Loaded, options: &LoadOptions) -> Resolved {
    let (listeners, resolve_issues, secrets_named) = {
        let mut resolver = Resolver::new(&loaded, options);
        let listeners = loaded
            .listeners
            .iter()
            .filter_map(|entry| resolver.listener(entry))
            .collect();
        (listeners, resolver.issues, resolver.secrets_named)
    };
    let mut issues = loaded.issues;
    issues.extend(resolve_issues);
    Resolved {
        listeners,
        issues,
        secrets_named: secrets_named.into_iter().collect(),
    }
}

/// What [`resolve`] found.
pub(super) struct Resolved {
    pub listeners: Vec<Listener>,
    pub issues: Vec<ConfigIssue>,
    /// The Secrets interceptors named, found or not, sorted.
    pub secrets_named: Vec<NsName>,
}

/// A trigger resolved except for the listener's service account fallback.
#[derive(Debug, Clone)]
struct ResolvedSpec {
    service_account: Option<String>,
    interceptors: Vec<Interceptor>,
    params: Vec<BindingParam>,
    template: Arc<TemplateSpec>,
}

/// The result of looking up a reference.
enum Lookup<T> {
    Found(T),
    /// Declared, but skipped for its own problem (already reported).
    Invalid,
    Missing,
}

/// Where a trigger spec is being resolved: its document, the path of the spec in it, the
/// namespace references resolve in, and the API version its syntax follows.
struct Site<'a> {
    origin: &'a Origin,
    base: String,
    namespace: &'a str,
    version: ApiVersion,
}

impl Site<'_> {
    fn field(&self, child: &str) -> String {
        join_field(&self.base, child)
    }
}

struct Resolver<'a> {
    loaded: &'a Loaded,
    options: &'a LoadOptions,
    issues: Vec<ConfigIssue>,
    /// Every TriggerTemplate, built once so that triggers share one `Arc`; `None`: invalid.
    templates: BTreeMap<NsName, Option<Arc<TemplateSpec>>>,
    /// Every Secret, decoded; `None`: invalid.
    secrets: BTreeMap<NsName, Option<BTreeMap<String, SecretValue>>>,
    /// Every Trigger resource, resolved once whoever refers to it; `None`: invalid.
    triggers: BTreeMap<NsName, Option<ResolvedSpec>>,
    /// Every ClusterInterceptor (keyed with an empty namespace), checked; `None`: invalid.
    cluster_interceptors: BTreeMap<NsName, Option<dispatched::Target>>,
    /// Every namespaced Interceptor, checked; `None`: invalid.
    namespaced_interceptors: BTreeMap<NsName, Option<dispatched::Target>>,
    /// Every Secret an interceptor named, whether it was found or not.
    secrets_named: BTreeSet<NsName>,
}

impl<'a> Resolver<'a> {
    fn new(loaded: &'a Loaded, options: &'a LoadOptions) -> Self {
        let mut resolver = Self {
            loaded,
            options,
            issues: Vec::new(),
            templates: BTreeMap::new(),
            secrets: BTreeMap::new(),
            triggers: BTreeMap::new(),
            cluster_interceptors: BTreeMap::new(),
            namespaced_interceptors: BTreeMap::new(),
            secrets_named: BTreeSet::new(),
        };
        for (name, entry) in &loaded.cluster_interceptors {
            // Sluice runs the built-in interceptors itself; Tekton's install declares
            // ClusterInterceptors by those names, which are never called.
            if name == "cel" || InterceptorKind::from_name(name).is_some() {
                continue;
            }
            let target = resolver.interceptor_target(entry);
            resolver
                .cluster_interceptors
                .insert((String::new(), name.clone()), target);
        }
        for (key, entry) in &loaded.interceptors {
            let target = resolver.interceptor_target(entry);
            resolver.namespaced_interceptors.insert(key.clone(), target);
        }
        for (key, entry) in &loaded.templates {
            // Tekton looks at the annotation's presence only: any value, even "false", counts.
            let old_escape_quotes = entry
                .doc
                .metadata
                .annotations
                .contains_key(OLD_ESCAPE_QUOTES);
            let template = resolver
                .template_spec(
                    &entry.origin,
                    "spec",
                    &TemplateSite {
                        what: format!("TriggerTemplate `{}`", key.1),
                        namespace: &entry.namespace,
                    },
                    &entry.doc.spec,
                    old_escape_quotes,
                    TEMPLATE_SKIPPED,
                )
                .map(Arc::new);
            resolver.templates.insert(key.clone(), template);
        }
        for (key, entry) in &loaded.secrets {
            let secret = resolver.secret_data(entry);
            resolver.secrets.insert(key.clone(), secret);
        }
        for (key, entry) in &loaded.triggers {
            let site = Site {
                origin: &entry.origin,
                base: "spec".to_owned(),
                namespace: &entry.namespace,
                version: entry.version,
            };
            let spec = resolver.trigger_spec(&site, &entry.doc.spec);
            resolver.triggers.insert(key.clone(), spec);
        }
        resolver
    }

    fn issue(&mut self, origin: &Origin, field: &str, message: impl Into<String>) {
        self.issues.push(origin.issue(Some(field), message));
    }

    /// Whether `kind`/`namespace`/`name` was declared but failed to parse.
    fn declared_invalid(&self, kind: Kind, namespace: &str, name: &str) -> bool {
        self.loaded
            .invalid
            .contains(&(kind, namespace.to_owned(), name.to_owned()))
    }

    fn lookup<'m, T>(
        &self,
        map: &'m BTreeMap<NsName, Option<T>>,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Lookup<&'m T> {
        match map.get(&(namespace.to_owned(), name.to_owned())) {
            Some(Some(found)) => Lookup::Found(found),
            Some(None) => Lookup::Invalid,
            None if self.declared_invalid(kind, namespace, name) => Lookup::Invalid,
            None => Lookup::Missing,
        }
    }

    /// Reports a reference that did not resolve.
    fn dangling<T>(
        &mut self,
        origin: &Origin,
        field: &str,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
        invalid: bool,
    ) -> Option<T> {
        let scope = namespace
            .map(|ns| format!(" in namespace `{ns}`"))
            .unwrap_or_default();
        let problem = if invalid {
            "is invalid (see the issue reported for it)".to_owned()
        } else {
            match namespace.and_then(|ns| self.elsewhere(kind, ns, name)) {
                Some(other) => format!(
                    "not found (one exists in namespace `{other}`, and a listener refers only to its own namespace's objects)"
                ),
                None => "not found".to_owned(),
            }
        };
        let message = format!("{kind} `{name}`{scope} {problem}; {TRIGGER_SKIPPED}");
        self.issue(origin, field, message);
        None
    }

    /// Another namespace holding a `kind` named `name`, to explain a reference that does
    /// not resolve in `namespace`.
    pub(super) fn elsewhere(&self, kind: Kind, namespace: &str, name: &str) -> Option<String> {
        let loaded = self.loaded;
        let mut namespaces: Box<dyn Iterator<Item = &NsName>> = match kind {
            Kind::Trigger => Box::new(loaded.triggers.keys()),
            Kind::TriggerBinding => Box::new(loaded.bindings.keys()),
            Kind::TriggerTemplate => Box::new(loaded.templates.keys()),
            Kind::Interceptor => Box::new(loaded.interceptors.keys()),
            Kind::Secret => Box::new(loaded.secrets.keys()),
            _ => return None,
        };
        namespaces
            .find(|(ns, n)| n == name && ns != namespace)
            .map(|(ns, _)| ns.clone())
    }

    // ----- listeners -------------------------------------------------------------------

    fn listener(&mut self, entry: &Entry<EventListenerDoc>) -> Option<Listener> {
        let origin = &entry.origin;
        let spec = &entry.doc.spec;
        let namespaces = self.namespaces(
            origin,
            "spec.namespaceSelector",
            &spec.namespace_selector,
            &entry.namespace,
        );
        let service_account = self.service_account(
            origin,
            "spec.serviceAccountName",
            spec.service_account_name.as_deref(),
            LISTENER_SKIPPED,
        );
        let payload_validation = self.payload_validation(entry);
        let (Some(namespaces), Some(service_account), Some(payload_validation)) =
            (namespaces, service_account, payload_validation)
        else {
            return None;
        };
        let service_account = service_account.as_deref();

        let mut names = HashSet::new();
        let mut triggers = Vec::new();
        let mut skipped_triggers = 0;
        for (index, trigger) in spec.triggers.iter().enumerate() {
            match self.listener_trigger(entry, index, trigger, &mut names, service_account) {
                Some(trigger) => triggers.push(trigger),
                None => skipped_triggers += 1,
            }
        }
        // Tekton selects Triggers when either selector is set: by label (all when the
        // selector is empty) in the selected namespaces (the listener's by default).
        if spec.label_selector.is_some() || !spec.namespace_selector.match_names.is_empty() {
            let selector = spec.label_selector.as_ref();
            let field = if selector.is_some() {
                "spec.labelSelector"
            } else {
                "spec.namespaceSelector"
            };
            let selection = Selection {
                origin,
                field: field.to_owned(),
                selector_field: "spec.labelSelector".to_owned(),
                listener_namespace: &entry.namespace,
                service_account,
                group: None,
            };
            let (selected, skipped) =
                self.selected_triggers(&selection, &namespaces, selector, &mut names)?;
            triggers.extend(selected);
            skipped_triggers += skipped;
        }
        for (index, group) in spec.trigger_groups.iter().enumerate() {
            let base = format!("spec.triggerGroups[{index}]");
            let site = Site {
                origin,
                base: base.clone(),
                namespace: &entry.namespace,
                version: entry.version,
            };
            let name = non_empty(group.name.as_deref())
                .map_or_else(|| format!("group-{index}"), str::to_owned);
            let interceptors = self.interceptors(&site, &group.interceptors);
            let selector = &group.trigger_selector;
            let namespaces = self.namespaces(
                origin,
                &join_field(&base, "triggerSelector.namespaceSelector"),
                &selector.namespace_selector,
                &entry.namespace,
            );
            let (Some(interceptors), Some(namespaces)) = (interceptors, namespaces) else {
                return None;
            };
            let selection = Selection {
                origin,
                field: join_field(&base, "triggerSelector"),
                selector_field: join_field(&base, "triggerSelector.labelSelector"),
                listener_namespace: &entry.namespace,
                service_account,
                group: Some((name, interceptors)),
            };
            let label_selector = selector.label_selector.as_ref();
            let (selected, skipped) =
                self.selected_triggers(&selection, &namespaces, label_selector, &mut names)?;
            triggers.extend(selected);
            skipped_triggers += skipped;
        }

        let uid = entry
            .doc
            .metadata
            .uid
            .clone()
            .filter(|uid| !uid.is_empty())
            .unwrap_or_else(|| derived_uid(&entry.namespace, &entry.name));
        let annotations = entry
            .doc
            .metadata
            .annotations
            .iter()
            .filter(|(key, _)| key.starts_with("sluice.dev/"))
            .map(|(key, value)| {
                let text = match value {
                    JsonValue::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (key.clone(), text)
            })
            .collect();
        Some(Listener {
            namespace: entry.namespace.clone(),
            name: entry.name.clone(),
            uid,
            triggers,
            skipped_triggers,
            annotations,
            payload_validation,
        })
    }

    /// The annotation `tekton.dev/payload-validation`: on unless it is `"false"`. Any value
    /// but `"true"` and `"false"` is refused, as Tekton's admission webhook refuses it.
    fn payload_validation(&mut self, entry: &Entry<EventListenerDoc>) -> Option<bool> {
        let value = match entry.doc.metadata.annotations.get(PAYLOAD_VALIDATION) {
            None => return Some(true),
            Some(JsonValue::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        };
        match value.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.issue(
                    &entry.origin,
                    &format!("metadata.annotations.{PAYLOAD_VALIDATION}"),
                    format!("must be \"true\" or \"false\"; {LISTENER_SKIPPED}"),
                );
                None
            }
        }
    }

    /// `spec.triggers[index]`: names it, then resolves it inline or through `triggerRef`.
    fn listener_trigger(
        &mut self,
        entry: &Entry<EventListenerDoc>,
        index: usize,
        trigger: &TriggerSpecDoc,
        names: &mut HashSet<String>,
        listener_service_account: Option<&str>,
    ) -> Option<Trigger> {
        let origin = &entry.origin;
        let base = format!("spec.triggers[{index}]");
        let trigger_ref = non_empty(trigger.trigger_ref.as_deref());
        let (name, name_field) = match (trigger_ref, non_empty(trigger.name.as_deref())) {
            (Some(reference), _) => (reference.to_owned(), join_field(&base, "triggerRef")),
            (None, Some(name)) => (name.to_owned(), join_field(&base, "name")),
            (None, None) => (format!("trigger-{index}"), base.clone()),
        };
        if !names.insert(name.clone()) {
            self.issue(
                origin,
                &name_field,
                format!("duplicate trigger name `{name}` in this listener; this one is skipped"),
            );
            return None;
        }
        if !is_label_value(&name) {
            self.issue(
                origin,
                &name_field,
                format!(
                    "trigger name `{name}` is not a valid label value (at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit), and Sluice labels created objects with it; {TRIGGER_SKIPPED}"
                ),
            );
            return None;
        }

        let spec = match trigger_ref {
            Some(reference) => {
                if !trigger.bindings.is_empty()
                    || trigger.template.is_some()
                    || !trigger.interceptors.is_empty()
                {
                    self.issue(
                        origin,
                        &base,
                        format!(
                            "`triggerRef` cannot be combined with inline `bindings`, `template` or `interceptors`; {TRIGGER_SKIPPED}"
                        ),
                    );
                    return None;
                }
                let namespace = entry.namespace.as_str();
                match self.lookup(&self.triggers, Kind::Trigger, namespace, reference) {
                    Lookup::Found(spec) => spec.clone(),
                    unresolved => {
                        return self.dangling(
                            origin,
                            &name_field,
                            Kind::Trigger,
                            Some(namespace),
                            reference,
                            matches!(unresolved, Lookup::Invalid),
                        );
                    }
                }
            }
            None => {
                let site = Site {
                    origin,
                    base,
                    namespace: &entry.namespace,
                    version: entry.version,
                };
                self.trigger_spec(&site, trigger)?
            }
        };

        let service_account = spec
            .service_account
            .as_deref()
            .or(listener_service_account)
            .unwrap_or(DEFAULT_SERVICE_ACCOUNT)
            .to_owned();
        Some(Trigger {
            name,
            namespace: entry.namespace.clone(),
            service_account,
            interceptors: spec.interceptors,
            group: None,
            cross_namespace: self.options.allow_cross_namespace,
            body_reads: Default::default(),
            params: spec.params,
            template: spec.template,
        })
    }

    /// A service account name, if set; `None` (reported) when it is not a valid name.
    fn service_account(
        &mut self,
        origin: &Origin,
        field: &str,
        name: Option<&str>,
        consequence: &str,
    ) -> Option<Option<String>> {
        match non_empty(name) {
            None => Some(None),
            Some(name) if is_dns1123_subdomain(name) => Some(Some(name.to_owned())),
            Some(name) => {
                self.issue(
                    origin,
                    field,
                    format!(
                        "`{name}` is not a valid service account name (a DNS-1123 subdomain); {consequence}"
                    ),
                );
                None
            }
        }
    }

    // ----- trigger specs ---------------------------------------------------------------

    /// Resolves the fields of a trigger spec; every problem is reported, and any makes the
    /// trigger invalid.
    fn trigger_spec(&mut self, site: &Site<'_>, spec: &TriggerSpecDoc) -> Option<ResolvedSpec> {
        let service_account = self.service_account(
            site.origin,
            &site.field("serviceAccountName"),
            spec.service_account_name.as_deref(),
            TRIGGER_SKIPPED,
        );
        let params = self.bindings(site, &spec.bindings);
        let template = self.template(site, spec.template.as_ref());
        let interceptors = self
            .interceptors(site, &spec.interceptors)
            .and_then(|interceptors| self.require_authentication(site, interceptors));
        Some(ResolvedSpec {
            service_account: service_account?,
            interceptors: interceptors?,
            params: params?,
            template: template?,
        })
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|value| !value.is_empty())
}

/// A listener's UID when its document has none: a version-8 UUID from the first 16 bytes of
/// SHA-256 of `namespace/name`, the same on every replica and every load.
fn derived_uid(namespace: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{namespace}/{name}").as_bytes());
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}
