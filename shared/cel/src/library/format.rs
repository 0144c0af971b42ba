//! `string.format(list)` from cel-go's strings extension: `%s`, `%d`, `%f`, `%e`, `%b`,
//! `%x`, `%X`, `%o` and `%%`, with an optional precision (`%.3f`) of at most 100.

use std::fmt::Write as _;

use crate::env::Env;
use crate::error::EvalError;
use crate::value::{MapKey, Value};

use super::call::Call;

/// The precision of `%f` and `%e` when none is given.
const DEFAULT_PRECISION: usize = 6;
/// The largest precision accepted.
pub(crate) const MAX_PRECISION: usize = 100;

/// `format.format(args)`.
pub(super) fn format(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let template = call.str(0)?;
    let args = call.list(1)?;
    env.charge_bytes(template.len())?;
    let mut out = String::new();
    let mut rest = template;
    let mut index = 0usize;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('%') {
            out.push('%');
            rest = after;
            continue;
        }
        if rest.is_empty() {
            return Err(call.error("unexpected end of string"));
        }
        let Some(arg) = args.get(index) else {
            return Err(call.error(format!("index {index} out of range")));
        };
        let (clause, precision, after) = parse_clause(rest)
            .map_err(|e| call.error(format!("could not parse formatting clause: {e}")))?;
        rest = after;
        let text = format_clause(clause, precision, arg, env)
            .map_err(|e| call.error(format!("error during formatting: {e}")))?;
        env.check_string_len(out.len().saturating_add(text.len()))?;
        out.push_str(&text);
        index += 1;
    }
    out.push_str(rest);
    env.charge_bytes(out.len())?;
    env.check_string_len(out.len())?;
    Ok(Value::from(out))
}

/// The clause letter, its precision and what follows, for text after a `%`.
pub(crate) fn parse_clause(text: &str) -> Result<(char, usize, &str), String> {
    let mut precision = DEFAULT_PRECISION;
    let mut rest = text;
    if let Some(after) = rest.strip_prefix('.') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == after.len() {
            return Err(
                "error while parsing precision: could not find end of precision specifier".into(),
            );
        }
        let (number, after) = after.split_at(digits);
        precision = number.parse().map_err(|_| {
            format!("error while parsing precision: error while converting precision to integer: '{number}'")
        })?;
        if precision > MAX_PRECISION {
            return Err(format!(
                "error while parsing precision: precision {precision} exceeds maximum allowed precision {MAX_PRECISION}"
            ));
        }
        rest = after;
    }
    let clause = rest.chars().next().ok_or("unexpected end of string")?;
    match clause {
        's' | 'd' | 'f' | 'e' | 'b' | 'x' | 'X' | 'o' => {
            Ok((clause, precision, &rest[clause.len_utf8()..]))
        }
        other => Err(format!("unrecognized formatting clause \"{other}\"")),
    }
}

fn format_clause(
    clause: char,
    precision: usize,
    arg: &Value,
    env: &mut Env<'_>,
) -> Result<String, String> {
    let bad = |what: &str| format!("{what}, was given {}", arg.type_name());
    match clause {
        's' => {
            let mut out = String::new();
            as_string(arg, &mut out, env, 0)?;
            Ok(out)
        }
        'd' => match arg {
            Value::Int(i) => Ok(i.to_string()),
            Value::Uint(u) => Ok(u.to_string()),
            Value::Double(d) => Ok(plain_double(*d)),
            _ => Err(bad(
                "decimal clause can only be used on ints, uints, and doubles",
            )),
        },
        'f' | 'e' => {
            let d = match arg {
                Value::Int(i) => to_f64(*i),
                Value::Uint(u) => u64_to_f64(*u),
                Value::Double(d) => *d,
                _ if clause == 'f' => {
                    return Err(bad(
                        "fixed-point clause can only be used on ints, uints, and doubles",
                    ));
                }
                _ => {
                    return Err(bad(
                        "scientific clause can only be used on ints, uints, and doubles",
                    ));
                }
            };
            if let Some(special) = non_finite(d) {
                return Ok(special.into());
            }
            Ok(if clause == 'f' {
                format!("{d:.precision$}")
            } else {
                scientific(d, precision)
            })
        }
        'b' => match arg {
            Value::Bool(b) => Ok(if *b { "1" } else { "0" }.into()),
            Value::Int(i) => Ok(signed_radix(*i, |u| format!("{u:b}"))),
            Value::Uint(u) => Ok(format!("{u:b}")),
            _ => Err(bad(
                "only ints, uints, and bools can be formatted as binary",
            )),
        },
        'o' => match arg {
            Value::Int(i) => Ok(signed_radix(*i, |u| format!("{u:o}"))),
            Value::Uint(u) => Ok(format!("{u:o}")),
            _ => Err(bad("octal clause can only be used on ints and uints")),
        },
        'x' | 'X' => {
            let text = match arg {
                Value::Int(i) => signed_radix(*i, |u| format!("{u:x}")),
                Value::Uint(u) => format!("{u:x}"),
                Value::String(s) => hex(s.as_bytes()),
                Value::Bytes(b) => hex(b),
                _ => {
                    return Err(bad(
                        "only ints, uints, bytes, and strings can be formatted as hex",
                    ));
                }
            };
            Ok(if clause == 'X' {
                text.to_ascii_uppercase()
            } else {
                text
            })
        }
        other => Err(format!("unrecognized formatting clause \"{other}\"")),
    }
}

