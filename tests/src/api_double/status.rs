//! `metav1.Status` error bodies, with the reasons, codes, details and message shapes the real
//! API server uses (`k8s.io/apimachinery/pkg/api/errors`).

use std::fmt;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::validation::FieldError;

/// A resource type as the API server names it in messages: `pipelineruns.tekton.dev`, or
/// `pods` in the core group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource {
            group: group.to_owned(),
            resource: resource.to_owned(),
        }
    }
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// A failed request, answered as a `metav1.Status` body with the matching HTTP code.
#[derive(Clone, Debug)]
pub struct ApiError {
    code: u16,
    reason: &'static str,
    message: String,
    details: Option<Value>,
    retry_after_seconds: Option<u32>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String) -> Self {
        ApiError {
            code,
            reason,
            message,
            details: None,
            retry_after_seconds: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// HTTP status code of the answer.
    #[cfg(test)]
    pub fn code(&self) -> u16 {
        self.code
    }

    /// 404 for an object that does not exist: `pipelineruns.tekton.dev "x" not found`.
    pub fn not_found(resource: &GroupResource, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
            .with_details(resource_details(resource, name))
    }

    /// 404 for a path the server does not serve.
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource".to_owned(),
        )
        .with_details(json!({}))
    }

    /// 409 for a create whose name is taken: `pipelineruns.tekton.dev "x" already exists`.
    pub fn already_exists(resource: &GroupResource, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{resource} \"{name}\" already exists"),
        )
        .with_details(resource_details(resource, name))
    }

    /// 409 for a write that lost an optimistic-concurrency race.
    pub fn conflict(resource: &GroupResource, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {resource} \"{name}\": {why}"),
        )
        .with_details(resource_details(resource, name))
    }

    /// 403 as the RBAC authorizer phrases it, e.g. `pipelineruns.tekton.dev is forbidden:
    /// User "u" cannot create resource "pipelineruns" in API group "tekton.dev" in the
    /// namespace "ns"`. `name` is empty for creates and collections.
    /// `rbac_resource` is the resource as RBAC names it (`{plural}/status` for the status
    /// subresource).
    pub fn forbidden(
        resource: &GroupResource,
        rbac_resource: &str,
        name: &str,
        user: &str,
        verb: &str,
        namespace: Option<&str>,
    ) -> Self {
        let scope = match namespace {
            Some(namespace) if !namespace.is_empty() => {
                format!("in the namespace \"{namespace}\"")
            }
            _ => "at the cluster scope".to_owned(),
        };
        let reason = format!(
            "User \"{user}\" cannot {verb} resource \"{rbac_resource}\" in API group \"{}\" \
             {scope}",
            resource.group
        );
        let message = if name.is_empty() {
            format!("{resource} is forbidden: {reason}")
        } else {
            format!("{resource} \"{name}\" is forbidden: {reason}")
        };
        Self::new(403, "Forbidden", message).with_details(resource_details(resource, name))
    }

    /// 422 for an object that fails validation: `PipelineRun.tekton.dev "x" is invalid:
    /// metadata.labels: Invalid value: …`, with one `details.causes` entry per field error.
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        let qualified_kind = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let aggregate = match errors {
            [one] => one.to_string(),
            many => format!(
                "[{}]",
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|error| {
                json!({"reason": error.reason(), "message": error.body(), "field": error.field})
            })
            .collect();
        let mut details = json!({"kind": kind, "causes": causes});
        if !name.is_empty() {
            details["name"] = json!(name);
        }
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        Self::new(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {aggregate}"),
        )
        .with_details(details)
    }

    /// 409 for a write whose `resourceVersion` precondition no longer holds.
    pub fn modified(resource: &GroupResource, name: &str) -> Self {
        Self::conflict(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version \
             and try again",
        )
    }

    /// 409 for a server-side apply that would change fields other managers own, with one
    /// `FieldManagerConflict` cause per field. `conflicts` holds (printed manager, path).
    pub fn apply_conflict(conflicts: &[(String, String)]) -> Self {
        let message = match conflicts {
            [(manager, path)] => {
                format!("Apply failed with 1 conflict: conflict with {manager}: {path}")
            }
            _ => {
                let mut managers: Vec<&str> = conflicts.iter().map(|(m, _)| m.as_str()).collect();
                managers.sort_unstable();
                managers.dedup();
                let mut lines = Vec::new();
                for manager in managers {
                    lines.push(format!("conflicts with {manager}:"));
                    for (_, path) in conflicts.iter().filter(|(m, _)| m == manager) {
                        lines.push(format!("- {path}"));
                    }
                }
                format!(
                    "Apply failed with {} conflicts: {}",
                    conflicts.len(),
                    lines.join("\n")
                )
            }
        };
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(manager, path)| {
                json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with {manager}"),
                    "field": path,
                })
            })
            .collect();
        Self::new(409, "Conflict", message).with_details(json!({"causes": causes}))
    }

    /// 410 for a watch or list from a resource version older than the server keeps:
    /// `too old resource version: 3 (10)`.
    pub fn expired(message: String) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 406 for an `Accept` header the server cannot answer.
    pub fn not_acceptable(accepted: &str) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: {accepted}"),
        )
    }

    /// 415 for a PATCH body in a format the resource does not take.
    pub fn unsupported_media_type(accepted: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types \
                 include: {accepted}"
            ),
        )
    }

    /// 422 for a JSON patch that does not apply: the API server answers this generic message
    /// and drops the patch library's reason.
    pub fn unprocessable() -> Self {
        Self::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request".to_owned(),
        )
        .with_details(json!({}))
    }

    /// 400 with a free-form message, as for undecodable bodies and mismatched namespaces.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into())
    }

    /// 401 for a missing or unknown bearer token.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized".to_owned())
    }

    /// 405 for a method the double does not serve on this path.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".to_owned(),
        )
        .with_details(json!({}))
    }

    /// 413 for a body over the API server's 3 MiB request limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 429 from API Priority and Fairness, with `Retry-After` and `details.retryAfterSeconds`.
    pub fn too_many_requests(retry_after_seconds: u32) -> Self {
        let mut error = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.".to_owned(),
        )
        .with_details(json!({"retryAfterSeconds": retry_after_seconds}));
        error.retry_after_seconds = Some(retry_after_seconds);
        error
    }

    /// 500: `Internal error occurred: <cause>`.
    pub fn internal(cause: &str) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {cause}"),
        )
        .with_details(json!({"causes": [{"message": cause}]}))
    }

    /// 503, as when the server cannot reach its storage.
    pub fn service_unavailable() -> Self {
        Self::new(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request".to_owned(),
        )
        .with_details(json!({}))
    }

    /// 504 from the server's request timeout.
    pub fn timeout() -> Self {
        Self::new(
            504,
            "Timeout",
            "Timeout: request did not complete within the allotted timeout".to_owned(),
        )
        .with_details(json!({}))
    }

    /// The `metav1.Status` body.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            body["details"] = details.clone();
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (code, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// `details` naming one object: `{name, group, kind: <plural>}`, empty fields left out.
fn resource_details(resource: &GroupResource, name: &str) -> Value {
    let mut details = json!({"kind": resource.resource});
    if !name.is_empty() {
        details["name"] = json!(name);
    }
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    details
}
