//! The event envelope: what ingest publishes to JetStream and the dispatcher consumes.
//!
//! It keeps the exact body bytes that were verified (as a raw JSON value, never re-encoded),
//! the request headers minus credentials, and everything the dispatcher needs to run the
//! listener's triggers without looking at the HTTP request again.

use bytes::Bytes;
use http::HeaderMap;
use http::header::{GetAll, HeaderValue};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use sluice_triggers::headers::Headers;
use sluice_triggers::headers::{is_credential, push_canonical_name};

/// Version of the envelope's layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

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
///
/// Written through [`EventMetaRef`], the one definition of the written layout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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

impl EventMeta {
    /// This metadata, borrowed for writing.
    pub fn as_ref(&self) -> EventMetaRef<'_, &Headers> {
        EventMetaRef {
            schema: self.schema,
            event_id: &self.event_id,
            namespace: &self.namespace,
            listener: &self.listener,
            received_at_ms: self.received_at_ms,
            idempotency_key: &self.idempotency_key,
            triggers: &self.triggers,
            traceparent: self.traceparent.as_deref(),
            request_url: &self.request_url,
            headers: &self.headers,
        }
    }
}

impl Serialize for EventMeta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_ref().serialize(serializer)
    }
}

/// [`EventMeta`] borrowed from wherever its parts are, so that ingest writes an event
/// without first copying its names, keys and headers into one. `H` writes the headers as a
/// map of canonical name to values: [`Headers`], or [`RequestHeaders`] straight from the
/// request.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMetaRef<'a, H> {
    pub schema: u32,
    pub event_id: &'a str,
    pub namespace: &'a str,
    pub listener: &'a str,
    pub received_at_ms: u64,
    pub idempotency_key: &'a str,
    pub triggers: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub request_url: &'a str,
    pub headers: H,
}

/// Room for the metadata line in an encoded event, so that a usual one is written without
/// growing the buffer (about 700 bytes with a provider's dozen headers).
const META_CAPACITY: usize = 1024;

impl<H: Serialize> EventMetaRef<'_, H> {
    /// The stored message: this metadata as one line of JSON, `\n`, then `body` as it is.
    pub fn encode(&self, body: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(META_CAPACITY + body.len());
        // Serialising strings, numbers and string maps into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, self);
        out.push(b'\n');
        out.extend_from_slice(body);
        Bytes::from(out)
    }
}

/// A request's headers as an envelope holds them, written straight from the `HeaderMap`:
/// canonical names, every value (bytes that are not UTF-8 replaced), credentials dropped, and
/// so are the names `also_drop` accepts (a listener's own signature headers).
pub struct RequestHeaders<'a, F> {
    headers: &'a HeaderMap,
    also_drop: F,
}

impl<'a, F: Fn(&str) -> bool> RequestHeaders<'a, F> {
    pub fn new(headers: &'a HeaderMap, also_drop: F) -> Self {
        Self { headers, also_drop }
    }
}

impl<F: Fn(&str) -> bool> Serialize for RequestHeaders<'_, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        // One buffer for every name, as long as most names get. Header names are lower case
        // and unique in the map, so their canonical forms are unique too.
        let mut canonical = String::with_capacity(64);
        for key in self.headers.keys() {
            let name = key.as_str();
            if is_credential(name) || (self.also_drop)(name) {
                continue;
            }
            canonical.clear();
            push_canonical_name(name, &mut canonical);
            map.serialize_entry(&canonical, &Values(self.headers.get_all(key)))?;
        }
        map.end()
    }
}

/// All values of one header, as strings.
struct Values<'a>(GetAll<'a, HeaderValue>);

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes())),
        )
    }
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
        self.meta.as_ref().encode(&self.body)
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn request_headers_are_written_as_the_envelope_reads_them() {
        let mut request = HeaderMap::new();
        for (name, value) in [
            ("x-github-event", &b"push"[..]),
            ("accept", b"a"),
            ("accept", b"b"),
            ("x-hub-signature-256", b"sha256=abc"),
            ("authorization", b"Bearer t"),
            ("x-custom-signature", b"listener's own"),
            ("x-odd", b"caf\xe9"),
        ] {
            request.append(
                http::HeaderName::from_static(name),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let meta = EventMetaRef {
            schema: SCHEMA_VERSION,
            event_id: "e",
            namespace: "ns",
            listener: "l",
            received_at_ms: 7,
            idempotency_key: "ns/l/github:1",
            triggers: &["build".to_owned()],
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            request_url: "/hooks/ns/l?x=1",
            headers: RequestHeaders::new(&request, |name| name == "x-custom-signature"),
        };
        let back = Envelope::decode(meta.encode(b"{}")).unwrap();
        let expected: Headers = [
            ("X-Github-Event", "push"),
            ("Accept", "a"),
            ("Accept", "b"),
            ("X-Odd", "caf\u{fffd}"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        assert_eq!(back.meta.headers, expected);
        assert_eq!(
            back.meta.headers.get_joined("accept").as_deref(),
            Some("a,b")
        );
        assert_eq!(back.body, Bytes::from_static(b"{}"));
        let read = back.meta.as_ref();
        assert_eq!(
            (
                read.event_id,
                read.namespace,
                read.listener,
                read.received_at_ms
            ),
            ("e", "ns", "l", 7)
        );
        assert_eq!(read.idempotency_key, meta.idempotency_key);
        assert_eq!(read.triggers, meta.triggers);
        assert_eq!(read.traceparent, meta.traceparent);
        assert_eq!(read.request_url, meta.request_url);
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
