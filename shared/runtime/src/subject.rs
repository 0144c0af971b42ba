//! NATS subjects for events: `sluice.events.<namespace>.<listener>`, with each name encoded
//! into a single safe token.
//!
//! A subject token may not contain `.`, `*`, `>` or whitespace, and Kubernetes names may
//! contain `.`; so every byte outside `[a-z0-9-]` is written as `_XX` (upper-case hex), `_`
//! included. The encoding is injective: two different names never share a subject.

use std::fmt::Write;

/// Subjects of all events: what the stream binds and the dispatcher consumes.
pub const EVENTS_WILDCARD: &str = "sluice.events.>";
const EVENTS_PREFIX: &str = "sluice.events";

/// The subject of an event for `namespace`/`listener`.
pub fn event_subject(namespace: &str, listener: &str) -> String {
    let mut subject =
        String::with_capacity(EVENTS_PREFIX.len() + namespace.len() + listener.len() + 2);
    subject.push_str(EVENTS_PREFIX);
    subject.push('.');
    encode_token(namespace, &mut subject);
    subject.push('.');
    encode_token(listener, &mut subject);
    subject
}

/// The subjects of every event for `namespace`: what its own consumer binds once diverted.
pub fn namespace_filter(namespace: &str) -> String {
    let mut filter = String::with_capacity(EVENTS_PREFIX.len() + namespace.len() + 3);
    filter.push_str(EVENTS_PREFIX);
    filter.push('.');
    encode_token(namespace, &mut filter);
    filter.push_str(".>");
    filter
}

/// The durable consumer dispatchers named `consumer` (`--consumer`, the name of their
/// common consumer) share for `namespace`'s events once it is diverted to its own.
pub fn tenant_consumer(consumer: &str, namespace: &str) -> String {
    format!("{consumer}-{namespace}")
}

/// The namespace's token of an event's subject, as [`encode_token`] wrote it.
pub fn namespace_token(subject: &str) -> Option<&str> {
    let rest = subject.strip_prefix(EVENTS_PREFIX)?.strip_prefix('.')?;
    rest.split('.').next()
}

/// `name` as one subject token.
pub fn token(name: &str) -> String {
    let mut token = String::with_capacity(name.len());
    encode_token(name, &mut token);
    token
}

/// Appends `name` as one subject token.
pub fn encode_token(name: &str, out: &mut String) {
    if name.is_empty() {
        out.push('_');
        return;
    }
    for byte in name.bytes() {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "_{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_token_is_read_back_from_the_subject() {
        for namespace in ["team-a", "a.b", "Ω"] {
            let subject = event_subject(namespace, "github.x");
            assert_eq!(namespace_token(&subject), Some(token(namespace).as_str()));
        }
        assert_eq!(namespace_token("other.subject"), None);
        assert_eq!(namespace_token("sluice.eventsx.a.b"), None);
    }

    #[test]
    fn kubernetes_names_pass_through() {
        assert_eq!(
            event_subject("team-a", "github-1"),
            "sluice.events.team-a.github-1"
        );
    }

    #[test]
    fn hostile_names_cannot_add_tokens_or_wildcards() {
        for name in ["a.b", "*", ">", "a b", "a\tb", "x.>", "ÿ", "A"] {
            let subject = event_subject("ns", name);
            let tokens: Vec<&str> = subject.split('.').collect();
            assert_eq!(tokens.len(), 4, "{name:?} -> {subject}");
            assert!(
                !tokens[3].contains(['*', '>', ' ', '\t']),
                "{name:?} -> {subject}"
            );
        }
    }

    #[test]
    fn encoding_is_injective() {
        assert_ne!(event_subject("ns", "a.b"), event_subject("ns", "a_2Eb"));
        assert_ne!(event_subject("ns", "_"), event_subject("ns", ""));
    }
}
