//! What the generator sends: realistic GitHub and GitLab push payloads of a chosen size, each
//! with its own `after` commit and delivery id, correctly signed.
//!
//! A payload is built once per provider as a [`BodyTemplate`] (ref, before/after, repository
//! or project, pusher, sender, head commit, commits with messages, timestamps and files),
//! padded with commits to the requested size. Each request copies the template and writes
//! its own 40-hex `after` sha into the reserved places, so a request costs a copy and an
//! HMAC, not a JSON serialisation: the generator must not be the bottleneck.
//!
//! Delivery ids are UUIDs (version 4 layout) that carry the run's seed and the request's
//! index, so the end-to-end test can tell from a created run's `delivery` param which
//! webhook caused it and when that webhook was meant to be sent.

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::Full;
use serde_json::json;
use sha2::Sha256;

use crate::scenario::{Provider, Scenario, Target};

/// The secret the generated configuration and the generator share unless told otherwise.
pub const DEFAULT_SECRET: &str = "loadtest-webhook-secret";

/// Stands for the per-request `after` sha in a template; 40 characters, like a sha.
const AFTER_PLACEHOLDER: &[u8; 40] = b"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@";
/// The `before` sha of every push (the parent of the pushed commits).
const BEFORE: &str = "9b1c2d3e4f5061728394a5b6c7d8e9f00a1b2c3d";
/// Filler for commit messages when a body is padded to an exact size.
const LOREM: &str = " Refactor the request path so that retries keep their original deadline \
    and the metrics say why a delivery was refused.";

/// A push payload with reserved places for the `after` sha.
#[derive(Debug, Clone)]
pub struct BodyTemplate {
    bytes: Vec<u8>,
    /// Where [`AFTER_PLACEHOLDER`] starts, each time it occurs.
    after_at: Vec<usize>,
}

impl BodyTemplate {
    /// A push from `provider` of about `size` bytes (exactly `size` when `size` is larger
    /// than the smallest payload with one commit).
    pub fn new(provider: Provider, size: usize) -> BodyTemplate {
        let placeholder = String::from_utf8_lossy(AFTER_PLACEHOLDER).into_owned();
        let commit = |n: usize, id: &str, extra_message: usize| match provider {
            Provider::GitHub => github_commit(n, id, extra_message),
            Provider::GitLab => gitlab_commit(n, id, extra_message),
        };
        let assemble = |commits: &[String]| match provider {
            Provider::GitHub => github_push(&placeholder, commits),
            Provider::GitLab => gitlab_push(&placeholder, commits),
        };
        // Sizes add up without re-serialising: the commits are joined with commas.
        let mut length = assemble(&[commit(0, &placeholder, 0)]).len();
        let mut older: Vec<String> = Vec::new();
        loop {
            let next = commit(older.len() + 1, &older_sha(older.len() + 1), 0);
            if length + next.len() + 1 > size {
                break;
            }
            length += next.len() + 1;
            older.push(next);
        }
        // Older commits first, the pushed head last, as providers list them.
        older.reverse();
        let with_filler = |extra: usize| {
            let mut all = older.clone();
            all.push(commit(0, &placeholder, extra));
            assemble(&all)
        };
        let mut body = with_filler(0);
        if body.len() < size {
            // The head commit may appear twice (GitHub's `head_commit`), so each character
            // of filler may cost more than one byte; whitespace after the object makes up
            // the rest.
            let per_character = with_filler(1).len() - body.len();
            body = with_filler((size - body.len()) / per_character.max(1));
            let missing = size.saturating_sub(body.len());
            body.extend(std::iter::repeat_n(' ', missing));
        }
        let bytes = body.into_bytes();
        let after_at = find_all(&bytes, AFTER_PLACEHOLDER);
        BodyTemplate { bytes, after_at }
    }

    /// The body with `after` (40 hex characters) in place.
    pub fn render(&self, after: &[u8; 40]) -> Bytes {
        let mut bytes = self.bytes.clone();
        for &at in &self.after_at {
            bytes[at..at + 40].copy_from_slice(after);
        }
        Bytes::from(bytes)
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, window)| *window == needle)
        .map(|(at, _)| at)
        .collect()
}

/// A fixed sha for the `n`th older commit of a push.
fn older_sha(n: usize) -> String {
    format!("{:08x}{:032x}", 0xc0ff_ee00_u32, n)
}

fn message(n: usize, extra: usize) -> String {
    let mut message = format!("Tighten webhook retries ({n})");
    message.extend(LOREM.chars().cycle().take(extra));
    message
}

fn timestamp(n: usize) -> String {
    format!("2025-05-01T12:{:02}:{:02}+00:00", (n / 60) % 60, n % 60)
}

