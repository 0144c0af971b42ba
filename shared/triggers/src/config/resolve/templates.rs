//! Bindings and templates: TriggerBinding and ClusterTriggerBinding params flattened in
//! declaration order, and TriggerTemplates found by reference or given inline.

use std::sync::Arc;

use serde_json::Value as JsonValue;

use super::super::admission;
use super::super::documents::{BindingDoc, JsonText, TemplateRefDoc, TemplateSpecDoc};
use super::super::load::{ApiVersion, Kind, Origin, join_field};
use super::{Lookup, Resolver, Site, TRIGGER_SKIPPED, non_empty};
use crate::catalogue::{BindingParam, ParamSpec, ResourceTemplates, TemplateSpec};

impl Resolver<'_> {
    /// All bindings' params, flattened in declaration order. A param named twice across the
    /// trigger's bindings is an error, as Tekton finds it when the trigger runs; here it is
    /// reported when the configuration loads.
    pub(super) fn bindings(
        &mut self,
        site: &Site<'_>,
        bindings: &[BindingDoc],
    ) -> Option<Vec<BindingParam>> {
        let mut params: Vec<BindingParam> = Vec::new();
        let mut valid = true;
        for (index, binding) in bindings.iter().enumerate() {
            let field = site.field(&format!("bindings[{index}]"));
            match self.binding(site, &field, binding) {
                Some(binding_params) => {
                    // Malformed expressions are refused when the configuration loads, as
                    // Tekton's admission webhook refuses them, not at the first webhook.
                    for param in binding_params {
                        if let Err(error) = crate::expr::check(&param) {
                            self.issue(site.origin, &field, format!("{error}; {TRIGGER_SKIPPED}"));
                            valid = false;
                        }
                        if params.iter().any(|earlier| earlier.name == param.name) {
                            self.issue(
                                site.origin,
                                &field,
                                format!(
                                    "duplicate param name `{}` across the trigger's bindings; {TRIGGER_SKIPPED}",
                                    param.name
                                ),
                            );
                            valid = false;
                        }
                        params.push(param);
                    }
                }
                None => valid = false,
            }
        }
        valid.then_some(params)
    }

    pub(super) fn binding(
        &mut self,
        site: &Site<'_>,
        field: &str,
        binding: &BindingDoc,
    ) -> Option<Vec<BindingParam>> {
        let origin = site.origin;
        let reference = non_empty(binding.reference.as_deref());
        let name = non_empty(binding.name.as_deref());
        let (target, target_field) = match (reference, &binding.value, name) {
            (Some(_), Some(_), _) => {
                self.issue(
                    origin,
                    field,
                    format!("a binding has either `ref` or `value`, not both; {TRIGGER_SKIPPED}"),
                );
                return None;
            }
            // Tekton's webhook refuses `name` beside `ref`; its event handling follows the
            // `ref`, and so does Sluice.
            (Some(reference), None, _) => (reference, join_field(field, "ref")),
            (None, Some(value), Some(name)) => {
                return Some(vec![BindingParam {
                    name: name.to_owned(),
                    value: value.0.clone(),
                }]);
            }
            (None, Some(_), None) => {
                self.issue(
                    origin,
                    &join_field(field, "name"),
                    format!("is required for a binding with a `value`; {TRIGGER_SKIPPED}"),
                );
                return None;
            }
            // v1alpha1's deprecated spelling: a bare `name` refers to a binding.
            (None, None, Some(name)) if site.version == ApiVersion::V1Alpha1 => {
                (name, join_field(field, "name"))
            }
            (None, None, Some(name)) => {
                self.issue(
                    origin,
                    field,
                    format!(
                        "binding `{name}` has neither `ref` nor `value` (a bare `name` is a reference only in v1alpha1; write `ref: {name}`); {TRIGGER_SKIPPED}"
                    ),
                );
                return None;
            }
            (None, None, None) => {
                self.issue(
                    origin,
                    field,
                    format!("a binding needs `ref`, or `name` and `value`; {TRIGGER_SKIPPED}"),
                );
                return None;
            }
        };

        let found = match non_empty(binding.kind.as_deref()) {
            None | Some("TriggerBinding") => {
                let key = (site.namespace.to_owned(), target.to_owned());
                match self.loaded.bindings.get(&key) {
                    Some(entry) => Some(entry),
                    None => {
                        let invalid =
                            self.declared_invalid(Kind::TriggerBinding, site.namespace, target);
                        return self.dangling(
                            origin,
                            &target_field,
                            Kind::TriggerBinding,
                            Some(site.namespace),
                            target,
                            invalid,
                        );
                    }
                }
            }
            Some("ClusterTriggerBinding") => match self.loaded.cluster_bindings.get(target) {
                Some(entry) => Some(entry),
                None => {
                    let invalid = self.declared_invalid(Kind::ClusterTriggerBinding, "", target);
                    return self.dangling(
                        origin,
                        &target_field,
                        Kind::ClusterTriggerBinding,
                        None,
                        target,
                        invalid,
                    );
                }
            },
            Some(other) => {
                self.issue(
                    origin,
                    &join_field(field, "kind"),
                    format!(
                        "unknown binding kind `{other}` (expected TriggerBinding or ClusterTriggerBinding); {TRIGGER_SKIPPED}"
                    ),
                );
                None
            }
        }?;
        Some(
            found
                .doc
                .spec
                .params
                .iter()
                .map(|param| BindingParam {
                    name: param.name.clone(),
                    value: param.value.0.clone(),
                })
                .collect(),
        )
    }

    pub(super) fn template(
        &mut self,
        site: &Site<'_>,
        template: Option<&TemplateRefDoc>,
    ) -> Option<Arc<TemplateSpec>> {
        let origin = site.origin;
        let field = site.field("template");
        let Some(template) = template else {
            self.issue(origin, &field, format!("is required; {TRIGGER_SKIPPED}"));
            return None;
        };
        // An explicit version must be one the document's own API version accepts.
        if let Some(version) = non_empty(template.api_version.as_deref()) {
            let accepted: &[&str] = match site.version {
                ApiVersion::V1Alpha1 => &["v1alpha1"],
                _ => &["v1alpha1", "v1beta1"],
            };
            if !accepted.contains(&version) {
                self.issue(
                    origin,
                    &join_field(&field, "apiVersion"),
                    format!(
                        "`{version}` is not a template version (expected {}); {TRIGGER_SKIPPED}",
                        accepted.join(" or ")
                    ),
                );
                return None;
            }
        }
        let reference = match (
            non_empty(template.reference.as_deref()),
            non_empty(template.name.as_deref()),
        ) {
            (Some(reference), _) => Some((reference, join_field(&field, "ref"))),
            // v1alpha1's deprecated spelling.
            (None, Some(name)) if site.version == ApiVersion::V1Alpha1 => {
                Some((name, join_field(&field, "name")))
            }
            _ => None,
        };
        match (reference, &template.spec) {
            (Some(_), Some(_)) => {
                self.issue(
                    origin,
                    &field,
                    format!("a template has either `ref` or `spec`, not both; {TRIGGER_SKIPPED}"),
                );
                None
            }
            (Some((name, name_field)), None) => {
                let namespace = site.namespace;
                match self.lookup(&self.templates, Kind::TriggerTemplate, namespace, name) {
                    Lookup::Found(template) => Some(Arc::clone(template)),
                    unresolved => self.dangling(
                        origin,
                        &name_field,
                        Kind::TriggerTemplate,
                        Some(namespace),
                        name,
                        matches!(unresolved, Lookup::Invalid),
                    ),
                }
            }
            (None, Some(spec)) => self
                .template_spec(
                    origin,
                    &join_field(&field, "spec"),
                    &TemplateSite {
                        what: "the trigger's inline template".to_owned(),
                        namespace: site.namespace,
                    },
                    spec,
                    false,
                    TRIGGER_SKIPPED,
                )
                .map(Arc::new),
            (None, None) => {
                let message = match non_empty(template.name.as_deref()) {
                    Some(name) => format!(
                        "has neither `ref` nor `spec` (`name` is a reference only in v1alpha1; write `ref: {name}`); {TRIGGER_SKIPPED}"
                    ),
                    None => format!("needs `ref` or `spec`; {TRIGGER_SKIPPED}"),
                };
                self.issue(origin, &field, message);
                None
            }
        }
    }

    /// A TriggerTemplate spec (a document's `spec`, or a trigger's inline `template.spec`).
    pub(super) fn template_spec(
        &mut self,
        origin: &Origin,
        field: &str,
        template: &TemplateSite<'_>,
        spec: &TemplateSpecDoc,
        old_escape_quotes: bool,
        consequence: &str,
    ) -> Option<TemplateSpec> {
        let mut valid = true;
        for (index, param) in spec.params.iter().enumerate() {
            if param.name.is_empty() {
                let param_field = join_field(field, &format!("params[{index}].name"));
                self.issue(
                    origin,
                    &param_field,
                    format!("must not be empty; {consequence}"),
                );
                valid = false;
            }
        }
        if spec.resourcetemplates.is_empty() {
            self.issue(
                origin,
                &join_field(field, "resourcetemplates"),
                format!("must list at least one resource; {consequence}"),
            );
            valid = false;
        }
        for (index, resource) in spec.resourcetemplates.iter().enumerate() {
            let resource_field = join_field(field, &format!("resourcetemplates[{index}]"));
            let parsed = resource.parse();
            let problem = match &parsed {
                Ok(JsonValue::Object(object)) => {
                    ["apiVersion", "kind"].into_iter().find_map(|key| {
                        let present = object
                            .get(key)
                            .and_then(JsonValue::as_str)
                            .is_some_and(|value| !value.is_empty());
                        (!present).then(|| format!("has no non-empty string `{key}`"))
                    })
                }
                Ok(_) => Some("must be an object with `apiVersion` and `kind`".to_owned()),
                Err(error) => Some(format!("cannot be read back: {error}")),
            };
            let problem = problem.or_else(|| {
                admission::undeclared_param(resource.as_str(), &spec.params).map(|name| {
                    format!("uses `$(tt.params.{name})`, which `params` does not declare")
                })
            });
            if let Some(problem) = problem {
                self.issue(origin, &resource_field, format!("{problem}; {consequence}"));
                valid = false;
            } else if let Some(other) = parsed
                .as_ref()
                .ok()
                .and_then(|resource| self.foreign_namespace(resource, template.namespace))
            {
                self.issue(
                    origin,
                    &join_field(&resource_field, "metadata.namespace"),
                    format!(
                        "names namespace `{other}`, but {} creates its objects in namespace `{}` (the trigger's) and the platform does not allow other namespaces (allowCrossNamespace, --allow-cross-namespace); every event would be dead-lettered; {consequence}",
                        template.what, template.namespace
                    ),
                );
                valid = false;
            }
        }
        valid.then(|| TemplateSpec {
            params: spec
                .params
                .iter()
                .map(|param| ParamSpec {
                    name: param.name.clone(),
                    description: param.description.as_ref().map(|d| d.0.clone()),
                    default: param.default.as_ref().map(|d| d.0.clone()),
                })
                .collect(),
            resource_templates: ResourceTemplates::from_json(json_array(
                spec.resourcetemplates.iter().map(JsonText::as_str),
            )),
            old_escape_quotes,
        })
    }
}

