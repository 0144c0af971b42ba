//! The event's body as Tekton's triggers read it once it is past the edge:
//!
//! - [`parse`]: the JSON the bindings, `cel` and the templates read (an empty body is `null`);
//!   [`parse_fields`] the same JSON with only the fields a trigger's bindings read built.
//!   A body that is not JSON reaches the dispatcher only from a listener whose payload
//!   validation is off (`tekton.dev/payload-validation: "false"`); as in Tekton, it is passed
//!   on as it is, and whatever reads it as JSON fails the trigger;
//! - [`form_as_json`]: Tekton's conversion of a form-encoded body
//!   (`application/x-www-form-urlencoded`, as Slack sends) into a JSON object of lists of
//!   strings before a trigger's interceptors run;
//! - [`requested_fields`]: the `slack` interceptor's `requestedFields`, read from that object
//!   into the extensions.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::headers::Headers;

mod fields;

pub use fields::{FieldTree, parse_fields};

/// The content type of HTML forms, which Slack's slash commands send.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Why a body is not the JSON the bindings and `cel` read. Names the parser's complaint,
/// never the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the body is not JSON ({reason})")]
pub struct NotJson {
    reason: String,
}

/// The body as JSON; an empty body is `null`, as Tekton reads it.
pub fn parse(body: &[u8]) -> Result<Value, NotJson> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|error| NotJson {
        reason: error.to_string(),
    })
}

/// Whether the request declared a form-encoded body: its first `Content-Type`, exactly, as
/// Tekton compares it (a `; charset=…` parameter does not match).
pub fn is_form_encoded(headers: &Headers) -> bool {
    headers
        .get_all("Content-Type")
        .and_then(<[String]>::first)
        .is_some_and(|value| value == FORM_CONTENT_TYPE)
}

/// Tekton's conversion of a form-encoded body before a trigger's interceptors run: when the
/// request declares a form and the body holds more than one distinct field, the body becomes
/// the JSON object of each field's values (`{"text": ["hello world"], …}`, keys sorted,
/// written as Go writes it). `None`: the body stays as it is (Tekton converts nothing when
/// the trigger has no interceptor, nor before a legacy `webhook` interceptor that comes first
/// with no extensions yet; the caller decides that).
pub fn form_as_json(headers: &Headers, body: &[u8]) -> Option<Vec<u8>> {
    if !is_form_encoded(headers) {
        return None;
    }
    let fields = parse_form(&String::from_utf8_lossy(body));
    if fields.len() < 2 {
        return None;
    }
    let json = serde_json::to_string(&fields).ok()?;
    Some(escape_html(&json).into_bytes())
}

/// A query string's fields as Go's `url.ParseQuery` reads them, each with its values in
/// order: pairs are separated by `&`; a pair holding `;` or a malformed `%` escape is left
/// out (Tekton ignores the error and keeps the rest); `+` is a space.
pub fn parse_form(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in text.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(key), Some(value)) = (unescape(key), unescape(value)) else {
            continue;
        };
        fields.entry(key).or_default().push(value);
    }
    fields
}

/// `%XX` and `+` decoded; `None` for a `%` not followed by two hex digits. Bytes that are not
/// UTF-8 become U+FFFD, as Go's JSON encoder writes them.
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `json.Marshal` escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings; in JSON text
/// they occur nowhere else, so replacing them everywhere is exact.
fn escape_html(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Why the `slack` interceptor's `requestedFields` stopped the trigger, as Tekton's stops it.
/// Messages name the field, never the body's contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldsError {
    /// Tekton's slack interceptor reads only form-encoded requests.
    #[error("the request is not form-encoded (Content-Type is not `{FORM_CONTENT_TYPE}`)")]
    NotForm,
    /// The body is not the JSON object of lists of strings a form becomes.
    #[error("the body is not a form's fields: {reason}")]
    NotFields { reason: String },
    #[error("requested field `{field}` is not in the form")]
    Missing { field: String },
}

