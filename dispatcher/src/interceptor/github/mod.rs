//! The github interceptor's GitHub features, which the dispatcher runs in the trigger's
//! chain once the event is durable (its signature and event types were checked at the
//! edge, before the `202`):
//!
//! - this file: [`run`], what `githubOwners` and `addChangedFiles` make of an event;
//! - [`payload`]: what they read from the body;
//! - [`api`]: requests to GitHub's REST API (base URL, token, retries, pages);
//! - [`owners`]: who may run the trigger.
//!
//! As in Tekton, `githubOwners` acts on `pull_request` and `issue_comment` events and
//! `addChangedFiles` on `pull_request` and `push` events; other events go through. When an
//! interceptor has both, the owners check runs first.

pub mod api;
mod owners;
mod payload;

#[cfg(test)]
mod tests;

use serde_json::Value;
use sluice_runtime::retry::FailureKind;
use sluice_triggers::catalogue::{GitHubInterceptor, GitHubToken, OwnersCheck};
use sluice_triggers::secret::SecretValue;

pub use api::{
    DEFAULT_API_URL, ENTERPRISE_HOST_HEADER, EnterpriseHosts, GitHubApi, GitHubSettings,
};

use super::{EventState, InterceptorError};
use crate::interceptor::webhook::retry::Failure;
use payload::{ISSUE_COMMENT, PULL_REQUEST, PUSH};

/// The extension `addChangedFiles` sets: the file names joined with `,`.
pub const CHANGED_FILES: &str = "changed_files";
/// The header naming the event type.
const EVENT_HEADER: &str = "X-GitHub-Event";

/// Runs the GitHub features of `github` on the event. `Some`: why the owners check stopped
/// the trigger.
pub(super) async fn run(
    api: &GitHubApi,
    github: &GitHubInterceptor,
    state: &mut EventState,
) -> Result<Option<String>, InterceptorError> {
    let failed = |failure: Failure| InterceptorError {
        interceptor: "github".to_owned(),
        kind: failure.kind,
        message: failure.message,
    };
    let event = state
        .headers
        .get_all(EVENT_HEADER)
        .and_then(|values| values.first())
        .cloned()
        .unwrap_or_default();
    if let Some(owners) = &github.owners
        && matches!(event.as_str(), PULL_REQUEST | ISSUE_COMMENT)
    {
        let stop = check_owners(api, &owners.token, owners.check, state, &event)
            .await
            .map_err(failed)?;
        if stop.is_some() {
            return Ok(stop);
        }
    }
    if let Some(changed) = &github.changed_files
        && matches!(event.as_str(), PULL_REQUEST | PUSH)
    {
        let files = changed_files(api, &changed.token, state, &event)
            .await
            .map_err(failed)?;
        state
            .extensions
            .insert(CHANGED_FILES.to_owned(), Value::String(files.join(",")));
    }
    Ok(None)
}

/// The token, or why its Secret cannot be read: the configuration's problem, so the event
/// is dead-lettered for a replay once it is fixed.
fn token(token: &GitHubToken) -> Result<Option<&SecretValue>, Failure> {
    match token {
        Ok(token) => Ok(token.as_ref()),
        Err(reason) => Err(Failure::permanent(format!(
            "the personalAccessToken cannot be read: {reason}"
        ))),
    }
}

fn bad_body(message: String) -> Failure {
    Failure {
        kind: FailureKind::BadInput,
        ..Failure::permanent(format!("the event's body cannot be read: {message}"))
    }
}

/// `githubOwners`: `None` when the sender may run the trigger — an owner opening or
/// updating a pull request, or an owner's comment that is `/ok-to-test` on a line of its own.
async fn check_owners(
    api: &GitHubApi,
    token_ref: &GitHubToken,
    check: OwnersCheck,
    state: &EventState,
    event: &str,
) -> Result<Option<String>, Failure> {
    let token = token(token_ref)?;
    if token.is_none() && check != OwnersCheck::None {
        let check_type = match check {
            OwnersCheck::Unset => "is not set",
            OwnersCheck::OrgMembers => "is `orgMembers`",
            OwnersCheck::RepoMembers => "is `repoMembers`",
            OwnersCheck::All | OwnersCheck::None => "is `all`",
        };
        return Err(Failure::permanent(format!(
            "githubOwners needs a personalAccessToken: its checkType {check_type} (only `none` works without a token)"
        )));
    }
    let base = api.base(&state.headers)?;
    let body = state.body().map_err(|e| bad_body(e.to_string()))?;
    let payload = payload::owners(body, event).map_err(bad_body)?;
    let owner = owners::is_owner(api, &base, token, &payload, check).await?;
    let allowed = match event {
        PULL_REQUEST => owner,
        _ => owner && payload::asks_ok_to_test(&payload.comment),
    };
    if allowed {
        return Ok(None);
    }
    let sender = Value::String(payload.sender.clone());
    let why = if owner {
        format!("the comment by {sender} is not `/ok-to-test`")
    } else {
        let whom = match check {
            OwnersCheck::OrgMembers => "neither a public member of the organisation nor",
            OwnersCheck::RepoMembers => "neither a collaborator of the repository nor",
            OwnersCheck::All => {
                "neither a public member of the organisation, a collaborator of the repository nor"
            }
            OwnersCheck::None | OwnersCheck::Unset => "not",
        };
        format!("sender {sender} is {whom} listed in OWNERS")
    };
    Ok(Some(format!("owners check requirements not met: {why}")))
}

/// `addChangedFiles`: a pull request's files from GitHub's API, every page; a push's from
/// its commits.
async fn changed_files(
    api: &GitHubApi,
    token_ref: &GitHubToken,
    state: &EventState,
    event: &str,
) -> Result<Vec<String>, Failure> {
    let token = token(token_ref)?;
    let body = state.body().map_err(|e| bad_body(e.to_string()))?;
    let payload = payload::changed_files(body, event).map_err(bad_body)?;
    let Some(number) = payload.number.filter(|_| event == PULL_REQUEST) else {
        return Ok(payload.pushed);
    };
    let base = api.base(&state.headers)?;
    let repository = &payload.repository;
    let path = format!(
        "/repos/{}/{}/pulls/{number}/files",
        repository.owner, repository.name
    );
    let files = api
        .list(&base, &path, token)
        .await?
        .map_err(|refused| refused.failure())?;
    files
        .iter()
        .map(|file| {
            file.get("filename")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    Failure::permanent(format!(
                        "GitHub listed a file of pull request {number} without a `filename`"
                    ))
                })
        })
        .collect()
}
