//! The functions Tekton Triggers' CEL interceptor adds (`pkg/interceptors/cel/triggers.go`).

use std::collections::BTreeMap;

use subtle::ConstantTimeEq as _;

use crate::env::Env;
use crate::error::EvalError;
use crate::header::canonical_name as canonical_header_name;
use crate::secret::SecretRef;
use crate::value::{MapKey, Value};

use super::call::Call;
use base64::Engine as _;

/// The first value of header `name` in a header map, found by its canonical name as Go's
/// `http.Header.Get` finds it. As in Tekton, the map must convert to an `http.Header`:
/// every value a list of strings.
fn first_header_value<'a>(call: &'a Call<'_>, env: &mut Env<'_>) -> Result<&'a str, EvalError> {
    let Some(Value::Map(headers)) = call.args.first() else {
        return Err(call.no_overload());
    };
    let name = call.str(1)?;
    env.charge(headers.len())?;
    for value in headers.values() {
        let is_header =
            matches!(value, Value::List(items) if items.iter().all(|i| i.as_str().is_some()));
        if !is_header {
            return Err(call.error(format!(
                "failed to convert to http.Header: a value is a {}, not a list of strings",
                value.type_name()
            )));
        }
    }
    let entry = headers.get(&MapKey::String(canonical_header_name(name).into()));
    Ok(match entry {
        Some(Value::List(values)) => values.first().and_then(Value::as_str).unwrap_or(""),
        _ => "",
    })
}

/// `header.match(name, value)`: whether the first value of the header equals `value`.
pub(super) fn header_match(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let expected = call.str(2)?;
    Ok(Value::Bool(first_header_value(call, env)? == expected))
}

/// `header.canonical(name)`: the first value of the header, or `""`.
pub(super) fn canonical(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    Ok(Value::from(first_header_value(call, env)?))
}

/// `s.truncate(n)`: the first `n` bytes of `s` (all of it when shorter), as Tekton slices
/// the string. A character cut in two becomes U+FFFD, as Tekton's JSON output shows it.
pub(super) fn truncate(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    let n = call.int(1)?;
    let n = usize::try_from(n).map_err(|_| call.out_of_range("length", n))?;
    let end = n.min(s.len());
    env.charge_bytes(end)?;
    let bytes = s.as_bytes().get(..end).unwrap_or_default();
    Ok(Value::from(String::from_utf8_lossy(bytes).into_owned()))
}

/// `s.compareSecret(key, name[, namespace])`: whether `s` equals the Secret's value, in
/// constant time. A missing Secret is an error that names it but no value.
pub(super) fn compare_secret(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let candidate = call.str(0)?;
    let reference = SecretRef {
        key: call.str(1)?.to_owned(),
        name: call.str(2)?.to_owned(),
        namespace: if call.args.len() > 3 {
            Some(call.str(3)?.to_owned())
        } else {
            None
        },
    };
    env.charge_bytes(candidate.len())?;
    let Some(secret) = env.secrets.secret(&reference) else {
        let namespace = reference
            .namespace
            .as_deref()
            .map(|ns| format!(" in namespace '{ns}'"))
            .unwrap_or_default();
        return Err(call.error(format!(
            "no key '{}' in Secret '{}'{namespace}",
            reference.key, reference.name
        )));
    };
    Ok(Value::Bool(candidate.as_bytes().ct_eq(secret).into()))
}

/// `s.parseJSON()`: the JSON object in `s`. As in Tekton, which decodes into a Go map,
/// another kind of document (a list, a string) is an error.
pub(super) fn parse_json(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    env.charge_bytes(s.len().saturating_mul(4))?;
    let json: serde_json::Value =
        serde_json::from_str(s).map_err(|e| call.error(format!("invalid JSON: {e}")))?;
    object(call, &json)
}

/// `s.parseYAML()`: the YAML mapping in `s` (an empty document is an empty map).
pub(super) fn parse_yaml(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    env.charge_bytes(s.len().saturating_mul(4))?;
    let json: serde_json::Value =
        serde_norway::from_str(s).map_err(|e| call.error(format!("invalid YAML: {e}")))?;
    if json.is_null() {
        return Ok(Value::from(BTreeMap::new()));
    }
    object(call, &json)
}

/// A decoded document, which must be an object.
fn object(call: &Call<'_>, json: &serde_json::Value) -> Result<Value, EvalError> {
    if !json.is_object() {
        let kind = match json {
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::Bool(_) => "a bool",
            _ => "null",
        };
        return Err(call.error(format!("cannot decode {kind} into a map")));
    }
    Ok(Value::from_json(json))
}

