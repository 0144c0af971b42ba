//! The event envelope: what ingest publishes to JetStream and the dispatcher consumes.
//!
//! It keeps the exact body bytes that were verified (as a raw JSON value, never re-encoded),
//! the request headers minus credentials, and everything the dispatcher needs to run the
//! listener's triggers without looking at the HTTP request again.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the envelope's layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Request headers that carry credentials and never enter the queue.
const CREDENTIAL_HEADERS: &[&str] = &[
    "Authorization",
    "Cookie",
    "Proxy-Authorization",
    "X-Gitee-Token",
    "X-Gitlab-Token",
    "X-Hub-Signature",
    "X-Hub-Signature-256",
    "X-Slack-Signature",
];

/// A webhook as stored in the stream.
///
/// On the wire it is one line of compact JSON with [`EventMeta`], a `\n`, then the body bytes
/// exactly as received: the body is never re-encoded, escaped or parsed on the way through.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub meta: EventMeta,
    pub body: Bytes,
}

/// Everything about a webhook except its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMeta {
    pub schema: u32,
    /// UUID answered to the sender as `eventID`, and `$(context.eventID)` in bindings.
    pub event_id: String,
    pub namespace: String,
    pub listener: String,
    /// When ingest received the request, in milliseconds since the Unix epoch.
    pub received_at_ms: u64,
    /// Identifies the delivery for de-duplication, scoped to namespace and listener.
    pub idempotency_key: String,
    /// Names of the triggers whose authentication passed; only these run.
    pub triggers: Vec<String>,
    /// W3C trace context of the request, when the sender sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The request's path and query (`/hooks/team-a/github?x=1`): `requestURL` in CEL, and
    /// `event_url` for webhook interceptors.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_url: String,
    pub headers: Headers,
}

/// Why a stored message is not an event this version understands.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the message has no metadata line")]
    NoMetadata,
    #[error("the metadata line is not valid")]
    Metadata(#[source] serde_json::Error),
    #[error("schema version {0} is not supported (this build reads {SCHEMA_VERSION})")]
    Schema(u32),
}

impl Envelope {
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(256 + self.body.len());
        // Serialising strings and string maps into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &self.meta);
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        Bytes::from(out)
    }

    pub fn decode(message: Bytes) -> Result<Self, DecodeError> {
        let newline = message
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(DecodeError::NoMetadata)?;
        let meta: EventMeta =
            serde_json::from_slice(&message[..newline]).map_err(DecodeError::Metadata)?;
        if meta.schema != SCHEMA_VERSION {
            return Err(DecodeError::Schema(meta.schema));
        }
        Ok(Self {
            meta,
            body: message.slice(newline + 1..),
        })
    }
}

