//! The functions Tekton Triggers' CEL interceptor adds (`pkg/interceptors/cel/triggers.go`).

use std::collections::BTreeMap;

use subtle::ConstantTimeEq as _;

use crate::env::Env;
use crate::error::EvalError;
use crate::header::canonical_name as canonical_header_name;
use crate::secret::SecretRef;
use crate::value::{MapKey, Value};

use super::call::Call;
use super::strings::decode_base64;

/// The first value of header `name` in a header map (`map(string, list(string))`), found
/// by its canonical name as Go's `http.Header.Get` finds it.
fn first_header_value<'a>(call: &'a Call<'_>) -> Result<Option<&'a str>, EvalError> {
    let Some(Value::Map(headers)) = call.args.first() else {
        return Err(call.no_overload());
    };
    let name = call.str(1)?;
    let entry = headers.get(&MapKey::String(canonical_header_name(name).into()));
    Ok(match entry {
        Some(Value::List(values)) => values.first().and_then(Value::as_str),
        Some(Value::String(value)) => Some(value),
        _ => None,
    })
}

/// `header.match(name, value)`: whether the first value of the header equals `value`.
pub(super) fn header_match(call: &Call<'_>) -> Result<Value, EvalError> {
    let expected = call.str(2)?;
    Ok(Value::Bool(first_header_value(call)? == Some(expected)))
}

/// `header.canonical(name)`: the first value of the header, or `""`.
pub(super) fn canonical(call: &Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::from(first_header_value(call)?.unwrap_or_default()))
}

/// `s.truncate(n)`: the first `n` code points of `s` (all of it when shorter).
pub(super) fn truncate(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    let n = call.int(1)?;
    let n = usize::try_from(n).map_err(|_| call.out_of_range("length", n))?;
    env.charge_bytes(s.len().min(n.saturating_mul(4)))?;
    let end = s
        .char_indices()
        .nth(n)
        .map_or(s.len(), |(offset, _)| offset);
    Ok(Value::from(s.get(..end).unwrap_or(s)))
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

/// The text of a string (or UTF-8 bytes) receiver.
fn text<'a>(call: &'a Call<'_>) -> Result<&'a str, EvalError> {
    match call.args.first() {
        Some(Value::String(s)) => Ok(s),
        Some(Value::Bytes(b)) => {
            std::str::from_utf8(b).map_err(|_| call.error("bytes are not valid UTF-8"))
        }
        _ => Err(call.no_overload()),
    }
}

/// `s.parseJSON()`: the JSON document in `s`.
pub(super) fn parse_json(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = text(call)?;
    env.charge_bytes(s.len().saturating_mul(4))?;
    let json: serde_json::Value =
        serde_json::from_str(s).map_err(|e| call.error(format!("invalid JSON: {e}")))?;
    Ok(Value::from_json(&json))
}

/// `s.parseYAML()`: the YAML document in `s`.
pub(super) fn parse_yaml(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = text(call)?;
    env.charge_bytes(s.len().saturating_mul(4))?;
    let json: serde_json::Value =
        serde_norway::from_str(s).map_err(|e| call.error(format!("invalid YAML: {e}")))?;
    Ok(Value::from_json(&json))
}

/// `v.marshalJSON()`: `v` as compact JSON.
pub(super) fn marshal_json(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let value = call.args.first().ok_or_else(|| call.no_overload())?;
    let json = value.to_json()?;
    let text = serde_json::to_string(&json).map_err(|e| call.error(e))?;
    env.charge_bytes(text.len().saturating_mul(4))?;
    env.check_string_len(text.len())?;
    Ok(Value::from(text))
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

/// `s.decodeb64()`: Tekton's older base64 decoder, returning a string.
pub(super) fn decode_b64(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let s = call.str(0)?;
    env.charge_bytes(s.len())?;
    let bytes = decode_base64(s).map_err(|e| call.error(format!("invalid base64: {e}")))?;
    let decoded =
        String::from_utf8(bytes).map_err(|_| call.error("decoded bytes are not valid UTF-8"))?;
    Ok(Value::from(decoded))
}

/// `s.parseURL()`: the parts of a URL as Go's `url.Parse` splits them: `scheme`, `host`
/// (with any port), `path` (unescaped), `rawQuery`, `fragment` (unescaped), `query`
/// (a map of lists) and `auth` (`username`, `password`).
pub(super) fn parse_url(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    let raw = call.str(0)?;
    env.charge_bytes(raw.len().saturating_mul(4))?;
    let url = GoUrl::parse(raw).map_err(|e| call.error(format!("invalid URL: {e}")))?;
    let mut query: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(url.raw_query.as_bytes()) {
        query
            .entry(key.into_owned())
            .or_default()
            .push(Value::from(value.into_owned()));
    }
    let query: BTreeMap<MapKey, Value> = query
        .into_iter()
        .map(|(k, v)| (MapKey::String(k.into()), Value::from(v)))
        .collect();
    let entry = |k: &str, v: Value| (MapKey::String(k.into()), v);
    let auth: BTreeMap<MapKey, Value> = [
        entry("username", Value::from(url.username)),
        entry("password", Value::from(url.password)),
    ]
    .into_iter()
    .collect();
    let map: BTreeMap<MapKey, Value> = [
        entry("scheme", Value::from(url.scheme)),
        entry("host", Value::from(url.host)),
        entry("path", Value::from(url.path)),
        entry("rawQuery", Value::from(url.raw_query)),
        entry("fragment", Value::from(url.fragment)),
        entry("query", Value::from(query)),
        entry("auth", Value::from(auth)),
    ]
    .into_iter()
    .collect();
    Ok(Value::from(map))
}

/// The parts of a URL, split as Go's `net/url` splits them.
#[derive(Debug, Default, PartialEq, Eq)]
struct GoUrl {
    scheme: String,
    host: String,
    path: String,
    raw_query: String,
    fragment: String,
    username: String,
    password: String,
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
                    match userinfo.split_once(':') {
                        Some((user, password)) => {
                            url.username = unescape(user)?;
                            url.password = unescape(password)?;
                        }
                        None => url.username = unescape(userinfo)?,
                    }
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
        assert_eq!(url.username, "user");
        assert_eq!(url.password, "p@ss");

        let relative = GoUrl::parse("/path?q").unwrap();
        assert_eq!(relative.path, "/path");
        assert_eq!(relative.host, "");
        assert_eq!(relative.raw_query, "q");

        assert!(GoUrl::parse("://x").is_err());
        assert!(GoUrl::parse("http://host:port/").is_err());
        assert!(GoUrl::parse("http://h/%zz").is_err());
    }
}
