//! Evaluating a parsed path against Tekton's event, as client-go's `FindResults` does with
//! `AllowMissingKeys(false)`, which is how Tekton calls it.
//!
//! Tekton's event is a Go struct `{header, body, extensions, context}`: `header` maps each
//! canonical header name to its values joined with `,`, `context` is `{eventID}`. Values are
//! borrowed from the event where possible; numbers are never converted (client-go sees
//! float64s, Sluice keeps integers exact).

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::path::{Filter, Node, Op, Path, Root, Slice};
use super::{EventContext, Problem};

pub(super) type Items<'a> = Vec<Cow<'a, Value>>;

/// A failed step. client-go hands back a list of values along with the error, and an
/// existence filter only looks at whether that list is empty, so it is kept.
struct Failure<'a> {
    partial: Items<'a>,
    problem: Problem,
}

type Step<'a> = Result<Items<'a>, Failure<'a>>;

/// Every value the path selects, in client-go's order; `None` for the empty path `$()`,
/// which selects no list at all.
pub(super) fn find<'a>(path: &Path, ctx: &EventContext<'a>) -> Result<Option<Items<'a>>, Problem> {
    if path.nodes().is_empty() {
        return Ok(None);
    }
    let eval = Evaluator { path };
    let (mut items, skip) = eval.root(ctx)?;
    for (top, node) in path.nodes().iter().enumerate().skip(skip) {
        items = eval
            .node(items, node, top)
            .map_err(|failure| failure.problem)?;
    }
    Ok(Some(items))
}

struct Evaluator<'p> {
    path: &'p Path,
}

