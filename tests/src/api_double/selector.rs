//! `labelSelector` and `fieldSelector` query parameters: parsing and matching.
//!
//! Label selectors support the equality forms (`a=b`, `a==b`, `a!=b`), the set forms
//! (`a in (x,y)`, `a notin (x,y)`) and existence (`a`, `!a`). Field selectors support
//! `metadata.name` and `metadata.namespace`, as custom resources do.

use serde_json::Value;

use super::validation::{label_value, qualified_name};

/// A parsed `labelSelector`; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
}

impl LabelSelector {
    /// Parses a selector, or says why not (as the message of a 400).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for term in split_top_level(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(term)?);
        }
        Ok(LabelSelector(requirements))
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        self.0.iter().all(|requirement| {
            let value = labels
                .and_then(|labels| labels.get(&requirement.key))
                .and_then(Value::as_str);
            match (&requirement.op, value) {
                (Op::In(values), Some(value)) => values.iter().any(|v| v == value),
                (Op::In(_), None) => false,
                (Op::NotIn(values), Some(value)) => values.iter().all(|v| v != value),
                (Op::NotIn(_), None) => true,
                (Op::Exists, value) => value.is_some(),
                (Op::NotExists, value) => value.is_none(),
            }
        })
    }
}

/// Splits on commas that are not inside `( … )`.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(term: &str) -> Result<Requirement, String> {
    let invalid = |why: String| format!("unable to parse requirement: {why}");
    let (key, op) = if let Some(key) = term.strip_prefix('!') {
        (key.trim(), Op::NotExists)
    } else if let Some(open) = term.find('(') {
        let close = term
            .rfind(')')
            .filter(|close| *close > open && term[close + 1..].trim().is_empty())
            .ok_or_else(|| invalid(format!("found '{term}', expected: ')'")))?;
        let mut head = term[..open].split_whitespace();
        let (Some(key), Some(operator), None) = (head.next(), head.next(), head.next()) else {
            return Err(invalid(format!(
                "found '{term}', expected: key, 'in' or 'notin', values"
            )));
        };
        let values: Vec<String> = term[open + 1..close]
            .split(',')
            .map(|v| v.trim().to_owned())
            .collect();
        let op = match operator {
            "in" => Op::In(values),
            "notin" => Op::NotIn(values),
            other => {
                return Err(invalid(format!(
                    "found '{other}', expected: 'in' or 'notin'"
                )));
            }
        };
        (key, op)
    } else if let Some((key, value)) = term.split_once("!=") {
        (key.trim(), Op::NotIn(vec![value.trim().to_owned()]))
    } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        (key.trim(), Op::In(vec![value.trim().to_owned()]))
    } else {
        (term, Op::Exists)
    };
    if let Some(msg) = qualified_name(key).into_iter().next() {
        return Err(invalid(format!("key: Invalid value: \"{key}\": {msg}")));
    }
    if let Op::In(values) | Op::NotIn(values) = &op {
        for (index, value) in values.iter().enumerate() {
            if let Some(msg) = label_value(value).into_iter().next() {
                return Err(invalid(format!(
                    "values[{index}][{key}]: Invalid value: \"{value}\": {msg}"
                )));
            }
        }
    }
    Ok(Requirement {
        key: key.to_owned(),
        op,
    })
}

/// A parsed `fieldSelector` over `metadata.name` and `metadata.namespace`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(Field, bool, String)>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
}

impl FieldSelector {
    /// Parses a selector, or says why not (as the message of a 400).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (key, equal, value) = if let Some((k, v)) = term.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                ));
            };
            let field = match key.trim() {
                "metadata.name" => Field::Name,
                "metadata.namespace" => Field::Namespace,
                other => return Err(format!("field label not supported: {other}")),
            };
            terms.push((field, equal, value.trim().to_owned()));
        }
        Ok(FieldSelector(terms))
    }

    /// Whether the object is selected.
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let pointer = match field {
                Field::Name => "/metadata/name",
                Field::Namespace => "/metadata/namespace",
            };
            let actual = object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("");
            (actual == value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labelled(labels: Value) -> Value {
        json!({"metadata": {"name": "x", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn equality_and_set_selectors_match_like_kubernetes() {
        let object = labelled(json!({"app": "web", "tier": "front"}));
        let matches = |s: &str| LabelSelector::parse(s).unwrap().matches(&object);
        assert!(matches(""));
        assert!(matches("app=web,tier==front"));
        assert!(!matches("app=web,tier=back"));
        assert!(matches("app!=db"));
        assert!(matches("missing!=x"));
        assert!(matches("app in (db, web),tier"));
        assert!(!matches("app notin (web)"));
        assert!(matches("!missing"));
        assert!(!matches("!app"));
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        assert!(LabelSelector::parse("app=bad value").is_err());
        assert!(LabelSelector::parse("app in (a").is_err());
        assert!(LabelSelector::parse("a b").is_err());
        assert!(FieldSelector::parse("spec.x=y").is_err());
    }

    #[test]
    fn field_selector_matches_name_and_namespace() {
        let object = labelled(json!({}));
        let matches = |s: &str| FieldSelector::parse(s).unwrap().matches(&object);
        assert!(matches("metadata.name=x,metadata.namespace==ns"));
        assert!(!matches("metadata.name!=x"));
    }
}
