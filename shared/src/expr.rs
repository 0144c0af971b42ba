//! Tekton's `$(…)` expressions in binding values: `$(body…)`, `$(header…)`,
//! `$(extensions…)` and `$(context.eventID)`.
//!
//! A binding value is literal text with zero or more `$(…)` expressions. Each expression is
//! parsed into a [`Path`] (a root and a list of segments) and looked up in the event; the
//! value found replaces the expression.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::catalogue::BindingParam;
use crate::event::Headers;

mod path;
#[cfg(test)]
mod tests;

pub use path::{Path, Root, Segment};

/// What a binding expression can see.
#[derive(Debug, Clone, Copy)]
pub struct EventContext<'a> {
    pub body: &'a Value,
    pub headers: &'a Headers,
    pub extensions: &'a serde_json::Map<String, Value>,
    pub event_id: &'a str,
}

/// A binding param whose value cannot be resolved. Messages name the param and the
/// expression, never the event's contents.
#[derive(Debug, thiserror::Error)]
pub enum ExprError {
    /// The value has a `$(` without its matching `)`.
    #[error("param `{param}`: the `$(` at byte {offset} is never closed")]
    Unclosed { param: String, offset: usize },
    /// An expression is malformed or does not match the event.
    #[error("param `{param}`: `$({expression})`: {problem}")]
    Invalid {
        param: String,
        expression: String,
        problem: Problem,
    },
}

impl ExprError {
    /// The binding param that failed.
    pub fn param(&self) -> &str {
        match self {
            Self::Unclosed { param, .. } | Self::Invalid { param, .. } => param,
        }
    }
}

/// What is wrong with one expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("{what} at byte {offset} of the expression")]
    Syntax { what: &'static str, offset: usize },
    #[error("unknown root `{0}` (expected `body`, `header`, `extensions` or `context`)")]
    UnknownRoot(String),
    #[error("`{at}` has no field `{key}`")]
    MissingField { at: String, key: String },
    #[error("`{at}` has no index {index}")]
    IndexOutOfRange { at: String, index: usize },
    #[error("`{at}` is {found}, not {expected}")]
    WrongType {
        at: String,
        found: &'static str,
        expected: &'static str,
    },
}

/// Resolves every binding param's value against the event; a later param with the same name
/// wins.
///
/// Strings are inserted as they are (unescaped), integers exactly, floats in their shortest
/// round-trip form, `true`/`false`/`null` as such, objects and arrays as compact JSON.
pub fn resolve_params(
    params: &[BindingParam],
    ctx: &EventContext<'_>,
) -> Result<BTreeMap<String, String>, ExprError> {
    let mut resolved = BTreeMap::new();
    for param in params {
        resolved.insert(param.name.clone(), resolve(param, Some(ctx))?);
    }
    Ok(resolved)
}

/// Checks a binding param's expressions without an event: every `$(` is closed and every
/// expression parses with a known root. For validating configuration at load time.
pub fn check(param: &BindingParam) -> Result<(), ExprError> {
    resolve(param, None).map(drop)
}

/// Resolves one value; without an event it only parses.
fn resolve(param: &BindingParam, ctx: Option<&EventContext<'_>>) -> Result<String, ExprError> {
    let mut out = String::with_capacity(param.value.len());
    for piece in split(&param.value) {
        let expression = match piece {
            Piece::Text(text) => {
                out.push_str(text);
                continue;
            }
            Piece::Unclosed(offset) => {
                return Err(ExprError::Unclosed {
                    param: param.name.clone(),
                    offset,
                });
            }
            Piece::Expr(expression) => expression,
        };
        let found = Path::parse(expression).and_then(|path| match ctx {
            Some(ctx) => lookup(&path, ctx),
            None => Ok(String::new()),
        });
        match found {
            Ok(text) => out.push_str(&text),
            Err(problem) => {
                return Err(ExprError::Invalid {
                    param: param.name.clone(),
                    expression: expression.to_owned(),
                    problem,
                });
            }
        }
    }
    Ok(out)
}

/// A part of a binding value.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    /// The text between `$(` and its matching `)`.
    Expr(&'a str),
    /// A `$(` at this byte offset has no matching `)`; always the last piece.
    Unclosed(usize),
}

/// Splits a value into literal text and expressions.
fn split(value: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find("$(") {
        let inner = &rest[open + 2..];
        let Some(close) = closing_paren(inner) else {
            pieces.push(Piece::Unclosed(value.len() - rest.len() + open));
            return pieces;
        };
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        pieces.push(Piece::Expr(&inner[..close]));
        rest = &inner[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    pieces
}

/// The byte index of the `)` that closes an expression: nested parentheses are balanced, and
/// backslash-escaped characters and quoted strings (for later filter syntax) are skipped.
fn closing_paren(inner: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote = None;
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') if depth == 0 => return Some(i),
            (None, ')') => depth -= 1,
            (None, _) => {}
        }
    }
    None
}

/// Looks a path up in the event and renders what it finds as text.
fn lookup(path: &Path, ctx: &EventContext<'_>) -> Result<String, Problem> {
    let missing = |key: &String| Problem::MissingField {
        at: path.prefix(0),
        key: key.clone(),
    };
    let (start, skip): (Cow<'_, Value>, usize) = match (path.root, path.segments.first()) {
        (Root::Body, _) => (Cow::Borrowed(ctx.body), 0),
        // Header names match case-insensitively; a header's values are joined with `,`.
        (Root::Header, Some(Segment::Key(name))) => {
            let joined = ctx.headers.get_joined(name).ok_or_else(|| missing(name))?;
            (Cow::Owned(Value::String(joined)), 1)
        }
        (Root::Header, _) => (Cow::Owned(header_object(ctx.headers)), 0),
        (Root::Extensions, Some(Segment::Key(key))) => {
            let found = ctx.extensions.get(key).ok_or_else(|| missing(key))?;
            (Cow::Borrowed(found), 1)
        }
        (Root::Extensions, _) => (Cow::Owned(Value::Object(ctx.extensions.clone())), 0),
        (Root::Context, _) => {
            let mut context = serde_json::Map::new();
            context.insert("eventID".to_owned(), ctx.event_id.into());
            (Cow::Owned(Value::Object(context)), 0)
        }
    };
    let mut value = start.as_ref();
    for (n, segment) in path.segments.iter().enumerate().skip(skip) {
        value = step(value, segment, || path.prefix(n))?;
    }
    Ok(match value {
        Value::String(s) => s.clone(),
        // `Value`'s `Display` is compact JSON; integers print exactly.
        other => other.to_string(),
    })
}

/// `$(header)`: every header's canonical name mapped to its list of values.
fn header_object(headers: &Headers) -> Value {
    headers
        .iter()
        .map(|(name, values)| (name.to_owned(), values.into()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Follows one segment; `at` names the value being stepped into, for error messages.
fn step<'v>(
    value: &'v Value,
    segment: &Segment,
    at: impl FnOnce() -> String,
) -> Result<&'v Value, Problem> {
    match (segment, value) {
        (Segment::Key(key), Value::Object(map)) => {
            map.get(key).ok_or_else(|| Problem::MissingField {
                at: at(),
                key: key.clone(),
            })
        }
        (Segment::Index(index), Value::Array(items)) => {
            items.get(*index).ok_or_else(|| Problem::IndexOutOfRange {
                at: at(),
                index: *index,
            })
        }
        (segment, value) => Err(Problem::WrongType {
            at: at(),
            found: type_name(value),
            expected: match segment {
                Segment::Key(_) => "an object",
                Segment::Index(_) => "an array",
            },
        }),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
