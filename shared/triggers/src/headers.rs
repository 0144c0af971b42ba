//! Request headers as Tekton exposes them (`$(header.X)`, CEL's `header`, interceptors'
//! `header`): keyed by canonical name, every value kept in arrival order, credentials never
//! kept.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
pub use sluice_cel::header::{canonical_name as canonical_header_name, push_canonical_name};

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
        if is_credential(name) {
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

    /// The map from canonical name to values, as CEL's `header` reads it.
    pub fn as_map(&self) -> &BTreeMap<String, Vec<String>> {
        &self.0
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

/// Whether a header (named in any case) is one of the credentials that never enter the queue.
pub fn is_credential(name: &str) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .any(|credential| credential.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn credential_headers_are_not_visible() {
        let mut headers = Headers::new();
        headers.append("X-Hub-Signature", "sha1=abc");
        headers.append("X-GitHub-Event", "push");
        let body = serde_json::json!({});
        let extensions = serde_json::Map::new();
        let program = sluice_cel::Program::compile("'X-Hub-Signature' in header").unwrap();
        let seen = |source: &str| {
            sluice_cel::Program::compile(source)
                .unwrap()
                .eval(&sluice_cel::Activation {
                    body: &body,
                    header: headers.as_map(),
                    extensions: &extensions,
                    request_url: "",
                    secrets: &NoSecrets,
                    limits: sluice_cel::Limits::default(),
                })
                .unwrap()
        };
        assert_eq!(seen(program.source()), sluice_cel::Value::Bool(false));
        assert_eq!(
            seen("header.match('x-github-event', 'push')"),
            sluice_cel::Value::Bool(true)
        );
    }

    struct NoSecrets;

    impl sluice_cel::SecretSource for NoSecrets {
        fn secret(&self, _: &sluice_cel::SecretRef) -> Option<&[u8]> {
            None
        }
    }
}
