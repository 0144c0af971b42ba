//! TokenReview and SubjectAccessReview against the real `kube` client and its typed
//! objects, as a server checking its own clients would call them.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::*;

async fn review_token(api: &ApiDouble, token: &str) -> Result<TokenReview, kube::Error> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_owned()),
            audiences: None,
        },
        ..TokenReview::default()
    };
    Api::<TokenReview>::all(api.client().await)
        .create(&PostParams::default(), &review)
        .await
}

fn may_get_listeners(user: &str, groups: &[&str], namespace: &str) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            groups: Some(groups.iter().map(|g| (*g).to_owned()).collect()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_owned()),
                verb: Some("get".to_owned()),
                group: Some("triggers.tekton.dev".to_owned()),
                resource: Some("eventlisteners".to_owned()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

async fn review_access(
    api: &ApiDouble,
    review: &SubjectAccessReview,
) -> Result<SubjectAccessReview, kube::Error> {
    Api::<SubjectAccessReview>::all(api.client().await)
        .create(&PostParams::default(), review)
        .await
}

fn api_status(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_review_names_the_user_behind_a_known_token_only() {
    let api = ApiDouble::start().await;
    api.grant_reviews(api.controller_user());
    let token = api.add_token("alice", &["team-a-devs"]);

    let known = review_token(&api, &token).await.unwrap();
    let status = known.status.expect("status");
    assert_eq!(status.authenticated, Some(true));
    let user = status.user.expect("user");
    assert_eq!(user.username.as_deref(), Some("alice"));
    assert_eq!(
        user.groups.unwrap_or_default(),
        ["team-a-devs", "system:authenticated"]
    );
    assert!(user.uid.is_some_and(|uid| !uid.is_empty()));

    let unknown = review_token(&api, "not-a-token").await.unwrap();
    let status = unknown.status.expect("status");
    assert_ne!(status.authenticated, Some(true));
    assert!(status.user.is_none_or(|user| user.username.is_none()));

    // Nothing was stored: a review is a question, not an object.
    assert!(
        api.all_objects("authentication.k8s.io", "tokenreviews")
            .is_empty()
    );

    let empty = api_status(review_token(&api, "").await);
    assert_eq!((empty.code, empty.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        empty.message,
        "token is required for TokenReview in authentication"
    );
}

#[tokio::test]
async fn reviews_need_the_right_to_create_them() {
    let api = ApiDouble::start().await;
    let token = api.add_token("alice", &[]);
    let denied = api_status(review_token(&api, &token).await);
    assert_eq!(denied.code, 403);
    assert!(
        denied
            .message
            .contains("cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope"),
        "{}",
        denied.message
    );
    let denied = api_status(review_access(&api, &may_get_listeners("alice", &[], "a")).await);
    assert_eq!(denied.code, 403);
}

#[tokio::test]
async fn an_access_review_answers_from_the_rbac_table_for_the_user_and_groups_given() {
    let api = ApiDouble::start().await;
    api.grant_reviews(api.controller_user());
    api.grant(
        "alice",
        &["get"],
        "triggers.tekton.dev",
        "eventlisteners",
        "team-a",
    );
    api.grant_group(
        "team-b-devs",
        &["get", "list"],
        "triggers.tekton.dev",
        "eventlisteners",
        "team-b",
    );
    let alice = review_access(&api, &may_get_listeners("alice", &[], "team-a"))
        .await
        .unwrap();
    let status = alice.status.expect("status");
    assert!(status.allowed);
    assert!(status.reason.unwrap_or_default().contains("User \"alice\""));
    assert!(!allowed(&api, "alice", &[], "team-b").await);
    // Groups count only when the review names them.
    assert!(allowed(&api, "bob", &["team-b-devs"], "team-b").await);
    assert!(!allowed(&api, "bob", &[], "team-b").await);
    // A namespaced grant says nothing of the cluster scope.
    assert!(!allowed(&api, "alice", &[], "").await);
}

async fn allowed(api: &ApiDouble, user: &str, groups: &[&str], namespace: &str) -> bool {
    review_access(api, &may_get_listeners(user, groups, namespace))
        .await
        .unwrap()
        .status
        .expect("status")
        .allowed
}

#[tokio::test]
async fn an_access_review_without_a_subject_or_attributes_is_invalid() {
    let api = ApiDouble::start().await;
    api.grant_reviews(api.controller_user());
    let mut review = may_get_listeners("", &[], "team-a");
    review.spec.groups = None;
    let invalid = api_status(review_access(&api, &review).await);
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
    assert!(
        invalid.message.contains(
            "spec.user: Invalid value: \"\": at least one of user or group must be specified"
        ),
        "{}",
        invalid.message
    );
    let mut both = may_get_listeners("alice", &[], "team-a");
    both.spec.non_resource_attributes = Some(NonResourceAttributes {
        path: Some("/healthz".to_owned()),
        verb: Some("get".to_owned()),
    });
    let invalid = api_status(review_access(&api, &both).await);
    assert!(
        invalid
            .message
            .contains("cannot be specified in combination with resourceAttributes"),
        "{}",
        invalid.message
    );
    let mut neither = may_get_listeners("alice", &[], "team-a");
    neither.spec.resource_attributes = None;
    let invalid = api_status(review_access(&api, &neither).await);
    assert!(
        invalid.message.contains(
            "exactly one of nonResourceAttributes or resourceAttributes must be specified"
        ),
        "{}",
        invalid.message
    );
}

#[tokio::test]
async fn reviews_are_created_only() {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let http = reqwest::Client::new();
    let get = http
        .get(format!(
            "{}/apis/authorization.k8s.io/v1/subjectaccessreviews",
            api.url()
        ))
        .bearer_auth(api.token())
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let namespaced = http
        .post(format!(
            "{}/apis/authentication.k8s.io/v1/namespaces/a/tokenreviews",
            api.url()
        ))
        .bearer_auth(api.token())
        .json(&serde_json::json!({"spec": {"token": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(namespaced.status(), 404);
}
