//! `'…'.format([…])` with a literal format and a literal list, checked when compiled as
//! cel-go's validator checks it: every clause must parse, name an argument that exists,
//! and suit that argument's type; no argument may be left over.

use std::collections::HashMap;

use crate::ast::{Expr, ExprKind};
use crate::error::CompileError;
use crate::library::parse_format_clause;
use crate::types::CelType;
use crate::value::Value;

use super::node_id;

/// Checks every `format` call of `expr` whose format and arguments are literals.
pub(super) fn check_calls(
    expr: &Expr,
    types: &HashMap<usize, CelType>,
    source: &str,
) -> Result<(), CompileError> {
    if let ExprKind::Call {
        name,
        target: Some(target),
        args,
        ..
    } = &expr.kind
        && &**name == "format"
        && let ExprKind::Literal(Value::String(template)) = &target.kind
        && let [list] = args.as_slice()
        && let ExprKind::List(items) = &list.kind
    {
        check_call(template, items, types).map_err(|(offset, problem)| {
            CompileError::at(source, offset.unwrap_or(expr.offset), problem)
        })?;
    }
    for child in expr.children() {
        check_calls(child, types, source)?;
    }
    Ok(())
}

type Problem = (Option<usize>, String);

fn check_call(
    template: &str,
    items: &[Expr],
    types: &HashMap<usize, CelType>,
) -> Result<(), Problem> {
    let mut rest = template;
    let mut used = 0usize;
    while let Some(at) = rest.find('%') {
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('%') {
            rest = after;
            continue;
        }
        if rest.is_empty() {
            return Err((None, "unexpected end of string".into()));
        }
        let Some(item) = items.get(used) else {
            return Err((None, format!("index {used} out of range")));
        };
        let (clause, _, after) = parse_format_clause(rest)
            .map_err(|e| (None, format!("could not parse formatting clause: {e}")))?;
        rest = after;
        suits(clause, item, types)
            .map_err(|(offset, e)| (offset, format!("error during formatting: {e}")))?;
        used += 1;
    }
    if items.len() > used {
        return Err((
            None,
            format!(
                "too many arguments supplied to string.format (expected {used}, got {})",
                items.len()
            ),
        ));
    }
    Ok(())
}

/// Whether an argument of this static type suits the clause.
fn suits(clause: char, item: &Expr, types: &HashMap<usize, CelType>) -> Result<(), Problem> {
    let t = types.get(&node_id(item)).cloned().unwrap_or(CelType::Dyn);
    let one_of = |allowed: &[fn(&CelType) -> bool], what: &str| {
        if t == CelType::Dyn || allowed.iter().any(|f| f(&t)) {
            Ok(())
        } else {
            Err((Some(item.offset), format!("{what}, was given {t}")))
        }
    };
    let int = |t: &CelType| *t == CelType::Int;
    let uint = |t: &CelType| *t == CelType::Uint;
    let double = |t: &CelType| *t == CelType::Double;
    match clause {
        's' => printable(item, types),
        'd' => one_of(
            &[int, uint, double],
            "decimal clause can only be used on ints, uints, and doubles",
        ),
        'f' => one_of(
            &[int, uint, double],
            "fixed-point clause can only be used on ints, uints, and doubles",
        ),
        'e' => one_of(
            &[int, uint, double],
            "scientific clause can only be used on ints, uints, and doubles",
        ),
        'b' => one_of(
            &[int, uint, |t| *t == CelType::Bool],
            "only ints, uints, and bools can be formatted as binary",
        ),
        'o' => one_of(
            &[int, uint],
            "octal clause can only be used on ints and uints",
        ),
        _ => one_of(
            &[
                int,
                uint,
                |t| *t == CelType::String,
                |t| *t == CelType::Bytes,
            ],
            "only ints, uints, bytes, and strings can be formatted as hex",
        ),
    }
}

/// Whether `%s` can write the value, looking into list and map literals.
fn printable(item: &Expr, types: &HashMap<usize, CelType>) -> Result<(), Problem> {
    let t = types.get(&node_id(item)).cloned().unwrap_or(CelType::Dyn);
    let ok = !matches!(t, CelType::Param(_) | CelType::Error);
    if !ok {
        return Err((
            Some(item.offset),
            format!(
                "string clause can only be used on strings, bools, bytes, ints, doubles, maps, lists, types, durations, and timestamps, was given {t}"
            ),
        ));
    }
    match &item.kind {
        ExprKind::List(items) => items.iter().try_for_each(|i| printable(i, types)),
        ExprKind::Map(entries) => entries.iter().try_for_each(|(k, v)| {
            printable(k, types)?;
            printable(v, types)
        }),
        _ => Ok(()),
    }
}
