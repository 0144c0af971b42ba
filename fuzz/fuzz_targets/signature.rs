//! Arbitrary headers and body through `sluice_triggers::auth::admit_at` (the clock fixed at
//! `NOW_SECS`), against listeners with one trigger per provider; and through
//! `verify_github_signature` with a secret taken from the input (header `x-fuzz-secret`).
//!
//! Every head line is a header (see `sluice_fuzz` for the format and its placeholders).
//! Invariants: no panic; the same request always gets the same answer; accepted triggers
//! belong to the listener, once each, in order; for every trigger, it is accepted exactly
//! when an oracle written from the provider's documentation finds the request authentic and
//! of a wanted event type; a listener whose triggers all have secrets filters a request only
//! when one of them found it authentic; refusals never say "misconfigured" for a valid
//! configuration and never carry a secret; `verify_github_signature` agrees with the oracle
//! for any secret.

#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use sluice_fuzz::{
    Input, NOW_SECS, SECRET_A, SECRET_B, bitbucket_value_signs, gitee_signature,
    github_value_signs, hmac_sha256, hmac_sha512, now,
};
use sluice_triggers::auth::{Admission, FailureCode, Refusal, admit_at, verify_github_signature};
use sluice_triggers::catalogue::Listener;

/// One trigger per way of authenticating, as users write them.
const TRIGGERS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: a, namespace: team-a}
stringData: {token: fuzz-secret-a-7c1d}
---
apiVersion: v1
kind: Secret
metadata: {name: b, namespace: team-a}
stringData: {token: fuzz-secret-b-93e0}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: run, namespace: team-a}
spec:
  resourcetemplates:
    - {apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {generateName: run-}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: github-a, namespace: team-a}
spec:
  interceptors:
    - ref: {name: github}
      params:
        - {name: secretRef, value: {secretName: a, secretKey: token}}
        - {name: eventTypes, value: [push, pull_request]}
  template: {ref: run}
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: Trigger
metadata: {name: github-b, namespace: team-a}
spec:
  interceptors:
    - github: {secretRef: {secretName: b, secretKey: token}}
  template: {ref: run}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: github-unsigned, namespace: team-a}
spec:
  interceptors:
    - ref: {name: github}
      params: [{name: eventTypes, value: [ping]}]
  template: {ref: run}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: gitlab, namespace: team-a}
spec:
  interceptors:
    - ref: {name: gitlab}
      params:
        - {name: secretRef, value: {secretName: a, secretKey: token}}
        - {name: eventTypes, value: [Push Hook]}
  template: {ref: run}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: bitbucket, namespace: team-a}
spec:
  interceptors:
    - ref: {name: bitbucket}
      params:
        - {name: secretRef, value: {secretName: a, secretKey: token}}
        - {name: eventTypes, value: ["repo:push"]}
  template: {ref: run}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: gitee, namespace: team-a}
spec:
  interceptors:
    - ref: {name: gitee}
      params:
        - {name: secretRef, value: {secretName: a, secretKey: token}}
        - {name: eventTypes, value: [Push Hook]}
  template: {ref: run}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: slack, namespace: team-a}
spec:
  interceptors:
    - ref: {name: slack}
      params:
        - {name: secretRef, value: {secretName: b, secretKey: token}}
  template: {ref: run}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: hmac, namespace: team-a}
spec:
  interceptors:
    - ref: {name: hmac}
      params:
        - {name: secretRef, value: {secretName: b, secretKey: token}}
        - {name: header, value: X-Signature}
        - {name: algorithm, value: sha512}
        - {name: encoding, value: base64}
        - {name: prefix, value: "sha512="}
  template: {ref: run}
"#;

/// Every trigger, in declaration order.
const ALL: &[&str] = &[
    "github-a",
    "github-b",
    "github-unsigned",
    "gitlab",
    "bitbucket",
    "gitee",
    "slack",
    "hmac",
];

