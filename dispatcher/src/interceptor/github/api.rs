//! Requests to GitHub's REST API: the base URL an event calls, the token, retries of what
//! may go away by itself, and pages.
//!
//! The base URL is `--github-api-url` (`https://api.github.com` unless the platform says
//! otherwise), or `https://HOST/api/v3` when the event carries `X-GitHub-Enterprise-Host:
//! HOST` (GitHub Enterprise Server sends it), as Tekton does; such a host must be one the
//! platform lets interceptors call (`--interceptor-allow`), since the token goes there.
//!
//! A request that gets no answer, or an answer `5xx`, `408`, `429` or `403` with GitHub's
//! rate limit exhausted, is tried again with backoff (honouring `Retry-After`) and, when
//! every attempt failed, reported as transient so that the event is delivered again later.
//! Messages name the request (method and URL, which never hold the token) and GitHub's
//! `message`; never the token.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::uri::Authority;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::Full;
use serde_json::Value;
use sluice_runtime::retry::{Backoff, FailureKind};
use sluice_runtime::tenants::TenantPolicy;
use sluice_triggers::headers::Headers;
use sluice_triggers::secret::SecretValue;

use crate::interceptor::webhook::answer::{read_body, snippet, status_text};
use crate::interceptor::webhook::retry::{
    Failure, classify_send_error, is_retryable_status, retry_after,
};
use crate::interceptor::webhook::transport::{Pools, Transport};

/// GitHub's API for github.com.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The header GitHub Enterprise Server adds to its webhooks, naming its host.
pub const ENTERPRISE_HOST_HEADER: &str = "X-GitHub-Enterprise-Host";
/// Items per page asked for in lists (GitHub's largest).
const PER_PAGE: u32 = 100;
/// Pages read from one list at most: GitHub lists at most 3000 files of a pull request.
const MAX_PAGES: u32 = 100;
/// Backoff never grows past this.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The hosts of GitHub Enterprise servers the platform lets the dispatcher call: the
/// `--interceptor-allow` flag's and the policy file's (read at each call, so a reload
/// counts).
#[derive(Clone, Default)]
pub struct EnterpriseHosts {
    pub flags: Vec<String>,
    pub policy: Option<Arc<ArcSwap<TenantPolicy>>>,
}

impl EnterpriseHosts {
    fn allows(&self, host: &str, port: u16) -> bool {
        let flags: Vec<String> = self
            .flags
            .iter()
            .map(|entry| entry.trim().to_ascii_lowercase())
            .collect();
        sluice_triggers::config::allows_host(&flags, host, port)
            || self.policy.as_ref().is_some_and(|policy| {
                sluice_triggers::config::allows_host(policy.load().interceptor_allow(), host, port)
            })
    }
}

impl fmt::Debug for EnterpriseHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnterpriseHosts")
            .field("flags", &self.flags)
            .field("policy", &self.policy.is_some())
            .finish()
    }
}

/// How the dispatcher calls GitHub's API.
#[derive(Debug, Clone)]
pub struct GitHubSettings {
    /// The API of github.com events (`--github-api-url`), without a trailing `/`.
    pub api_url: String,
    pub enterprise_hosts: EnterpriseHosts,
    /// Limit for one request, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled before each following one, jittered.
    pub backoff: Duration,
    /// Largest answer accepted.
    pub max_response_bytes: usize,
}

