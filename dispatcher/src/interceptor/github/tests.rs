//! The GitHub features against a fake GitHub API on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use sluice_triggers::catalogue::{ChangedFiles, GitHubOwners};
use sluice_triggers::headers::Headers;

use super::*;

const TOKEN: &str = "ghp_not-a-real-token-0123456789";

/// What the fake saw: path and query, and headers.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    headers: HeaderMap,
}

type Answers = Box<dyn Fn(&str, usize) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync>;

/// A fake GitHub API: `answer(path_and_query, n)` for the `n`th request (from 0).
struct FakeGitHub {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeGitHub {
    async fn serve(answer: Answers) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let answer = Arc::new(answer);
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let log = Arc::clone(&log);
            let answer = Arc::clone(&answer);
            async move {
                let target = request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default();
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(Seen {
                        target: target.clone(),
                        headers: request.headers().clone(),
                    });
                    log.len() - 1
                };
                let (status, headers, body) = answer(&target, n);
                let mut response = http::Response::new(axum::body::Body::from(body));
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                for (name, value) in headers {
                    response
                        .headers_mut()
                        .insert(name, http::HeaderValue::from_str(&value).unwrap());
                }
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen }
    }

    fn api(&self) -> GitHubApi {
        GitHubApi::new(GitHubSettings {
            api_url: format!("http://{}/api/v3", self.addr),
            backoff: Duration::from_millis(1),
            timeout: Duration::from_secs(5),
            ..GitHubSettings::default()
        })
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn event(event: &str, body: Value) -> EventState {
    let mut headers = Headers::new();
    headers.append("X-GitHub-Event", event);
    EventState::new(Bytes::from(body.to_string()), headers, 1)
}

fn token() -> GitHubToken {
    Ok(Some(SecretValue::new(TOKEN)))
}

fn changed_files_interceptor() -> GitHubInterceptor {
    GitHubInterceptor {
        changed_files: Some(ChangedFiles { token: token() }),
        ..GitHubInterceptor::default()
    }
}

fn owners_interceptor(check: OwnersCheck) -> GitHubInterceptor {
    GitHubInterceptor {
        owners: Some(GitHubOwners {
            token: token(),
            check,
        }),
        ..GitHubInterceptor::default()
    }
}

fn pull_request() -> Value {
    json!({"action": "opened", "number": 7, "repository": {"full_name": "octo/app"}, "sender": {"login": "alice"}})
}

fn files(names: &[&str]) -> String {
    Value::Array(names.iter().map(|n| json!({"filename": n})).collect()).to_string()
}

#[tokio::test]
async fn a_pull_requests_files_are_read_page_after_page() {
    let fake = FakeGitHub::serve(Box::new(|target, _| {
        let next = |page: u32| {
            vec![(
                "link",
                format!(
                    "<https://elsewhere.example/repositories/1/pulls/7/files?per_page=100&page={page}>; rel=\"next\""
                ),
            )]
        };
        match target {
            "/api/v3/repos/octo/app/pulls/7/files?per_page=100&page=1" => {
                (200, next(2), files(&["a.rs", "b.rs"]))
            }
            "/api/v3/repos/octo/app/pulls/7/files?per_page=100&page=2" => {
                (200, vec![], files(&["docs/c.md"]))
            }
            _ => (404, vec![], r#"{"message": "Not Found"}"#.to_owned()),
        }
    }))
    .await;
    let mut state = event("pull_request", pull_request());
    let stop = run(&fake.api(), &changed_files_interceptor(), &mut state)
        .await
        .unwrap();
    assert_eq!(stop, None);
    assert_eq!(state.extensions[CHANGED_FILES], "a.rs,b.rs,docs/c.md");
    let seen = fake.seen();
    // The next page is asked of the same API, whatever host the Link header names.
    let targets: Vec<&str> = seen.iter().map(|s| s.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "/api/v3/repos/octo/app/pulls/7/files?per_page=100&page=1",
            "/api/v3/repos/octo/app/pulls/7/files?per_page=100&page=2"
        ]
    );
    let authorization = seen[0].headers.get("authorization").unwrap();
    assert_eq!(authorization.to_str().unwrap(), format!("Bearer {TOKEN}"));
    assert!(seen[0].headers.get("user-agent").is_some());
}

#[tokio::test]
async fn a_push_lists_its_commits_files_without_calling_github() {
    let fake = FakeGitHub::serve(Box::new(|_, _| (500, vec![], String::new()))).await;
    let body = json!({"repository": {"full_name": "octo/app"}, "commits": [{"added": ["n"], "modified": ["m"], "removed": ["r"]}]});
    let mut state = event("push", body);
    run(&fake.api(), &changed_files_interceptor(), &mut state)
        .await
        .unwrap();
    assert_eq!(state.extensions[CHANGED_FILES], "n,m,r");
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_as_transient() {
    let fake = FakeGitHub::serve(Box::new(|_, n| {
        if n == 0 {
            (502, vec![], "bad gateway".to_owned())
        } else {
            (200, vec![], files(&["a"]))
        }
    }))
    .await;
    let mut state = event("pull_request", pull_request());
    run(&fake.api(), &changed_files_interceptor(), &mut state)
        .await
        .unwrap();
    assert_eq!(state.extensions[CHANGED_FILES], "a");
    assert_eq!(fake.seen().len(), 2);

    let fake = FakeGitHub::serve(Box::new(|_, _| {
        (503, vec![], r#"{"message": "unavailable"}"#.to_owned())
    }))
    .await;
    let mut state = event("pull_request", pull_request());
    let error = run(&fake.api(), &changed_files_interceptor(), &mut state)
        .await
        .unwrap_err();
    assert_eq!(error.kind, FailureKind::Transient);
    assert!(error.message.contains("503"), "{error}");
    assert!(
        error.message.contains("gave up after 3 attempts"),
        "{error}"
    );
    assert_eq!(fake.seen().len(), 3);
    assert!(!state.extensions.contains_key(CHANGED_FILES));
}

#[tokio::test]
async fn an_exhausted_rate_limit_is_waited_for() {
    let fake = FakeGitHub::serve(Box::new(|_, n| {
        if n == 0 {
            (
                403,
                vec![("x-ratelimit-remaining", "0".to_owned())],
                r#"{"message": "API rate limit exceeded"}"#.to_owned(),
            )
        } else {
            (200, vec![], files(&["a"]))
        }
    }))
    .await;
    let mut state = event("pull_request", pull_request());
    run(&fake.api(), &changed_files_interceptor(), &mut state)
        .await
        .unwrap();
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn an_unknown_pull_request_fails_the_trigger_for_this_event() {
    let fake = FakeGitHub::serve(Box::new(|_, _| {
        (404, vec![], r#"{"message": "Not Found"}"#.to_owned())
    }))
    .await;
    let mut state = event("pull_request", pull_request());
    let error = run(&fake.api(), &changed_files_interceptor(), &mut state)
        .await
        .unwrap_err();
    assert_eq!(error.kind, FailureKind::BadInput);
    assert!(error.message.contains("404 Not Found"), "{error}");
    assert!(
        error.message.contains("/repos/octo/app/pulls/7/files"),
        "{error}"
    );
    assert_eq!(fake.seen().len(), 1, "not retried");
}

#[tokio::test]
async fn a_bad_token_is_named_as_the_cause_and_never_shown() {
    let fake = FakeGitHub::serve(Box::new(|_, _| {
        (401, vec![], r#"{"message": "Bad credentials"}"#.to_owned())
    }))
    .await;
    let mut state = event("pull_request", pull_request());
    let error = run(&fake.api(), &changed_files_interceptor(), &mut state)
        .await
        .unwrap_err();
    assert_eq!(error.kind, FailureKind::BadInput);
    let text = format!("{error} {error:?}");
    assert!(text.contains("401 Unauthorized"), "{text}");
    assert!(text.contains("Bad credentials"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn a_hostile_repository_name_is_refused_before_any_request() {
    let fake = FakeGitHub::serve(Box::new(|_, _| (200, vec![], files(&["x"])))).await;
    for full_name in [
        "../../orgs/octo",
        "octo/app/../../../user",
        "octo/app?per_page=1#",
        "octo%2F..%2Fx/app",
    ] {
        let body =
            json!({"number": 7, "repository": {"full_name": full_name}, "sender": {"login": "a"}});
        for interceptor in [
            changed_files_interceptor(),
            owners_interceptor(OwnersCheck::All),
        ] {
            let mut state = event("pull_request", body.clone());
            let error = run(&fake.api(), &interceptor, &mut state)
                .await
                .unwrap_err();
            assert_eq!(error.kind, FailureKind::BadInput, "{full_name}");
            assert!(error.message.contains("OWNER/REPO"), "{error}");
        }
    }
    assert!(fake.seen().is_empty());
}

/// OWNERS lists `maintainer`; the organisation's public members are `member`.
async fn owners_fake() -> FakeGitHub {
    FakeGitHub::serve(Box::new(|target, _| {
        let path = target.split('?').next().unwrap_or_default();
        match path {
            "/api/v3/repos/octo/app/contents/OWNERS" => (
                200,
                vec![],
                json!({"type": "file", "encoding": "base64", "content": "YXBwcm92ZXJzOgotIG1haW50YWluZXIK"}).to_string(),
            ),
            "/api/v3/orgs/octo/public_members" => (200, vec![], json!([{"login": "member"}]).to_string()),
            "/api/v3/repos/octo/app/collaborators" => (200, vec![], "[]".to_owned()),
            _ => (404, vec![], r#"{"message": "Not Found"}"#.to_owned()),
        }
    }))
    .await
}

fn comment(sender: &str, text: &str) -> Value {
    json!({"action": "created", "issue": {"number": 7}, "comment": {"body": text}, "repository": {"full_name": "octo/app"}, "sender": {"login": sender}})
}

#[tokio::test]
async fn an_owners_ok_to_test_comment_lets_the_trigger_run() {
    let fake = owners_fake().await;
    let api = fake.api();
    let owners = owners_interceptor(OwnersCheck::OrgMembers);
    for (sender, text, runs) in [
        ("maintainer", "/ok-to-test", true),
        ("member", "lgtm\r\n/ok-to-test", true),
        ("maintainer", "/retest", false),
        ("stranger", "/ok-to-test", false),
    ] {
        let mut state = event("issue_comment", comment(sender, text));
        let stop = run(&api, &owners, &mut state).await.unwrap();
        assert_eq!(stop.is_none(), runs, "{sender} {text:?}: {stop:?}");
        if let Some(why) = stop {
            assert!(
                why.starts_with("owners check requirements not met"),
                "{why}"
            );
        }
    }
    let mut body = pull_request();
    body["sender"]["login"] = json!("stranger");
    let mut state = event("pull_request", body);
    let stop = run(&api, &owners, &mut state).await.unwrap().unwrap();
    assert!(stop.contains("\"stranger\""), "{stop}");
    // Other events go through without a request.
    let before = fake.seen().len();
    let mut state = event("push", json!({}));
    assert_eq!(run(&api, &owners, &mut state).await.unwrap(), None);
    assert_eq!(fake.seen().len(), before);
}

#[tokio::test]
async fn a_membership_check_without_a_token_is_a_configuration_error() {
    let fake = owners_fake().await;
    let interceptor = GitHubInterceptor {
        owners: Some(GitHubOwners {
            token: Ok(None),
            check: OwnersCheck::RepoMembers,
        }),
        ..GitHubInterceptor::default()
    };
    let mut state = event("pull_request", pull_request());
    let error = run(&fake.api(), &interceptor, &mut state)
        .await
        .unwrap_err();
    assert_eq!(error.kind, FailureKind::Permanent);
    assert!(error.message.contains("personalAccessToken"), "{error}");
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn an_enterprise_host_the_platform_does_not_allow_gets_no_token() {
    let fake = owners_fake().await;
    let mut state = event("pull_request", pull_request());
    state
        .headers
        .append(ENTERPRISE_HOST_HEADER, "collector.attacker.example");
    let error = run(&fake.api(), &changed_files_interceptor(), &mut state)
        .await
        .unwrap_err();
    assert_eq!(error.kind, FailureKind::Permanent);
    assert!(error.message.contains("--interceptor-allow"), "{error}");
    assert!(fake.seen().is_empty());
}
