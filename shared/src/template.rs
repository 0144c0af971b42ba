//! TriggerTemplate rendering: `$(tt.params.x)` and `$(uid)` substitution into the resource
//! templates.
//!
//! Substitution walks each template's JSON tree and rewrites string values and object keys
//! in one pass over the template's own text, so a param value always stays inside its
//! string (it cannot add JSON or YAML structure) and is never expanded again.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::catalogue::TemplateSpec;

#[cfg(test)]
mod tests;

/// Kubernetes' alphabet for generated name suffixes: no vowels, no look-alike characters.
const UID_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const UID_LEN: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("resourcetemplates[{index}]: {problem}")]
    Invalid {
        index: usize,
        problem: ResourceProblem,
    },
}

/// Why a rendered resource template cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceProblem {
    #[error("is not a JSON object")]
    NotAnObject,
    #[error("has no non-empty string `{0}`")]
    MissingField(&'static str),
    /// Two keys of one object render to the same key; both are named as written in the
    /// template, not as rendered.
    #[error("object keys `{0}` and `{1}` are the same after substitution")]
    KeyCollision(String, String),
}

/// Renders every resource template with the resolved params; `uid` is this trigger run's
/// `$(uid)`.
///
/// Only params the template declares are used: a binding value wins over the declared
/// default, and `$(tt.params.x)` stays as written when `x` has neither. With
/// `old_escape_quotes` every `"` in a value is inserted as `\"`.
pub fn render(
    template: &TemplateSpec,
    params: &BTreeMap<String, String>,
    uid: &str,
) -> Result<Vec<Value>, RenderError> {
    let substitution = Substitution::new(template, params, uid);
    template
        .resource_templates
        .iter()
        .enumerate()
        .map(|(index, resource)| {
            substitution
                .value(resource)
                .and_then(check_resource)
                .map_err(|problem| RenderError::Invalid { index, problem })
        })
        .collect()
}

/// A fresh `$(uid)`: one per trigger run, shared by all its resources.
pub fn new_uid() -> String {
    (0..UID_LEN)
        .map(|_| char::from(UID_ALPHABET[fastrand::usize(..UID_ALPHABET.len())]))
        .collect()
}

/// The variables of one trigger run.
struct Substitution<'a> {
    /// Declared param name → value to insert (already quote-escaped when asked).
    values: BTreeMap<&'a str, Cow<'a, str>>,
    uid: &'a str,
}

impl<'a> Substitution<'a> {
    fn new(template: &'a TemplateSpec, params: &'a BTreeMap<String, String>, uid: &'a str) -> Self {
        let values = template
            .params
            .iter()
            .filter_map(|spec| {
                let value = params.get(&spec.name).or(spec.default.as_ref())?;
                let value = if template.old_escape_quotes {
                    Cow::Owned(value.replace('"', "\\\""))
                } else {
                    Cow::Borrowed(value.as_str())
                };
                Some((spec.name.as_str(), value))
            })
            .collect();
        Self { values, uid }
    }

    fn value(&self, value: &Value) -> Result<Value, ResourceProblem> {
        Ok(match value {
            Value::String(text) => Value::String(self.text(text)),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.value(item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(fields) => {
                let mut out = Map::new();
                let mut written_as = BTreeMap::new();
                for (key, field) in fields {
                    let rendered = self.text(key);
                    if let Some(other) = written_as.insert(rendered.clone(), key) {
                        return Err(ResourceProblem::KeyCollision(other.clone(), key.clone()));
                    }
                    out.insert(rendered, self.value(field)?);
                }
                Value::Object(out)
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
        })
    }

    /// Replaces known variables in one pass; anything else after `$(` is kept as written,
    /// and scanning resumes right after that `$(` so nested variables still substitute.
    fn text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find("$(") {
            out.push_str(&rest[..open]);
            let inner = &rest[open + 2..];
            match self.variable(inner) {
                Some((replacement, len)) => {
                    out.push_str(replacement);
                    rest = &inner[len..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The value of the variable at the start of `inner` (the text after `$(`), and the
    /// length of its name and `)`.
    fn variable(&self, inner: &str) -> Option<(&str, usize)> {
        let name = &inner[..inner.find(')')?];
        let value = if name == "uid" {
            self.uid
        } else {
            self.values.get(name.strip_prefix("tt.params.")?)?
        };
        Some((value, name.len() + 1))
    }
}

/// A resource must be an object with a non-empty string `apiVersion` and `kind`.
fn check_resource(resource: Value) -> Result<Value, ResourceProblem> {
    let Value::Object(fields) = &resource else {
        return Err(ResourceProblem::NotAnObject);
    };
    for field in ["apiVersion", "kind"] {
        match fields.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => return Err(ResourceProblem::MissingField(field)),
        }
    }
    Ok(resource)
}