#[allow(clippy::cast_precision_loss)]
fn to_f64(i: i64) -> f64 {
    i as f64
}

#[allow(clippy::cast_precision_loss)]
fn u64_to_f64(u: u64) -> f64 {
    u as f64
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// An int in a radix, with a minus sign rather than two's complement, as Go writes it.
fn signed_radix(i: i64, digits: impl Fn(u64) -> String) -> String {
    if i < 0 {
        format!("-{}", digits(i.unsigned_abs()))
    } else {
        digits(i.unsigned_abs())
    }
}

fn non_finite(d: f64) -> Option<&'static str> {
    if d.is_nan() {
        Some("NaN")
    } else if d.is_infinite() {
        Some(if d > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        None
    }
}

/// A double in as few digits as read back the same, never in exponent form.
fn plain_double(d: f64) -> String {
    non_finite(d).map_or_else(|| format!("{d}"), Into::into)
}

/// `1.052033e+03`: the mantissa with `precision` decimals, a signed exponent of at least
/// two digits.
fn scientific(d: f64, precision: usize) -> String {
    let text = format!("{d:.precision$e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// `%s` of any value: lists and maps in brackets, map entries sorted by their text.
fn as_string(
    value: &Value,
    out: &mut String,
    env: &mut Env<'_>,
    depth: usize,
) -> Result<(), String> {
    // Values nest at most as deep as the parser and JSON decoding allow; the bound keeps
    // a pathological value from exhausting the stack.
    if depth > 256 {
        return Err("value nested too deeply".into());
    }
    env.charge(1).map_err(|e| e.message)?;
    if out.len() > crate::env::MAX_STRING_BYTES {
        return Err("the formatted string is too long".into());
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Uint(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Double(d) => out.push_str(&plain_double(*d)),
        Value::String(s) => out.push_str(s),
        Value::Bytes(b) => out.push_str(&String::from_utf8_lossy(b)),
        Value::Type(t) => out.push_str(t.name()),
        Value::Timestamp(t) => {
            let utc = crate::time::Timestamp::from_unix(t.unix_seconds(), t.subsec_nanos());
            out.push_str(&utc.unwrap_or(*t).to_rfc3339());
        }
        Value::Duration(d) => out.push_str(&d.to_cel_string()),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                as_string(item, out, env, depth + 1)?;
            }
            out.push(']');
        }
        Value::Map(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (key, item) in map.iter() {
                let mut k = String::new();
                as_string(&MapKey::to_value(key), &mut k, env, depth + 1)?;
                let mut v = String::new();
                as_string(item, &mut v, env, depth + 1)?;
                entries.push((k, v));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(": ");
                out.push_str(v);
            }
            out.push('}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_go_writes_them() {
        assert_eq!(scientific(1052.032911275, 6), "1.052033e+03");
        assert_eq!(scientific(2.0, 6), "2.000000e+00");
        assert_eq!(scientific(1.5e-300, 1), "1.5e-300");
        assert_eq!(signed_radix(-255, |u| format!("{u:x}")), "-ff");
        assert_eq!(plain_double(1e21), "1000000000000000000000");
        assert_eq!(plain_double(56.8), "56.8");
        assert!(parse_clause(".101f").is_err());
        assert!(parse_clause("a").is_err());
    }
}
