//! What the github interceptor's GitHub features read from the event's body: the
//! repository, the pull request or issue number, the sender and the comment, and a push's
//! changed files. A body that lacks what a feature needs fails the trigger for that event,
//! naming the missing field.

use serde_json::{Map, Value};

/// `X-GitHub-Event` values the features act on.
pub(super) const PULL_REQUEST: &str = "pull_request";
pub(super) const PUSH: &str = "push";
pub(super) const ISSUE_COMMENT: &str = "issue_comment";

/// Longest owner or repository name GitHub allows.
const MAX_NAME: usize = 100;

/// A repository as `repository.full_name` names it, checked to be safe in an API path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Repository {
    pub owner: String,
    pub name: String,
}

/// What `addChangedFiles` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChangedFilesPayload {
    /// The pull request's `number`; `None` for a push without one.
    pub number: Option<u64>,
    pub repository: Repository,
    /// A push's files: each commit's `added`, then `modified`, then `removed`.
    pub pushed: Vec<String>,
}

/// What `githubOwners` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OwnersPayload {
    pub sender: String,
    pub repository: Repository,
    /// The comment of an `issue_comment` event; empty for a pull request.
    pub comment: String,
}

/// The body of a `pull_request` or `push` event, for `addChangedFiles`.
pub(super) fn changed_files(body: &Value, event: &str) -> Result<ChangedFilesPayload, String> {
    let body = object(body)?;
    let number = match body.get("number") {
        Some(number) => Some(issue_number(number, "number")?),
        None if event == PULL_REQUEST => {
            return Err("a pull_request body needs a `number`".to_owned());
        }
        None => None,
    };
    let full_name = full_name(body)?;
    let mut pushed = Vec::new();
    if let Some(Value::Array(commits)) = body.get("commits") {
        for commit in commits {
            let lists = ["added", "modified", "removed"].map(|key| {
                commit
                    .get(key)
                    .and_then(Value::as_array)
                    .ok_or_else(|| format!("a commit of `commits` has no `{key}` list"))
            });
            let [added, modified, removed] = lists;
            for file in added?.iter().chain(modified?).chain(removed?) {
                pushed.push(match file {
                    Value::String(name) => name.clone(),
                    other => other.to_string(),
                });
            }
        }
    }
    Ok(ChangedFilesPayload {
        number,
        repository: repository(full_name)?,
        pushed,
    })
}

/// The body of a `pull_request` or `issue_comment` event, for `githubOwners`.
pub(super) fn owners(body: &Value, event: &str) -> Result<OwnersPayload, String> {
    let body = object(body)?;
    if event == PULL_REQUEST {
        let number = body
            .get("number")
            .ok_or("a pull_request body needs a `number`")?;
        issue_number(number, "number")?;
    }
    let mut comment = String::new();
    if event == ISSUE_COMMENT {
        let issue = body
            .get("issue")
            .and_then(Value::as_object)
            .ok_or("an issue_comment body needs an `issue` object")?;
        let number = issue
            .get("number")
            .ok_or("an issue_comment body needs an `issue.number`")?;
        issue_number(number, "issue.number")?;
        let text = body
            .get("comment")
            .and_then(Value::as_object)
            .ok_or("an issue_comment body needs a `comment` object")?
            .get("body")
            .ok_or("an issue_comment body needs a `comment.body`")?;
        comment = text
            .as_str()
            .ok_or("`comment.body` is not a string")?
            .to_owned();
    }
    let full_name = full_name(body)?;
    let sender = body
        .get("sender")
        .and_then(Value::as_object)
        .ok_or("the body needs a `sender` object")?;
    let sender = sender
        .get("login")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(OwnersPayload {
        sender,
        repository: repository(full_name)?,
        comment,
    })
}

/// Whether a comment asks for the tests to run: a line that is `/ok-to-test` (a line ends
/// with `\n`, `\r\n` or `\r`).
pub(super) fn asks_ok_to_test(comment: &str) -> bool {
    const COMMAND: &str = "/ok-to-test";
    comment.split('\n').any(|line| {
        line.strip_prefix(COMMAND)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('\r'))
    })
}

fn object(body: &Value) -> Result<&Map<String, Value>, String> {
    match body {
        Value::Object(body) => Ok(body),
        Value::Null => Err("the body is empty".to_owned()),
        _ => Err("the body is not a JSON object".to_owned()),
    }
}