/// A new `eventID`: a random (version 4) UUID, from the thread's cryptographically secure
/// generator rather than a system call per event.
pub fn new_event_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// The `Nats-Msg-Id` of an event: the lowercase hex SHA-256 of its idempotency key (64
/// characters).
///
/// Ingest publishes with it, so JetStream drops a redelivery within the stream's duplicate
/// window; the dispatcher's ledger keys its long-window entries by the same digest. A digest
/// rather than the key itself keeps the header short and free of whatever bytes a provider's
/// delivery id holds. Both sides must agree, so the definition never changes.
pub fn message_id(idempotency_key: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(idempotency_key.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Milliseconds since the Unix epoch, as events and dead letters record times.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Request headers keyed by their canonical name (`X-Github-Event`, as Go's
/// `textproto.CanonicalMIMEHeaderKey` spells it, which is what Tekton exposes), each with all
/// its values in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Headers(BTreeMap<String, Vec<String>>);

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value; credential headers are dropped.
    pub fn append(&mut self, name: &str, value: impl Into<String>) {
        if CREDENTIAL_HEADERS
            .iter()
            .any(|credential| credential.eq_ignore_ascii_case(name))
        {
            return;
        }
        self.0
            .entry(canonical_header_name(name))
            .or_default()
            .push(value.into());
    }

    /// All values of a header, matched case-insensitively.
    pub fn get_all(&self, name: &str) -> Option<&[String]> {
        self.0.get(&canonical_header_name(name)).map(Vec::as_slice)
    }

    /// The values of a header joined with `,`, as Tekton presents a multi-valued header.
    pub fn get_joined(&self, name: &str) -> Option<String> {
        self.get_all(name).map(|values| values.join(","))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, String)> for Headers {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (name, value) in iter {
            headers.append(&name, value);
        }
        headers
    }
}

/// Go's `CanonicalMIMEHeaderKey`: the first letter and every letter after `-` upper case, the
/// rest lower case. A name with a byte that is not a valid token character is returned as is.
pub fn canonical_header_name(name: &str) -> String {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return name.to_owned();
    }
    // Token characters are ASCII: one byte, one char, and one allocation of the right size.
    let mut canonical = String::with_capacity(name.len());
    let mut upper = true;
    for byte in name.bytes() {
        canonical.push(char::from(if upper {
            byte.to_ascii_uppercase()
        } else {
            byte.to_ascii_lowercase()
        }));
        upper = byte == b'-';
    }
    canonical
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonicalised_like_go() {
        assert_eq!(canonical_header_name("x-github-event"), "X-Github-Event");
        assert_eq!(canonical_header_name("X-GitHub-Event"), "X-Github-Event");
        assert_eq!(canonical_header_name("content-TYPE"), "Content-Type");
        assert_eq!(canonical_header_name("bad header"), "bad header");
    }

    #[test]
    fn multi_valued_headers_join_with_commas_and_match_any_case() {
        let headers: Headers = [
            ("accept".to_owned(), "a".to_owned()),
            ("Accept".to_owned(), "b".to_owned()),
        ]
        .into_iter()
        .collect();
        assert_eq!(headers.get_joined("ACCEPT").as_deref(), Some("a,b"));
        assert_eq!(headers.get_joined("missing"), None);
    }

    #[test]
    fn credentials_never_enter_the_envelope() {
        let mut headers = Headers::new();
        headers.append("x-hub-signature-256", "sha256=abc");
        headers.append("authorization", "Bearer t");
        headers.append("x-gitlab-token", "t");
        headers.append("x-github-event", "push");
        assert_eq!(headers.iter().count(), 1);
    }

    #[test]
    fn envelope_keeps_the_body_bytes_exactly() {
        let body = Bytes::from_static(b" { \"b\":1,\n  \"a\": [1.50, \"\\u00e9\"] }\n");
        let env = Envelope {
            meta: EventMeta {
                schema: SCHEMA_VERSION,
                event_id: "e".into(),
                namespace: "ns".into(),
                listener: "l".into(),
                received_at_ms: 1,
                idempotency_key: "k".into(),
                triggers: vec!["t".into()],
                traceparent: None,
                request_url: String::new(),
                headers: [("X-A".to_owned(), "line\nbreak".to_owned())]
                    .into_iter()
                    .collect(),
            },
            body: body.clone(),
        };
        let back = Envelope::decode(env.encode()).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.body, body);
    }

    #[test]
    fn event_ids_are_distinct_version_4_uuids() {
        let first = new_event_id();
        let parsed = uuid::Uuid::parse_str(&first).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(first, parsed.hyphenated().to_string());
        assert_ne!(first, new_event_id());
    }

    #[test]
    fn message_ids_are_the_hex_sha256_of_the_key() {
        // `printf 'team-a/github/github:abc' | sha256sum`
        let id = message_id("team-a/github/github:abc");
        assert_eq!(
            id,
            "94a4fd1076951e27adc8488ed14149aeac3172710d219929b11220e5fee6f8fc"
        );
        assert_eq!(
            message_id(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(id, message_id("team-a/github/github:abd"));
    }

    #[test]
    fn undecodable_messages_say_why() {
        assert!(matches!(
            Envelope::decode(Bytes::from_static(b"{}")),
            Err(DecodeError::NoMetadata)
        ));
        assert!(matches!(
            Envelope::decode(Bytes::from_static(b"nope\n{}")),
            Err(DecodeError::Metadata(_))
        ));
    }
}
