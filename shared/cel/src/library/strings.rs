//! The strings and encoders extensions. Indexes count Unicode code points, as in cel-go.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::env::Env;
use crate::error::EvalError;
use crate::value::Value;

use super::call::Call;

/// The byte offset of code point `index` in `s`, if `index` is at most the length.
fn byte_offset(s: &str, index: usize) -> Option<usize> {
    if index == 0 {
        return Some(0);
    }
    s.char_indices()
        .map(|(offset, _)| offset)
        .chain(std::iter::once(s.len()))
        .nth(index)
}

/// A code point index argument, checked against `0..=len`.
fn index_arg(call: &Call<'_>, arg: usize, len: usize) -> Result<usize, EvalError> {
    let index = call.int(arg)?;
    usize::try_from(index)
        .ok()
        .filter(|i| *i <= len)
        .ok_or_else(|| call.out_of_range("index", index))
}

fn code_points(s: &str) -> usize {
    s.chars().count()
}

fn int_value(n: usize) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `s.charAt(i)`: the code point at `i`, or `""` at the end.
pub(super) fn char_at(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    env.charge_bytes(s.len())?;
    let index = index_arg(call, 1, code_points(s))?;
    Ok(Value::from(
        s.chars().nth(index).map(String::from).unwrap_or_default(),
    ))
}

/// `s.indexOf(t[, from])` and `s.lastIndexOf(t[, at])`, by code point, as cel-go computes
/// them: a negative offset is an error, an offset at or past the end finds nothing, and
/// `lastIndexOf` finds the last match starting at or before its offset.
pub(super) fn index_of(call: &Call<'_>, env: &mut Env<'_>, last: bool) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    let needle = call.str(1)?;
    env.charge_bytes(s.len().saturating_add(needle.len()))?;
    let chars: Vec<char> = s.chars().collect();
    let sub: Vec<char> = needle.chars().collect();
    let len = chars.len();
    let offset = if call.args.len() > 2 {
        call.int(2)?
    } else if last {
        if sub.is_empty() {
            return Ok(int_value(len));
        }
        if s.len() < needle.len() {
            return Ok(Value::Int(-1));
        }
        i64::try_from(len).unwrap_or(i64::MAX) - 1
    } else {
        0
    };
    let Ok(offset) = usize::try_from(offset) else {
        return Err(EvalError::runtime(format!("index out of range: {offset}")));
    };
    if sub.is_empty() {
        return Ok(int_value(offset.min(len)));
    }
    if offset >= len || sub.len() > len {
        return Ok(Value::Int(-1));
    }
    env.charge(len.saturating_mul(sub.len()) / 16)?;
    let matches_at = |i: usize| chars.get(i..i + sub.len()) == Some(sub.as_slice());
    let found = if last {
        (0..=offset.min(len - sub.len()))
            .rev()
            .find(|&i| matches_at(i))
    } else {
        (offset..=len - sub.len()).find(|&i| matches_at(i))
    };
    Ok(found.map_or(Value::Int(-1), int_value))
}

/// `s.lowerAscii()`, `s.upperAscii()`.
pub(super) fn map_ascii(
    call: &Call<'_>,
    env: &mut Env<'_>,
    upper: bool,
) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    env.charge_bytes(s.len())?;
    Ok(Value::from(if upper {
        s.to_ascii_uppercase()
    } else {
        s.to_ascii_lowercase()
    }))
}