impl Evaluator<'_> {
    /// The path's first steps into the event, and how many nodes they used. A header name
    /// matches in any case; a header's values are joined with `,`.
    fn root<'a>(&self, ctx: &EventContext<'a>) -> Result<(Items<'a>, usize), Problem> {
        let nodes = self.path.nodes();
        let Some(Node::Field(name)) = nodes.first() else {
            // `$(*)`, `$(..x)`: the whole event as one object.
            let event = Map::from_iter([
                ("body".to_owned(), ctx.body.clone()),
                ("context".to_owned(), context_object(ctx)),
                (
                    "extensions".to_owned(),
                    Value::Object(ctx.extensions.clone()),
                ),
                ("header".to_owned(), header_object(ctx)),
            ]);
            return Ok((vec![Cow::Owned(Value::Object(event))], 0));
        };
        let root = Root::from_field(name).ok_or_else(|| Problem::UnknownRoot(name.clone()))?;
        let next = match nodes.get(1) {
            Some(Node::Field(next)) => Some(next.as_str()),
            _ => None,
        };
        let missing = |key: &str| Problem::MissingField {
            at: self.path.prefix(1),
            key: key.to_owned(),
        };
        Ok(match (root, next) {
            (Root::Body, _) => (vec![Cow::Borrowed(ctx.body)], 1),
            (Root::Header, Some(header)) => {
                let joined = ctx
                    .headers
                    .get_joined(header)
                    .ok_or_else(|| missing(header))?;
                (vec![Cow::Owned(Value::String(joined))], 2)
            }
            (Root::Header, None) => (vec![Cow::Owned(header_object(ctx))], 1),
            (Root::Extensions, Some(key)) => {
                let found = ctx.extensions.get(key).ok_or_else(|| missing(key))?;
                (vec![Cow::Borrowed(found)], 2)
            }
            (Root::Extensions, None) => {
                let all = Value::Object(ctx.extensions.clone());
                (vec![Cow::Owned(all)], 1)
            }
            // The Go field is `EventID`, its JSON name `eventID`; both match.
            (Root::Context, Some("eventID" | "EventID")) => {
                (vec![Cow::Owned(Value::String(ctx.event_id.to_owned()))], 2)
            }
            (Root::Context, _) => (vec![Cow::Owned(context_object(ctx))], 1),
        })
    }

    /// One node applied to every value; `top` is the top-level node being evaluated, whose
    /// prefix names the value in error messages.
    fn node<'a>(&self, input: Items<'a>, node: &Node, top: usize) -> Step<'a> {
        match node {
            Node::Field(key) => self.field(input, key, top),
            Node::Wildcard => Ok(input.iter().flat_map(children).collect()),
            Node::Recursive => {
                let mut out = Vec::new();
                descend(&input, &mut out);
                Ok(out)
            }
            Node::Index(slice) => self.index(input, slice, top),
            Node::Union(alternatives) => {
                let mut out = Vec::new();
                for alternative in alternatives {
                    match self.list(input.clone(), alternative, top) {
                        Ok(found) => out.extend(found),
                        Err(failure) => return Err(fail(input, failure.problem)),
                    }
                }
                Ok(out)
            }
            Node::Filter(filter) => self.filter(input, filter, top),
            // client-go yields a quoted string once, and a number or boolean once per value.
            Node::Text(text) => Ok(vec![Cow::Owned(Value::String(text.clone()))]),
            Node::Int(int) => Ok(constant(&input, Value::from(*int))),
            Node::Float(float) => {
                let number = Number::from_f64(*float).map_or(Value::Null, Value::Number);
                Ok(constant(&input, number))
            }
            Node::Bool(bool) => Ok(constant(&input, Value::Bool(*bool))),
        }
    }

    fn list<'a>(&self, input: Items<'a>, nodes: &[Node], top: usize) -> Step<'a> {
        nodes
            .iter()
            .try_fold(input, |items, node| self.node(items, node, top))
    }

    /// A key of each object; nulls are skipped, other values have no fields. Nothing found
    /// at all is an error (no input at all is not).
    fn field<'a>(&self, input: Items<'a>, key: &str, top: usize) -> Step<'a> {
        if input.is_empty() {
            return Ok(input);
        }
        let found: Items<'a> = input
            .iter()
            .filter_map(|value| child(value, |v| v.as_object()?.get(key)))
            .collect();
        if found.is_empty() {
            let problem = Problem::MissingField {
                at: self.path.prefix(top),
                key: key.to_owned(),
            };
            return Err(fail(Vec::new(), problem));
        }
        Ok(found)
    }

    /// client-go's `evalArray`: positions made relative to the length, bounds checked unless
    /// the slice is empty (which also ends the evaluation of further values).
    fn index<'a>(&self, input: Items<'a>, slice: &Slice, top: usize) -> Step<'a> {
        let mut out = Vec::new();
        for value in &input {
            let len = match value.as_ref() {
                Value::Null => continue,
                Value::Array(items) => items.len(),
                other => return Err(fail(input.clone(), self.not_an_array(other, top))),
            };
            let length = len as i64;
            let mut start = if slice.start.known {
                slice.start.value
            } else {
                0
            };
            if start < 0 {
                start += length;
            }
            let mut end = if slice.end.known {
                slice.end.value
            } else {
                length
            };
            if end < 0 || (end == 0 && slice.end.derived) {
                end += length;
            }
            if end == start {
                return Ok(out);
            }
            let out_of_range = |index: i64| Problem::IndexOutOfRange {
                at: self.path.prefix(top),
                index,
                len,
            };
            if start < 0 || start >= length {
                let written = if slice.start.known {
                    slice.start.value
                } else {
                    0
                };
                return Err(fail(input.clone(), out_of_range(written)));
            }
            if end < 0 || end > length {
                let written = if slice.end.derived {
                    slice.start.value
                } else {
                    slice.end.value.wrapping_sub(1)
                };
                return Err(fail(input.clone(), out_of_range(written)));
            }
            if start > end {
                let problem = Problem::StartAfterEnd {
                    at: self.path.prefix(top),
                    start,
                    end,
                };
                return Err(fail(input.clone(), problem));
            }
            let step = slice.step.unwrap_or(1) as usize;
            for i in (start as usize..end as usize).step_by(step) {
                out.extend(child(value, |v| v.as_array()?.get(i)));
            }
        }
        Ok(out)
    }

    /// client-go's `evalFilter`. A comparison needs exactly one value on each side (none
    /// skips the element); a missing field on either side is an error, as client-go does
    /// not allow missing keys.
    fn filter<'a>(&self, input: Items<'a>, filter: &Filter, top: usize) -> Step<'a> {
        let mut out = Vec::new();
        for value in &input {
            let len = match value.as_ref() {
                Value::Array(items) => items.len(),
                other => return Err(fail(input.clone(), self.not_an_array(other, top))),
            };
            for i in 0..len {
                let Some(element) = child(value, |v| v.as_array()?.get(i)) else {
                    continue;
                };
                let lefts = self.list(vec![element.clone()], &filter.left, top);
                let Some((op, right)) = &filter.op else {
                    let found = match lefts {
                        Ok(found) => !found.is_empty(),
                        Err(failure) => !failure.partial.is_empty(),
                    };
                    if found {
                        out.push(element);
                    }
                    continue;
                };
                let compared = |problem| Problem::Comparison {
                    at: self.path.prefix(top),
                    problem,
                };
                let lefts = match lefts {
                    Ok(lefts) => lefts,
                    Err(failure) => return Err(fail(input.clone(), failure.problem)),
                };
                let left = match lefts.as_slice() {
                    [] => continue,
                    [one] => one,
                    _ => return Err(fail(input.clone(), compared(MORE_THAN_ONE))),
                };
                let rights = match self.list(vec![element.clone()], right, top) {
                    Ok(rights) => rights,
                    Err(failure) => return Err(fail(input.clone(), failure.problem)),
                };
                let right = match rights.as_slice() {
                    [] => continue,
                    [one] => one,
                    _ => return Err(fail(input.clone(), compared(MORE_THAN_ONE))),
                };
                match compare(*op, left, right) {
                    Ok(true) => out.push(element),
                    Ok(false) => {}
                    Err(problem) => return Err(fail(out, compared(problem))),
                }
            }
        }
        Ok(out)
    }

    fn not_an_array(&self, found: &Value, top: usize) -> Problem {
        Problem::WrongType {
            at: self.path.prefix(top),
            found: type_name(found),
            expected: "an array",
        }
    }
}