fn github_commit(n: usize, id: &str, extra_message: usize) -> String {
    json!({
        "id": id,
        "message": message(n, extra_message),
        "timestamp": timestamp(n),
        "author": {"name": "Mona Lisa", "email": "mona@example.com"},
        "added": [format!("src/feature_{n}.rs")],
        "removed": [],
        "modified": ["src/lib.rs"],
    })
    .to_string()
}

fn gitlab_commit(n: usize, id: &str, extra_message: usize) -> String {
    json!({
        "id": id,
        "message": message(n, extra_message),
        "timestamp": timestamp(n),
        "url": format!("https://gitlab.example.com/example-org/app/-/commit/{id}"),
        "author": {"name": "Mona Lisa", "email": "mona@example.com"},
        "added": [format!("src/feature_{n}.rs")],
        "modified": ["src/lib.rs"],
        "removed": [],
    })
    .to_string()
}

/// A GitHub `push` event; `commits` are serialised commit objects, the head last.
fn github_push(after: &str, commits: &[String]) -> String {
    let head = commits.last().map_or("null", String::as_str);
    let repository = json!({
        "name": "app",
        "full_name": "example-org/app",
        "html_url": "https://github.com/example-org/app",
        "clone_url": "https://github.com/example-org/app.git",
    });
    let pusher = json!({"name": "octocat", "email": "mona@example.com"});
    let sender = json!({"login": "octocat", "id": 583_231});
    format!(
        "{{\"ref\":\"refs/heads/main\",\"before\":\"{BEFORE}\",\"after\":\"{after}\",\
         \"created\":false,\"deleted\":false,\"forced\":false,\
         \"commits\":[{commits}],\"head_commit\":{head},\"repository\":{repository},\
         \"pusher\":{pusher},\"sender\":{sender}}}",
        commits = commits.join(","),
    )
}

/// A GitLab `Push Hook` event; `commits` are serialised commit objects, the head last.
fn gitlab_push(after: &str, commits: &[String]) -> String {
    let project = json!({
        "id": 15,
        "name": "app",
        "web_url": "https://gitlab.example.com/example-org/app",
        "git_http_url": "https://gitlab.example.com/example-org/app.git",
        "path_with_namespace": "example-org/app",
        "default_branch": "main",
    });
    format!(
        "{{\"object_kind\":\"push\",\"event_name\":\"push\",\"before\":\"{BEFORE}\",\
         \"after\":\"{after}\",\"ref\":\"refs/heads/main\",\"checkout_sha\":\"{after}\",\
         \"user_name\":\"Mona Lisa\",\"user_username\":\"mona\",\"project_id\":15,\
         \"project\":{project},\"commits\":[{commits}],\"total_commits_count\":{count}}}",
        commits = commits.join(","),
        count = commits.len(),
    )
}

/// Delivery ids and `after` shas for one run: unique per request, and decodable back to the
/// request's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    seed: u64,
}

impl Ids {
    pub fn new(seed: u64) -> Ids {
        Ids { seed }
    }

    /// A random seed for a new run.
    pub fn random() -> Ids {
        Ids::new(u64::from_le_bytes(
            *uuid::Uuid::new_v4()
                .as_bytes()
                .first_chunk::<8>()
                .unwrap_or(&[0; 8]),
        ))
    }

    /// Request `index`'s delivery id: a version-4 UUID with the seed in bytes 0..8 and the
    /// index (56 bits) in bytes 9..16, clear of the version and variant bits.
    pub fn delivery(&self, index: u64) -> uuid::Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.seed.to_be_bytes());
        bytes[8..].copy_from_slice(&index.to_be_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// The index of a delivery id of this run; `None` for another run's (or no) id.
    pub fn index_of(&self, delivery: &str) -> Option<u64> {
        let uuid = uuid::Uuid::parse_str(delivery).ok()?;
        let bytes = uuid.as_bytes();
        let expected = self.delivery(0);
        if bytes[..6] != expected.as_bytes()[..6] || bytes[7] != expected.as_bytes()[7] {
            return None;
        }
        let mut index = [0u8; 8];
        index[1..].copy_from_slice(&bytes[9..16]);
        let index = u64::from_be_bytes(index);
        (self.delivery(index) == uuid).then_some(index)
    }

    /// Request `index`'s `after` sha: 40 lowercase hex characters.
    pub fn after_sha(&self, index: u64) -> [u8; 40] {
        let text = format!("{:016x}{:024x}", self.seed, index);
        let mut sha = [b'0'; 40];
        sha.copy_from_slice(&text.as_bytes()[..40]);
        sha
    }
}

