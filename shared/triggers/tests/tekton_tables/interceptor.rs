//! One trigger with one authentication interceptor, judged on one request as the edge judges
//! it ([`sluice_triggers::auth::judge_trigger`]).
//!
//! Tekton's interceptor answers `continue: true` or `false`; Sluice's trigger accepts the
//! request, or does not (it filters an unwanted event type, refuses a credential, cannot
//! judge because its Secret is unusable, or was refused when the configuration loaded).
//! Either way a `false` leaves the event without a run, which is what the tables assert.

use std::time::SystemTime;

use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sluice_triggers::auth::{TriggerVerdict, judge_trigger, refuses_form_encoding};
use sluice_triggers::catalogue::Catalogue;
use sluice_triggers::config::load_str;

use crate::suite::Compared;

/// Tekton's test namespace (`namespaces/default/triggers/example-trigger`).
pub const NAMESPACE: &str = "default";

/// `sha1=<hex>` or `sha256=<hex>`: the HMAC of `body` under `secret`, as Tekton's test
/// helper `HMACHeader` writes it.
pub fn hmac_header(secret: &str, body: &[u8], algorithm: &str) -> String {
    let tag = match algorithm {
        "sha1" => {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        }
        "sha256" => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        }
        other => panic!("no such algorithm {other}"),
    };
    format!("{algorithm}={}", hex::encode(tag))
}

/// A Secret `name` in [`NAMESPACE`] holding `key: value`.
pub struct Secret {
    pub name: &'static str,
    pub key: &'static str,
    pub value: &'static str,
}

/// A listener `l` with one trigger `t` whose only interceptor is `ref: {name: kind}` with
/// `params` (a YAML flow list), and `secret` beside it.
pub fn listener_yaml(kind: &str, params: &str, secret: Option<&Secret>) -> String {
    let mut yaml = String::new();
    if let Some(secret) = secret {
        yaml.push_str(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {}, namespace: {NAMESPACE}}}\nstringData: {{{}: {:?}}}\n---\n",
            secret.name, secret.key, secret.value
        ));
    }
    yaml.push_str(&format!(
        r#"apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: l, namespace: {NAMESPACE}}}
spec:
  triggers:
    - name: t
      interceptors: [{{ref: {{name: {kind}}}, params: {params}}}]
      template:
        spec:
          resourcetemplates: [{{apiVersion: v1, kind: ConfigMap, metadata: {{generateName: c-}}}}]
"#
    ));
    yaml
}

pub fn request_headers(pairs: &[(&str, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

/// What the trigger makes of the request: `continue`, or `stop: <why>`.
pub fn verdict(catalogue: &Catalogue, headers: &HeaderMap, body: &[u8]) -> String {
    let Some(listener) = catalogue.listener(NAMESPACE, "l") else {
        return format!("stop: listener refused at load: {}", issues(catalogue));
    };
    if refuses_form_encoding(listener, headers) {
        return "stop: form-encoded body refused".to_owned();
    }
    let Some(trigger) = listener.trigger("t") else {
        return format!("stop: trigger refused at load: {}", issues(catalogue));
    };
    match judge_trigger(trigger, headers, body, SystemTime::now()) {
        TriggerVerdict::Accepted => "continue".to_owned(),
        TriggerVerdict::Filtered => "stop: event type not wanted (filtered)".to_owned(),
        TriggerVerdict::Refused(failure) => {
            format!("stop: refused ({}): {failure}", failure.code().as_str())
        }
        TriggerVerdict::Misconfigured(reason) => format!("stop: misconfigured: {reason}"),
    }
}

fn issues(catalogue: &Catalogue) -> String {
    let issues: Vec<String> = catalogue.issues().iter().map(|i| i.to_string()).collect();
    issues.join("; ")
}

/// One table row: the interceptor, its params and Secret, the request, and whether Tekton's
/// interceptor continues.
pub struct Row {
    pub kind: &'static str,
    pub params: String,
    pub secret: Option<Secret>,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'static [u8],
    pub continues: bool,
}

impl Row {
    pub fn judge(self) -> Compared {
        let yaml = listener_yaml(self.kind, &self.params, self.secret.as_ref());
        let catalogue = load_str("listener.yaml", &yaml);
        let sluice = verdict(&catalogue, &request_headers(&self.headers), self.body);
        let tekton = if self.continues { "continue" } else { "stop" };
        let same = if self.continues {
            sluice == "continue"
        } else {
            sluice.starts_with("stop")
        };
        let secret = self
            .secret
            .as_ref()
            .map(|s| format!(", Secret {}: {{{}: {:?}}}", s.name, s.key, s.value))
            .unwrap_or_default();
        Compared::judged(
            format!(
                "{} params {}{secret}; headers {:?}; body {:?}",
                self.kind,
                self.params,
                self.headers,
                String::from_utf8_lossy(self.body)
            ),
            tekton,
            sluice,
            same,
        )
    }
}