/// `v.marshalJSON()` of a map or a list: compact JSON, as Go's `encoding/json` writes
/// Tekton's conversion to `google.protobuf.Struct` (map keys must be strings; `<`, `>`
/// and `&` are escaped). Integers stay exact.
pub(super) fn marshal_json(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let value = call.args.first().ok_or_else(|| call.no_overload())?;
    if !matches!(value, Value::Map(_) | Value::List(_)) {
        return Err(call.no_overload());
    }
    check_json_keys(value, 0).map_err(|e| call.error(e))?;
    let json = value.to_json()?;
    let text = serde_json::to_string(&json).map_err(|e| call.error(e))?;
    env.charge_bytes(text.len().saturating_mul(4))?;
    env.check_string_len(text.len().saturating_mul(6))?;
    let mut escaped = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '<' => escaped.push_str("\\u003c"),
            '>' => escaped.push_str("\\u003e"),
            '&' => escaped.push_str("\\u0026"),
            '\u{2028}' => escaped.push_str("\\u2028"),
            '\u{2029}' => escaped.push_str("\\u2029"),
            other => escaped.push(other),
        }
    }
    Ok(Value::from(escaped))
}

/// Fails on what a `google.protobuf.Struct` cannot hold: a map key that is not a string,
/// a type.
fn check_json_keys(value: &Value, depth: usize) -> Result<(), String> {
    if depth > 512 {
        return Err("value nested too deeply".into());
    }
    match value {
        Value::Map(map) => {
            for (key, item) in map.iter() {
                if !matches!(key, MapKey::String(_)) {
                    return Err(format!(
                        "failed to convert to native: map key {key} is not a string"
                    ));
                }
                check_json_keys(item, depth + 1)?;
            }
            Ok(())
        }
        Value::List(items) => items.iter().try_for_each(|i| check_json_keys(i, depth + 1)),
        Value::Type(t) => Err(format!(
            "failed to convert to native: type {t} has no JSON form"
        )),
        _ => Ok(()),
    }
}

/// Tekton's `list.first()` and `list.last()`: the element, or null for an empty list.
pub(super) fn first_or_last(call: &Call<'_>, first: bool) -> Result<Value, EvalError> {
    let items = call.list(0)?;
    let item = if first { items.first() } else { items.last() };
    Ok(item.cloned().unwrap_or(Value::Null))
}

/// `s.translate(regex, replacement)`: every match replaced, with Go-style `$1`/`${name}`
/// group references in the replacement.
pub(super) fn translate(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    let pattern = call.str(1)?;
    let replacement = call.str(2)?;
    env.charge_bytes(s.len())?;
    let re = env.regex(pattern)?;
    let references = replacement.matches('$').count();
    let mut out = String::new();
    let mut last = 0;
    for caps in re.captures_iter(s) {
        let Some(whole) = caps.get(0) else { continue };
        let largest_group = caps.iter().flatten().map(|m| m.len()).max().unwrap_or(0);
        let bound = replacement
            .len()
            .saturating_add(references.saturating_mul(largest_group));
        let piece = s.get(last..whole.start()).unwrap_or_default();
        env.check_string_len(out.len().saturating_add(piece.len()).saturating_add(bound))?;
        env.charge_bytes(piece.len().saturating_add(bound))?;
        out.push_str(piece);
        caps.expand(replacement, &mut out);
        last = whole.end();
    }
    out.push_str(s.get(last..).unwrap_or_default());
    env.check_string_len(out.len())?;
    Ok(Value::from(out))
}

/// `s.decodeb64()`: the decoder Tekton had until v0.22 (standard base64 with padding),
/// returning a string.
pub(super) fn decode_b64(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    env.charge_bytes(s.len())?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| call.error(format!("invalid base64: {e}")))?;
    let decoded =
        String::from_utf8(bytes).map_err(|_| call.error("decoded bytes are not valid UTF-8"))?;
    Ok(Value::from(decoded))
}

/// `s.parseURL()`: the parts of a URL as Tekton returns them from Go's `url.Parse`:
/// `scheme`, `host` (with any port), `path` (unescaped), `rawQuery`, `fragment`
/// (unescaped), `queryStrings` (each query parameter's values), `query` (each parameter's
/// values joined with `,`) and, only when the URL has user information, `auth`
/// (`username`, `password`).
pub(super) fn parse_url(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let raw = call.str(0)?;
    env.charge_bytes(raw.len().saturating_mul(4))?;
    let url = GoUrl::parse(raw).map_err(|e| call.error(format!("invalid URL: {e}")))?;
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in go_query(&url.raw_query) {
        params.entry(key).or_default().push(value);
    }
    let entry = |k: &str, v: Value| (MapKey::String(k.into()), v);
    let query: BTreeMap<MapKey, Value> = params
        .iter()
        .map(|(k, v)| entry(k, Value::from(v.join(","))))
        .collect();
    let query_strings: BTreeMap<MapKey, Value> = params
        .into_iter()
        .map(|(k, v)| {
            let values: Vec<Value> = v.into_iter().map(Value::from).collect();
            entry(&k, Value::from(values))
        })
        .collect();
    let mut map: BTreeMap<MapKey, Value> = [
        entry("scheme", Value::from(url.scheme)),
        entry("host", Value::from(url.host)),
        entry("path", Value::from(url.path)),
        entry("rawQuery", Value::from(url.raw_query)),
        entry("fragment", Value::from(url.fragment)),
        entry("queryStrings", Value::from(query_strings)),
        entry("query", Value::from(query)),
    ]
    .into_iter()
    .collect();
    if let Some((username, password)) = url.user {
        let auth: BTreeMap<MapKey, Value> = [
            entry("username", Value::from(username)),
            entry("password", Value::from(password)),
        ]
        .into_iter()
        .collect();
        map.insert(MapKey::String("auth".into()), Value::from(auth));
    }
    Ok(Value::from(map))
}