fn full_name(body: &Map<String, Value>) -> Result<&str, String> {
    body.get("repository")
        .and_then(Value::as_object)
        .ok_or("the body needs a `repository` object")?
        .get("full_name")
        .and_then(Value::as_str)
        .ok_or_else(|| "the body needs a `repository.full_name` string".to_owned())
}

/// A pull request or issue number: a positive integer.
fn issue_number(value: &Value, field: &str) -> Result<u64, String> {
    value
        .as_u64()
        .filter(|number| *number > 0)
        .ok_or_else(|| format!("`{field}` is not a pull request or issue number: {value}"))
}

/// `OWNER/REPO`, each part as GitHub names accounts and repositories (letters, digits, `-`,
/// `_`, `.`; not `.` or `..`), so that it stays one segment of an API path whatever the
/// body says.
fn repository(full_name: &str) -> Result<Repository, String> {
    let refuse = || {
        let shown: String = full_name.chars().take(MAX_NAME * 2 + 1).collect();
        format!(
            "`repository.full_name` {} is not OWNER/REPO as GitHub names repositories",
            Value::String(shown)
        )
    };
    let (owner, name) = full_name.split_once('/').ok_or_else(refuse)?;
    if !is_name(owner) || !is_name(name) {
        return Err(refuse());
    }
    Ok(Repository {
        owner: owner.to_owned(),
        name: name.to_owned(),
    })
}

fn is_name(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= MAX_NAME
        && part != "."
        && part != ".."
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_push_lists_each_commits_added_modified_then_removed_files() {
        let body = json!({
            "repository": {"full_name": "o/r"},
            "commits": [
                {"added": ["a"], "modified": ["m"], "removed": ["r"]},
                {"added": [], "modified": ["m2"], "removed": []}
            ]
        });
        let payload = changed_files(&body, PUSH).unwrap();
        assert_eq!(payload.pushed, ["a", "m", "r", "m2"]);
        assert_eq!(payload.number, None);
    }

    #[test]
    fn missing_fields_are_named() {
        let cases = [
            (json!(null), PULL_REQUEST, "empty"),
            (
                json!({"repository": {"full_name": "o/r"}}),
                PULL_REQUEST,
                "`number`",
            ),
            (json!({"number": 1}), PULL_REQUEST, "`repository`"),
            (
                json!({"number": 1, "repository": {}}),
                PULL_REQUEST,
                "`repository.full_name`",
            ),
            (
                json!({"repository": {"full_name": "o/r"}, "commits": [{"added": [], "removed": []}]}),
                PUSH,
                "`modified`",
            ),
        ];
        for (body, event, named) in cases {
            let error = changed_files(&body, event).unwrap_err();
            assert!(error.contains(named), "{body}: {error}");
        }
    }

    #[test]
    fn hostile_repository_names_never_reach_a_path() {
        for full_name in [
            "../../orgs/x",
            "o/..",
            "o/r/../../x",
            "o/r?x=1",
            "o/r#x",
            "o%2F/r",
            "o /r",
            "/r",
            "o/",
            "o",
            "o/r/extra",
        ] {
            let body = json!({"number": 1, "repository": {"full_name": full_name}});
            let error = changed_files(&body, PULL_REQUEST).unwrap_err();
            assert!(error.contains("OWNER/REPO"), "{full_name}: {error}");
        }
        let body = json!({"number": 1, "repository": {"full_name": "my-org/repo.rs_2"}});
        assert_eq!(
            changed_files(&body, PULL_REQUEST).unwrap().repository,
            Repository {
                owner: "my-org".into(),
                name: "repo.rs_2".into()
            }
        );
    }

    #[test]
    fn ok_to_test_is_a_line_of_its_own() {
        for yes in [
            "/ok-to-test",
            "lgtm\n/ok-to-test",
            "/ok-to-test\r\nthanks",
            "/ok-to-test\rthanks",
            "a\n/ok-to-test\n",
        ] {
            assert!(asks_ok_to_test(yes), "{yes:?}");
        }
        for no in [
            "/ok-to-test please",
            " /ok-to-test",
            "/random",
            "x/ok-to-test",
            "",
        ] {
            assert!(!asks_ok_to_test(no), "{no:?}");
        }
    }
}
