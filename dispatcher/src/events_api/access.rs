//! Who may read a namespace's event status.
//!
//! With a directory sink (a trial without a cluster) anyone who reaches the operations port
//! may. Otherwise every request carries `Authorization: Bearer <token>`, and the dispatcher
//! asks the Kubernetes API, with its own credentials, two questions: whose token is it
//! (a TokenReview), and may that user `get` EventListeners (`triggers.tekton.dev`) in the
//! namespace asked about (a SubjectAccessReview with the user, groups, uid and extra the
//! TokenReview returned). So a tenant reads what its RBAC already lets it see, and nothing
//! else.
//!
//! Answers are kept briefly, keyed by the SHA-256 of the token and the namespace (never the
//! token itself): an allowed one [`ALLOWED_FOR`], a refused one [`REFUSED_FOR`], at most
//! [`CACHED_DECISIONS`] of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use sha2::{Digest, Sha256};

use super::error::{ApiError, Result};
use super::params;

/// How long an allowed decision is reused: a revoked RoleBinding takes effect within it.
pub const ALLOWED_FOR: Duration = Duration::from_secs(10);
/// How long a refusal (unknown token, denied) is reused: a new grant takes effect within it.
pub const REFUSED_FOR: Duration = Duration::from_secs(2);
/// Decisions kept at most; beyond, expired ones go first, then the one expiring soonest.
pub const CACHED_DECISIONS: usize = 4096;
/// Deadline of both reviews together.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

/// What RBAC must allow in a namespace to read its event status.
const VERB: &str = "get";
const GROUP: &str = "triggers.tekton.dev";
const RESOURCE: &str = "eventlisteners";

/// How requests are authorised.
#[derive(Clone)]
pub struct Access(Arc<Mode>);

enum Mode {
    Open,
    Kubernetes(Reviewer),
}

impl Access {
    /// Every request may read every namespace.
    pub fn open() -> Self {
        Self(Arc::new(Mode::Open))
    }

    /// Requests are authorised by the Kubernetes API `client` talks to.
    pub fn kubernetes(client: kube::Client) -> Self {
        Self(Arc::new(Mode::Kubernetes(Reviewer {
            client,
            decisions: Mutex::new(Decisions::default()),
        })))
    }

    pub fn is_open(&self) -> bool {
        matches!(*self.0, Mode::Open)
    }

    /// The tenant `namespace`, if the request may read it.
    pub async fn authorise(&self, headers: &HeaderMap, namespace: &str) -> Result<Tenant> {
        match &*self.0 {
            Mode::Open => {
                let namespace = params::namespace(namespace)?;
                Ok(Tenant::new(namespace))
            }
            Mode::Kubernetes(reviewer) => {
                let token = Token::from_headers(headers)?;
                let namespace = params::namespace(namespace)?;
                match reviewer.decide(&token, namespace).await? {
                    Decision::Allowed => Ok(Tenant::new(namespace)),
                    Decision::Denied => Err(ApiError::Forbidden {
                        namespace: namespace.to_owned(),
                    }),
                    Decision::Unauthenticated => Err(ApiError::InvalidToken),
                }
            }
        }
    }
}

/// A namespace the request may read. Only [`Access::authorise`] makes one.
#[derive(Debug, Clone)]
pub struct Tenant {
    namespace: String,
}

impl Tenant {
    fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

/// The `{namespace}` of the route, authorised.
impl<S> FromRequestParts<S> for Tenant
where
    Access: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let Path(path) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(ApiError::from_path)?;
        let namespace = path.get("namespace").map(String::as_str).unwrap_or("");
        Access::from_ref(state)
            .authorise(&parts.headers, namespace)
            .await
    }
}

/// A bearer token; its `Debug` shows nothing of it.
struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    fn from_headers(headers: &HeaderMap) -> Result<Self> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or(ApiError::MissingToken)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(ApiError::MissingToken)?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(ApiError::MissingToken);
        }
        Ok(Self(token.to_owned()))
    }

    /// The cache key of this token in `namespace`.
    fn key(&self, namespace: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.0.as_bytes());
        hasher.update([0]);
        hasher.update(namespace.as_bytes());
        hasher.finalize().into()
    }
}

/// What the Kubernetes API said of a token in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Allowed,
    Denied,
    Unauthenticated,
}

impl Decision {
    fn kept_for(self) -> Duration {
        match self {
            Decision::Allowed => ALLOWED_FOR,
            Decision::Denied | Decision::Unauthenticated => REFUSED_FOR,
        }
    }
}

struct Reviewer {
    client: kube::Client,
    decisions: Mutex<Decisions>,
}

