//! The lists extension.

use std::cmp::Ordering;

use crate::env::Env;
use crate::error::EvalError;
use crate::value::{Order, Value, order};

use super::call::Call;

/// `lists.range(n)`: `[0, 1, …, n-1]`.
pub(super) fn range(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let n = call.int(0)?;
    let len = usize::try_from(n).map_err(|_| call.out_of_range("count", n))?;
    env.check_elements(len)?;
    env.charge(len)?;
    Ok(Value::from((0..n).map(Value::Int).collect::<Vec<_>>()))
}

/// `list.slice(start, end)`: the elements from `start` up to, not including, `end`.
pub(super) fn slice(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let items = call.list(0)?;
    let index = |arg: usize| -> Result<usize, EvalError> {
        let i = call.int(arg)?;
        usize::try_from(i)
            .ok()
            .filter(|i| *i <= items.len())
            .ok_or_else(|| call.out_of_range("index", i))
    };
    let (start, end) = (index(1)?, index(2)?);
    if start > end {
        return Err(call.error(format!("invalid range: start {start} is after end {end}")));
    }
    env.charge(end - start)?;
    Ok(Value::from(
        items.get(start..end).unwrap_or_default().to_vec(),
    ))
}

/// `list.flatten([depth])`: nested lists spliced in, `depth` levels deep (default 1).
pub(super) fn flatten(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let items = call.list(0)?;
    let depth = if call.args.len() > 1 { call.int(1)? } else { 1 };
    if depth < 0 {
        return Err(call.error("depth must not be negative"));
    }
    let mut out = Vec::new();
    flatten_into(items, depth, &mut out, env)?;
    Ok(Value::from(out))
}

fn flatten_into(
    items: &[Value],
    depth: i64,
    out: &mut Vec<Value>,
    env: &mut Env<'_>,
) -> Result<(), EvalError> {
    env.charge(items.len())?;
    for item in items {
        match item {
            Value::List(inner) if depth > 0 => flatten_into(inner, depth - 1, out, env)?,
            other => {
                env.check_elements(out.len() + 1)?;
                out.push(other.clone());
            }
        }
    }
    Ok(())
}

/// `list.distinct()`: the first occurrence of each value, by CEL equality.
pub(super) fn distinct(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let items = call.list(0)?;
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        let mut seen = false;
        for kept in &out {
            if env.equals(item, kept)? {
                seen = true;
                break;
            }
        }
        if !seen {
            out.push(item.clone());
        }
    }
    Ok(Value::from(out))
}

/// `list.reverse()`.
pub(super) fn reverse(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let items = call.list(0)?;
    env.charge(items.len())?;
    Ok(Value::from(items.iter().rev().cloned().collect::<Vec<_>>()))
}

/// `list.sort()`: the elements in ascending order; they must all be of one comparable
/// type (int, uint, double, bool, string, bytes, timestamp or duration).
pub(super) fn sort(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let items = call.list(0)?;
    let order = sort_order(items, env).map_err(|e| call.error(e.message))?;
    Ok(Value::from(
        order
            .into_iter()
            .filter_map(|i| items.get(i).cloned())
            .collect::<Vec<_>>(),
    ))
}

/// The positions of `keys` in ascending order of the keys (stable), charging for the
/// comparisons; the keys must all be of one comparable type.
pub(crate) fn sort_order(keys: &[Value], env: &mut Env<'_>) -> Result<Vec<usize>, EvalError> {
    let n = keys.len();
    env.charge(n.saturating_mul(usize::try_from(n.max(1).ilog2()).unwrap_or(0) + 1))?;
    if let Some(first) = keys.first() {
        let comparable = matches!(
            first,
            Value::Int(_)
                | Value::Uint(_)
                | Value::Double(_)
                | Value::Bool(_)
                | Value::String(_)
                | Value::Bytes(_)
                | Value::Timestamp(_)
                | Value::Duration(_)
        );
        if !comparable {
            return Err(EvalError::runtime("list elements must be comparable"));
        }
        if keys.iter().any(|k| k.type_of() != first.type_of()) {
            return Err(EvalError::runtime("list elements must have the same type"));
        }
    }
    let mut positions: Vec<usize> = (0..n).collect();
    positions.sort_by(|&a, &b| match (keys.get(a), keys.get(b)) {
        // A total order, so that NaN cannot upset the sort: it goes last.
        (Some(Value::Double(x)), Some(Value::Double(y))) => x.total_cmp(y),
        (Some(x), Some(y)) => match order(x, y) {
            Order::Is(ordering) => ordering,
            _ => Ordering::Equal,
        },
        _ => Ordering::Equal,
    });
    Ok(positions)
}
