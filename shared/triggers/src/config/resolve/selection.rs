//! Triggers picked by selectors: an EventListener's or trigger group's `namespaceSelector`
//! and `labelSelector`, checked as Kubernetes checks them, and the Trigger objects they pick.

use std::collections::{BTreeMap, HashSet};

use super::super::documents::{LabelSelectorDoc, NamespaceSelector, Scalar};
use super::super::load::{NsName, Origin, join_field};
use super::{DEFAULT_SERVICE_ACCOUNT, LISTENER_SKIPPED, ResolvedSpec, Resolver};
use crate::catalogue::{GroupRef, Interceptor, Trigger};

/// The namespaces a listener or trigger group selects Triggers in.
pub(super) enum Namespaces {
    All,
    Only(Vec<String>),
}

impl Namespaces {
    fn contains(&self, namespace: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.iter().any(|name| name == namespace),
        }
    }
}

/// Where selected Triggers go: the listener (or group) selecting them, for issues and for
/// the service account and interceptors they inherit.
pub(super) struct Selection<'a> {
    pub origin: &'a Origin,
    /// Where issues about selected Triggers are reported.
    pub field: String,
    /// The label selector's own field.
    pub selector_field: String,
    pub listener_namespace: &'a str,
    /// The listener's service account, which Triggers of its own namespace inherit.
    pub service_account: Option<&'a str>,
    /// The trigger group's name and interceptors, which run before each Trigger's own.
    pub group: Option<(String, Vec<Interceptor>)>,
}

/// A checked Kubernetes label selector.
#[derive(Debug, Default)]
pub(super) struct LabelSelector {
    labels: Vec<(String, String)>,
    requirements: Vec<(String, Operator)>,
}

#[derive(Debug)]
pub(super) enum Operator {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    fn matches(&self, labels: Option<&BTreeMap<String, Scalar>>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key)).map(|v| v.0.as_str());
        self.labels
            .iter()
            .all(|(key, value)| get(key) == Some(value.as_str()))
            && self.requirements.iter().all(|(key, operator)| {
                let value = get(key);
                match operator {
                    Operator::In(values) => value.is_some_and(|v| values.iter().any(|x| x == v)),
                    Operator::NotIn(values) => {
                        !value.is_some_and(|v| values.iter().any(|x| x == v))
                    }
                    Operator::Exists => value.is_some(),
                    Operator::DoesNotExist => value.is_none(),
                }
            })
    }
}