impl Reviewer {
    async fn decide(&self, token: &Token, namespace: &str) -> Result<Decision> {
        let key = token.key(namespace);
        let cached = self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key, Instant::now());
        if let Some(decision) = cached {
            return Ok(decision);
        }
        let decision = tokio::time::timeout(REVIEW_TIMEOUT, self.review(token, namespace))
            .await
            .map_err(|_| ApiError::AuthorisationUnavailable {
                reason: format!("no answer from the Kubernetes API within {REVIEW_TIMEOUT:?}"),
            })??;
        self.decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, decision, Instant::now());
        Ok(decision)
    }

    async fn review(&self, token: &Token, namespace: &str) -> Result<Decision> {
        let unavailable = |what: &str, error: kube::Error| ApiError::AuthorisationUnavailable {
            reason: format!("{what} failed: {error}"),
        };
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.0.clone()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|error| unavailable("TokenReview", error))?;
        let status = reviewed.status.unwrap_or_default();
        let user = match status.user {
            Some(user) if status.authenticated == Some(true) => user,
            _ => {
                tracing::debug!(
                    error = status.error.as_deref().unwrap_or(""),
                    "event status API: token not authenticated"
                );
                return Ok(Decision::Unauthenticated);
            }
        };
        let username = user.username.unwrap_or_default();
        let access = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(username.clone()),
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_owned()),
                    verb: Some(VERB.to_owned()),
                    group: Some(GROUP.to_owned()),
                    resource: Some(RESOURCE.to_owned()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &access)
            .await
            .map_err(|error| unavailable("SubjectAccessReview", error))?;
        let status = answer.status.unwrap_or_default();
        if status.allowed && status.denied != Some(true) {
            return Ok(Decision::Allowed);
        }
        tracing::info!(
            user = %username,
            %namespace,
            reason = status.reason.as_deref().unwrap_or(""),
            evaluation_error = status.evaluation_error.as_deref().unwrap_or(""),
            "event status API: reading a namespace's events denied"
        );
        Ok(Decision::Denied)
    }
}

/// Recent decisions by token digest and namespace, bounded.
#[derive(Default)]
struct Decisions {
    entries: HashMap<[u8; 32], (Decision, Instant)>,
}

impl Decisions {
    fn get(&self, key: &[u8; 32], now: Instant) -> Option<Decision> {
        self.entries
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(decision, _)| *decision)
    }

    fn put(&mut self, key: [u8; 32], decision: Decision, now: Instant) {
        if self.entries.len() >= CACHED_DECISIONS && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (_, until)| *until > now);
            if self.entries.len() >= CACHED_DECISIONS {
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, until))| *until)
                    .map(|(key, _)| *key);
                if let Some(soonest) = soonest {
                    self.entries.remove(&soonest);
                }
            }
        }
        self.entries
            .insert(key, (decision, now + decision.kept_for()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).unwrap(),
        );
        headers
    }

    #[test]
    fn only_a_bearer_token_is_taken() {
        assert_eq!(
            Token::from_headers(&headers("Bearer abc")).unwrap().0,
            "abc"
        );
        assert_eq!(
            Token::from_headers(&headers("bearer  abc ")).unwrap().0,
            "abc"
        );
        for refused in [
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
            "Bearer",
            "Bearer  ",
            "abc",
        ] {
            assert!(
                matches!(
                    Token::from_headers(&headers(refused)),
                    Err(ApiError::MissingToken)
                ),
                "{refused}"
            );
        }
        assert!(Token::from_headers(&HeaderMap::new()).is_err());
        assert_eq!(format!("{:?}", Token("secret".into())), "Token(…)");
    }

    #[test]
    fn decisions_are_kept_per_token_and_namespace_for_their_time() {
        let now = Instant::now();
        let token = Token("t".into());
        let mut decisions = Decisions::default();
        decisions.put(token.key("team-a"), Decision::Allowed, now);
        decisions.put(token.key("team-b"), Decision::Denied, now);
        assert_eq!(
            decisions.get(&token.key("team-a"), now),
            Some(Decision::Allowed)
        );
        assert_eq!(
            decisions.get(&token.key("team-b"), now),
            Some(Decision::Denied)
        );
        assert_eq!(decisions.get(&Token("u".into()).key("team-a"), now), None);
        let later = now + REFUSED_FOR + Duration::from_millis(1);
        assert_eq!(
            decisions.get(&token.key("team-b"), later),
            None,
            "refusals go first"
        );
        assert_eq!(
            decisions.get(&token.key("team-a"), later),
            Some(Decision::Allowed)
        );
        let much_later = now + ALLOWED_FOR + Duration::from_millis(1);
        assert_eq!(decisions.get(&token.key("team-a"), much_later), None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let now = Instant::now();
        let mut decisions = Decisions::default();
        for i in 0..CACHED_DECISIONS * 2 {
            let decision = if i % 2 == 0 {
                Decision::Allowed
            } else {
                Decision::Denied
            };
            decisions.put(Token(i.to_string()).key("ns"), decision, now);
        }
        assert_eq!(decisions.entries.len(), CACHED_DECISIONS);
        let last = Token((CACHED_DECISIONS * 2 - 1).to_string()).key("ns");
        assert_eq!(decisions.get(&last, now), Some(Decision::Denied));
    }

    #[tokio::test]
    async fn open_access_checks_the_namespace_name_only() {
        let access = Access::open();
        assert!(access.is_open());
        let tenant = access.authorise(&HeaderMap::new(), "team-a").await.unwrap();
        assert_eq!(tenant.namespace(), "team-a");
        let error = access
            .authorise(&HeaderMap::new(), "../kube-system")
            .await
            .unwrap_err();
        assert_eq!(error.status(), 400);
    }
}
