//! What identifies a delivery, computed here and nowhere else.
//!
//! - [`idempotency_key`]: the key ingest gives a webhook, from the delivery id its sender
//!   names, always scoped to namespace and listener; none when the sender names none (unless
//!   the listener asks to deduplicate by body, [`ANNOTATION_DEDUPLICATE_BY_BODY`]);
//! - [`event_key`]: a SHA-256 of the idempotency key (of the event id when there is none):
//!   JetStream's `Nats-Msg-Id`, the dispatch ledger's key, and the seed of object names;
//! - [`run_key`] and [`object_key`]: one trigger's run of an event, and each object it
//!   creates; [`crate::naming`] derives object names from them.

use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::catalogue::{Listener, Trigger};
use crate::headers::Headers;

/// Headers that carry a provider's delivery id on their own, in order of preference, with
/// the tag that names them in the idempotency key.
const DELIVERY_ID_HEADERS: &[(&str, &str)] = &[
    ("x-github-delivery", "github"),
    ("x-gitlab-event-uuid", "gitlab"),
    // Bitbucket Cloud's id of one webhook request.
    ("x-request-uuid", "bitbucket"),
];

/// The longest delivery id kept verbatim in a key; longer ones (or ones with bytes that are
/// not printable ASCII) are replaced by their SHA-256, so a key stays small and printable
/// whatever a sender puts in the header.
const MAX_VERBATIM_ID: usize = 128;

/// The EventListener annotation with which a listener asks that a webhook naming no delivery
/// id be recognised by its body: `"true"` makes the same body posted again to it the same
/// delivery. Off by default: as in Tekton, a webhook that names no delivery runs each time
/// (a `curl` re-trigger must run again).
pub const ANNOTATION_DEDUPLICATE_BY_BODY: &str = "sluice.dev/deduplicate-by-body";

/// The key that identifies one delivery, so that a redelivery is recognised: always
/// `<namespace>/<listener>/…`, so equal ids sent to two listeners (or tenants) never meet.
///
/// From the delivery id the sender names (see [`push_delivery_id`]). A request naming none is
/// a new event each time and gets no key (empty), unless its listener has
/// [`ANNOTATION_DEDUPLICATE_BY_BODY`]: then the key is `sha256:<hex>` of namespace, listener
/// and body, and an identical body posted again to the same listener is the same delivery.
pub fn idempotency_key(listener: &Listener, headers: &HeaderMap, body: &[u8]) -> String {
    let (namespace, name) = (&listener.namespace, &listener.name);
    // Room for the scope and a tagged id or digest: built in place, one allocation.
    let mut key = String::with_capacity(namespace.len() + name.len() + 2 + 80);
    key.push_str(namespace);
    key.push('/');
    key.push_str(name);
    let scope = key.len();
    key.push('/');
    if !push_delivery_id(&mut key, scope, headers) {
        if !deduplicates_by_body(listener) {
            return String::new();
        }
        let digest = Sha256::new()
            .chain_update(&key.as_bytes()[..scope])
            .chain_update([0])
            .chain_update(body)
            .finalize();
        key.push_str("sha256:");
        push_hex(&mut key, &digest);
    }
    key
}

/// Whether the listener asks that a webhook without a delivery id be recognised by its body.
pub fn deduplicates_by_body(listener: &Listener) -> bool {
    listener
        .annotations
        .get(ANNOTATION_DEDUPLICATE_BY_BODY)
        .is_some_and(|value| value.trim() == "true")
}