/// GitHub's `X-Hub-Signature-256`, with the key schedule done once.
#[derive(Clone)]
pub struct Signer {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(secret: &str) -> anyhow::Result<Signer> {
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
            .map_err(|_| anyhow::anyhow!("the secret is not a usable HMAC key"))?;
        Ok(Signer { keyed })
    }

    /// `sha256=<hex>` of `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256=");
        out.push_str(&hex::encode(digest));
        out
    }
}

/// Builds request `i` of a run: target, body, headers, signature.
#[derive(Debug)]
pub struct RequestFactory {
    targets: Vec<(Target, String)>,
    github: BodyTemplate,
    gitlab: BodyTemplate,
    signer: Signer,
    token: HeaderValue,
    host: HeaderValue,
    ids: Ids,
}

/// `X-GitHub-Event` and the other provider headers, spelled as the providers send them.
static X_GITHUB_EVENT: HeaderName = HeaderName::from_static("x-github-event");
static X_GITHUB_DELIVERY: HeaderName = HeaderName::from_static("x-github-delivery");
static X_GITHUB_HOOK_ID: HeaderName = HeaderName::from_static("x-github-hook-id");
static X_HUB_SIGNATURE_256: HeaderName = HeaderName::from_static("x-hub-signature-256");
static X_GITLAB_EVENT: HeaderName = HeaderName::from_static("x-gitlab-event");
static X_GITLAB_TOKEN: HeaderName = HeaderName::from_static("x-gitlab-token");
static X_GITLAB_EVENT_UUID: HeaderName = HeaderName::from_static("x-gitlab-event-uuid");
static X_GITLAB_INSTANCE: HeaderName = HeaderName::from_static("x-gitlab-instance");

impl RequestFactory {
    /// Requests for `scenario`, signed with `secret`, with bodies of `body_size` bytes, to a
    /// server reached as `host` (the `Host` header) under `path_prefix` (usually empty).
    pub fn new(
        scenario: &Scenario,
        secret: &str,
        body_size: usize,
        host: &str,
        path_prefix: &str,
        ids: Ids,
    ) -> anyhow::Result<RequestFactory> {
        use anyhow::Context as _;
        let targets = scenario
            .targets()
            .into_iter()
            .map(|target| {
                let path = format!("{path_prefix}{}", target.path());
                (target, path)
            })
            .collect();
        Ok(RequestFactory {
            targets,
            github: BodyTemplate::new(Provider::GitHub, body_size),
            gitlab: BodyTemplate::new(Provider::GitLab, body_size),
            signer: Signer::new(secret)?,
            token: HeaderValue::from_str(secret)
                .context("the secret cannot be sent as X-Gitlab-Token (not a header value)")?,
            host: HeaderValue::from_str(host)
                .with_context(|| format!("`{host}` is not a valid Host header"))?,
            ids,
        })
    }

    /// The body size actually sent by each provider.
    pub fn body_sizes(&self) -> (usize, usize) {
        (self.github.len(), self.gitlab.len())
    }

    /// The listener request `index` goes to.
    pub fn target(&self, index: u64) -> &Target {
        &self.targets[(index % self.targets.len() as u64) as usize].0
    }

    /// The body of request `index` (as sent, before headers).
    pub fn body(&self, index: u64) -> Bytes {
        let template = match self.target(index).provider {
            Provider::GitHub => &self.github,
            Provider::GitLab => &self.gitlab,
        };
        template.render(&self.ids.after_sha(index))
    }

    /// Request `index`, ready to send on an HTTP/1.1 connection (origin-form URI).
    pub fn request(&self, index: u64) -> Request<Full<Bytes>> {
        let (target, path) = &self.targets[(index % self.targets.len() as u64) as usize];
        let body = self.body(index);
        let delivery = self.ids.delivery(index);
        let mut delivery_text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let delivery_text = delivery.hyphenated().encode_lower(&mut delivery_text);
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = Method::POST;
        // Paths come from validated names, so they always parse; `/` is the fallback that
        // the server would answer 404 for.
        *request.uri_mut() = path.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let id = header_value(delivery_text);
        match target.provider {
            Provider::GitHub => {
                headers.insert(
                    USER_AGENT,
                    HeaderValue::from_static("GitHub-Hookshot/sluice-loadtest"),
                );
                headers.insert(X_GITHUB_EVENT.clone(), HeaderValue::from_static("push"));
                headers.insert(X_GITHUB_DELIVERY.clone(), id);
                headers.insert(X_GITHUB_HOOK_ID.clone(), HeaderValue::from_static("4242"));
                headers.insert(
                    X_HUB_SIGNATURE_256.clone(),
                    header_value(&self.signer.sign(&body)),
                );
            }
            Provider::GitLab => {
                headers.insert(USER_AGENT, HeaderValue::from_static("GitLab/17.11.0"));
                headers.insert(
                    X_GITLAB_EVENT.clone(),
                    HeaderValue::from_static("Push Hook"),
                );
                headers.insert(X_GITLAB_TOKEN.clone(), self.token.clone());
                headers.insert(X_GITLAB_EVENT_UUID.clone(), id);
                headers.insert(
                    X_GITLAB_INSTANCE.clone(),
                    HeaderValue::from_static("https://gitlab.example.com"),
                );
            }
        }
        *request.body_mut() = Full::new(body);
        request
    }
}

