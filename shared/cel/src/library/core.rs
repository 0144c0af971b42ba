//! The standard library: `size`, type conversions and string predicates.

use crate::env::Env;
use crate::error::EvalError;
use crate::value::{Value, as_f64, describe};

use super::call::{Call, conversion_error};

/// 2^63 as a double.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// `size(x)`, `x.size()`: code points of a string, bytes, list or map entries.
pub(super) fn size(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let size = match call.args.first() {
        Some(Value::String(s)) => {
            env.charge_bytes(s.len())?;
            s.chars().count()
        }
        Some(Value::Bytes(b)) => b.len(),
        Some(Value::List(items)) => items.len(),
        Some(Value::Map(map)) => map.len(),
        _ => return Err(call.no_overload()),
    };
    Ok(Value::Int(i64::try_from(size).unwrap_or(i64::MAX)))
}

/// `int(x)`.
pub(super) fn to_int(call: &Call<'_>) -> Result<Value, EvalError> {
    let value = call.args.first().ok_or_else(|| call.no_overload())?;
    let range_error =
        || EvalError::runtime(format!("int() of {} is out of range", describe_num(value)));
    Ok(Value::Int(match value {
        Value::Int(i) => *i,
        Value::Uint(u) => i64::try_from(*u).map_err(|_| range_error())?,
        Value::Double(d) => {
            // As cel-go: both ends are out of range, so -2^63 as a double is too.
            if d.is_nan() || *d >= TWO_63 || *d <= -TWO_63 {
                return Err(range_error());
            }
            // In range, so the truncating conversion is exact.
            #[allow(clippy::cast_possible_truncation)]
            let i = d.trunc() as i64;
            i
        }
        Value::String(s) => s.parse().map_err(|_| conversion_error(value, "int"))?,
        Value::Timestamp(t) => t.unix_seconds(),
        Value::Duration(d) => d.as_nanos(),
        _ => return Err(call.no_overload()),
    }))
}

/// `uint(x)`.
pub(super) fn to_uint(call: &Call<'_>) -> Result<Value, EvalError> {
    let value = call.args.first().ok_or_else(|| call.no_overload())?;
    let range_error =
        || EvalError::runtime(format!("uint() of {} is out of range", describe_num(value)));
    Ok(Value::Uint(match value {
        Value::Int(i) => u64::try_from(*i).map_err(|_| range_error())?,
        Value::Uint(u) => *u,
        Value::Double(d) => {
            if d.is_nan() || *d >= 2.0 * TWO_63 || *d < 0.0 {
                return Err(range_error());
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let u = d.trunc() as u64;
            u
        }
        Value::String(s) => s.parse().map_err(|_| conversion_error(value, "uint"))?,
        _ => return Err(call.no_overload()),
    }))
}

/// `double(x)`.
pub(super) fn to_double(call: &Call<'_>) -> Result<Value, EvalError> {
    let value = call.args.first().ok_or_else(|| call.no_overload())?;
    Ok(Value::Double(match value {
        Value::String(s) => s.parse().map_err(|_| conversion_error(value, "double"))?,
        other => as_f64(other).ok_or_else(|| call.no_overload())?,
    }))
}

/// `string(x)`.
pub(super) fn to_string(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let value = call.args.first().ok_or_else(|| call.no_overload())?;
    Ok(match value {
        Value::String(_) => value.clone(),
        Value::Int(i) => Value::from(i.to_string()),
        Value::Uint(u) => Value::from(u.to_string()),
        Value::Double(d) => Value::from(format_double(*d)),
        Value::Bool(b) => Value::from(b.to_string()),
        Value::Bytes(b) => {
            env.charge_bytes(b.len())?;
            let s = std::str::from_utf8(b).map_err(|_| {
                EvalError::runtime("invalid UTF-8 in bytes, cannot convert to string")
            })?;
            Value::from(s)
        }
        Value::Type(t) => Value::from(t.name()),
        Value::Timestamp(t) => Value::from(t.to_rfc3339()),
        Value::Duration(d) => Value::from(d.to_cel_string()),
        _ => return Err(call.no_overload()),
    })
}

/// `bytes(x)`.
pub(super) fn to_bytes(call: &Call<'_>) -> Result<Value, EvalError> {
    match call.args.first() {
        Some(Value::String(s)) => Ok(Value::Bytes(s.as_bytes().into())),
        Some(b @ Value::Bytes(_)) => Ok(b.clone()),
        _ => Err(call.no_overload()),
    }
}

/// `bool(x)`: a bool, or a string as Go's `strconv.ParseBool` reads it.
pub(super) fn to_bool(call: &Call<'_>) -> Result<Value, EvalError> {
    let value = call.args.first().ok_or_else(|| call.no_overload())?;
    match value {
        Value::Bool(_) => Ok(value.clone()),
        Value::String(s) => match &**s {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Value::Bool(true)),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Value::Bool(false)),
            _ => Err(conversion_error(value, "bool")),
        },
        _ => Err(call.no_overload()),
    }
}

/// The receiver and argument of a string predicate, after charging for the work.
fn string_pair<'a>(call: &'a Call<'_>, env: &mut Env<'_>) -> Result<(&'a str, &'a str), EvalError> {
    let s = call.str(0)?;
    let t = call.str(1)?;
    env.charge_bytes(s.len())?;
    Ok((s, t))
}

/// `s.contains(t)`.
pub(super) fn contains(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let (s, t) = string_pair(call, env)?;
    Ok(Value::Bool(s.contains(t)))
}

/// `s.startsWith(t)`.
pub(super) fn starts_with(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let (s, t) = string_pair(call, env)?;
    Ok(Value::Bool(s.starts_with(t)))
}

/// `s.endsWith(t)`.
pub(super) fn ends_with(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let (s, t) = string_pair(call, env)?;
    Ok(Value::Bool(s.ends_with(t)))
}

/// `s.matches(re)`, `matches(s, re)`: whether the RE2 pattern matches anywhere in `s`.
pub(super) fn matches(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let (s, pattern) = string_pair(call, env)?;
    let re = env.regex(pattern)?;
    Ok(Value::Bool(re.is_match(s)))
}

fn describe_num(value: &Value) -> String {
    match value {
        Value::Double(d) => format_double(*d),
        other => describe(other),
    }
}

/// Formats a double as Go's `%g` does (shortest representation; exponent form below 1e-4
/// and from 1e6, as `1e+06`), which is how CEL's `string(double)` spells it.
fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `-1.5e-7`.
    let scientific = format!("{d:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let sign = if mantissa.starts_with('-') { "-" } else { "" };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let (first, rest) = digits.split_at(1.min(digits.len()));
    if !(-4..6).contains(&exponent) {
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{fraction}e{exp_sign}{:02}", exponent.abs());
    }
    let point = exponent + 1;
    let count = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    if point <= 0 {
        let zeros = "0".repeat(usize::try_from(-point).unwrap_or(0));
        format!("{sign}0.{zeros}{digits}")
    } else if point >= count {
        let zeros = "0".repeat(usize::try_from(point - count).unwrap_or(0));
        format!("{sign}{digits}{zeros}")
    } else {
        let (whole, fraction) = digits.split_at(usize::try_from(point).unwrap_or(0));
        format!("{sign}{whole}.{fraction}")
    }
}