/// A provider's id of this delivery, tagged with where it came from, in this order:
///
/// - `github:` `X-GitHub-Delivery`, `gitlab:` `X-Gitlab-Event-UUID`, `bitbucket:`
///   `X-Request-UUID`;
/// - `gitee:<X-Gitee-Timestamp>:<hex>`: Gitee has no delivery id; its timestamp with the
///   token (which in signature mode signs that timestamp) identifies one. The token is a
///   credential, so only a SHA-256 of it, salted with the scope, enters the key;
/// - `cloudevents:`: `ce-source` and `ce-id` (unique together, by the CloudEvents spec),
///   length-prefixed so that no two pairs read alike;
/// - `key:` a generic `Idempotency-Key` header.
///
/// Ids that are long or not printable ASCII are replaced by `<tag>-sha256:<hex>` of their
/// bytes.
///
/// The id is appended to `key`, whose first `scope` bytes are the scope; `false` when the
/// request carries none of these.
fn push_delivery_id(key: &mut String, scope: usize, headers: &HeaderMap) -> bool {
    for (name, tag) in DELIVERY_ID_HEADERS {
        if let Some(id) = header_bytes(headers, name) {
            push_tagged(key, tag, id);
            return true;
        }
    }
    if let (Some(timestamp), Some(token)) = (
        header_bytes(headers, "x-gitee-timestamp"),
        header_bytes(headers, "x-gitee-token"),
    ) {
        let token_digest = Sha256::new()
            .chain_update(&key.as_bytes()[..scope])
            .chain_update([0])
            .chain_update(token)
            .finalize();
        let mut id = timestamp.to_vec();
        id.push(b':');
        let mut digest = String::with_capacity(64);
        push_hex(&mut digest, &token_digest);
        id.extend_from_slice(digest.as_bytes());
        push_tagged(key, "gitee", &id);
        return true;
    }
    if let (Some(source), Some(id)) = (
        header_bytes(headers, "ce-source"),
        header_bytes(headers, "ce-id"),
    ) {
        let mut pair = format!("{}:", source.len()).into_bytes();
        pair.extend_from_slice(source);
        pair.push(b':');
        pair.extend_from_slice(id);
        push_tagged(key, "cloudevents", &pair);
        return true;
    }
    match header_bytes(headers, "idempotency-key") {
        Some(id) => {
            push_tagged(key, "key", id);
            true
        }
        None => false,
    }
}

/// Appends `<tag>:<id>` when `id` is short printable ASCII, else `<tag>-sha256:<hex of id>`;
/// the two forms cannot be confused, since a tag never contains `-sha256`.
fn push_tagged(key: &mut String, tag: &str, id: &[u8]) {
    let printable = id.iter().all(|b| (0x20..0x7f).contains(b));
    key.push_str(tag);
    match std::str::from_utf8(id) {
        Ok(text) if printable && id.len() <= MAX_VERBATIM_ID => {
            key.push(':');
            key.push_str(text);
        }
        _ => {
            key.push_str("-sha256:");
            push_hex(key, &Sha256::digest(id));
        }
    }
}

/// The delivery id a sender named, as a log line shows it: the first of the providers'
/// delivery headers, `ce-id` and `Idempotency-Key` that is present, when it is printable
/// ASCII of at most 128 bytes (anything else is a sender's noise, not an id to look up).
pub fn delivery_id(headers: &HeaderMap) -> Option<&str> {
    first_delivery_id(|name| header_bytes(headers, name))
}

/// [`delivery_id`] of a stored event's headers.
pub fn stored_delivery_id(headers: &Headers) -> Option<&str> {
    first_delivery_id(|name| {
        headers
            .get_all(name)
            .and_then(<[String]>::first)
            .map(|value| value.as_bytes().trim_ascii())
            .filter(|value| !value.is_empty())
    })
}

fn first_delivery_id<'h>(value: impl Fn(&str) -> Option<&'h [u8]>) -> Option<&'h str> {
    DELIVERY_ID_HEADERS
        .iter()
        .map(|(name, _)| *name)
        .chain(["ce-id", "idempotency-key"])
        .find_map(value)
        .filter(|id| id.len() <= MAX_VERBATIM_ID && id.iter().all(|b| b.is_ascii_graphic()))
        .and_then(|id| std::str::from_utf8(id).ok())
}

/// A header's first value, surrounding whitespace trimmed, when it is not empty. Raw bytes,
/// so that an id that is not valid UTF-8 still counts (as its hash).
fn header_bytes<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers
        .get(name)
        .map(|value| value.as_bytes().trim_ascii())
        .filter(|value| !value.is_empty())
}

/// The lowercase hex SHA-256 of an idempotency key (64 characters): what [`event_key`] is for
/// an event that has a key.
pub fn message_id(idempotency_key: &str) -> String {
    let mut hex = String::with_capacity(64);
    push_hex(&mut hex, &Sha256::digest(idempotency_key.as_bytes()));
    hex
}

