//! Authentication (bearer tokens), impersonation and authorization (a small RBAC table).
//!
//! As in the real server: a bearer token names the authenticated user; `Impersonate-User` /
//! `Impersonate-Group` switch to another identity only if the authenticated user may
//! `impersonate` it (users and groups cluster-wide, service accounts in their namespace);
//! the effective identity must then be allowed the verb on the resource in the namespace.
//! A rule's namespace `*` covers every namespace and the cluster scope, like a
//! ClusterRoleBinding; a named namespace covers only that namespace, like a RoleBinding.

use http::HeaderMap;

use super::request::Verb;
use super::status::{ApiError, GroupResource};

const AUTHENTICATED: &str = "system:authenticated";
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Who a request acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    /// The uid a token authenticates with (a TokenReview returns it); none when
    /// impersonated without `Impersonate-Uid`.
    pub uid: Option<String>,
}

impl Identity {
    /// The identity a token or impersonation grants to `user`, with the groups the API
    /// server adds: `system:authenticated`, and for service accounts
    /// `system:serviceaccounts` and `system:serviceaccounts:<namespace>`.
    pub fn new(user: &str, mut groups: Vec<String>) -> Self {
        if groups.is_empty()
            && let Some((namespace, _)) = service_account(user)
        {
            groups.push("system:serviceaccounts".to_owned());
            groups.push(format!("system:serviceaccounts:{namespace}"));
        }
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_owned());
        }
        Identity {
            user: user.to_owned(),
            groups,
            uid: None,
        }
    }
}

/// `system:serviceaccount:<namespace>:<name>` → `(namespace, name)`.
fn service_account(user: &str) -> Option<(&str, &str)> {
    user.strip_prefix(SERVICE_ACCOUNT_PREFIX)?.split_once(':')
}

/// The impersonation headers of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Impersonation {
    pub user: Option<String>,
    pub groups: Vec<String>,
    pub uid: Option<String>,
}

impl Impersonation {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        Impersonation {
            user: text("impersonate-user").into_iter().next(),
            groups: text("impersonate-group"),
            uid: text("impersonate-uid").into_iter().next(),
        }
    }
}

/// Whom a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    User(String),
    Group(String),
}

/// One allowed (verb, API group, resource, namespace) for a subject; each may be `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub subject: Subject,
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub namespace: String,
}

/// Tokens and rules.
#[derive(Default)]
pub struct Rbac {
    tokens: Vec<(String, Identity)>,
    rules: Vec<Rule>,
}

impl std::fmt::Debug for Rbac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users: Vec<&str> = self.tokens.iter().map(|(_, id)| id.user.as_str()).collect();
        f.debug_struct("Rbac")
            .field("token_users", &users)
            .field("rules", &self.rules)
            .finish()
    }
}

impl Rbac {
    /// Makes `token` authenticate as `user`.
    pub fn add_token(&mut self, token: &str, user: &str) {
        self.add_identity(token, Identity::new(user, Vec::new()));
    }

    /// Makes `token` authenticate as `identity`.
    pub fn add_identity(&mut self, token: &str, identity: Identity) {
        self.tokens.push((token.to_owned(), identity));
    }

