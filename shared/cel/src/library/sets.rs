//! The sets extension: lists compared as sets, by CEL equality.

use crate::env::Env;
use crate::error::EvalError;
use crate::value::Value;

use super::call::Call;

/// Whether `list` holds a value equal to `item`.
fn holds(list: &[Value], item: &Value, env: &mut Env<'_>) -> Result<bool, EvalError> {
    for candidate in list {
        if env.equals(candidate, item)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether every element of `sub` is in `list`.
fn contains_all(list: &[Value], sub: &[Value], env: &mut Env<'_>) -> Result<bool, EvalError> {
    for item in sub {
        if !holds(list, item, env)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `sets.contains(list, sublist)`.
pub(super) fn contains(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(contains_all(
        call.list(0)?,
        call.list(1)?,
        env,
    )?))
}

/// `sets.equivalent(a, b)`: each contains the other.
pub(super) fn equivalent(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let (a, b) = (call.list(0)?, call.list(1)?);
    Ok(Value::Bool(
        contains_all(a, b, env)? && contains_all(b, a, env)?,
    ))
}

/// `sets.intersects(a, b)`: an element in common.
pub(super) fn intersects(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let (a, b) = (call.list(0)?, call.list(1)?);
    for item in a {
        if holds(b, item, env)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}
