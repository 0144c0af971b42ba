//! Authentication at the edge: each trigger's interceptors decide whether it accepts the
//! request, before anything is queued.
//!
//! A listener accepts a request when at least one trigger accepts it; the event then names
//! only those triggers. A trigger without an authentication interceptor accepts any caller,
//! as in Tekton Triggers.

use std::fmt;

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sluice_shared::catalogue::{GitHubInterceptor, Interceptor, Listener, Trigger};

const GITHUB_SIGNATURE: &str = "x-hub-signature-256";
const GITHUB_EVENT: &str = "x-github-event";

/// Why a request was refused. The message names the check, never a secret or expected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    SignatureMissing,
    SignatureInvalid,
}

impl AuthFailure {
    pub fn code(self) -> &'static str {
        match self {
            Self::SignatureMissing => "signature_missing",
            Self::SignatureInvalid => "signature_invalid",
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SignatureMissing => "the X-Hub-Signature-256 header is missing",
            Self::SignatureInvalid => "the X-Hub-Signature-256 signature does not match the body",
        })
    }
}

/// What the listener's triggers made of a request that passed authentication.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// These triggers accept the request: queue it for them.
    Accepted(Vec<String>),
    /// Authentic, but no trigger wants this event type (or the listener has no triggers).
    Filtered,
}

enum Verdict {
    Accept,
    Filter,
    Refuse(AuthFailure),
}

/// Runs every trigger's authentication interceptors against the request.
pub fn admit(
    listener: &Listener,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Admission, AuthFailure> {
    let mut accepted = Vec::new();
    let mut filtered = false;
    let mut first_failure = None;
    for trigger in &listener.triggers {
        match judge(trigger, headers, body) {
            Verdict::Accept => accepted.push(trigger.name.clone()),
            Verdict::Filter => filtered = true,
            Verdict::Refuse(failure) => {
                first_failure.get_or_insert(failure);
            }
        }
    }
    match first_failure {
        _ if !accepted.is_empty() => Ok(Admission::Accepted(accepted)),
        Some(failure) if !filtered => Err(failure),
        _ => Ok(Admission::Filtered),
    }
}

fn judge(trigger: &Trigger, headers: &HeaderMap, body: &[u8]) -> Verdict {
    for interceptor in &trigger.interceptors {
        let verdict = match interceptor {
            Interceptor::GitHub(github) => judge_github(github, headers, body),
        };
        if !matches!(verdict, Verdict::Accept) {
            return verdict;
        }
    }
    Verdict::Accept
}

fn judge_github(github: &GitHubInterceptor, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if let Some(secret) = &github.secret
        && let Err(failure) = verify_github_signature(secret.expose(), headers, body)
    {
        return Verdict::Refuse(failure);
    }
    if github.event_types.is_empty() {
        return Verdict::Accept;
    }
    let event = headers.get(GITHUB_EVENT).and_then(|v| v.to_str().ok());
    match event {
        Some(event) if github.event_types.iter().any(|t| t == event) => Verdict::Accept,
        _ => Verdict::Filter,
    }
}

/// Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` in constant time.
pub fn verify_github_signature(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), AuthFailure> {
    let header = headers
        .get(GITHUB_SIGNATURE)
        .ok_or(AuthFailure::SignatureMissing)?;
    let signature = header
        .as_bytes()
        .strip_prefix(b"sha256=")
        .and_then(|hex_mac| hex::decode(hex_mac).ok())
        .ok_or(AuthFailure::SignatureInvalid)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).map_err(|_| AuthFailure::SignatureInvalid)?;
    mac.update(body);
    mac.verify_slice(&signature)
        .map_err(|_| AuthFailure::SignatureInvalid)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::HeaderValue;
    use sluice_shared::catalogue::TemplateSpec;
    use sluice_shared::secret::SecretValue;

    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn trigger(name: &str, interceptors: Vec<Interceptor>) -> Trigger {
        Trigger {
            name: name.into(),
            namespace: "ns".into(),
            service_account: "default".into(),
            interceptors,
            params: vec![],
            template: Arc::new(TemplateSpec {
                params: vec![],
                resource_templates: vec![],
                old_escape_quotes: false,
            }),
        }
    }

    fn github(secret: Option<&str>, events: &[&str]) -> Interceptor {
        Interceptor::GitHub(GitHubInterceptor {
            secret: secret.map(SecretValue::new),
            event_types: events.iter().map(|e| e.to_string()).collect(),
        })
    }

    fn listener(triggers: Vec<Trigger>) -> Listener {
        Listener {
            namespace: "ns".into(),
            name: "l".into(),
            uid: "u".into(),
            triggers,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    // GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!".
    #[test]
    fn github_documented_test_vector_verifies() {
        let h = headers(&[(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        assert_eq!(
            verify_github_signature(b"It's a Secret to Everybody", &h, b"Hello, World!"),
            Ok(())
        );
        assert_eq!(
            verify_github_signature(b"wrong secret", &h, b"Hello, World!"),
            Err(AuthFailure::SignatureInvalid)
        );
    }

    #[test]
    fn missing_and_malformed_signatures_are_told_apart() {
        let body = b"{}";
        assert_eq!(
            verify_github_signature(b"s", &HeaderMap::new(), body),
            Err(AuthFailure::SignatureMissing)
        );
        for bad in ["sha1=00", "sha256=zz", "sha256=", "00ff"] {
            assert_eq!(
                verify_github_signature(b"s", &headers(&[("x-hub-signature-256", bad)]), body),
                Err(AuthFailure::SignatureInvalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_triggers_that_authenticate_are_selected() {
        let body = br#"{"a":1}"#;
        let l = listener(vec![
            trigger("right", vec![github(Some("s1"), &[])]),
            trigger("wrong", vec![github(Some("s2"), &[])]),
        ]);
        let h = headers(&[("x-hub-signature-256", &sign(b"s1", body))]);
        assert_eq!(
            admit(&l, &h, body),
            Ok(Admission::Accepted(vec!["right".into()]))
        );
    }

    #[test]
    fn authentic_request_for_another_event_type_is_filtered_not_refused() {
        let body = b"{}";
        let l = listener(vec![trigger(
            "push-only",
            vec![github(Some("s"), &["push"])],
        )]);
        let h = headers(&[
            ("x-hub-signature-256", &sign(b"s", body)),
            ("x-github-event", "issues"),
        ]);
        assert_eq!(admit(&l, &h, body), Ok(Admission::Filtered));
        let h = headers(&[
            ("x-hub-signature-256", &sign(b"s", body)),
            ("x-github-event", "push"),
        ]);
        assert_eq!(
            admit(&l, &h, body),
            Ok(Admission::Accepted(vec!["push-only".into()]))
        );
    }

    #[test]
    fn a_wrong_signature_is_refused_whatever_the_event_type() {
        let l = listener(vec![trigger("t", vec![github(Some("s"), &["push"])])]);
        let h = headers(&[
            ("x-hub-signature-256", &sign(b"other", b"{}")),
            ("x-github-event", "issues"),
        ]);
        assert_eq!(admit(&l, &h, b"{}"), Err(AuthFailure::SignatureInvalid));
    }

    #[test]
    fn trigger_without_interceptors_accepts_any_caller() {
        let l = listener(vec![trigger("open", vec![])]);
        assert_eq!(
            admit(&l, &HeaderMap::new(), b"{}"),
            Ok(Admission::Accepted(vec!["open".into()]))
        );
    }
}
