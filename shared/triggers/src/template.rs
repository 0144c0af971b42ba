//! TriggerTemplate rendering: `$(tt.params.x)` and `$(uid)` in the resource templates, with
//! the result Tekton's substitution gives once the resource is parsed.
//!
//! Tekton (`pkg/template/resource.go`) replaces `$(tt.params.x)` in each template's JSON
//! text with the param's text — with every `"` first turned into `\"` when the template has
//! the `triggers.tekton.dev/old-escape-quotes` annotation — and then `$(uid)` everywhere.
//! A placeholder always sits inside a JSON string, so what arrives is the inserted text read
//! as string content: `\"` is `"`, `\n` a line break.
//!
//! Sluice walks the parsed template instead and rewrites string values and object keys,
//! inserting each value decoded as Tekton's JSON parser would decode it ([`insert`]). Where
//! Tekton's text would not be valid JSON (an unescaped `"`, a raw control character, an
//! unknown escape — the only ways a value could reach outside its string), the value is
//! inserted as it is written. So a param value can never add structure, and only `$(uid)`
//! is expanded inside an inserted value (Tekton replaces it last, everywhere).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::catalogue::TemplateSpec;
use crate::variables::find_open;

mod insert;
#[cfg(test)]
mod tests;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("resourcetemplates[{index}]: {problem}")]
    Invalid {
        index: usize,
        problem: ResourceProblem,
    },
    /// The template's stored text could not be read back (it was checked when the
    /// configuration loaded, so this does not happen).
    #[error("resourcetemplates cannot be read: {0}")]
    Unreadable(String),
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
    /// A param's text is not valid inside a JSON string, where Tekton pastes it: Tekton's
    /// rendered resource would not parse, and its trigger fails.
    #[error("param `{param}` cannot be inserted into a JSON string as Tekton inserts it: {reason}")]
    InvalidValue { param: String, reason: &'static str },
}

/// Renders every resource template; `uid` is this trigger run's `$(uid)`.
///
/// `params` are the run's resolved params (as [`crate::expr::resolve_params`] gives them);
/// a declared param missing from them takes its default. A param with neither leaves
/// `$(tt.params.x)` as written, and the deprecated `$(params.x)` is never touched.
pub fn render(
    template: &TemplateSpec,
    params: &BTreeMap<String, String>,
    uid: &str,
) -> Result<Vec<Value>, RenderError> {
    let substitution = Substitution::new(template, params, uid);
    let resources = template
        .resource_templates
        .get()
        .map_err(|problem| RenderError::Unreadable(problem.to_owned()))?;
    resources
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

/// A fresh `$(uid)`: a random (version 4) UUID, as Tekton's `uuid.New()`; one per trigger
/// run, shared by all its resources.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The `$(uid)` of the trigger run identified by `run_key`: a UUID (version 8) from its
/// SHA-256, the same for every delivery of the same event, so that names built from `$(uid)`
/// are as stable as the run.
pub fn uid_for(run_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(run_key.as_bytes());
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The variables of one trigger run.
struct Substitution<'a> {
    /// Param name → the string inserted for `$(tt.params.name)`, or why its text cannot be
    /// (an error only where the template uses the param, as in Tekton).
    values: BTreeMap<&'a str, Result<String, &'static str>>,
    uid: &'a str,
}

impl<'a> Substitution<'a> {
    fn new(template: &'a TemplateSpec, params: &'a BTreeMap<String, String>, uid: &'a str) -> Self {
        let mut texts: BTreeMap<&str, &str> = template
            .params
            .iter()
            .filter_map(|spec| Some((spec.name.as_str(), spec.default.as_deref()?)))
            .collect();
        texts.extend(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let values = texts
            .into_iter()
            .map(|(name, text)| {
                let inserted = insert::insertion(text, template.old_escape_quotes, uid);
                (name, inserted)
            })
            .collect();
        Self { values, uid }
    }

    fn value(&self, value: &Value) -> Result<Value, ResourceProblem> {
        Ok(match value {
            Value::String(text) => Value::String(self.text(text)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.value(item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(fields) => {
                let mut out = Map::new();
                for (key, field) in fields {
                    let rendered = self.text(key)?;
                    if out.contains_key(&rendered) {
                        return Err(self.collision(fields, key, &rendered));
                    }
                    out.insert(rendered, self.value(field)?);
                }
                Value::Object(out)
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
        })
    }

    /// Two keys of `fields` render to `rendered`: `key`, and the one before it (keys are
    /// visited in order, so it is the first whose rendering matches).
    fn collision(&self, fields: &Map<String, Value>, key: &str, rendered: &str) -> ResourceProblem {
        let other = fields
            .keys()
            .find(|other| *other != key && self.text(other).ok().as_deref() == Some(rendered))
            .map_or_else(String::new, Clone::clone);
        ResourceProblem::KeyCollision(other, key.to_owned())
    }

    /// Replaces known variables in one pass over the template's own text; anything else
    /// after `$(` is kept as written, and scanning resumes right after that `$(` so nested
    /// variables still substitute.
    fn text(&self, text: &str) -> Result<String, ResourceProblem> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = find_open(rest) {
            out.push_str(&rest[..open]);
            let inner = &rest[open + 2..];
            match self.variable(inner) {
                Some((replacement, len)) => {
                    out.push_str(replacement?);
                    rest = &inner[len..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The value of the variable at the start of `inner` (the text after `$(`), and the
    /// length of its name and `)`.
    fn variable(&self, inner: &str) -> Option<(Result<&str, ResourceProblem>, usize)> {
        let name = &inner[..inner.find(')')?];
        let value = if name == "uid" {
            Ok(self.uid)
        } else {
            let param = name.strip_prefix("tt.params.")?;
            match self.values.get(param)? {
                Ok(value) => Ok(value.as_str()),
                Err(reason) => Err(ResourceProblem::InvalidValue {
                    param: param.to_owned(),
                    reason,
                }),
            }
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
