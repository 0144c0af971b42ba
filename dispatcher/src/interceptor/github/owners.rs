//! `githubOwners`: whether the sender of a pull request or comment may run the trigger —
//! a public member of the repository's organisation (`orgMembers`, `all`), a collaborator of
//! the repository (`repoMembers`, `all`), or listed under `approvers` or `reviewers` in the
//! repository's `OWNERS` file (always).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use sluice_runtime::retry::FailureKind;
use sluice_triggers::catalogue::OwnersCheck;
use sluice_triggers::secret::SecretValue;

use super::api::{Base, GitHubApi};
use super::payload::OwnersPayload;
use crate::interceptor::webhook::retry::Failure;

/// The path of the file read, at the repository's root on its default branch.
const OWNERS: &str = "OWNERS";

/// Whether `payload.sender` is an owner, asking GitHub in this order and stopping at the
/// first yes: the organisation's public members, the repository's collaborators, `OWNERS`.
pub(super) async fn is_owner(
    api: &GitHubApi,
    base: &Base,
    token: Option<&SecretValue>,
    payload: &OwnersPayload,
    check: OwnersCheck,
) -> Result<bool, Failure> {
    let repository = &payload.repository;
    let sender = payload.sender.as_str();
    if matches!(check, OwnersCheck::OrgMembers | OwnersCheck::All) {
        let path = format!("/orgs/{}/public_members", repository.owner);
        match api.list(base, &path, token).await? {
            Ok(members) => {
                if has_login(&members, sender) {
                    return Ok(true);
                }
            }
            // Not an organisation (a user's repository): nobody is a member.
            Err(refused) if refused.status == StatusCode::NOT_FOUND => {}
            Err(refused) => return Err(refused.failure()),
        }
    }
    if matches!(check, OwnersCheck::RepoMembers | OwnersCheck::All) {
        let path = format!(
            "/repos/{}/{}/collaborators",
            repository.owner, repository.name
        );
        let collaborators = api
            .list(base, &path, token)
            .await?
            .map_err(|refused| refused.failure())?;
        if has_login(&collaborators, sender) {
            return Ok(true);
        }
    }
    let path = format!(
        "/repos/{}/{}/contents/{OWNERS}",
        repository.owner, repository.name
    );
    let content = match api.get_json(base, &path, token).await? {
        Ok(content) => content,
        // No OWNERS file: nobody is listed.
        Err(refused) if refused.status == StatusCode::NOT_FOUND => return Ok(false),
        Err(refused) => return Err(refused.failure()),
    };
    let text = file_text(&content)?;
    listed(&text, sender)
}

fn has_login(users: &[Value], sender: &str) -> bool {
    users
        .iter()
        .any(|user| user.get("login").and_then(Value::as_str) == Some(sender))
}

/// The text of a file from GitHub's contents API: `content` decoded when `encoding` is
/// `base64` (line breaks in it ignored), as it is when there is no `encoding`.
fn file_text(content: &Value) -> Result<String, Failure> {
    let bad_input = |message: String| Failure {
        kind: FailureKind::BadInput,
        ..Failure::permanent(message)
    };
    let Value::Object(file) = content else {
        return Err(bad_input(format!(
            "`{OWNERS}` in the repository is a directory, not a file"
        )));
    };
    let text = file
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match file.get("encoding").and_then(Value::as_str).unwrap_or("") {
        "base64" => {
            let compact: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
            let bytes = STANDARD.decode(compact).map_err(|error| {
                Failure::permanent(format!(
                    "GitHub answered `{OWNERS}` with content that is not base64: {error}"
                ))
            })?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        "" => Ok(text.to_owned()),
        other => Err(Failure::permanent(format!(
            "GitHub answered `{OWNERS}` in an unsupported encoding `{other}`"
        ))),
    }
}

/// The lists of an `OWNERS` file; other keys are ignored.
#[derive(Debug, Default, Deserialize)]
struct OwnersFile {
    #[serde(default)]
    approvers: Option<Vec<String>>,
    #[serde(default)]
    reviewers: Option<Vec<String>>,
}

/// Whether `sender` is among the approvers or reviewers, ignoring case.
fn listed(text: &str, sender: &str) -> Result<bool, Failure> {
    let file: OwnersFile = if text.trim().is_empty() {
        OwnersFile::default()
    } else {
        serde_norway::from_str::<Option<OwnersFile>>(text)
            .map_err(|error| Failure {
                kind: FailureKind::BadInput,
                ..Failure::permanent(format!(
                    "the repository's `{OWNERS}` file is not YAML with `approvers` and `reviewers` lists: {error}"
                ))
            })?
            .unwrap_or_default()
    };
    let sender = sender.to_lowercase();
    Ok(file
        .approvers
        .iter()
        .chain(&file.reviewers)
        .flatten()
        .any(|owner| owner.to_lowercase() == sender))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn owners_files_are_read_as_github_encodes_them() {
        // "approvers:\r\n- test_owner", with a line break inside the base64 as GitHub sends.
        let file = json!({"type": "file", "encoding": "base64", "content": "YXBwcm92ZXJzOg0K\nLSB0ZXN0X293bmVy"});
        let text = file_text(&file).unwrap();
        assert!(listed(&text, "test_owner").unwrap());
        assert!(listed(&text, "Test_Owner").unwrap());
        assert!(!listed(&text, "nonowner").unwrap());
        let plain = json!({"content": "reviewers: [a]\nother: x"});
        assert!(listed(&file_text(&plain).unwrap(), "a").unwrap());
        assert!(!listed("", "a").unwrap());
        let directory = json!([{"name": "x"}]);
        assert_eq!(
            file_text(&directory).unwrap_err().kind,
            FailureKind::BadInput
        );
        assert!(listed("approvers: 3", "a").is_err());
    }
}