/// `s.replace(old, new[, n])`: the first `n` occurrences (all when `n` is negative).
pub(super) fn replace(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    let old = call.str(1)?;
    let new = call.str(2)?;
    let limit = if call.args.len() > 3 {
        usize::try_from(call.int(3)?).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    env.charge_bytes(s.len())?;
    let occurrences = if old.is_empty() {
        code_points(s) + 1
    } else {
        s.matches(old).count()
    }
    .min(limit);
    let len = s
        .len()
        .saturating_add(occurrences.saturating_mul(new.len()))
        .saturating_sub(occurrences.saturating_mul(old.len()));
    env.check_string_len(len)?;
    env.charge_bytes(len)?;
    Ok(Value::from(s.replacen(old, new, occurrences)))
}

/// `s.split(sep[, n])`, as Go's `strings.SplitN`: at most `n` pieces when `n` is positive,
/// none when it is zero, all when negative; an empty separator splits into code points.
pub(super) fn split(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    let sep = call.str(1)?;
    let limit = if call.args.len() > 2 {
        call.int(2)?
    } else {
        -1
    };
    env.charge_bytes(s.len())?;
    if limit == 0 {
        return Ok(Value::from(Vec::new()));
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let pieces: Vec<Value> = if sep.is_empty() {
        let mut pieces: Vec<Value> = Vec::new();
        let mut rest = s;
        while let Some(ch) = rest.chars().next() {
            if pieces.len() + 1 == limit {
                break;
            }
            pieces.push(Value::from(ch.to_string()));
            rest = rest.get(ch.len_utf8()..).unwrap_or_default();
        }
        if !rest.is_empty() {
            pieces.push(Value::from(rest));
        }
        pieces
    } else {
        s.splitn(limit, sep).map(Value::from).collect()
    };
    env.charge(pieces.len())?;
    env.check_elements(pieces.len())?;
    Ok(Value::from(pieces))
}

/// `s.substring(start[, end])`, by code point.
pub(super) fn substring(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    env.charge_bytes(s.len())?;
    let len = code_points(s);
    let start = index_arg(call, 1, len)?;
    let end = if call.args.len() > 2 {
        index_arg(call, 2, len)?
    } else {
        len
    };
    if start > end {
        return Err(call.error(format!("invalid range: start {start} is after end {end}")));
    }
    let from = byte_offset(s, start).unwrap_or(s.len());
    let to = byte_offset(s, end).unwrap_or(s.len());
    Ok(Value::from(s.get(from..to).unwrap_or_default()))
}

/// `s.trim()`: without leading and trailing Unicode white space.
pub(super) fn trim(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    env.charge_bytes(s.len())?;
    Ok(Value::from(s.trim()))
}

/// `list.join([sep])`: a list of strings joined.
pub(super) fn join(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let items = call.list(0)?;
    let sep = if call.args.len() > 1 {
        call.str(1)?
    } else {
        ""
    };
    let mut parts = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(s) => parts.push(&**s),
            other => {
                return Err(call.error(format!(
                    "the list must hold only strings, found {}",
                    other.type_name()
                )));
            }
        }
    }
    let len = parts
        .iter()
        .map(|p| p.len())
        .fold(sep.len().saturating_mul(parts.len()), usize::saturating_add);
    env.charge(parts.len())?;
    env.charge_bytes(len)?;
    env.check_string_len(len)?;
    Ok(Value::from(parts.join(sep)))
}

/// `s.reverse()`: the code points in reverse order.
pub(super) fn reverse(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    env.charge_bytes(s.len())?;
    Ok(Value::from(s.chars().rev().collect::<String>()))
}

/// `strings.quote(s)`: `s` in double quotes with `\`, `"` and control characters escaped.
pub(super) fn quote(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    env.charge_bytes(s.len())?;
    env.check_string_len(s.len().saturating_mul(2).saturating_add(2))?;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            other => out.push(other),
        }
    }
    out.push('"');
    Ok(Value::from(out))
}

/// `base64.encode(bytes)`: standard base64 with padding.
pub(super) fn base64_encode(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let Some(Value::Bytes(bytes)) = call.args.first() else {
        return Err(call.no_overload());
    };
    env.charge_bytes(bytes.len().saturating_mul(2))?;
    env.check_string_len(bytes.len().saturating_mul(4) / 3 + 4)?;
    Ok(Value::from(STANDARD.encode(bytes)))
}

/// Decodes standard base64, with or without padding.
pub(super) fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
}

/// `base64.decode(string)`: bytes.
pub(super) fn base64_decode(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let text = call.str(0)?;
    env.charge_bytes(text.len())?;
    let bytes = decode_base64(text).map_err(|e| call.error(format!("invalid base64: {e}")))?;
    Ok(Value::Bytes(bytes.into()))
}
