//! What the fuzz targets share: a readable input format for requests, signing placeholders,
//! independent signature oracles, and the configuration the targets run against.
//!
//! An input is a request written much as on the wire, so seeds are plain text files:
//!
//! ```text
//! POST /hooks/team-a/github
//! X-GitHub-Event: push
//! X-Hub-Signature-256: {{sign-a}}
//!
//! {"ref":"refs/heads/main"}
//! ```
//!
//! Lines end with `\n` (a trailing `\r` is dropped); the head ends at the first empty line and
//! everything after it is the body, byte for byte. The `routing` target reads the first line
//! as method and target; the `signature` target reads every head line as a header.
//!
//! Placeholders let the fuzzer reach what lies behind a valid credential; a header whose
//! whole value is one of them is sent as:
//!
//! | placeholder | value |
//! | --- | --- |
//! | `{{sign-a}}`, `{{sign-b}}` | `sha256=<hex HMAC-SHA256 of the body>` under [`SECRET_A`] / [`SECRET_B`] (GitHub, Bitbucket) |
//! | `{{secret-a}}`, `{{secret-b}}` | the secret itself (GitLab, Gitee password) |
//! | `{{slack-b}}` | `v0=<hex HMAC-SHA256 of v0:<X-Slack-Request-Timestamp>:<body>>` under B |
//! | `{{gitee-a}}` | Base64 HMAC-SHA256 of `<X-Gitee-Timestamp>\n<secret>` under A |
//! | `{{hmac-b}}` | `sha512=<Base64 HMAC-SHA512 of the body>` under B |
//! | `{{now}}`, `{{now-ms}}` | [`NOW_SECS`] in seconds / milliseconds |
//!
//! Any other bytes are used as they are, invalid UTF-8 included.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

/// The secret of the `a` Secret in the fuzzing configuration.
pub const SECRET_A: &str = "fuzz-secret-a-7c1d";
/// The secret of the `b` Secret in the fuzzing configuration.
pub const SECRET_B: &str = "fuzz-secret-b-93e0";

/// The clock the targets judge timestamps by, so that a run is reproducible.
pub const NOW_SECS: u64 = 1_700_000_000;

pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

/// A request split into its head lines and its body.
pub struct Input<'a> {
    pub lines: Vec<&'a [u8]>,
    pub body: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn parse(data: &'a [u8]) -> Self {
        let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
            Some(end) => (&data[..end], &data[end + 2..]),
            None => (data, &data[data.len()..]),
        };
        let lines = head
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .collect();
        Self { lines, body }
    }

    /// Builds a header map from `lines`, placeholders filled in, skipping lines that are no
    /// valid header (hyper refuses such requests before any service sees them).
    pub fn headers(&self, lines: &[&[u8]]) -> HeaderMap {
        let raw: Vec<(&[u8], &[u8])> = lines
            .iter()
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                Some((&line[..colon], line[colon + 1..].trim_ascii_start()))
            })
            .collect();
        let first = |name: &str| {
            raw.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                .map_or(&b""[..], |(_, v)| *v)
        };
        let mut headers = HeaderMap::new();
        for &(name, value) in &raw {
            let value = match value {
                b"{{sign-a}}" => github_header(SECRET_A.as_bytes(), self.body).into_bytes(),
                b"{{sign-b}}" => github_header(SECRET_B.as_bytes(), self.body).into_bytes(),
                b"{{secret-a}}" => SECRET_A.as_bytes().to_vec(),
                b"{{secret-b}}" => SECRET_B.as_bytes().to_vec(),
                b"{{slack-b}}" => {
                    let timestamp = first("x-slack-request-timestamp");
                    let message = [b"v0:", timestamp, b":", self.body].concat();
                    format!(
                        "v0={}",
                        hex::encode(hmac_sha256(SECRET_B.as_bytes(), &message))
                    )
                    .into_bytes()
                }
                b"{{gitee-a}}" => STANDARD
                    .encode(gitee_signature(
                        SECRET_A.as_bytes(),
                        first("x-gitee-timestamp"),
                    ))
                    .into_bytes(),
                b"{{hmac-b}}" => format!(
                    "sha512={}",
                    STANDARD.encode(hmac_sha512(SECRET_B.as_bytes(), self.body))
                )
                .into_bytes(),
                b"{{now}}" => NOW_SECS.to_string().into_bytes(),
                b"{{now-ms}}" => (NOW_SECS * 1000).to_string().into_bytes(),
                other => other.to_vec(),
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name),
                HeaderValue::from_bytes(&value),
            ) {
                headers.append(name, value);
            }
        }
        headers
    }
}