/// The `slack` interceptor's `requestedFields`: each named field of the form, with its list
/// of values, for the extensions (`$(extensions.text)` is `["main 2222"]`,
/// `$(extensions.text[0])` is `main 2222`). `body` is the body the interceptor is given: a
/// form Tekton has converted ([`form_as_json`]). Values are event text like any other:
/// substituted into templates, a `$(` in them stays inert.
pub fn requested_fields(
    fields: &[String],
    headers: &Headers,
    body: &[u8],
) -> Result<Map<String, Value>, FieldsError> {
    if !is_form_encoded(headers) {
        return Err(FieldsError::NotForm);
    }
    // Go decodes into `map[string][]string`: an object whose values are lists of strings
    // (or `null`), or `null` for no fields at all.
    let form: Option<BTreeMap<String, Option<Vec<String>>>> = serde_json::from_slice(body)
        .map_err(|error| FieldsError::NotFields {
            reason: error.to_string(),
        })?;
    let form = form.unwrap_or_default();
    let mut extensions = Map::new();
    for field in fields {
        let values = form.get(field).ok_or_else(|| FieldsError::Missing {
            field: field.clone(),
        })?;
        let values = match values {
            Some(values) => Value::from(values.clone()),
            None => Value::Null,
        };
        extensions.insert(field.clone(), values);
    }
    Ok(extensions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form_headers() -> Headers {
        let mut headers = Headers::new();
        headers.append("content-type", FORM_CONTENT_TYPE);
        headers
    }

    #[test]
    fn an_empty_body_is_null_and_text_is_not_json() {
        assert_eq!(parse(b""), Ok(Value::Null));
        assert_eq!(parse(br#"{"a":1}"#), Ok(serde_json::json!({"a": 1})));
        let error = parse(b"<test>xml</test>").unwrap_err().to_string();
        assert!(error.starts_with("the body is not JSON ("), "{error}");
        assert!(!error.contains("xml"), "names no content: {error}");
    }

    #[test]
    fn a_form_becomes_an_object_of_lists_as_go_writes_it() {
        let body = b"token=abc&user_id=123&text=hello+world&text=%3Cb%3E%26";
        let json = form_as_json(&form_headers(), body).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"text":["hello world","\u003cb\u003e\u0026"],"token":["abc"],"user_id":["123"]}"#
        );
    }

    #[test]
    fn a_form_is_converted_only_when_declared_and_holding_two_fields() {
        let body = b"a=1&b=2";
        assert_eq!(form_as_json(&Headers::new(), body), None);
        let mut charset = Headers::new();
        charset.append(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        );
        assert_eq!(form_as_json(&charset, body), None);
        assert_eq!(form_as_json(&form_headers(), b"a=1&a=2"), None);
        assert_eq!(form_as_json(&form_headers(), b"hello"), None);
    }

    #[test]
    fn form_parsing_follows_go() {
        let fields = parse_form("a=1&&b&c=%zz&h=%+1&d;e=2&=empty&f=%41%2b+x&g=a=b");
        let text = serde_json::to_string(&fields).unwrap();
        assert_eq!(
            text,
            r#"{"":["empty"],"a":["1"],"b":[""],"f":["A+ x"],"g":["a=b"]}"#
        );
        assert_eq!(parse_form("x=%ff")["x"], ["\u{fffd}"]);
    }

    #[test]
    fn requested_fields_are_copied_with_their_lists() {
        let body = br#"{"text":["main 2222"],"user_id":["U1"],"empty":null}"#;
        let fields = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            requested_fields(&names, &form_headers(), body)
        };
        assert_eq!(
            Value::Object(fields(&["text", "empty"]).unwrap()),
            serde_json::json!({"text": ["main 2222"], "empty": null})
        );
        assert_eq!(fields(&[]).unwrap(), Map::new());
        assert_eq!(
            fields(&["text", "channel"]),
            Err(FieldsError::Missing {
                field: "channel".into()
            })
        );
        let names = vec!["text".to_owned()];
        assert_eq!(
            requested_fields(&names, &Headers::new(), body),
            Err(FieldsError::NotForm)
        );
        for bad in [
            &b"{token: tttt}"[..],
            b"token=a",
            br#"{"text":"one"}"#,
            b"[]",
        ] {
            assert!(
                matches!(
                    requested_fields(&names, &form_headers(), bad),
                    Err(FieldsError::NotFields { .. })
                ),
                "{bad:?}"
            );
        }
        let missing = requested_fields(&names, &form_headers(), b"null");
        assert_eq!(
            missing,
            Err(FieldsError::Missing {
                field: "text".into()
            })
        );
    }
}