/// Which template a spec is, and the namespace its objects are created in: the template
/// document's own, or the listener's or Trigger's for an inline template (a template is
/// found only in its trigger's namespace, so the two are the same).
pub(super) struct TemplateSite<'a> {
    /// "TriggerTemplate `name`", or "the trigger's inline template".
    pub what: String,
    pub namespace: &'a str,
}

impl Resolver<'_> {
    /// The namespace a resource template names when it is another than `namespace` and
    /// the platform does not allow that: a literal, known now. A namespace written as an
    /// expression (`$(tt.params.ns)`) is known only when an event renders it, and the
    /// dispatcher refuses it then.
    fn foreign_namespace(&self, resource: &JsonValue, namespace: &str) -> Option<String> {
        if self.options.allow_cross_namespace {
            return None;
        }
        match resource.pointer("/metadata/namespace")? {
            JsonValue::String(named)
                if !named.is_empty() && named != namespace && !named.contains("$(") =>
            {
                Some(named.clone())
            }
            _ => None,
        }
    }
}

/// The JSON array of `items`, each already JSON text.
fn json_array<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut array = String::from("[");
    for (index, item) in items.enumerate() {
        if index > 0 {
            array.push(',');
        }
        array.push_str(item);
    }
    array.push(']');
    array
}
