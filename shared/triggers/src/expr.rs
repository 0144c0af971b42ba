//! Tekton's `$(…)` expressions in binding values: `$(body…)`, `$(header…)`,
//! `$(extensions…)` and `$(context.eventID)`, resolved as Tekton Triggers resolves them
//! (`pkg/template/event.go`, `jsonpath.go`), in the JSONPath dialect of client-go.
//!
//! - Expressions are found as Tekton finds them: each `$(` up to its first unbalanced `)`.
//!   A `$(` that is never closed is literal text; in `$($(body.a))` only the innermost
//!   `$(body.a)` is an expression, so the value becomes `$(` + its result + `)`.
//! - Each result is inserted as text: a string JSON-escaped without its quotes, any other
//!   single value as compact JSON, several values (or none) as a JSON array. Integers are
//!   written exactly (Tekton's float64 would round them above 2^53). [`crate::template`]
//!   reads that text back as JSON string content when it renders, so a value arrives in the
//!   created resource as Tekton's byte substitution would put it there.
//! - Replacement is Tekton's: each expression, in order, replaces every occurrence of its
//!   text in the value as it stands.
//! - A param whose expression fails falls back, for that expression, to the template
//!   param's default when it has one.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::body::FieldTree;
use crate::catalogue::{BindingParam, ParamSpec, Trigger};
use crate::headers::Headers;
use crate::variables::{find_open, has_open};

mod eval;
mod path;
#[cfg(test)]
mod tests;
mod text;

pub use path::{Bound, Filter, Node, Op, Path, Root, Slice};

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
    /// An expression is malformed or does not match the event, and the param has no default.
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
            Self::Invalid { param, .. } => param,
        }
    }
}

/// What is wrong with one expression. Errors name types and positions, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("{what} at byte {offset} of the expression")]
    Syntax { what: String, offset: usize },
    #[error("unknown root `{0}` (expected `body`, `header`, `extensions` or `context`)")]
    UnknownRoot(String),
    #[error("`{at}` has no field `{key}`")]
    MissingField { at: String, key: String },
    #[error("`{at}` has no index {index} (length {len})")]
    IndexOutOfRange { at: String, index: i64, len: usize },
    #[error("`{at}`: the slice starts at {start}, after its end {end}")]
    StartAfterEnd { at: String, start: i64, end: i64 },
    #[error("`{at}` is {found}, not {expected}")]
    WrongType {
        at: String,
        found: &'static str,
        expected: &'static str,
    },
    #[error("`{at}`: filter {problem}")]
    Comparison { at: String, problem: &'static str },
}

/// Tekton's params for one trigger run: every `declared` param with a default, then each
/// binding param resolved against the event (a later param with the same name wins).
///
/// Values are the text Tekton would substitute (see the module documentation). An expression
/// that fails is an error, unless its param has a default, which then stands in for that
/// expression.
pub fn resolve_params(
    params: &[BindingParam],
    declared: &[ParamSpec],
    ctx: &EventContext<'_>,
) -> Result<BTreeMap<String, String>, ExprError> {
    let mut resolved: BTreeMap<String, String> = declared
        .iter()
        .filter_map(|spec| Some((spec.name.clone(), spec.default.clone()?)))
        .collect();
    for param in params {
        let default = declared
            .iter()
            .find(|spec| spec.name == param.name)
            .and_then(|spec| spec.default.as_deref());
        let found = expressions(&param.value);
        // The usual binding, `$(body.after)`: the value is its one expression's text.
        if let [only] = found.as_slice()
            && only.original.len() == param.value.len()
        {
            let text = match (evaluate(only.expression, ctx), default) {
                (Ok(text), _) => escape_variables(text),
                (Err(_), Some(default)) => default.to_owned(),
                (Err(problem), None) => return Err(invalid(param, only.expression, problem)),
            };
            resolved.insert(param.name.clone(), text);
            continue;
        }
        // Each expression is replaced everywhere it occurs, one after the other as Tekton
        // does, but by a placeholder: the inserted text is never searched for expressions.
        let mut value = param.value.clone();
        let mut texts = Vec::new();
        for found in found {
            let text = match (evaluate(found.expression, ctx), default) {
                (Ok(text), _) => escape_variables(text),
                (Err(_), Some(default)) => default.to_owned(),
                (Err(problem), None) => return Err(invalid(param, found.expression, problem)),
            };
            value = value.replace(found.original, &placeholder(texts.len()));
            texts.push(text);
        }
        resolved.insert(param.name.clone(), fill_placeholders(&value, &texts));
    }
    Ok(resolved)
}