/// The parameters of a query as Go's `url.Values` reads them: pairs split on `&`, `+` as a
/// space, percent escapes decoded; a pair with a `;` or a bad escape is left out.
fn go_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = unescape(&key.replace('+', " ")).ok()?;
            let value = unescape(&value.replace('+', " ")).ok()?;
            Some((key, value))
        })
        .collect()
}

/// The parts of a URL, split as Go's `net/url` splits them.
#[derive(Debug, Default, PartialEq, Eq)]
struct GoUrl {
    scheme: String,
    host: String,
    path: String,
    raw_query: String,
    fragment: String,
    /// The user name and password, when the URL names a user.
    user: Option<(String, String)>,
}

impl GoUrl {
    fn parse(raw: &str) -> Result<Self, String> {
        if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err("invalid control character in URL".into());
        }
        let mut url = Self::default();
        let (rest, fragment) = raw.split_once('#').unwrap_or((raw, ""));
        url.fragment = unescape(fragment)?;
        if rest == "*" {
            url.path = "*".into();
            return Ok(url);
        }
        let (scheme, rest) = split_scheme(rest)?;
        url.scheme = scheme.to_ascii_lowercase();
        let rest = match rest.split_once('?') {
            Some((before, query)) => {
                url.raw_query = query.into();
                before
            }
            None => rest,
        };
        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                // An opaque URL such as `mailto:a@b`: no host or path.
                return Ok(url);
            }
            let first_segment = rest.split('/').next().unwrap_or_default();
            if first_segment.contains(':') {
                return Err("first path segment in URL cannot contain colon".into());
            }
        }
        let mut path = rest;
        if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
            let after = rest.get(2..).unwrap_or_default();
            let (authority, tail) = match after.find('/') {
                Some(i) => after.split_at(i),
                None => (after, ""),
            };
            path = tail;
            let host = match authority.rfind('@') {
                Some(i) => {
                    let userinfo = authority.get(..i).unwrap_or_default();
                    url.user = Some(match userinfo.split_once(':') {
                        Some((user, password)) => (unescape(user)?, unescape(password)?),
                        None => (unescape(userinfo)?, String::new()),
                    });
                    authority.get(i + 1..).unwrap_or_default()
                }
                None => authority,
            };
            check_port(host)?;
            url.host = unescape(host)?;
        }
        url.path = unescape(path)?;
        Ok(url)
    }
}

/// Splits off a scheme (`[a-zA-Z][a-zA-Z0-9+.-]*:`), if the URL starts with one.
fn split_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err("missing protocol scheme".into()),
            ':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Rejects a host whose port is not numeric, as Go does.
fn check_port(host: &str) -> Result<(), String> {
    let after_brackets = host.rfind(']').map_or(host, |i| &host[i + 1..]);
    if let Some(i) = after_brackets.rfind(':') {
        let port = &after_brackets[i + 1..];
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid port \":{port}\" after host"));
        }
    }
    Ok(())
}

/// Percent-decodes a URL component (`+` stays `+`).
fn unescape(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
            let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                let end = (i + 3).min(s.len());
                let shown = s.get(i..end).unwrap_or("%");
                return Err(format!("invalid URL escape \"{shown}\""));
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_as_go_splits_them() {
        let url =
            GoUrl::parse("https://user:p%40ss@example.com:8443/a%20b/c?x=1&y=2#frag%21").unwrap();
        assert_eq!(url.scheme, "https");
        assert_eq!(url.host, "example.com:8443");
        assert_eq!(url.path, "/a b/c");
        assert_eq!(url.raw_query, "x=1&y=2");
        assert_eq!(url.fragment, "frag!");
        assert_eq!(url.user, Some(("user".into(), "p@ss".into())));

        let relative = GoUrl::parse("/path?q").unwrap();
        assert_eq!(relative.path, "/path");
        assert_eq!(relative.host, "");
        assert_eq!(relative.raw_query, "q");
        assert_eq!(relative.user, None);

        assert!(GoUrl::parse("://x").is_err());
        assert!(GoUrl::parse("http://host:port/").is_err());
        assert!(GoUrl::parse("http://h/%zz").is_err());
    }
}
