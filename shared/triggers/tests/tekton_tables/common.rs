//! What the tables of `sluice-triggers` share: events, params and results as text.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sluice_triggers::catalogue::{BindingParam, ParamSpec};
use sluice_triggers::expr::{self, EventContext, ExprError};
use sluice_triggers::headers::Headers;

/// Request headers from `(name, value)` pairs; a name given twice has two values.
pub fn headers(pairs: &[(&str, &str)]) -> Headers {
    let mut headers = Headers::new();
    for (name, value) in pairs {
        headers.append(name, *value);
    }
    headers
}

/// A body as Tekton's tables give it: `None` (or empty) is no body, read as `null`.
pub fn body(text: Option<&str>) -> Value {
    match text {
        None | Some("") => Value::Null,
        Some(text) => serde_json::from_str(text).expect("a table body is JSON"),
    }
}

pub fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text).expect("a table object is JSON") {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// The event a binding sees.
pub struct Event {
    pub body: Value,
    pub headers: Headers,
    pub extensions: Map<String, Value>,
    pub event_id: String,
}

impl Event {
    pub fn new(body: Value) -> Self {
        Self {
            body,
            headers: Headers::new(),
            extensions: Map::new(),
            event_id: String::new(),
        }
    }

    pub fn with_headers(mut self, pairs: &[(&str, &str)]) -> Self {
        self.headers = headers(pairs);
        self
    }

    pub fn with_extensions(mut self, extensions: &str) -> Self {
        self.extensions = object(extensions);
        self
    }

    pub fn with_event_id(mut self, event_id: &str) -> Self {
        self.event_id = event_id.to_owned();
        self
    }

    pub fn ctx(&self) -> EventContext<'_> {
        EventContext {
            body: &self.body,
            headers: &self.headers,
            extensions: &self.extensions,
            event_id: &self.event_id,
        }
    }

    /// One expression (the text between `$(` and `)`), as `ok: <text>` or `error: <why>`.
    pub fn evaluate(&self, expression: &str) -> String {
        match expr::evaluate(expression, &self.ctx()) {
            Ok(text) => format!("ok: {text}"),
            Err(problem) => format!("error: {problem}"),
        }
    }

    /// Binding params resolved against the event with the template's declared params.
    pub fn resolve(&self, params: &[BindingParam], declared: &[ParamSpec]) -> String {
        resolved(expr::resolve_params(params, declared, &self.ctx()))
    }
}

pub fn param(name: &str, value: &str) -> BindingParam {
    BindingParam {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

pub fn params(pairs: &[(&str, &str)]) -> Vec<BindingParam> {
    pairs
        .iter()
        .map(|(name, value)| param(name, value))
        .collect()
}

pub fn spec(name: &str, default: Option<&str>) -> ParamSpec {
    ParamSpec {
        name: name.to_owned(),
        description: None,
        default: default.map(str::to_owned),
    }
}

/// Resolved params as a JSON object (sorted by name: Tekton's tables compare them sorted),
/// or `error: <why>`.
pub fn resolved(result: Result<BTreeMap<String, String>, ExprError>) -> String {
    match result {
        Ok(params) => map_text(&params),
        Err(error) => format!("error: {error}"),
    }
}

pub fn map_text(params: &BTreeMap<String, String>) -> String {
    serde_json::to_string(params).expect("strings serialize")
}

/// Tekton's expected params, as [`resolved`] writes Sluice's.
pub fn expected(pairs: &[(&str, &str)]) -> String {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    map_text(&map)
}

/// A list of `(name, value)` as text, for inputs.
pub fn pairs_text(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text between `$(` and the last `)` of a Tekton expression as the tables write it.
pub fn inner(expression: &str) -> &str {
    expression
        .strip_prefix("$(")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a $() expression: {expression}"))
}