impl Resolver<'_> {
    /// The namespaces a selector names: the listener's own when it names none. Other
    /// namespaces only where the platform allows it; `None` (reported) otherwise.
    pub(super) fn namespaces(
        &mut self,
        origin: &Origin,
        field: &str,
        selector: &NamespaceSelector,
        own: &str,
    ) -> Option<Namespaces> {
        let names = &selector.match_names;
        if names.is_empty() || names.iter().all(|name| name == own) {
            return Some(Namespaces::Only(vec![own.to_owned()]));
        }
        if !self.options.allow_cross_namespace {
            self.issue(
                origin,
                field,
                format!(
                    "selecting Triggers from other namespaces ({}) is not allowed on this platform (--allow-cross-namespace); {LISTENER_SKIPPED}",
                    names.join(", ")
                ),
            );
            return None;
        }
        if names.iter().any(|name| name == "*") {
            return Some(Namespaces::All);
        }
        Some(Namespaces::Only(names.clone()))
    }

    /// The Trigger objects a selector picks in `namespaces`, in namespace and name order,
    /// each resolved into a listener trigger. Returns them with how many were skipped;
    /// `None` (reported) when the label selector itself is invalid.
    pub(super) fn selected_triggers(
        &mut self,
        selection: &Selection<'_>,
        namespaces: &Namespaces,
        selector: Option<&LabelSelectorDoc>,
        names: &mut HashSet<String>,
    ) -> Option<(Vec<Trigger>, usize)> {
        let selector = match selector {
            Some(selector) => {
                self.label_selector(selection.origin, &selection.selector_field, selector)?
            }
            None => LabelSelector::default(),
        };
        let picked: Vec<(NsName, Option<ResolvedSpec>)> = self
            .loaded
            .triggers
            .iter()
            .filter(|(key, _)| namespaces.contains(&key.0))
            .filter(|(_, entry)| {
                let labels = entry.doc.metadata.as_ref().map(|m| &m.labels);
                selector.matches(labels)
            })
            .map(|(key, _)| (key.clone(), self.triggers.get(key).cloned().flatten()))
            .collect();
        let mut triggers = Vec::new();
        let mut skipped = 0;
        for ((namespace, name), spec) in picked {
            let Some(spec) = spec else {
                self.issue(
                    selection.origin,
                    &selection.field,
                    format!(
                        "selected Trigger `{name}` in namespace `{namespace}` is invalid (see the issue reported for it); it is skipped"
                    ),
                );
                skipped += 1;
                continue;
            };
            if !names.insert(name.clone()) {
                self.issue(
                    selection.origin,
                    &selection.field,
                    format!(
                        "selected Trigger `{name}` in namespace `{namespace}` has the name of another trigger of this listener; it is skipped"
                    ),
                );
                skipped += 1;
                continue;
            }
            if !is_label_value(&name) {
                self.issue(
                    selection.origin,
                    &selection.field,
                    format!(
                        "selected Trigger `{name}` has a name that is not a valid label value, and Sluice labels created objects with it; it is skipped"
                    ),
                );
                skipped += 1;
                continue;
            }
            let same_namespace = namespace == selection.listener_namespace;
            let service_account = spec
                .service_account
                .as_deref()
                .or(selection.service_account.filter(|_| same_namespace))
                .unwrap_or(DEFAULT_SERVICE_ACCOUNT)
                .to_owned();
            let (interceptors, group) = match &selection.group {
                Some((group, prefix)) => {
                    let mut interceptors = prefix.clone();
                    interceptors.extend(spec.interceptors);
                    let group = GroupRef {
                        name: group.clone(),
                        interceptors: prefix.len(),
                    };
                    (interceptors, Some(group))
                }
                None => (spec.interceptors, None),
            };
            triggers.push(Trigger {
                name,
                namespace,
                service_account,
                interceptors,
                group,
                cross_namespace: self.options.allow_cross_namespace,
                body_reads: Default::default(),
                params: spec.params,
                template: spec.template,
            });
        }
        Some((triggers, skipped))
    }

    /// A label selector, checked: operators `In`, `NotIn`, `Exists`, `DoesNotExist`, with
    /// values exactly where Kubernetes requires them.
    pub(super) fn label_selector(
        &mut self,
        origin: &Origin,
        field: &str,
        doc: &LabelSelectorDoc,
    ) -> Option<LabelSelector> {
        let mut selector = LabelSelector {
            labels: doc
                .match_labels
                .iter()
                .map(|(key, value)| (key.clone(), value.0.clone()))
                .collect(),
            requirements: Vec::new(),
        };
        for (index, requirement) in doc.match_expressions.iter().enumerate() {
            let values: Vec<String> = requirement.values.iter().map(|v| v.0.clone()).collect();
            let operator = match requirement.operator.as_str() {
                "In" if !values.is_empty() => Operator::In(values),
                "NotIn" if !values.is_empty() => Operator::NotIn(values),
                "Exists" if values.is_empty() => Operator::Exists,
                "DoesNotExist" if values.is_empty() => Operator::DoesNotExist,
                operator => {
                    let message = match operator {
                        "In" | "NotIn" => format!("`{operator}` needs `values`"),
                        "Exists" | "DoesNotExist" => format!("`{operator}` takes no `values`"),
                        other => format!(
                            "`{other}` is not an operator (In, NotIn, Exists, DoesNotExist)"
                        ),
                    };
                    let field = join_field(field, &format!("matchExpressions[{index}]"));
                    self.issue(origin, &field, format!("{message}; {LISTENER_SKIPPED}"));
                    return None;
                }
            };
            selector
                .requirements
                .push((requirement.key.clone(), operator));
        }
        Some(selector)
    }
}

/// A Kubernetes label value: at most 63 characters of `[A-Za-z0-9-_.]`, starting and ending
/// alphanumeric.
pub(super) fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let inner = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes.iter().all(inner)
        }
        _ => false,
    }
}
