//! The review APIs a server uses to check its own clients' credentials: TokenReview
//! (`authentication.k8s.io/v1`, "whose token is this?") and SubjectAccessReview
//! (`authorization.k8s.io/v1`, "may this user do that?").
//!
//! As in the real API server, both are cluster-scoped, create-only and never stored: a
//! `POST` to `/apis/{group}/v1/{plural}` answers `201` with the object sent and its `status`
//! filled in; other methods are `405`, namespaced paths `404`. The caller needs `create` on
//! the resource at the cluster scope (the request pipeline checks it like any other).
//!
//! - **TokenReview** decodes like any create, then `spec.token` is required (`400`
//!   `token is required for TokenReview in authentication`). A token the double knows
//!   answers `authenticated: true` and `user` (`username`, `uid`, `groups`: those the test
//!   registered, `system:authenticated` and, for service accounts, their groups); an unknown
//!   one answers `authenticated: false` with no user. `spec.audiences` are echoed back.
//! - **SubjectAccessReview**: exactly one of `spec.resourceAttributes` and
//!   `spec.nonResourceAttributes`, and a `spec.user` or `spec.groups`, else `422 Invalid`
//!   with the real field messages; `metadata` must be empty. The decision is the RBAC
//!   table's for exactly the user and groups in the spec (nothing added, as the
//!   authorizers do): the resource as `{resource}/{subresource}`, a namespace of `""` the
//!   cluster scope. An allowed answer gives a `reason` naming the rule's subject; a denied
//!   one no reason. Non-resource URLs are never allowed (the table has no rules for them);
//!   `resourceAttributes.name` and selectors are not looked at (rules have no
//!   `resourceNames`).

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use super::handlers::decode;
use super::rbac::{Identity, Subject};
use super::request::{ResourceRequest, Verb};
use super::server::{Shared, lock};
use super::status::ApiError;
use super::validation::FieldError;

const AUTHENTICATION: &str = "authentication.k8s.io";
const AUTHORIZATION: &str = "authorization.k8s.io";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Review {
    Token,
    SubjectAccess,
}

impl Review {
    fn of(request: &ResourceRequest) -> Option<Self> {
        match (request.group.as_str(), request.resource.as_str()) {
            (AUTHENTICATION, "tokenreviews") => Some(Review::Token),
            (AUTHORIZATION, "subjectaccessreviews") => Some(Review::SubjectAccess),
            _ => None,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Review::Token => "TokenReview",
            Review::SubjectAccess => "SubjectAccessReview",
        }
    }
}

/// The answer to an authorized request on a review resource; `None` for other resources.
pub fn serve(shared: &Shared, request: &ResourceRequest, body: &[u8]) -> Option<Response> {
    let review = Review::of(request)?;
    Some(answer(shared, review, request, body).unwrap_or_else(IntoResponse::into_response))
}

fn answer(
    shared: &Shared,
    review: Review,
    request: &ResourceRequest,
    body: &[u8],
) -> Result<Response, ApiError> {
    if request.namespace.is_some()
        || request.name.is_some()
        || request.subresource.is_some()
        || request.version != "v1"
    {
        return Err(ApiError::path_not_found());
    }
    if request.verb != Verb::Create {
        return Err(ApiError::method_not_allowed());
    }
    let (mut object, kind) = decode(request, Some(review.kind()), body, false)?;
    if kind != review.kind() {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): {kind}",
            review.kind()
        )));
    }
    let status = match review {
        Review::Token => token_review(shared, &object)?,
        Review::SubjectAccess => subject_access_review(shared, &object)?,
    };
    object["status"] = status;
    object["metadata"]["creationTimestamp"] = Value::Null;
    Ok((StatusCode::CREATED, axum::Json(object)).into_response())
}

fn token_review(shared: &Shared, object: &Value) -> Result<Value, ApiError> {
    let token = object["spec"]["token"].as_str().unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let mut status = match lock(&shared.rbac).identity_of(token) {
        Some(identity) => {
            let mut user = json!({"username": identity.user, "groups": identity.groups});
            if let Some(uid) = identity.uid {
                user["uid"] = json!(uid);
            }
            json!({"authenticated": true, "user": user})
        }
        None => json!({"user": {}}),
    };
    if let Some(audiences) = object["spec"].get("audiences").filter(|a| a.is_array()) {
        status["audiences"] = audiences.clone();
    }
    Ok(status)
}

fn subject_access_review(shared: &Shared, object: &Value) -> Result<Value, ApiError> {
    let spec = &object["spec"];
    let present = |field: &str| spec.get(field).is_some_and(|v| !v.is_null());
    let mut errors = Vec::new();
    match (
        present("resourceAttributes"),
        present("nonResourceAttributes"),
    ) {
        (true, true) => errors.push(FieldError::invalid_literal(
            "spec.nonResourceAttributes",
            &spec["nonResourceAttributes"].to_string(),
            "cannot be specified in combination with resourceAttributes",
        )),
        (false, false) => errors.push(FieldError::invalid_literal(
            "spec.resourceAttributes",
            "nil",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
        _ => {}
    }
    let user = spec["user"].as_str().unwrap_or_default();
    let groups: Vec<String> = spec["groups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if user.is_empty() && groups.is_empty() {
        errors.push(FieldError::invalid(
            "spec.user",
            user,
            "at least one of user or group must be specified",
        ));
    }
    let metadata_set = object["metadata"]
        .as_object()
        .is_some_and(|metadata| metadata.iter().any(|(_, v)| !is_empty(v)));
    if metadata_set {
        errors.push(FieldError::invalid_literal(
            "metadata",
            &object["metadata"].to_string(),
            "must be empty",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            AUTHORIZATION,
            Review::SubjectAccess.kind(),
            "",
            &errors,
        ));
    }
    let Some(attributes) = spec["resourceAttributes"].as_object() else {
        return Ok(json!({"allowed": false}));
    };
    let text = |field: &str| attributes.get(field).and_then(Value::as_str).unwrap_or("");
    let resource = match text("subresource") {
        "" => text("resource").to_owned(),
        subresource => format!("{}/{subresource}", text("resource")),
    };
    let namespace = Some(text("namespace")).filter(|ns| !ns.is_empty());
    let identity = Identity {
        user: user.to_owned(),
        groups,
        uid: spec["uid"].as_str().map(str::to_owned),
    };
    let rbac = lock(&shared.rbac);
    let status = match rbac.rule_allowing(
        &identity,
        text("verb"),
        text("group"),
        &resource,
        namespace,
    ) {
        Some(rule) => {
            let subject = match &rule.subject {
                Subject::User(user) => format!("User {user:?}"),
                Subject::Group(group) => format!("Group {group:?}"),
            };
            let scope = if rule.namespace == "*" {
                "cluster-wide".to_owned()
            } else {
                format!("in namespace {:?}", rule.namespace)
            };
            json!({"allowed": true, "reason": format!("RBAC: allowed by a rule {scope} to {subject}")})
        }
        None => json!({"allowed": false}),
    };
    Ok(status)
}

/// A metadata field a client sends when it means "nothing": null, `""`, `{}` or `[]`.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}