impl Default for GitHubSettings {
    fn default() -> Self {
        Self {
            api_url: DEFAULT_API_URL.to_owned(),
            enterprise_hosts: EnterpriseHosts::default(),
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(200),
            max_response_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Checks a `--github-api-url`: an `http` or `https` URL with a host, no query; returned
/// without a trailing `/`.
pub fn parse_api_url(text: &str) -> Result<String, String> {
    let trimmed = text.trim().trim_end_matches('/');
    let uri: Uri = trimmed
        .parse()
        .map_err(|error| format!("`{trimmed}` is not a URL: {error}"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let authority_ok = uri
        .authority()
        .is_some_and(|authority| !authority.as_str().contains('@'));
    if !scheme_ok || !authority_ok || uri.query().is_some() {
        return Err(format!(
            "`{trimmed}` is not an http(s) URL with a host and no user or query"
        ));
    }
    Ok(trimmed.to_owned())
}

/// Calls GitHub's API. Cheap to clone: clones share their connections.
#[derive(Clone)]
pub struct GitHubApi {
    inner: Arc<Inner>,
}

struct Inner {
    settings: GitHubSettings,
    pools: Pools,
}

impl fmt::Debug for GitHubApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubApi")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// Where one event's requests go: `scheme://authority/path` without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Base(String);

/// An answer other than a success, with GitHub's `message`.
#[derive(Debug)]
pub(super) struct Refused {
    pub status: StatusCode,
    pub message: String,
}

impl Refused {
    /// The trigger fails for this event: a request GitHub refuses (a bad token, a pull
    /// request it does not know) would be refused again.
    pub fn failure(self) -> Failure {
        Failure {
            kind: FailureKind::BadInput,
            ..Failure::permanent(self.message)
        }
    }
}

/// A list's items, or the first page's refusal.
pub(super) type Listed = Result<Vec<Value>, Refused>;

impl GitHubApi {
    pub fn new(settings: GitHubSettings) -> Self {
        let pools = Pools::new(settings.timeout);
        Self {
            inner: Arc::new(Inner { settings, pools }),
        }
    }

    pub fn settings(&self) -> &GitHubSettings {
        &self.inner.settings
    }

    /// The API an event with these headers calls, or why it calls none.
    pub fn api_url(&self, headers: &Headers) -> Result<String, String> {
        self.base(headers)
            .map(|base| base.0)
            .map_err(|failure| failure.message)
    }

    /// The API an event's requests go to: the Enterprise host it names, if the platform
    /// allows it, or `--github-api-url`.
    pub(super) fn base(&self, headers: &Headers) -> Result<Base, Failure> {
        let host = headers
            .get_all(ENTERPRISE_HOST_HEADER)
            .and_then(|values| values.first())
            .filter(|host| !host.is_empty());
        let Some(host) = host else {
            return Ok(Base(self.inner.settings.api_url.clone()));
        };
        let shown = snippet(host.as_bytes());
        let authority = host
            .parse::<Authority>()
            .ok()
            .filter(|authority| authority.as_str() == host.as_str() && !host.contains('@'))
            .ok_or_else(|| {
                Failure::permanent(format!(
                    "{ENTERPRISE_HOST_HEADER} `{shown}` is not a host name"
                ))
            })?;
        let name = authority.host().trim_end_matches('.').to_ascii_lowercase();
        let port = authority.port_u16().unwrap_or(443);
        if !self.inner.settings.enterprise_hosts.allows(&name, port) {
            return Err(Failure::permanent(format!(
                "the event names GitHub Enterprise host `{shown}` ({ENTERPRISE_HOST_HEADER}), which is not a host this platform lets interceptors call (--interceptor-allow)"
            )));
        }
        Ok(Base(format!("https://{authority}/api/v3")))
    }

    /// `GET base + path` and every following page (`per_page=100`, the next page taken from
    /// the `Link` header's `page`, never its URL), items in order. A refusal of a later
    /// page fails the request.
    pub(super) async fn list(
        &self,
        base: &Base,
        path: &str,
        token: Option<&SecretValue>,
    ) -> Result<Listed, Failure> {
        let mut items = Vec::new();
        let mut page = 1;
        loop {
            let query = format!("per_page={PER_PAGE}&page={page}");
            let answer = match self.get(base, path, &query, token).await? {
                Ok(answer) => answer,
                Err(refused) if page == 1 => return Ok(Err(refused)),
                Err(refused) => return Err(refused.failure()),
            };
            match json(&answer.body, base, path)? {
                Value::Array(page_items) => items.extend(page_items),
                _ => {
                    return Err(Failure::permanent(format!(
                        "GitHub answered GET {} with JSON that is not a list",
                        shown_url(base, path)
                    )));
                }
            }
            match next_page(&answer.headers) {
                Some(next) if next > page && next <= MAX_PAGES => page = next,
                Some(next) if next > MAX_PAGES => {
                    return Err(Failure::permanent(format!(
                        "GET {} has more than {MAX_PAGES} pages",
                        shown_url(base, path)
                    )));
                }
                _ => return Ok(Ok(items)),
            }
        }
    }

    /// `GET base + path` as JSON, or its refusal.
    pub(super) async fn get_json(
        &self,
        base: &Base,
        path: &str,
        token: Option<&SecretValue>,
    ) -> Result<Result<Value, Refused>, Failure> {
        Ok(match self.get(base, path, "", token).await? {
            Ok(answer) => Ok(json(&answer.body, base, path)?),
            Err(refused) => Err(refused),
        })
    }

    /// One `GET`, tried again while it fails in a way that may go away.
    async fn get(
        &self,
        base: &Base,
        path: &str,
        query: &str,
        token: Option<&SecretValue>,
    ) -> Result<Result<Answer, Refused>, Failure> {
        let settings = &self.inner.settings;
        let url = if query.is_empty() {
            format!("{}{path}", base.0)
        } else {
            format!("{}{path}?{query}", base.0)
        };
        let uri: Uri = url.parse().map_err(|error| {
            Failure::permanent(format!("GET {url} is not a valid request: {error}"))
        })?;
        let transport = self
            .inner
            .pools
            .for_scheme(uri.scheme_str().unwrap_or_default())
            .await?;
        let headers = request_headers(token)?;
        let attempts = settings.attempts.max(1);
        let backoff = Backoff::new(settings.backoff.min(MAX_BACKOFF), MAX_BACKOFF);
        let mut attempt = 1;
        loop {
            let result = tokio::time::timeout(
                settings.timeout,
                self.attempt(&transport, &uri, &headers, &url),
            )
            .await
            .unwrap_or_else(|_elapsed| {
                Err(Failure::retryable(format!(
                    "GET {url}: no complete answer within {:?}",
                    settings.timeout
                )))
            });
            let failure = match result {
                Err(failure) if failure.kind.is_transient() => failure,
                other => return other,
            };
            if attempt >= attempts {
                return Err(Failure {
                    kind: FailureKind::Transient,
                    message: format!(
                        "{} (gave up after {attempts} attempt{})",
                        failure.message,
                        if attempts == 1 { "" } else { "s" }
                    ),
                    retry_after: failure.retry_after,
                });
            }
            let delay = failure
                .retry_after
                .map_or_else(|| backoff.delay(attempt), |d| d.min(settings.timeout));
            tracing::debug!(
                url = %url,
                attempt,
                failure = %failure.message,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "GitHub API request failed, retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        transport: &Transport,
        uri: &Uri,
        headers: &HeaderMap,
        url: &str,
    ) -> Result<Result<Answer, Refused>, Failure> {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = Method::GET;
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers.clone();
        let response = transport.request(request).await.map_err(|error| {
            let failure = classify_send_error(&error);
            Failure {
                message: format!("GET {url}: {}", failure.message),
                ..failure
            }
        })?;
        let (parts, mut body) = response.into_parts();
        let status = parts.status;
        let limit = self.inner.settings.max_response_bytes;
        let read = read_body(&mut body, &parts.headers, limit)
            .await
            .map_err(|failure| Failure {
                message: format!("GET {url}: {}", failure.message),
                ..failure
            })?;
        if status.is_success() {
            return Ok(Ok(Answer {
                headers: parts.headers,
                body: read,
            }));
        }
        let message = format!(
            "GitHub answered {} to GET {url}{}",
            status_text(status),
            github_message(&read)
        );
        if let Some(delay) = retryable(status, &parts.headers) {
            return Err(Failure {
                retry_after: delay,
                ..Failure::retryable(message)
            });
        }
        if status.is_redirection() {
            return Err(Failure::permanent(format!(
                "{message}; redirects are not followed"
            )));
        }
        Ok(Err(Refused { status, message }))
    }
}

/// A successful answer.
struct Answer {
    headers: HeaderMap,
    body: Bytes,
}

/// `Accept` for GitHub's v3 JSON, a `User-Agent` (GitHub refuses requests without one), and
/// the token as a bearer credential, marked sensitive.
fn request_headers(token: Option<&SecretValue>) -> Result<HeaderMap, Failure> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/vnd.github.v3+json"),
    );
    headers.insert(header::USER_AGENT, HeaderValue::from_static("sluice"));
    if let Some(token) = token {
        let mut value = [b"Bearer ".as_slice(), token.expose()].concat();
        let header = HeaderValue::from_bytes(&value).map_err(|_| {
            Failure::permanent(
                "the personalAccessToken holds characters an HTTP header cannot carry",
            )
        });
        value.fill(0);
        let mut header = header?;
        header.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, header);
    }
    Ok(headers)
}

/// Whether a refusal is worth another attempt, and after how long if GitHub says: `5xx`,
/// `408`, `429`, and `403` with the rate limit exhausted (`X-RateLimit-Remaining: 0`, or a
/// `Retry-After`: GitHub's secondary limits). The wait is `Retry-After`, or the rate limit's
/// reset when it is exhausted (GitHub sends `X-RateLimit-Reset` with every answer).
fn retryable(status: StatusCode, headers: &HeaderMap) -> Option<Option<Duration>> {
    let exhausted = headers
        .get("x-ratelimit-remaining")
        .is_some_and(|remaining| remaining.as_bytes() == b"0");
    // `retry_after` reads the header for these statuses only; GitHub may send it with 403.
    let told = retry_after(StatusCode::TOO_MANY_REQUESTS, headers);
    let wait = told.or_else(|| exhausted.then(|| rate_limit_reset(headers)).flatten());
    let limited = status == StatusCode::FORBIDDEN && (exhausted || told.is_some());
    (is_retryable_status(status) || limited).then_some(wait)
}

/// The wait until `X-RateLimit-Reset` (seconds since the epoch).
fn rate_limit_reset(headers: &HeaderMap) -> Option<Duration> {
    let reset: u64 = headers
        .get("x-ratelimit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now)))
}

/// `: MESSAGE` from GitHub's error body (`{"message": …}`), or a quote of the body.
fn github_message(body: &[u8]) -> String {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| value.get("message")?.as_str().map(str::to_owned))
        .map_or_else(|| snippet(body), |message| snippet(message.as_bytes()));
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn json(body: &[u8], base: &Base, path: &str) -> Result<Value, Failure> {
    serde_json::from_slice(body).map_err(|error| {
        Failure::permanent(format!(
            "GitHub answered GET {} with a body that is not JSON: {error}",
            shown_url(base, path)
        ))
    })
}

fn shown_url(base: &Base, path: &str) -> String {
    format!("{}{path}", base.0)
}

/// The `page` of the `Link` header's `rel="next"` URL.
fn next_page(headers: &HeaderMap) -> Option<u32> {
    headers.get_all(header::LINK).iter().find_map(|value| {
        value.to_str().ok()?.split(',').find_map(|link| {
            let (target, params) = link.split_once(';')?;
            let next = params
                .split(';')
                .any(|param| param.trim().replace(' ', "") == "rel=\"next\"");
            if !next {
                return None;
            }
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            let (_, query) = target.split_once('?')?;
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("page="))
                .and_then(|page| page.parse().ok())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::LINK, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_next_page_number_comes_from_the_link_header() {
        let value = r#"<https://api.github.com/repositories/1/pulls/2/files?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1/pulls/2/files?per_page=100&page=5>; rel="last""#;
        assert_eq!(next_page(&link(value)), Some(2));
        let last = r#"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=1>; rel="first""#;
        assert_eq!(next_page(&link(last)), None);
        assert_eq!(next_page(&HeaderMap::new()), None);
    }

    #[test]
    fn enterprise_hosts_must_be_allowed() {
        let api = GitHubApi::new(GitHubSettings {
            enterprise_hosts: EnterpriseHosts {
                flags: vec!["*.corp.example".to_owned()],
                policy: None,
            },
            ..GitHubSettings::default()
        });
        let mut headers = Headers::new();
        assert_eq!(
            api.base(&headers).unwrap(),
            Base("https://api.github.com".to_owned())
        );
        headers.append(ENTERPRISE_HOST_HEADER, "ghe.corp.example");
        assert_eq!(
            api.base(&headers).unwrap(),
            Base("https://ghe.corp.example/api/v3".to_owned())
        );
        for hostile in [
            "attacker.example",
            "evil@ghe.corp.example",
            "ghe.corp.example/x",
            "a b",
        ] {
            let mut headers = Headers::new();
            headers.append(ENTERPRISE_HOST_HEADER, hostile);
            let failure = api.base(&headers).unwrap_err();
            assert_eq!(failure.kind, FailureKind::Permanent, "{hostile}");
        }
    }

    #[test]
    fn only_a_spent_rate_limit_makes_a_403_worth_waiting_for() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("12"));
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("9999999999"));
        assert_eq!(retryable(StatusCode::FORBIDDEN, &headers), None);
        // A 502 does not wait for the (unspent) limit's reset.
        assert_eq!(retryable(StatusCode::BAD_GATEWAY, &headers), Some(None));
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        assert!(matches!(
            retryable(StatusCode::FORBIDDEN, &headers),
            Some(Some(wait)) if wait > Duration::from_secs(60)
        ));
        let mut secondary = HeaderMap::new();
        secondary.insert(header::RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(
            retryable(StatusCode::FORBIDDEN, &secondary),
            Some(Some(Duration::from_secs(3)))
        );
        assert_eq!(retryable(StatusCode::UNAUTHORIZED, &secondary), None);
    }

    #[test]
    fn api_urls_are_checked() {
        assert_eq!(
            parse_api_url("http://127.0.0.1:8080/api/v3/").unwrap(),
            "http://127.0.0.1:8080/api/v3"
        );
        for bad in [
            "ftp://x",
            "api.github.com",
            "https://u:p@x",
            "https://x/?a=1",
        ] {
            assert!(parse_api_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_token_is_sent_as_a_sensitive_bearer_header() {
        let headers = request_headers(Some(&SecretValue::new("t0k"))).unwrap();
        let value = headers.get(header::AUTHORIZATION).unwrap();
        assert_eq!(value.as_bytes(), b"Bearer t0k");
        assert!(value.is_sensitive());
        assert!(
            request_headers(None)
                .unwrap()
                .get(header::AUTHORIZATION)
                .is_none()
        );
        let failure = request_headers(Some(&SecretValue::new("a\nb"))).unwrap_err();
        assert!(!failure.message.contains("a\nb"));
    }
}