/// Gitee's default timestamp window.
const GITEE_WINDOW: Duration = Duration::from_secs(60 * 60);
/// Slack's timestamp window.
const SLACK_WINDOW: Duration = Duration::from_secs(5 * 60);

/// `all`: every trigger. `signed`: only triggers with a secret, so a request can also be
/// refused (in `all`, the unsigned trigger finds every request authentic).
static LISTENERS: LazyLock<Vec<(Arc<Listener>, Vec<&'static str>)>> = LazyLock::new(|| {
    let signed: Vec<&str> = ALL
        .iter()
        .copied()
        .filter(|t| *t != "github-unsigned")
        .collect();
    let mut yaml = TRIGGERS.to_owned();
    for (name, triggers) in [("all", ALL), ("signed", &signed[..])] {
        yaml.push_str(&format!(
            "---\napiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\nmetadata: {{name: {name}, namespace: team-a}}\nspec:\n  triggers:\n{}",
            triggers
                .iter()
                .map(|trigger| format!("    - triggerRef: {trigger}\n"))
                .collect::<String>()
        ));
    }
    let catalogue = sluice_triggers::config::load_str("fuzz.yaml", &yaml);
    assert!(
        catalogue.issues().is_empty(),
        "the fuzzing configuration must load cleanly: {:?}",
        catalogue.issues()
    );
    [("all", ALL.to_vec()), ("signed", signed)]
        .into_iter()
        .map(|(name, triggers)| {
            let listener = catalogue
                .listener("team-a", name)
                .expect("the listener loads")
                .clone();
            let loaded: Vec<&str> = listener.triggers.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(loaded, triggers, "every trigger loads, in order");
            (listener, triggers)
        })
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let headers = input.headers(&input.lines);
    let body = input.body;
    let oracle = Oracle {
        headers: &headers,
        body,
    };

    for (listener, triggers) in LISTENERS.iter() {
        let admission = admit_at(listener, &headers, body, now());
        assert_eq!(
            admission,
            admit_at(listener, &headers, body, now()),
            "the same request gets the same answer"
        );
        let accepted: &[String] = match &admission {
            Ok(Admission::Accepted(accepted)) => accepted,
            _ => &[],
        };
        let mut rest = triggers.iter();
        for name in accepted {
            assert!(
                rest.any(|t| t == name),
                "accepted {name}: not a trigger, repeated or out of order"
            );
        }
        for trigger in triggers {
            let (authentic, wanted) = oracle.judge(trigger);
            let is_accepted = accepted.iter().any(|a| a == trigger);
            assert_eq!(
                is_accepted,
                authentic && wanted,
                "{}: trigger {trigger} (authentic {authentic}, wanted {wanted})",
                listener.name
            );
        }
        match &admission {
            Ok(Admission::Filtered) if listener.name == "signed" => assert!(
                triggers.iter().any(|t| oracle.judge(t).0),
                "filtered (202) although no trigger found the request authentic"
            ),
            Err(Refusal::Misconfigured(cause)) => {
                panic!("a valid configuration refused as misconfigured: {cause}")
            }
            Err(Refusal::Unauthorized(failure)) => {
                let message = failure.to_string();
                for secret in [SECRET_A, SECRET_B] {
                    assert!(!message.contains(secret), "a refusal names a secret");
                }
            }
            _ => {}
        }
    }

    if let Some(secret) = headers.get("x-fuzz-secret") {
        let secret = secret.as_bytes();
        let values: Vec<&[u8]> = headers
            .get_all("x-hub-signature-256")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        let expected = match values[..] {
            [] => Err(FailureCode::SignatureMissing),
            [value] if github_value_signs(value, secret, body) => Ok(()),
            // Wrong, malformed, or sent more than once (which one would count is ambiguous).
            _ => Err(FailureCode::SignatureInvalid),
        };
        let verified = verify_github_signature(secret, &headers, body).map_err(|f| f.code());
        assert_eq!(verified, expected);
    }
});

