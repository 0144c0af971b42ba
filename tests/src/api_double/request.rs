//! Turning an HTTP method and path into an API request: verb, group, version, resource,
//! namespace and name, the way the API server's request-info resolver does.
//!
//! Served paths, for any group, version and resource (`/api/v1` is the core group):
//!
//! | path | GET | POST | PUT | PATCH | DELETE |
//! | --- | --- | --- | --- | --- | --- |
//! | `/apis/{g}/{v}/namespaces/{ns}/{plural}` | list, watch | create | – | – | – |
//! | `/apis/{g}/{v}/namespaces/{ns}/{plural}/{name}` | get | – | update | patch | delete |
//! | `/apis/{g}/{v}/namespaces/{ns}/{plural}/{name}/status` | get | – | update | patch | – |
//! | `/apis/{g}/{v}/{plural}` | list, watch across namespaces | create cluster-scoped | – | – | – |
//! | `/apis/{g}/{v}/{plural}/{name}` | get | – | update | patch | delete |
//! | `/apis/{g}/{v}/{plural}/{name}/status` | get | – | update | patch | – |
//!
//! The last two rows are cluster-scoped. `status` is the only subresource served, and every
//! resource has it, as custom resources whose CRD declares `subresources.status` do. RBAC
//! names a subresource `{plural}/status`.

use std::collections::HashMap;
use std::fmt;

use http::Method;

use super::status::{ApiError, GroupResource};

/// The API verbs the double serves; RBAC rules and faults are keyed by them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Create,
    Get,
    List,
    Watch,
    Delete,
    /// PUT of a whole object (or of its status).
    Update,
    /// PATCH: merge, JSON or server-side apply.
    Patch,
}

impl Verb {
    /// The verb as RBAC spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Delete => "delete",
            Verb::Update => "update",
            Verb::Patch => "patch",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request on a resource, resolved from its method and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRequest {
    pub verb: Verb,
    pub group: String,
    pub version: String,
    pub resource: String,
    /// `None` for cluster-scoped paths (including lists across all namespaces).
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// `Some("status")` for the status subresource.
    pub subresource: Option<String>,
}

impl ResourceRequest {
    pub fn group_resource(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.resource)
    }

    /// The resource as RBAC names it: `{plural}` or `{plural}/{subresource}`.
    pub fn rbac_resource(&self) -> String {
        match &self.subresource {
            Some(subresource) => format!("{}/{subresource}", self.resource),
            None => self.resource.clone(),
        }
    }

    /// Whether this addresses the status subresource.
    pub fn is_status(&self) -> bool {
        self.subresource.as_deref() == Some("status")
    }

    /// `v1` for the core group, else `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Query parameters, last value wins.
pub type Query = HashMap<String, String>;

/// Resolves a resource request, or answers 404 (unknown path) / 405 (unserved method).
pub fn resolve(method: &Method, path: &str, query: &Query) -> Result<ResourceRequest, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        return Err(ApiError::path_not_found());
    }
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::path_not_found()),
    };
    let (namespace, resource, name, subresource) = match rest {
        ["namespaces", namespace, resource] => (Some(*namespace), *resource, None, None),
        ["namespaces", namespace, resource, name] => {
            (Some(*namespace), *resource, Some(*name), None)
        }
        ["namespaces", namespace, resource, name, "status"] => {
            (Some(*namespace), *resource, Some(*name), Some("status"))
        }
        [resource] => (None, *resource, None, None),
        [resource, name] => (None, *resource, Some(*name), None),
        [resource, name, "status"] => (None, *resource, Some(*name), Some("status")),
        _ => return Err(ApiError::path_not_found()),
    };
    let watch = matches!(
        query.get("watch").map(String::as_str),
        Some("true" | "1" | "True")
    );
    let verb = match (method, name) {
        (&Method::GET, Some(_)) => Verb::Get,
        (&Method::GET, None) if watch => Verb::Watch,
        (&Method::GET, None) => Verb::List,
        (&Method::POST, None) => Verb::Create,
        (&Method::PUT, Some(_)) => Verb::Update,
        (&Method::PATCH, Some(_)) => Verb::Patch,
        (&Method::DELETE, Some(_)) if subresource.is_none() => Verb::Delete,
        _ => return Err(ApiError::method_not_allowed()),
    };
    Ok(ResourceRequest {
        verb,
        group: group.to_owned(),
        version: version.to_owned(),
        resource: resource.to_owned(),
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
        subresource: subresource.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, query: &[(&str, &str)]) -> Result<ResourceRequest, u16> {
        let query = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        resolve(&Method::GET, path, &query).map_err(|e| e.code())
    }

    #[test]
    fn paths_resolve_like_the_api_server() {
        let list = get("/apis/tekton.dev/v1/namespaces/ns/pipelineruns", &[]).unwrap();
        assert_eq!(
            (list.verb, list.group.as_str(), list.namespace.as_deref()),
            (Verb::List, "tekton.dev", Some("ns"))
        );
        assert_eq!(list.api_version(), "tekton.dev/v1");
        let watch = get("/api/v1/namespaces/ns/pods", &[("watch", "1")]).unwrap();
        assert_eq!(
            (watch.verb, watch.api_version()),
            (Verb::Watch, "v1".into())
        );
        let one = get("/api/v1/namespaces/ns/pods/p", &[]).unwrap();
        assert_eq!((one.verb, one.name.as_deref()), (Verb::Get, Some("p")));
        let all = get("/apis/tekton.dev/v1/pipelineruns", &[]).unwrap();
        assert_eq!((all.verb, all.namespace), (Verb::List, None));
        assert_eq!(get("/apis/tekton.dev", &[]), Err(404));
        assert_eq!(get("/api/v1/namespaces/ns/pods/p/log", &[]), Err(404));
        assert_eq!(get("/healthz", &[]), Err(404));
        let status = get("/api/v1/namespaces/ns/pods/p/status", &[]).unwrap();
        assert_eq!(
            (status.verb, status.rbac_resource().as_str()),
            (Verb::Get, "pods/status")
        );
        let put = resolve(&Method::PUT, "/api/v1/namespaces/ns/pods", &Query::new());
        assert_eq!(put.map_err(|e| e.code()), Err(405));
        let patch = resolve(
            &Method::PATCH,
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l/status",
            &Query::new(),
        )
        .unwrap();
        assert_eq!((patch.verb, patch.is_status()), (Verb::Patch, true));
        let delete = resolve(&Method::DELETE, "/api/v1/pods/p/status", &Query::new());
        assert_eq!(delete.map_err(|e| e.code()), Err(405));
    }
}
