//! What an expression's result looks like in the binding value, as Tekton's `getResults`
//! writes it: one string JSON-escaped without its quotes, one other value as compact JSON,
//! and no result or several as a JSON array of them all.
//!
//! JSON is written as Go's `encoding/json` writes it (object keys sorted, floats in Go's
//! shortest form: `3` for 3.0, `1e+21`), except that integers are written exactly rather than
//! through a float64, and `<`, `>`, `&` are not `\u`-escaped (once the rendered resource is
//! parsed, the two spellings are the same string).

use std::borrow::Cow;
use std::fmt::Write;

use serde_json::{Number, Value};

/// The text Tekton inserts for these results; `None` (the empty path) is the empty string.
pub(super) fn results(found: Option<&[Cow<'_, Value>]>) -> String {
    let mut out = String::new();
    match found {
        None => {}
        Some([Cow::Borrowed(Value::Null) | Cow::Owned(Value::Null)]) => out.push_str("null"),
        Some([one]) => match one.as_ref() {
            Value::String(text) => escape_into(&mut out, text),
            other => write_json(&mut out, other),
        },
        Some(many) => {
            out.push('[');
            for (i, value) in many.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(&mut out, value);
            }
            out.push(']');
        }
    }
    out
}

/// Compact JSON with sorted keys.
pub(crate) fn write_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => {
            out.push('"');
            escape_into(out, text);
            out.push('"');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                escape_into(out, key);
                out.push_str("\":");
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

/// Integers exactly; floats as Go's `encoding/json` does: shortest round-trip digits, in
/// exponent form (`1e+21`, `1e-7`) below 1e-6 or from 1e21 up.
fn write_number(out: &mut String, number: &Number) {
    if let Some(int) = number.as_u64() {
        let _ = write!(out, "{int}");
    } else if let Some(int) = number.as_i64() {
        let _ = write!(out, "{int}");
    } else {
        out.push_str(&go_float(number.as_f64().unwrap_or_default()));
    }
}

pub(crate) fn go_float(float: f64) -> String {
    let abs = float.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust writes `1e21` and `1.5e-7`; Go writes `1e+21` and `1.5e-7`.
        let text = format!("{float:e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                format!("{mantissa}e+{exponent}")
            }
            _ => text,
        }
    } else {
        format!("{float}")
    }
}

/// The inside of a JSON string literal: `"`, `\` and control characters escaped.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    out.reserve(text.len());
    // Runs of characters that need no escape are copied whole.
    let mut plain = 0;
    for (at, c) in text.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if u32::from(c) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&text[plain..at]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push_str(escaped);
        }
        plain = at + c.len_utf8();
    }
    out.push_str(&text[plain..]);
}