/// What each provider's documentation says, derived without `sluice_triggers::auth`. A
/// credential or event header counts only when sent exactly once: which of two would count
/// is ambiguous, so such a request is neither authentic nor wanted.
struct Oracle<'a> {
    headers: &'a HeaderMap,
    body: &'a [u8],
}

impl Oracle<'_> {
    /// `(authentic, wanted)` for one of the triggers in [`ALL`].
    fn judge(&self, trigger: &str) -> (bool, bool) {
        let a = SECRET_A.as_bytes();
        let b = SECRET_B.as_bytes();
        match trigger {
            "github-a" => (
                self.one("x-hub-signature-256")
                    .is_some_and(|v| github_value_signs(v, a, self.body)),
                self.event("x-github-event", &["push", "pull_request"]),
            ),
            "github-b" => (
                self.one("x-hub-signature-256")
                    .is_some_and(|v| github_value_signs(v, b, self.body)),
                true,
            ),
            "github-unsigned" => (true, self.event("x-github-event", &["ping"])),
            "gitlab" => (
                self.one("x-gitlab-token") == Some(a),
                self.event("x-gitlab-event", &["Push Hook"]),
            ),
            "bitbucket" => (
                self.one("x-hub-signature")
                    .is_some_and(|v| bitbucket_value_signs(v, a, self.body)),
                self.event("x-event-key", &["repo:push"]),
            ),
            "gitee" => (self.gitee(a), self.event("x-gitee-event", &["Push Hook"])),
            "slack" => (self.slack(b), true),
            "hmac" => (
                self.one("x-signature")
                    .and_then(|v| v.strip_prefix(b"sha512="))
                    .and_then(|v| STANDARD.decode(v).ok())
                    .is_some_and(|mac| mac == hmac_sha512(b, self.body)),
                true,
            ),
            other => panic!("no oracle for trigger {other}"),
        }
    }

    /// The header's value when it was sent exactly once.
    fn one(&self, name: &str) -> Option<&[u8]> {
        let mut values = self.headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value.as_bytes()),
            _ => None,
        }
    }

    fn event(&self, name: &str, wanted: &[&str]) -> bool {
        self.one(name)
            .is_some_and(|event| wanted.iter().any(|w| w.as_bytes() == event))
    }

    /// A Unix timestamp (in `unit_ms` milliseconds) within `window` of the fixed clock.
    fn fresh(&self, name: &str, unit_ms: u64, window: Duration) -> Option<&[u8]> {
        let value = self.one(name)?;
        let sent: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
        if !value.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let sent_ms = u128::from(sent) * u128::from(unit_ms);
        let now_ms = u128::from(NOW_SECS) * 1000;
        (sent_ms.abs_diff(now_ms) <= window.as_millis()).then_some(value)
    }

    /// Password (the token is the secret) or signature over a fresh millisecond timestamp.
    fn gitee(&self, secret: &[u8]) -> bool {
        let Some(token) = self.one("x-gitee-token") else {
            return false;
        };
        token == secret
            || self
                .fresh("x-gitee-timestamp", 1, GITEE_WINDOW)
                .is_some_and(|timestamp| {
                    STANDARD
                        .decode(token)
                        .is_ok_and(|mac| mac == gitee_signature(secret, timestamp))
                })
    }

    /// `v0=<hex HMAC of v0:<timestamp>:<body>>` over a fresh second timestamp.
    fn slack(&self, secret: &[u8]) -> bool {
        let Some(timestamp) = self.fresh("x-slack-request-timestamp", 1000, SLACK_WINDOW) else {
            return false;
        };
        let message = [b"v0:", timestamp, b":", self.body].concat();
        self.one("x-slack-signature")
            .and_then(|v| v.strip_prefix(b"v0="))
            .and_then(|digits| hex::decode(digits).ok())
            .is_some_and(|mac| mac == hmac_sha256(secret, &message))
    }
}