    /// The identity of the `Authorization: Bearer` token, if any is known.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Identity> {
        let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.identity_of(token.trim())
    }

    /// The identity `token` authenticates as, if it is known.
    pub fn identity_of(&self, token: &str) -> Option<Identity> {
        self.tokens
            .iter()
            .find(|(known, _)| known == token)
            .map(|(_, identity)| identity.clone())
    }

    /// The identity the request acts as: the impersonated one if asked for and allowed,
    /// else the authenticated one.
    pub fn effective(
        &self,
        actor: &Identity,
        request: &Impersonation,
    ) -> Result<Identity, ApiError> {
        let Some(user) = &request.user else {
            if request.groups.is_empty() && request.uid.is_none() {
                return Ok(actor.clone());
            }
            return Err(ApiError::internal(
                "requested impersonation of groups or uid without impersonating a user",
            ));
        };
        let mut checks: Vec<(&str, &str, Option<&str>)> = Vec::new();
        match service_account(user) {
            Some((namespace, name)) => checks.push(("serviceaccounts", name, Some(namespace))),
            None => checks.push(("users", user, None)),
        }
        checks.extend(request.groups.iter().map(|g| ("groups", g.as_str(), None)));
        if let Some(uid) = &request.uid {
            checks.push(("uids", uid, None));
        }
        for (resource, name, namespace) in checks {
            if !self.allows(actor, "impersonate", "", resource, namespace) {
                return Err(ApiError::forbidden(
                    &GroupResource::new("", resource),
                    resource,
                    name,
                    &actor.user,
                    "impersonate",
                    namespace,
                ));
            }
        }
        let mut identity = Identity::new(user, request.groups.clone());
        identity.uid.clone_from(&request.uid);
        Ok(identity)
    }

    /// Whether `identity` may do `verb` on `resource` of `group` in `namespace` (`None`:
    /// cluster scope).
    pub fn allows(
        &self,
        identity: &Identity,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> bool {
        self.rule_allowing(identity, verb, group, resource, namespace)
            .is_some()
    }

    /// The first rule that lets `identity` do `verb` on `resource` of `group` in `namespace`
    /// (`None`: cluster scope).
    pub fn rule_allowing(
        &self,
        identity: &Identity,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Option<&Rule> {
        let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        self.rules.iter().find(|rule| {
            let subject = match &rule.subject {
                Subject::User(user) => *user == identity.user,
                Subject::Group(group) => identity.groups.contains(group),
            };
            subject
                && matches(&rule.verb, verb)
                && matches(&rule.group, group)
                && matches(&rule.resource, resource)
                && match namespace {
                    Some(namespace) => matches(&rule.namespace, namespace),
                    None => rule.namespace == "*",
                }
        })
    }

    /// Whether the request may go on, else the 403 the authorizer answers.
    pub fn authorize(
        &self,
        identity: &Identity,
        verb: Verb,
        resource: &GroupResource,
        rbac_resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        if self.allows(
            identity,
            verb.as_str(),
            &resource.group,
            rbac_resource,
            namespace,
        ) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                resource,
                rbac_resource,
                name,
                &identity.user,
                verb.as_str(),
                namespace,
            ))
        }
    }

    /// Adds one rule per verb.
    pub fn grant(
        &mut self,
        subject: Subject,
        verbs: &[&str],
        group: &str,
        resource: &str,
        namespace: &str,
    ) {
        for verb in verbs {
            let rule = Rule {
                subject: subject.clone(),
                verb: (*verb).to_owned(),
                group: group.to_owned(),
                resource: resource.to_owned(),
                namespace: namespace.to_owned(),
            };
            if !self.rules.contains(&rule) {
                self.rules.push(rule);
            }
        }
    }

    /// Removes the rules that `grant` with the same arguments added.
    pub fn revoke(
        &mut self,
        subject: &Subject,
        verbs: &[&str],
        group: &str,
        resource: &str,
        namespace: &str,
    ) {
        self.rules.retain(|rule| {
            !(rule.subject == *subject
                && verbs.contains(&rule.verb.as_str())
                && rule.group == group
                && rule.resource == resource
                && rule.namespace == namespace)
        });
    }

    /// Removes every rule of a subject.
    pub fn revoke_all(&mut self, subject: &Subject) {
        self.rules.retain(|rule| rule.subject != *subject);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_rules_do_not_reach_other_namespaces_or_the_cluster_scope() {
        let mut rbac = Rbac::default();
        let alice = Identity::new("alice", Vec::new());
        rbac.grant(
            Subject::User("alice".into()),
            &["create"],
            "tekton.dev",
            "pipelineruns",
            "a",
        );
        assert!(rbac.allows(&alice, "create", "tekton.dev", "pipelineruns", Some("a")));
        assert!(!rbac.allows(&alice, "create", "tekton.dev", "pipelineruns", Some("b")));
        assert!(!rbac.allows(&alice, "create", "tekton.dev", "pipelineruns", None));
        assert!(!rbac.allows(&alice, "delete", "tekton.dev", "pipelineruns", Some("a")));
    }

    #[test]
    fn service_account_impersonation_needs_the_right_in_its_namespace() {
        let mut rbac = Rbac::default();
        let controller = Identity::new("system:serviceaccount:sys:ctl", Vec::new());
        assert!(
            controller
                .groups
                .contains(&"system:serviceaccounts:sys".to_owned())
        );
        let request = Impersonation {
            user: Some("system:serviceaccount:tenant:builder".into()),
            ..Impersonation::default()
        };
        let denied = rbac.effective(&controller, &request).unwrap_err();
        assert_eq!(denied.code(), 403);
        assert_eq!(
            denied.body()["message"],
            "serviceaccounts \"builder\" is forbidden: User \"system:serviceaccount:sys:ctl\" \
             cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \
             \"tenant\""
        );
        rbac.grant(
            Subject::Group("system:serviceaccounts:sys".into()),
            &["impersonate"],
            "",
            "serviceaccounts",
            "tenant",
        );
        let builder = rbac.effective(&controller, &request).unwrap();
        assert_eq!(builder.user, "system:serviceaccount:tenant:builder");
        assert!(
            builder
                .groups
                .contains(&"system:serviceaccounts:tenant".to_owned())
        );
    }
}
