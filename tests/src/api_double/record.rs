//! The request log: every request the double received, in arrival order, with who made it,
//! as whom, and how it was answered (faulted ones included).

use std::time::SystemTime;

use http::Method;

use super::request::Verb;

/// One request as the double saw and answered it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    /// Resolved verb, for paths that name a resource.
    pub verb: Option<Verb>,
    pub group: Option<String>,
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// `Some("status")` for requests on the status subresource.
    pub subresource: Option<String>,
    /// Who the bearer token authenticated, if anyone.
    pub authenticated_user: Option<String>,
    /// Who the request acted as: the impersonated user if impersonation was allowed, else
    /// the authenticated one.
    pub user: Option<String>,
    /// The `Impersonate-User` header, whether or not it was allowed.
    pub impersonated_user: Option<String>,
    /// The `Impersonate-Group` headers.
    pub impersonated_groups: Vec<String>,
    /// The HTTP status answered; `None` while in flight, or if the client went away first.
    pub status: Option<u16>,
    /// Whether an injected fault (failure, hang or delay) applied.
    pub faulted: bool,
    /// When it arrived.
    pub at: SystemTime,
    /// When it was answered (for a successful create: when the object was stored).
    pub answered_at: Option<SystemTime>,
    /// The `Accept` header: `as=PartialObjectMetadata…` when only metadata was asked for.
    pub accept: Option<String>,
}

impl RecordedRequest {
    pub(crate) fn arrived(
        method: Method,
        path: &str,
        query: Option<&str>,
        accept: Option<&str>,
    ) -> Self {
        RecordedRequest {
            method,
            path: path.to_owned(),
            query: query.map(str::to_owned),
            verb: None,
            group: None,
            resource: None,
            namespace: None,
            name: None,
            subresource: None,
            authenticated_user: None,
            user: None,
            impersonated_user: None,
            impersonated_groups: Vec::new(),
            status: None,
            faulted: false,
            at: SystemTime::now(),
            answered_at: None,
            accept: accept.map(str::to_owned),
        }
    }

    /// Whether it asked for metadata only (`PartialObjectMetadata` or its list).
    pub fn metadata_only(&self) -> bool {
        self.accept
            .as_deref()
            .is_some_and(|accept| accept.contains("as=PartialObjectMetadata"))
    }

    /// Whether this was `verb` on `resource` (plural, any group).
    pub fn is(&self, verb: Verb, resource: &str) -> bool {
        self.verb == Some(verb) && self.resource.as_deref() == Some(resource)
    }
}