/// HMAC-SHA256 of `message` under `secret`.
pub fn hmac_sha256(secret: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA512 of `message` under `secret`.
pub fn hmac_sha512(secret: &[u8], message: &[u8]) -> [u8; 64] {
    let mut mac = Hmac::<Sha512>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA1 of `message` under `secret`.
pub fn hmac_sha1(secret: &[u8], message: &[u8]) -> [u8; 20] {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Gitee's signature: HMAC-SHA256 of `<timestamp>\n<secret>` under the secret.
pub fn gitee_signature(secret: &[u8], timestamp: &[u8]) -> [u8; 32] {
    hmac_sha256(secret, &[timestamp, b"\n", secret].concat())
}

/// `sha256=<hex>`, as GitHub sends it.
pub fn github_header(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret, body)))
}

/// The oracle: does this `X-Hub-Signature-256` value sign `body` under `secret`? Written
/// from GitHub's documentation, independently of `sluice_triggers::auth`.
pub fn github_value_signs(value: &[u8], secret: &[u8], body: &[u8]) -> bool {
    value
        .strip_prefix(b"sha256=")
        .and_then(|digits| hex::decode(digits).ok())
        .is_some_and(|mac| mac == hmac_sha256(secret, body))
}

/// The oracle for Bitbucket's `X-Hub-Signature`: `sha256=`, `sha1=` or `sha512=` and the
/// hex HMAC of `body` under `secret` with that hash, as Tekton's interceptor verifies it.
pub fn bitbucket_value_signs(value: &[u8], secret: &[u8], body: &[u8]) -> bool {
    let decode = |prefix: &[u8]| {
        value
            .strip_prefix(prefix)
            .and_then(|digits| hex::decode(digits).ok())
    };
    decode(b"sha256=").is_some_and(|mac| mac == hmac_sha256(secret, body))
        || decode(b"sha1=").is_some_and(|mac| mac == hmac_sha1(secret, body))
        || decode(b"sha512=").is_some_and(|mac| mac == hmac_sha512(secret, body))
}

/// Every listener kind the routing target meets: signed with two secrets and event types,
/// open (no interceptor), and GitHub without a secret (event types only).
pub const ROUTING_CONFIG: &str = r#"
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
  params: [{name: revision, default: main}]
  resourcetemplates:
    - apiVersion: tekton.dev/v1
      kind: PipelineRun
      metadata: {generateName: run-}
      spec: {params: [{name: revision, value: $(tt.params.revision)}]}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: github, namespace: team-a}
spec:
  triggers:
    - name: push
      interceptors:
        - ref: {name: github}
          params:
            - {name: secretRef, value: {secretName: a, secretKey: token}}
            - {name: eventTypes, value: [push]}
      bindings: [{name: revision, value: $(body.after)}]
      template: {ref: run}
    - name: any-event
      interceptors:
        - ref: {name: github}
          params:
            - {name: secretRef, value: {secretName: b, secretKey: token}}
      template: {ref: run}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: open, namespace: team-a}
spec:
  triggers:
    - name: anyone
      template: {ref: run}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: unsigned, namespace: team-a}
spec:
  triggers:
    - name: pings
      interceptors:
        - github: {eventTypes: [ping]}
      template: {ref: run}
"#;
