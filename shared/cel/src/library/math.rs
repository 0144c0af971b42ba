//! The math extension.

use std::cmp::Ordering;

use crate::env::Env;
use crate::error::EvalError;
use crate::value::{Order, Value, order};

use super::call::Call;

/// `math.greatest(…)` and `math.least(…)`: over the arguments, or the one list argument.
/// Numbers of different types compare by value; the winning value keeps its type.
pub(super) fn extreme(
    call: &Call<'_>,
    env: &mut Env<'_>,
    greatest: bool,
) -> Result<Value, EvalError> {
    let candidates: &[Value] = match call.args {
        [Value::List(items)] => items,
        args => args,
    };
    env.charge(candidates.len())?;
    let mut best: Option<&Value> = None;
    for candidate in candidates {
        if !candidate.is_number() {
            return Err(call.error(format!(
                "arguments must be numbers, found {}",
                candidate.type_name()
            )));
        }
        best = Some(match best {
            None => candidate,
            Some(current) => match order(candidate, current) {
                Order::Is(Ordering::Greater) if greatest => candidate,
                Order::Is(Ordering::Less) if !greatest => candidate,
                // NaN wins, as in cel-go: the result of comparing with NaN is NaN.
                Order::Unordered if is_nan(candidate) => candidate,
                _ => current,
            },
        });
    }
    best.cloned()
        .ok_or_else(|| call.error("needs at least one number"))
}

fn is_nan(value: &Value) -> bool {
    matches!(value, Value::Double(d) if d.is_nan())
}

/// `math.ceil`, `floor`, `round` (half away from zero) and `trunc` of a double.
pub(super) fn rounding(call: &Call<'_>, op: fn(f64) -> f64) -> Result<Value, EvalError> {
    match call.args.first() {
        Some(Value::Double(d)) => Ok(Value::Double(op(*d))),
        _ => Err(call.no_overload()),
    }
}

/// `math.abs(x)`; the most negative int has no absolute value.
pub(super) fn abs(call: &Call<'_>) -> Result<Value, EvalError> {
    match call.args.first() {
        Some(Value::Int(i)) => i
            .checked_abs()
            .map(Value::Int)
            .ok_or_else(|| call.error("integer overflow")),
        Some(Value::Uint(u)) => Ok(Value::Uint(*u)),
        Some(Value::Double(d)) => Ok(Value::Double(d.abs())),
        _ => Err(call.no_overload()),
    }
}

/// `math.sign(x)`: -1, 0 or 1 in the type of `x` (NaN for NaN).
pub(super) fn sign(call: &Call<'_>) -> Result<Value, EvalError> {
    match call.args.first() {
        Some(Value::Int(i)) => Ok(Value::Int(i.signum())),
        Some(Value::Uint(u)) => Ok(Value::Uint(u64::from(*u != 0))),
        Some(Value::Double(d)) => Ok(Value::Double(if d.is_nan() || *d == 0.0 {
            *d
        } else {
            d.signum()
        })),
        _ => Err(call.no_overload()),
    }
}

/// `math.isNaN`, `isInf`, `isFinite` of a double.
pub(super) fn classify(call: &Call<'_>, test: fn(f64) -> bool) -> Result<Value, EvalError> {
    match call.args.first() {
        Some(Value::Double(d)) => Ok(Value::Bool(test(*d))),
        _ => Err(call.no_overload()),
    }
}