const MORE_THAN_ONE: &str = "can only compare one value at a time";

fn fail(partial: Items<'_>, problem: Problem) -> Failure<'_> {
    Failure { partial, problem }
}

fn constant<'a>(input: &Items<'a>, value: Value) -> Items<'a> {
    input.iter().map(|_| Cow::Owned(value.clone())).collect()
}

/// A value inside `value`, borrowed from the event when `value` is.
fn child<'a>(
    value: &Cow<'a, Value>,
    pick: impl for<'v> Fn(&'v Value) -> Option<&'v Value>,
) -> Option<Cow<'a, Value>> {
    match value {
        Cow::Borrowed(value) => pick(value).map(Cow::Borrowed),
        Cow::Owned(value) => pick(value).cloned().map(Cow::Owned),
    }
}

/// client-go's wildcard: an object's values (in key order), an array's elements, a string's
/// bytes (as numbers); nothing for anything else.
fn children<'a>(value: &Cow<'a, Value>) -> Items<'a> {
    match value {
        Cow::Borrowed(Value::Object(map)) => map.values().map(Cow::Borrowed).collect(),
        Cow::Borrowed(Value::Array(items)) => items.iter().map(Cow::Borrowed).collect(),
        Cow::Owned(Value::Object(map)) => map.values().cloned().map(Cow::Owned).collect(),
        Cow::Owned(Value::Array(items)) => items.iter().cloned().map(Cow::Owned).collect(),
        _ => match value.as_ref() {
            Value::String(text) => text
                .bytes()
                .map(|byte| Cow::Owned(Value::from(byte)))
                .collect(),
            _ => Vec::new(),
        },
    }
}

/// client-go's recursive descent: each value that has children, then its descendants.
fn descend<'a>(input: &[Cow<'a, Value>], out: &mut Items<'a>) {
    for value in input {
        let below = children(value);
        if !below.is_empty() {
            out.push(value.clone());
            descend(&below, out);
        }
    }
}

/// Go's template comparison functions, which client-go's filters use: booleans, numbers and
/// strings compare with their own kind; booleans only for (in)equality. Unlike Go, where a
/// JSON number is a float64 and `== 1` (an int) is a type error, numbers compare by value,
/// exactly.
fn compare(op: Op, left: &Value, right: &Value) -> Result<bool, &'static str> {
    let order = match (left, right) {
        (Value::Bool(l), Value::Bool(r)) => {
            return match op {
                Op::Eq => Ok(l == r),
                Op::Ne => Ok(l != r),
                _ => Err("cannot order booleans"),
            };
        }
        (Value::Number(l), Value::Number(r)) => compare_numbers(l, r),
        (Value::String(l), Value::String(r)) => l.as_bytes().cmp(r.as_bytes()),
        (Value::Null | Value::Array(_) | Value::Object(_), _)
        | (_, Value::Null | Value::Array(_) | Value::Object(_)) => {
            return Err("can only compare strings, numbers and booleans");
        }
        _ => return Err("compares values of different types"),
    };
    Ok(match op {
        Op::Eq => order == Ordering::Equal,
        Op::Ne => order != Ordering::Equal,
        Op::Lt => order == Ordering::Less,
        Op::Le => order != Ordering::Greater,
        Op::Gt => order == Ordering::Greater,
        Op::Ge => order != Ordering::Less,
    })
}

/// Exact comparison of JSON numbers: integers as integers, an integer and a float without
/// rounding the integer.
fn compare_numbers(left: &Number, right: &Number) -> Ordering {
    match (integer(left), integer(right)) {
        (Some(l), Some(r)) => l.cmp(&r),
        (Some(l), None) => integer_vs_float(l, float(right)),
        (None, Some(r)) => integer_vs_float(r, float(left)).reverse(),
        (None, None) => float(left)
            .partial_cmp(&float(right))
            .unwrap_or(Ordering::Equal),
    }
}

fn integer(n: &Number) -> Option<i128> {
    n.as_u64()
        .map(i128::from)
        .or_else(|| n.as_i64().map(i128::from))
}

fn float(n: &Number) -> f64 {
    n.as_f64().unwrap_or_default()
}

fn integer_vs_float(int: i128, float: f64) -> Ordering {
    let floor = float.floor();
    // `as` saturates, and JSON integers are far inside i128, so the order is kept.
    match int.cmp(&(floor as i128)) {
        Ordering::Equal if float > floor => Ordering::Less,
        order => order,
    }
}

/// `$(header)`: canonical header names to their values joined with `,`.
fn header_object(ctx: &EventContext<'_>) -> Value {
    ctx.headers
        .iter()
        .map(|(name, values)| (name.to_owned(), Value::String(values.join(","))))
        .collect::<Map<_, _>>()
        .into()
}

fn context_object(ctx: &EventContext<'_>) -> Value {
    Value::Object(Map::from_iter([(
        "eventID".to_owned(),
        Value::String(ctx.event_id.to_owned()),
    )]))
}

pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