/// The event's key: the SHA-256 of its idempotency key, or of its event id when it has none
/// (so an event without a key is a delivery of its own).
///
/// Ingest publishes with it as `Nats-Msg-Id`, so JetStream drops a redelivery within the
/// stream's duplicate window; the dispatcher's ledger keys its long-window entries by the
/// same digest, and object names derive from it. A digest rather than the key itself keeps
/// the header short and free of whatever bytes a provider's delivery id holds. Every side
/// must agree, so the definition never changes.
pub fn event_key(idempotency_key: &str, event_id: &str) -> String {
    let source = if idempotency_key.is_empty() {
        event_id
    } else {
        idempotency_key
    };
    message_id(source)
}

/// The key of one trigger's run for an event: the ledger's key, and the seed of `$(uid)`.
/// Only `[A-Za-z0-9._-]`, as the ledger's keys require (namespaces and trigger names are).
pub fn run_key(event_key: &str, trigger: &Trigger) -> String {
    format!("{event_key}.{}.{}", trigger.namespace, trigger.name)
}

/// The key of the `index`th object of a run.
pub fn object_key(run_key: &str, index: usize) -> String {
    format!("{run_key}.{index}")
}

/// Appends `bytes` to `out` in lower-case hex.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::*;

    fn listener(namespace: &str, name: &str) -> Listener {
        Listener {
            namespace: namespace.into(),
            name: name.into(),
            uid: "uid".into(),
            triggers: vec![],
            skipped_triggers: 0,
            annotations: Default::default(),
            payload_validation: true,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                )
            })
            .collect()
    }

    fn key(pairs: &[(&str, &str)]) -> String {
        idempotency_key(&listener("team-a", "hooks"), &headers(pairs), b"{}")
    }

    #[test]
    fn keys_come_from_each_providers_delivery_id() {
        assert_eq!(
            key(&[("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")]),
            "team-a/hooks/github:72d3162e-cc78-11e3-81ab-4c9367dc0958"
        );
        assert_eq!(
            key(&[(
                "X-Gitlab-Event-UUID",
                "13792a34-cac6-4fda-95a8-c58e00a3954e"
            )]),
            "team-a/hooks/gitlab:13792a34-cac6-4fda-95a8-c58e00a3954e"
        );
        assert_eq!(
            key(&[("X-Request-UUID", "b6e2d4c8-1f3a")]),
            "team-a/hooks/bitbucket:b6e2d4c8-1f3a"
        );
        assert_eq!(
            key(&[("ce-id", "A234-1234"), ("ce-source", "/mycontext")]),
            "team-a/hooks/cloudevents:10:/mycontext:A234-1234"
        );
        assert_eq!(
            key(&[("Idempotency-Key", "order-42")]),
            "team-a/hooks/key:order-42"
        );
    }

    #[test]
    fn gitee_keys_use_the_timestamp_and_a_digest_of_the_token_never_the_token() {
        let token = "s3cr3t-gitee-password";
        let first = key(&[
            ("X-Gitee-Timestamp", "1700000000000"),
            ("X-Gitee-Token", token),
        ]);
        assert!(
            first.starts_with("team-a/hooks/gitee:1700000000000:"),
            "{first}"
        );
        assert!(!first.contains(token), "{first}");
        assert_eq!(first.len(), "team-a/hooks/gitee:1700000000000:".len() + 64);
        // A redelivery (same timestamp and token) has the same key; another delivery not.
        assert_eq!(
            first,
            key(&[
                ("X-Gitee-Timestamp", "1700000000000"),
                ("X-Gitee-Token", token)
            ])
        );
        assert_ne!(
            first,
            key(&[
                ("X-Gitee-Timestamp", "1700000000001"),
                ("X-Gitee-Token", token)
            ])
        );
        assert_ne!(
            first,
            key(&[
                ("X-Gitee-Timestamp", "1700000000000"),
                ("X-Gitee-Token", "other")
            ])
        );
        // The digest is salted with the scope: the same token elsewhere digests differently.
        let elsewhere = idempotency_key(
            &listener("team-b", "hooks"),
            &headers(&[
                ("X-Gitee-Timestamp", "1700000000000"),
                ("X-Gitee-Token", token),
            ]),
            b"{}",
        );
        assert_ne!(first.rsplit(':').next(), elsewhere.rsplit(':').next());
        // A timestamp alone is not a delivery id.
        assert_eq!(key(&[("X-Gitee-Timestamp", "1700000000000")]), "");
    }

    #[test]
    fn provider_headers_win_over_the_generic_key_and_incomplete_pairs_are_ignored() {
        assert_eq!(
            key(&[("Idempotency-Key", "k"), ("X-GitHub-Delivery", "g")]),
            "team-a/hooks/github:g"
        );
        assert_eq!(
            key(&[("ce-id", "only-id"), ("Idempotency-Key", "k")]),
            "team-a/hooks/key:k"
        );
        assert_eq!(
            key(&[("X-GitHub-Delivery", "  ")]),
            "",
            "a blank id is no id"
        );
    }

    #[test]
    fn without_a_delivery_id_there_is_no_key_and_each_event_is_its_own() {
        let plain = listener("team-a", "hooks");
        assert_eq!(idempotency_key(&plain, &HeaderMap::new(), b"{}"), "");
        let (one, two) = (
            event_key("", "3f0c7e9a-0000-4000-8000-000000000001"),
            event_key("", "3f0c7e9a-0000-4000-8000-000000000002"),
        );
        assert_ne!(one, two, "two posts of one body are two events");
        assert_eq!(one, message_id("3f0c7e9a-0000-4000-8000-000000000001"));
    }

    #[test]
    fn a_listener_may_ask_to_recognise_a_body_posted_again() {
        let mut by_body = listener("team-a", "hooks");
        by_body
            .annotations
            .insert(ANNOTATION_DEDUPLICATE_BY_BODY.into(), "true".into());
        let a = idempotency_key(&by_body, &HeaderMap::new(), b"{\"a\":1}");
        let again = idempotency_key(&by_body, &HeaderMap::new(), b"{\"a\":1}");
        let other_body = idempotency_key(&by_body, &HeaderMap::new(), b"{\"a\":2}");
        assert_eq!(a, again);
        assert_ne!(a, other_body);
        assert!(a.starts_with("team-a/hooks/sha256:"), "{a}");
        assert_eq!(a.len(), "team-a/hooks/sha256:".len() + 64);
        let delivered = headers(&[("X-GitHub-Delivery", "d-1")]);
        assert_eq!(
            idempotency_key(&by_body, &delivered, b"{\"a\":1}"),
            "team-a/hooks/github:d-1",
            "a delivery id still wins"
        );
        by_body
            .annotations
            .insert(ANNOTATION_DEDUPLICATE_BY_BODY.into(), "yes".into());
        assert_eq!(idempotency_key(&by_body, &HeaderMap::new(), b"{}"), "");
    }

    #[test]
    fn the_same_delivery_id_in_two_listeners_gives_two_keys() {
        let delivery = headers(&[("X-GitHub-Delivery", "same-id")]);
        let keys = [
            idempotency_key(&listener("team-a", "github"), &delivery, b"{}"),
            idempotency_key(&listener("team-a", "other"), &delivery, b"{}"),
            idempotency_key(&listener("team-b", "github"), &delivery, b"{}"),
        ];
        assert_eq!(keys[0], "team-a/github/github:same-id");
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
        assert_ne!(message_id(&keys[0]), message_id(&keys[1]));
    }

    #[test]
    fn long_or_odd_ids_are_hashed_and_never_confused_with_verbatim_ones() {
        let long = "x".repeat(MAX_VERBATIM_ID + 1);
        let hashed = key(&[("X-GitHub-Delivery", &long)]);
        assert!(
            hashed.starts_with("team-a/hooks/github-sha256:"),
            "{hashed}"
        );
        assert_eq!(hashed.len(), "team-a/hooks/github-sha256:".len() + 64);
        let mut odd = HeaderMap::new();
        odd.insert(
            "x-github-delivery",
            HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        let odd = idempotency_key(&listener("team-a", "hooks"), &odd, b"{}");
        assert!(odd.starts_with("team-a/hooks/github-sha256:"), "{odd}");
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
}