/// Hex, UUIDs and `sha256=` strings are always valid header values.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::Value;

    use super::*;
    use crate::scenario::ProviderMix;

    fn scenario(provider: ProviderMix) -> Scenario {
        Scenario {
            tenants: 3,
            listeners: 2,
            provider,
        }
    }

    const IDS: Ids = Ids {
        seed: 0x1234_5678_9abc_def0,
    };

    fn factory(provider: ProviderMix, size: usize) -> RequestFactory {
        RequestFactory::new(
            &scenario(provider),
            "s3cret",
            size,
            "127.0.0.1:8080",
            "",
            IDS,
        )
        .unwrap()
    }

    #[test]
    fn bodies_have_the_requested_size_and_are_push_events() {
        for provider in [Provider::GitHub, Provider::GitLab] {
            for size in [1024, 4096, 64 * 1024] {
                let template = BodyTemplate::new(provider, size);
                assert_eq!(template.len(), size, "{provider:?} {size}");
                let body: Value = serde_json::from_slice(&template.render(&[b'a'; 40])).unwrap();
                assert_eq!(body["after"], "a".repeat(40));
                assert_eq!(body["ref"], "refs/heads/main");
                assert!(!body["commits"].as_array().unwrap().is_empty());
            }
        }
        // Smaller than one commit: the smallest realistic push.
        let tiny = BodyTemplate::new(Provider::GitHub, 10);
        assert!(tiny.len() > 10);
        let github: Value = serde_json::from_slice(&tiny.render(&[b'b'; 40])).unwrap();
        assert_eq!(github["head_commit"]["id"], "b".repeat(40));
        assert_eq!(github["repository"]["full_name"], "example-org/app");
        assert!(github["pusher"]["name"].is_string() && github["sender"]["login"].is_string());
    }

    #[test]
    fn every_request_has_its_own_after_sha_and_delivery_id() {
        let factory = factory(ProviderMix::Mixed, 2048);
        let mut afters = HashSet::new();
        let mut deliveries = HashSet::new();
        for index in 0..500 {
            let request = factory.request(index);
            let delivery = request
                .headers()
                .get("x-github-delivery")
                .or_else(|| request.headers().get("x-gitlab-event-uuid"))
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            assert_eq!(IDS.index_of(&delivery), Some(index));
            let body: Value = serde_json::from_slice(&factory.body(index)).unwrap();
            assert!(afters.insert(body["after"].as_str().unwrap().to_owned()));
            assert!(deliveries.insert(delivery));
        }
        assert_eq!(
            Ids::new(1).index_of(&Ids::new(2).delivery(7).to_string()),
            None
        );
        assert_eq!(Ids::new(1).index_of("not a uuid"), None);
        let big = Ids::new(9).delivery((1 << 56) - 1).to_string();
        assert_eq!(Ids::new(9).index_of(&big), Some((1 << 56) - 1));
        assert_eq!(Ids::new(9).delivery(3).get_version_num(), 4);
    }

    #[test]
    fn github_requests_are_signed_over_the_exact_body() {
        let factory = factory(ProviderMix::Github, 1024);
        for index in [0, 1, 99] {
            let request = factory.request(index);
            let signature = request.headers()["x-hub-signature-256"].to_str().unwrap();
            let body = factory.body(index);
            assert_eq!(
                signature,
                sluice_tests::procs::github_signature("s3cret", &body)
            );
            assert_eq!(request.headers()["x-github-event"], "push");
            assert_eq!(request.method(), Method::POST);
            assert_eq!(request.headers()[HOST], "127.0.0.1:8080");
        }
        assert_eq!(factory.request(1).uri().path(), "/hooks/team-0002/github");
    }

    #[test]
    fn gitlab_requests_carry_the_token_and_event() {
        let factory = factory(ProviderMix::Gitlab, 1024);
        let request = factory.request(0);
        assert_eq!(request.headers()["x-gitlab-token"], "s3cret");
        assert_eq!(request.headers()["x-gitlab-event"], "Push Hook");
        assert!(request.headers().get("x-hub-signature-256").is_none());
        assert_eq!(request.uri().path(), "/hooks/team-0001/gitlab");
    }
}