/// Marks the `index`th inserted text: private-use characters that a binding value does
/// not hold (one that does is left as written by [`fill_placeholders`]).
fn placeholder(index: usize) -> String {
    format!("{PLACEHOLDER_START}{index}{PLACEHOLDER_END}")
}

const PLACEHOLDER_START: char = '\u{F8F0}';
const PLACEHOLDER_END: char = '\u{F8F1}';

/// Replaces each placeholder in one left-to-right pass with its text.
fn fill_placeholders(value: &str, texts: &[String]) -> String {
    if texts.is_empty() {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find(PLACEHOLDER_START) {
        out.push_str(&rest[..start]);
        let after = &rest[start + PLACEHOLDER_START.len_utf8()..];
        let text = after.find(PLACEHOLDER_END).and_then(|end| {
            let index: usize = after[..end].parse().ok()?;
            Some((texts.get(index)?, end))
        });
        match text {
            Some((text, end)) => {
                out.push_str(text);
                rest = &after[end + PLACEHOLDER_END.len_utf8()..];
            }
            None => {
                out.push(PLACEHOLDER_START);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text taken from the event with every `$(` written `$$(`, so that a sender cannot smuggle
/// a variable reference (`$(params.token)`, `$(tasks.x.results.y)`) into a resource for
/// Tekton Pipelines or Sluice's own `$(uid)` to expand. Values written by the template's
/// author (defaults) keep their references.
fn escape_variables(text: String) -> String {
    if has_open(&text) {
        text.replace("$(", "$$(")
    } else {
        text
    }
}

/// Checks a binding param's expressions without an event: each parses and starts from
/// `body`, `header`, `extensions` or `context`. For validating configuration at load time.
pub fn check(param: &BindingParam) -> Result<(), ExprError> {
    for found in expressions(&param.value) {
        let path = Path::parse(found.expression)
            .map_err(|problem| invalid(param, found.expression, problem))?;
        if let Some(Node::Field(name)) = path.nodes().first()
            && path.root().is_none()
        {
            let problem = Problem::UnknownRoot(name.clone());
            return Err(invalid(param, found.expression, problem));
        }
    }
    Ok(())
}

/// One expression (the text between `$(` and `)`) resolved to the text Tekton inserts.
pub fn evaluate(expression: &str, ctx: &EventContext<'_>) -> Result<String, Problem> {
    if let Some(found) = body_field(expression, ctx.body) {
        return Ok(text::results(Some(&[Cow::Borrowed(found)])));
    }
    evaluate_path(expression, ctx)
}

/// [`evaluate`] through the JSONPath parser and evaluator, whatever the expression.
fn evaluate_path(expression: &str, ctx: &EventContext<'_>) -> Result<String, Problem> {
    let path = Path::parse(expression)?;
    let found = eval::find(&path, ctx)?;
    Ok(text::results(found.as_deref()))
}

/// The value of the usual binding, `body.a.b`: plain field names (letters, digits, `_`,
/// `-`), each found in an object — where client-go's evaluation selects exactly that value.
/// Anything else (another root, brackets, escapes, a missing field, a value that is not an
/// object) is `None`, for the full evaluation to select or to explain.
///
/// A dispatcher resolves every binding for every event; this spares the usual one a parse.
fn body_field<'a>(expression: &str, body: &'a Value) -> Option<&'a Value> {
    plain_body_path(expression)?.try_fold(body, |value, field| value.as_object()?.get(field))
}

/// The field names of `body.a.b` when each is plain (see [`body_field`]); none for `body`.
fn plain_body_path(expression: &str) -> Option<std::str::Split<'_, char>> {
    let mut fields = expression.split('.');
    if fields.next()? != "body" {
        return None;
    }
    let plain = |field: &str| {
        !field.is_empty()
            && field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    fields.clone().all(plain).then_some(fields)
}

/// What `params` read of the event's body, for [`crate::body::parse_fields`]: the path of
/// each expression that is a plain `body.a.b`; the whole body for any other expression that
/// may read it (`$(body)`, brackets, filters, a path with no root…). Expressions that read
/// only the headers, the extensions or the context, and those that do not parse, read none.
pub fn body_reads(params: &[BindingParam]) -> FieldTree {
    let mut reads = FieldTree::default();
    for param in params {
        for found in expressions(&param.value) {
            if let Some(fields) = plain_body_path(found.expression) {
                reads.insert(fields);
                continue;
            }
            let body_free = Path::parse(found.expression).map_or(true, |path| {
                matches!(
                    path.root(),
                    Some(Root::Header | Root::Extensions | Root::Context)
                )
            });
            if !body_free {
                reads.insert([]);
            }
        }
    }
    reads.shrink_to_fit();
    reads
}

/// What `trigger`'s bindings read of the body ([`body_reads`] of its params), worked out the
/// first time it is asked and kept with the trigger.
pub fn trigger_body_reads(trigger: &Trigger) -> &FieldTree {
    trigger
        .body_reads
        .get_or_init(|| body_reads(&trigger.params))
}

/// Every value one expression (the text between `$(` and `)`) selects, in client-go's order,
/// before [`evaluate`] writes them as text; `None` for the empty expression `$()`, which
/// selects no list at all.
pub fn select(expression: &str, ctx: &EventContext<'_>) -> Result<Option<Vec<Value>>, Problem> {
    let path = Path::parse(expression)?;
    let found = eval::find(&path, ctx)?;
    Ok(found.map(|items| items.into_iter().map(Cow::into_owned).collect()))
}

fn invalid(param: &BindingParam, expression: &str, problem: Problem) -> ExprError {
    ExprError::Invalid {
        param: param.name.clone(),
        expression: expression.to_owned(),
        problem,
    }
}

/// An expression in a binding value.
#[derive(Debug, PartialEq, Eq)]
struct Found<'a> {
    /// `$(…)` as written.
    original: &'a str,
    /// The text between `$(` and `)`.
    expression: &'a str,
}

/// Tekton's `findTektonExpressions`: split the value at each `$(`; in each piece, the first
/// `)` that closes more parentheses than the piece opened ends an expression. A piece without
/// one holds none.
fn expressions(value: &str) -> Vec<Found<'_>> {
    let mut found = Vec::new();
    let mut starts = Vec::new();
    let mut from = 0;
    while let Some(open) = find_open(&value[from..]) {
        from += open + 2;
        starts.push(from);
    }
    for (n, &start) in starts.iter().enumerate() {
        let piece_end = starts.get(n + 1).map_or(value.len(), |next| next - 2);
        let piece = &value[start..piece_end];
        if let Some(end) = closing(piece) {
            found.push(Found {
                original: &value[start - 2..start + end + 1],
                expression: &piece[..end],
            });
        }
    }
    found
}

/// Whether a `$(` opens before the expression the previous `$(` began has closed
/// (`$($(body.a))`, `$(body.a-$(body.b))`). Tekton's admission webhook refuses a
/// TriggerBinding whose value does (`validateParamValue`), though its event handling would
/// resolve the innermost expression.
pub fn nests(value: &str) -> bool {
    let mut pieces = value.split("$(").skip(1).peekable();
    while let Some(piece) = pieces.next() {
        if pieces.peek().is_some() && closing(piece).is_none() {
            return true;
        }
    }
    false
}

/// The index of the first `)` in `piece` that closes more parentheses than it opened.
fn closing(piece: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in piece.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}
