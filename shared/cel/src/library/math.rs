//! The math extension.

use std::cmp::Ordering;

use crate::env::Env;
use crate::error::EvalError;
use crate::value::{Order, Value, as_f64, order};

use super::call::Call;

/// `math.@max` and `math.@min`, which `math.greatest(…)` and `math.least(…)` expand to:
/// of one number, of two, or of a list. Numbers of different types compare by value; the
/// winner keeps its type. NaN cannot be ordered.
pub(super) fn extreme(
    call: &Call<'_>,
    env: &mut Env<'_>,
    greatest: bool,
) -> Result<Value, EvalError> {
    let name = if greatest { "math.@max" } else { "math.@min" };
    let candidates: &[Value] = match call.args {
        [Value::List(items)] => {
            if items.is_empty() {
                return Err(EvalError::runtime(format!(
                    "{name}(list) argument must not be empty"
                )));
            }
            items
        }
        args => args,
    };
    env.charge(candidates.len())?;
    let mut best: Option<&Value> = None;
    for candidate in candidates {
        best = Some(match best {
            None => candidate,
            Some(current) => match order(current, candidate) {
                Order::Is(Ordering::Less) if greatest => candidate,
                Order::Is(Ordering::Greater) if !greatest => candidate,
                Order::Is(_) => current,
                Order::Unordered => {
                    return Err(EvalError::runtime(format!(
                        "NaN values cannot be ordered: {name}"
                    )));
                }
                Order::Incomparable => {
                    return Err(EvalError::runtime(format!("no such overload: {name}")));
                }
            },
        });
    }
    match best {
        Some(v) if v.is_number() => Ok(v.clone()),
        _ => Err(EvalError::runtime(format!("no such overload: {name}"))),
    }
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
        Some(Value::Double(d)) => Ok(Value::Double(if d.is_nan() {
            *d
        } else if *d == 0.0 {
            0.0
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

/// `math.sqrt(x)` of any number, as a double.
pub(super) fn sqrt(call: &Call<'_>) -> Result<Value, EvalError> {
    match call.args.first() {
        Some(v @ (Value::Int(_) | Value::Uint(_) | Value::Double(_))) => {
            Ok(Value::Double(as_f64(v).unwrap_or(f64::NAN).sqrt()))
        }
        _ => Err(call.no_overload()),
    }
}

/// The bitwise operations of the math extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bits {
    And,
    Or,
    Xor,
    Not,
    ShiftLeft,
    ShiftRight,
}

/// `math.bitAnd(a, b)`, `bitOr`, `bitXor`, `bitNot(a)`, `bitShiftLeft(a, n)` and
/// `bitShiftRight(a, n)` on ints or uints; a right shift of an int is logical (it shifts
/// in zeros), and shifting by 64 or more gives 0.
pub(super) fn bits(call: &Call<'_>, op: Bits) -> Result<Value, EvalError> {
    let shift = |n: &Value| -> Result<Option<u32>, EvalError> {
        match n {
            Value::Int(n) if *n < 0 => Err(call.error(format!("negative offset: {n}"))),
            Value::Int(n) => Ok(u32::try_from(*n).ok().filter(|n| *n < 64)),
            _ => Err(call.no_overload()),
        }
    };
    Ok(match (op, call.args) {
        (Bits::And, [Value::Int(a), Value::Int(b)]) => Value::Int(a & b),
        (Bits::And, [Value::Uint(a), Value::Uint(b)]) => Value::Uint(a & b),
        (Bits::Or, [Value::Int(a), Value::Int(b)]) => Value::Int(a | b),
        (Bits::Or, [Value::Uint(a), Value::Uint(b)]) => Value::Uint(a | b),
        (Bits::Xor, [Value::Int(a), Value::Int(b)]) => Value::Int(a ^ b),
        (Bits::Xor, [Value::Uint(a), Value::Uint(b)]) => Value::Uint(a ^ b),
        (Bits::Not, [Value::Int(a)]) => Value::Int(!a),
        (Bits::Not, [Value::Uint(a)]) => Value::Uint(!a),
        (Bits::ShiftLeft, [Value::Int(a), n]) => {
            Value::Int(shift(n)?.map_or(0, |n| a.wrapping_shl(n)))
        }
        (Bits::ShiftLeft, [Value::Uint(a), n]) => {
            Value::Uint(shift(n)?.map_or(0, |n| a.wrapping_shl(n)))
        }
        (Bits::ShiftRight, [Value::Int(a), n]) => {
            let logical = a.cast_unsigned();
            Value::Int(shift(n)?.map_or(0, |n| (logical >> n).cast_signed()))
        }
        (Bits::ShiftRight, [Value::Uint(a), n]) => Value::Uint(shift(n)?.map_or(0, |n| a >> n)),
        _ => return Err(call.no_overload()),
    })
}
