//! `pkg/interceptors/github/github_test.go`, the github interceptor's calls to GitHub's API:
//! `addChangedFiles` (`TestInterceptor_ExecuteTrigger_Changed_Files_*`), `githubOwners`
//! (`TestInterceptor_ExecuteTrigger_owners*`), and the helpers behind them (reading the
//! token, choosing the API, reading the body). The signature and event-type cases of the
//! same file run in `sluice-triggers`'s suite, since the edge decides them.
//!
//! Each case is an EventListener in `default` whose trigger `example-trigger` has the
//! table's github interceptor params, with Secret `mysecret` (`token: secret`) beside it,
//! and binds `$(extensions.changed_files)` into a ConfigMap. The event goes through the edge
//! and the dispatcher's planning, which calls a local stand-in for GitHub's API
//! (`--github-api-url`) answering what the table's fake answers: for the changed-files
//! tables the same reply to any request, for the owners tables a reply per path and an
//! empty `200` elsewhere.
//!
//! Where a table expects a particular message, Sluice must stop for the same cause: its own
//! message must name the same field or answer. Three cases send Tekton an interceptor
//! request without its context, which Sluice always gives; their event is judged on what
//! Sluice decides from it.

use sluice_dispatcher::interceptor::github::{
    DEFAULT_API_URL, ENTERPRISE_HOST_HEADER, EnterpriseHosts, GitHubApi, GitHubSettings,
};
use sluice_triggers::headers::Headers;

use crate::harness::{
    Answer, Handled, Outcome, Received, Request, StandIn, handle_with, interceptors_with, issues,
    load,
};
use crate::suite::{Compared, File, Suite};

const FILE: &str = "pkg/interceptors/github/github_test.go";

/// What the stand-in for GitHub answers.
#[derive(Clone)]
enum Fake {
    /// The same `200` reply to any request.
    Any(&'static str),
    /// A reply per path (status, body); an empty `200` to any other.
    Paths(Vec<(&'static str, u16, &'static str)>),
}

/// One event through a listener whose github interceptor has `params` (YAML flow).
struct Event {
    event: &'static str,
    body: &'static str,
    params: String,
    extra_headers: Vec<(&'static str, &'static str)>,
}

/// What Sluice made of the event, and what the stand-in received.
struct Ran {
    /// `continue; changed_files: …`, `stop: …`, `error (…): …` or `refused …`.
    text: String,
    continued: bool,
    received: Vec<Received>,
}

fn run(event: &Event, fake: &Fake) -> Ran {
    let fake = fake.clone();
    let github = StandIn::serve(move |request| {
        let path = request.target.split('?').next().unwrap_or_default();
        match &fake {
            Fake::Any(reply) => Answer::ok(*reply),
            Fake::Paths(paths) => match paths.iter().find(|(p, _, _)| *p == path) {
                Some((_, status, body)) => Answer::status(*status, *body),
                None => Answer::ok(""),
            },
        }
    });
    let yaml = format!(
        "apiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\nmetadata: {{name: el, namespace: default}}\n\
         spec: {{triggers: [{{name: example-trigger, interceptors: [{{ref: {{name: github}}, params: {}}}], \
         bindings: [{{name: changed_files, value: $(extensions.changed_files)}}], \
         template: {{spec: {{params: [{{name: changed_files, default: \"\"}}], resourcetemplates: \
         [{{apiVersion: v1, kind: ConfigMap, metadata: {{name: run}}, data: {{changed_files: $(tt.params.changed_files)}}}}]}}}}}}]}}\n\
         ---\napiVersion: v1\nkind: Secret\nmetadata: {{name: mysecret, namespace: default}}\nstringData: {{token: secret}}\n",
        event.params
    );
    let catalogue = load(&yaml, false);
    let api_url = github.url("/api/v3");
    let interceptors = interceptors_with(&["--github-api-url", &api_url]);
    let skipped = catalogue
        .listener("default", "el")
        .is_none_or(|listener| listener.trigger("example-trigger").is_none());
    if skipped {
        return Ran {
            text: format!("refused at load: {}", issues(&catalogue)),
            continued: false,
            received: github.requests(),
        };
    }
    let mut request = Request::new(event.body)
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", "foo")
        .header("X-GitHub-Event", event.event);
    for (name, value) in &event.extra_headers {
        request = request.header(name, *value);
    }
    let handled = handle_with(&interceptors, &catalogue, "default", "el", &request);
    let (text, continued) = match &handled {
        Handled::Refused(code) => (format!("refused at the edge: {code}"), false),
        Handled::Filtered => ("filtered at the edge".to_owned(), false),
        Handled::Triggers(outcomes) => match outcomes.first() {
            Some((_, Outcome::Created(objects))) => {
                let files = objects[0]["data"]["changed_files"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (format!("continue; changed_files: {files}"), true)
            }
            Some((_, Outcome::Filtered(why))) => (format!("stop: {why}"), false),
            Some((_, Outcome::Failed(error))) => {
                (format!("error ({:?}): {error}", error.kind()), false)
            }
            None => ("no trigger accepted the event".to_owned(), false),
        },
    };
    Ran {
        text,
        continued,
        received: github.requests(),
    }
}

/// Tekton's result: it continues with these changed files, or stops with this message.
enum Tekton {
    Continue(&'static str),
    Stop(&'static str),
}

/// Runs `event` and compares: the same decision; when continuing, the same changed files;
/// when stopping, Sluice's text names `cause` (if any).
fn judge(event: Event, fake: Fake, tekton: Tekton, cause: Option<&'static str>) -> Compared {
    let input = format!(
        "github params {}; X-GitHub-Event {}; body {}; GitHub answers {}",
        event.params,
        event.event,
        event.body,
        match &fake {
            Fake::Any(reply) => format!("{reply} to any request"),
            Fake::Paths(paths) => format!("{paths:?}, an empty 200 elsewhere"),
        }
    );
    let ran = run(&event, &fake);
    let (tekton_text, same) = match tekton {
        Tekton::Continue(files) => (
            format!("continue; changed_files: {files}"),
            ran.text == format!("continue; changed_files: {files}"),
        ),
        Tekton::Stop(message) => (
            format!("stop: {message}"),
            !ran.continued && cause.is_none_or(|cause| ran.text.contains(cause)),
        ),
    };
    Compared::judged(input, tekton_text, ran.text, same)
}

const TOKEN_REF: &str = "{secretName: mysecret, secretKey: token}";

fn changed_files_params(event_types: &str, token: &str) -> String {
    format!(
        "[{{name: eventTypes, value: {event_types}}}, {{name: addChangedFiles, value: {{enabled: true, personalAccessToken: {token}}}}}]"
    )
}

const FILES_REPLY: &str = r#"[{"filename":"terraform/envs/dev/main.tf"},{"filename":"terraform/envs/prod/main.tf"},{"filename":"terraform/envs/qa/main.tf"}]"#;

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);
    changed_files_pull_request(&mut file);
    changed_files_push(&mut file);
    token_secrets(&mut file);
    make_client(&mut file);
    owners(&mut file);
    parse_body_for_owners(&mut file);
    owners_data_validation(&mut file);
}

fn changed_files_pull_request(file: &mut File<'_>) {
    const F: &str = "TestInterceptor_ExecuteTrigger_Changed_Files_Pull_Request";
    const PR: &str = r#"{"action":"opened","number":1,"pull_request":{"head":{"sha":"28911bbb5"}},"repository":{"full_name":"testowner/testrepo","clone_url":"https://github.com/testowner/testrepo.git"}}"#;
    let rows: Vec<(&str, &str, &str, Tekton, Option<&str>)> = vec![
        (
            "changed_files",
            "pull_request",
            PR,
            Tekton::Continue(
                "terraform/envs/dev/main.tf,terraform/envs/prod/main.tf,terraform/envs/qa/main.tf",
            ),
            None,
        ),
        (
            "empty body, failure",
            "pull_request",
            "",
            Tekton::Stop("error parsing body: body is empty"),
            Some("the body is empty"),
        ),
        (
            "non json body, failure",
            "pull_request",
            "this is not json",
            Tekton::Stop(
                "error parsing body: invalid character 'h' in literal true (expecting 'r')",
            ),
            Some("the body is not JSON"),
        ),
        (
            "pull request, missing 'number' json field",
            "pull_request",
            r#"{"action":"opened","pull_request":{"head":{"sha":"28911bbb5"}},"repository":{"full_name":"testowner/testrepo","clone_url":"https://github.com/testowner/testrepo.git"}}"#,
            Tekton::Stop("error parsing body: pull_request body missing 'number' field"),
            Some("`number`"),
        ),
        (
            "missing repository json field, failure",
            "pull_request",
            r#"{"action":"opened","number":1,"pull_request":{"head":{"sha":"28911bbb5"}}}"#,
            Tekton::Stop("error parsing body: payload body missing 'repository' field"),
            Some("`repository` object"),
        ),
        (
            "missing full_name json field, failure",
            "pull_request",
            r#"{"action":"opened","number":1,"pull_request":{"head":{"sha":"28911bbb5"}},"repository":{"clone_url":"https://github.com/testowner/testrepo.git"}}"#,
            Tekton::Stop("error parsing body: payload body missing 'repository.full_name' field"),
            Some("`repository.full_name`"),
        ),
        (
            "event type not push or pull_request, failure",
            "nothing",
            r#"{"action":"opened","number":1,"pull_request":{"head":{"sha":"28911bbb5"}},"repository":{"clone_url":"https://github.com/testowner/testrepo.git"}}"#,
            Tekton::Continue(""),
            None,
        ),
    ];
    for (name, event, body, tekton, cause) in rows {
        let event_types = if event == "nothing" {
            "[pull_request, push, nothing]"
        } else {
            "[pull_request, push]"
        };
        let params = changed_files_params(event_types, TOKEN_REF);
        file.case(F, name, move || {
            judge(
                Event {
                    event,
                    body,
                    params,
                    extra_headers: vec![],
                },
                Fake::Any(FILES_REPLY),
                tekton,
                cause,
            )
        });
    }
}

fn changed_files_push(file: &mut File<'_>) {
    const F: &str = "TestInterceptor_ExecuteTrigger_Changed_Files_Push";
    const FULL: &str = r#"{"repository":{"full_name":"testowner/testrepo","clone_url":"https://github.com/testowner/testrepo.git"},"commits":[{"added":["api/v1beta1/tektonhelperconfig_types.go","config/crd/bases/tekton-helper..com_tektonhelperconfigs.yaml"],"removed":["config/samples/tektonhelperconfig-oomkillpipeline.yaml","config/samples/tektonhelperconfig-timeout.yaml"],"modified":["controllers/tektonhelperconfig_controller.go"]}]}"#;
    const NO_MODIFIED: &str = r#"{"repository":{"full_name":"testowner/testrepo","clone_url":"https://github.com/testowner/testrepo.git"},"commits":[{"added":["api/v1beta1/tektonhelperconfig_types.go","config/crd/bases/tekton-helper..com_tektonhelperconfigs.yaml"],"removed":["config/samples/tektonhelperconfig-oomkillpipeline.yaml","config/samples/tektonhelperconfig-timeout.yaml"]}]}"#;
    let token = TOKEN_REF;
    let rows: Vec<(&str, &str, String, Tekton, Option<&str>)> = vec![
        (
            "changed_files",
            FULL,
            changed_files_params("[pull_request, push]", token),
            Tekton::Continue(
                "api/v1beta1/tektonhelperconfig_types.go,config/crd/bases/tekton-helper..com_tektonhelperconfigs.yaml,controllers/tektonhelperconfig_controller.go,config/samples/tektonhelperconfig-oomkillpipeline.yaml,config/samples/tektonhelperconfig-timeout.yaml",
            ),
            None,
        ),
        (
            "missing commits added json field, failure",
            r#"{"repository":{"full_name":"testowner/testrepo","clone_url":"https://github.com/testowner/testrepo.git"},"commits":[{"removed":["config/samples/tektonhelperconfig-oomkillpipeline.yaml","config/samples/tektonhelperconfig-timeout.yaml"],"modified":["controllers/tektonhelperconfig_controller.go"]}]}"#,
            changed_files_params("[pull_request, push]", token),
            Tekton::Stop("error parsing body: payload body missing 'commits.*.added' field"),
            Some("`added`"),
        ),
        (
            "missing commits removed json field, failure",
            r#"{"repository":{"full_name":"testowner/testrepo","clone_url":"https://github.com/testowner/testrepo.git"},"commits":[{"added":["api/v1beta1/tektonhelperconfig_types.go","config/crd/bases/tekton-helper..com_tektonhelperconfigs.yaml"],"modified":["controllers/tektonhelperconfig_controller.go"]}]}"#,
            changed_files_params("[pull_request, push]", token),
            Tekton::Stop("error parsing body: payload body missing 'commits.*.removed' field"),
            Some("`removed`"),
        ),
        (
            "missing commits modified json field, failure",
            NO_MODIFIED,
            changed_files_params("[pull_request, push]", token),
            Tekton::Stop("error parsing body: payload body missing 'commits.*.modified' field"),
            Some("`modified`"),
        ),
        (
            // Tekton is sent no context; Sluice always has one, and refuses the table's
            // signature (`foo`) at the edge.
            "no context with secretRef",
            NO_MODIFIED,
            format!(
                "[{{name: eventTypes, value: [pull_request, push]}}, {{name: secretRef, value: {token}}}, {{name: addChangedFiles, value: {{enabled: true, personalAccessToken: {token}}}}}]"
            ),
            Tekton::Stop("no request context passed"),
            None,
        ),
        (
            // Tekton is sent no context; Sluice always has one, and reads the body, whose
            // commit has no `modified`.
            "no context",
            NO_MODIFIED,
            changed_files_params("[pull_request, push]", token),
            Tekton::Stop("no request context passed"),
            None,
        ),
        (
            "invalid secret",
            FULL,
            changed_files_params(
                "[pull_request, push]",
                "{secretName: missingsecret, secretKey: token}",
            ),
            Tekton::Stop("error getting secret: secrets \"missingsecret\" not found"),
            Some("Secret `missingsecret` in namespace `default` not found"),
        ),
    ];
    for (name, body, params, tekton, cause) in rows {
        file.case(F, name, move || {
            judge(
                Event {
                    event: "push",
                    body,
                    params,
                    extra_headers: vec![],
                },
                Fake::Any(FILES_REPLY),
                tekton,
                cause,
            )
        });
    }
}

const OWNERS_REPLY: &str =
    r#"{"type": "file","encoding": "base64","content": "YXBwcm92ZXJzOg0KLSB0ZXN0X293bmVy"}"#;
const OWNERS_PATH: &str = "/api/v3/repos/owner/repo/contents/OWNERS";
const COMMENT: &str = r#"{"action": "created", "issue": {"number": 1}, "comment": {"body": "/ok-to-test"}, "repository": {"full_name": "owner/repo"}, "sender": {"login": "test_owner"}}"#;
const PR_BY_OWNER: &str = r#"{"action": "opened", "number": 1, "repository":{"full_name": "owner/repo", "clone_url": "https://github.com/owner/repo.git"}, "sender":{"login": "test_owner"}}"#;
const PR_BY_NONOWNER: &str = r#"{"action": "opened", "number": 1, "repository":{"full_name": "owner/repo", "clone_url": "https://github.com/owner/repo.git"}, "sender":{"login": "nonowner"}}"#;

/// The token a request to the stand-in carried as a bearer credential, or "".
fn bearer(received: &[Received]) -> String {
    received
        .first()
        .and_then(|request| request.header("authorization").into_iter().next())
        .and_then(|value| value.strip_prefix("Bearer ").map(str::to_owned))
        .unwrap_or_default()
}

/// `Test_getGithubTokenSecret` and `Test_getPersonalAccessTokenSecret`: the token read from
/// the Secret is the one GitHub receives; none is sent without a reference; a reference
/// without a key is refused.
fn token_secrets(file: &mut File<'_>) {
    let tables = [
        ("Test_getGithubTokenSecret", "addChangedFiles"),
        ("Test_getPersonalAccessTokenSecret", "githubOwners"),
    ];
    for (function, feature) in tables {
        let (event, body, fake, extra) = if feature == "addChangedFiles" {
            (
                "pull_request",
                r#"{"action":"opened","number":1,"repository":{"full_name":"testowner/testrepo"}}"#,
                Fake::Any(FILES_REPLY),
                "",
            )
        } else {
            (
                "issue_comment",
                COMMENT,
                Fake::Paths(vec![(OWNERS_PATH, 200, OWNERS_REPLY)]),
                ", checkType: none",
            )
        };
        let params = move |token: &str| {
            format!("[{{name: {feature}, value: {{enabled: true{extra}{token}}}}}]")
        };
        let valid = params(&format!(", personalAccessToken: {TOKEN_REF}"));
        let fake_valid = fake.clone();
        file.case(function, "valid secret", move || {
            let ran = run(
                &Event {
                    event,
                    body,
                    params: valid.clone(),
                    extra_headers: vec![],
                },
                &fake_valid,
            );
            Compared::new(
                format!("github params {valid}; the token GitHub receives"),
                "secret",
                bearer(&ran.received),
            )
        });
        let none = params("");
        let fake_none = fake.clone();
        file.case(function, "nil secret reference", move || {
            let ran = run(
                &Event {
                    event,
                    body,
                    params: none.clone(),
                    extra_headers: vec![],
                },
                &fake_none,
            );
            let sent = if ran.received.is_empty() {
                "no request".to_owned()
            } else {
                bearer(&ran.received)
            };
            Compared::new(
                format!("github params {none}; the token GitHub receives"),
                "",
                sent,
            )
        });
        let keyless = params(", personalAccessToken: {secretName: mysecret}");
        file.case(function, "missing secret key, failure", move || {
            let ran = run(
                &Event {
                    event,
                    body,
                    params: keyless.clone(),
                    extra_headers: vec![],
                },
                &fake,
            );
            let named = ran.text.contains("personalAccessToken.secretKey");
            let sluice = if named && !ran.continued {
                format!("error: {}", ran.text)
            } else {
                ran.text
            };
            Compared::error_expected(format!("github params {keyless}"), sluice)
        });
    }
}

/// `Test_makeClient`: the API an event calls.
fn make_client(file: &mut File<'_>) {
    const F: &str = "Test_makeClient";
    file.case(F, "public github", || {
        let api = GitHubApi::new(GitHubSettings::default());
        let url = api.api_url(&Headers::new()).unwrap_or_default();
        Compared::new(
            format!("an event without {ENTERPRISE_HOST_HEADER}, default --github-api-url"),
            "api.github.com",
            url.strip_prefix("https://").unwrap_or(&url),
        )
    });
    file.case(F, "enterprise github", || {
        let api = GitHubApi::new(GitHubSettings {
            enterprise_hosts: EnterpriseHosts {
                flags: vec!["github.somecompany.com".to_owned()],
                policy: None,
            },
            ..GitHubSettings::default()
        });
        let mut headers = Headers::new();
        headers.append(ENTERPRISE_HOST_HEADER, "github.somecompany.com");
        let url = api.api_url(&headers).unwrap_or_else(|error| error);
        let host = url
            .strip_prefix("https://")
            .and_then(|rest| rest.strip_suffix("/api/v3"))
            .unwrap_or(&url);
        Compared::new(
            format!(
                "an event with {ENTERPRISE_HOST_HEADER}: github.somecompany.com, which --interceptor-allow lists (default API {DEFAULT_API_URL})"
            ),
            "github.somecompany.com",
            host,
        )
    });
}

fn owners_params(check_type: &str, token: bool) -> String {
    let token = if token {
        format!(", personalAccessToken: {TOKEN_REF}")
    } else {
        String::new()
    };
    format!(
        "[{{name: eventTypes, value: [pull_request, issue_comment]}}, {{name: githubOwners, value: {{enabled: true{token}, checkType: {check_type}}}}}]"
    )
}

/// The stand-in of the owners tables: OWNERS lists `test_owner`; the organisation's public
/// members and the repository's collaborators are `collaborators`.
fn owners_fake(collaborators: &'static str) -> Fake {
    Fake::Paths(vec![
        (OWNERS_PATH, 200, OWNERS_REPLY),
        ("/api/v3/repos/owner/repo/collaborators", 200, collaborators),
        ("/api/v3/orgs/owner/public_members", 200, collaborators),
    ])
}

const NOT_MET: &str = "owners check requirements not met";

/// (case, event, body, checkType, token given, members and collaborators, Tekton, cause).
type OwnersRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static str,
    Tekton,
    Option<&'static str>,
);
/// (case, event, body, (Tekton's error, the cause Sluice must name) or none).
type BodyRow = (
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);
/// (case, event, body, params, GitHub, Tekton, cause).
type ValidationRow = (
    &'static str,
    &'static str,
    &'static str,
    String,
    Fake,
    Tekton,
    Option<&'static str>,
);

fn owners(file: &mut File<'_>) {
    const F: &str = "TestInterceptor_ExecuteTrigger_owners";
    const OTHER_COMMENT: &str = r#"{"action": "created", "issue": {"number": 1}, "comment": {"body": "/random"}, "repository": {"full_name": "owner/repo"}, "sender": {"login": "test_owner"}}"#;
    const NONOWNER_COMMENT: &str = r#"{"action": "created", "issue": {"number": 1}, "comment": {"body": "/ok-to-test"}, "repository": {"full_name": "owner/repo"}, "sender": {"login": "nonowner"}}"#;
    const MEMBERS: &str = r#"[{"login": "test_owner"}]"#;
    let rows: Vec<OwnersRow> = vec![
        (
            "owners file have sender",
            "issue_comment",
            COMMENT,
            "none",
            true,
            "",
            Tekton::Continue(""),
            None,
        ),
        (
            "sender is a collaborator but PersonalAccessToken not supplied",
            "issue_comment",
            COMMENT,
            "repoMembers",
            false,
            MEMBERS,
            Tekton::Stop(
                "checkType is set to check org or repo members but no personalAccessToken was supplied",
            ),
            Some("needs a personalAccessToken"),
        ),
        (
            "sender is a repository member",
            "issue_comment",
            COMMENT,
            "repoMembers",
            true,
            MEMBERS,
            Tekton::Continue(""),
            None,
        ),
        (
            "sender is a organization member",
            "pull_request",
            PR_BY_OWNER,
            "orgMembers",
            true,
            MEMBERS,
            Tekton::Continue(""),
            None,
        ),
        (
            "owners file does not have sender",
            "issue_comment",
            NONOWNER_COMMENT,
            "none",
            false,
            "",
            Tekton::Stop(NOT_MET),
            Some(NOT_MET),
        ),
        (
            "owners file have sender and sender commented /ok-to-test",
            "issue_comment",
            COMMENT,
            "none",
            false,
            "",
            Tekton::Continue(""),
            None,
        ),
        (
            "owners file have sender and owner commented /random",
            "issue_comment",
            OTHER_COMMENT,
            "none",
            false,
            "",
            Tekton::Stop(NOT_MET),
            Some(NOT_MET),
        ),
        (
            "owners file does not have sender and nonowner commented /ok-to-test",
            "issue_comment",
            NONOWNER_COMMENT,
            "none",
            false,
            "",
            Tekton::Stop(NOT_MET),
            Some(NOT_MET),
        ),
        (
            "pull request submitted by owner",
            "pull_request",
            PR_BY_OWNER,
            "none",
            true,
            MEMBERS,
            Tekton::Continue(""),
            None,
        ),
        (
            "sender is not a repository member",
            "pull_request",
            PR_BY_NONOWNER,
            "repoMembers",
            true,
            MEMBERS,
            Tekton::Stop(NOT_MET),
            Some(NOT_MET),
        ),
        (
            "sender is not a organization member",
            "pull_request",
            PR_BY_NONOWNER,
            "orgMembers",
            true,
            MEMBERS,
            Tekton::Stop(NOT_MET),
            Some(NOT_MET),
        ),
    ];
    for (name, event, body, check_type, token, collaborators, tekton, cause) in rows {
        let params = owners_params(check_type, token);
        file.case(F, name, move || {
            judge(
                Event {
                    event,
                    body,
                    params,
                    extra_headers: vec![],
                },
                owners_fake(collaborators),
                tekton,
                cause,
            )
        });
    }
}

/// `parseBodyForOwners`, observed as what `githubOwners` (checkType `none`) makes of each
/// body: a body that lacks a field stops the trigger naming it; a complete one is read
/// (and its sender, listed in OWNERS, asked `/ok-to-test`).
fn parse_body_for_owners(file: &mut File<'_>) {
    const F: &str = "TestInterceptor_ExecuteTrigger_owners_parseBodyForOwners";
    let rows: Vec<BodyRow> = vec![
        (
            "No payload supplied",
            "pull_request",
            "",
            Some(("payload body is empty", "the body is empty")),
        ),
        (
            "PR number missing on the payload",
            "pull_request",
            r#"{"action": "opened","repository":{"full_name": "owner/repo", "clone_url": "https://github.com/owner/repo.git"}, "sender":{"login": "test_owner"}}"#,
            Some(("pull_request body missing 'number' field", "`number`")),
        ),
        (
            "Issue comment missing issue on the payload",
            "issue_comment",
            r#"{"action": "created", "comment": {"body": "/ok-to-test"}, "repository": {"full_name": "owner/repo"}, "sender": {"login": "test_owner"}}"#,
            Some((
                "issue_comment body missing 'issue' section",
                "`issue` object",
            )),
        ),
        (
            "Issue comment missing issue on the payload (second)",
            "issue_comment",
            r#"{"action": "created", "issue": {}, "comment": {"body": "/ok-to-test"}, "repository": {"full_name": "owner/repo"}, "sender": {"login": "test_owner"}}"#,
            Some((
                "'number' field missing in the issue section of issue_comment body",
                "`issue.number`",
            )),
        ),
        (
            "Payload body missing repository field",
            "issue_comment",
            r#"{"action": "created", "issue": {"number": 1}, "comment": {"body": "/ok-to-test"}, "sender": {"login": "test_owner"}}"#,
            Some((
                "payload body missing 'repository' field",
                "`repository` object",
            )),
        ),
        (
            "Payload body missing full_name in repository field",
            "issue_comment",
            r#"{"action": "created", "issue": {"number": 1}, "comment": {"body": "/ok-to-test"}, "repository": {}, "sender": {"login": "test_owner"}}"#,
            Some((
                "payload body missing 'repository.full_name' field",
                "`repository.full_name`",
            )),
        ),
        (
            "Payload body missing sender field",
            "issue_comment",
            r#"{"action": "created", "issue": {"number": 1}, "comment": {"body": "/ok-to-test"}, "repository": {"full_name": "owner/repo"}}"#,
            Some(("payload body missing 'sender' field", "`sender` object")),
        ),
        (
            "Issue_comment missing 'comment' section",
            "issue_comment",
            r#"{"action": "created", "issue": {"number": 1}, "repository": {"full_name": "owner/repo"}, "sender": {"login": "test_owner"}}"#,
            Some((
                "issue_comment body missing 'comment' section",
                "`comment` object",
            )),
        ),
        (
            "Issue_comment missing body field in comment section",
            "issue_comment",
            r#"{"action": "created", "issue": {"number": 1}, "comment": {}, "repository": {"full_name": "owner/repo"}, "sender": {"login": "test_owner"}}"#,
            Some((
                "'body' field missing in the comment section of issue_comment body",
                "`comment.body`",
            )),
        ),
        (
            "Payload return with all details issue_comment",
            "issue_comment",
            COMMENT,
            None,
        ),
    ];
    for (name, event, body, error) in rows {
        let params = owners_params("none", false);
        file.case(F, name, move || {
            let (tekton, cause) = match error {
                Some((message, cause)) => (Tekton::Stop(message), Some(cause)),
                None => (Tekton::Continue(""), None),
            };
            judge(
                Event {
                    event,
                    body,
                    params,
                    extra_headers: vec![],
                },
                owners_fake(""),
                tekton,
                cause,
            )
        });
    }
}

fn owners_data_validation(file: &mut File<'_>) {
    const F: &str = "TestInterceptor_ExecuteTrigger_owners_data_validation";
    let keyless = "[{name: eventTypes, value: [pull_request, issue_comment]}, {name: githubOwners, value: {enabled: true, personalAccessToken: {secretName: mysecret, secretKey: \"\"}, checkType: none}}]".to_owned();
    let rows: Vec<ValidationRow> = vec![
        (
            "personalAccessToken secretKey is empty",
            "issue_comment",
            COMMENT,
            keyless,
            owners_fake(""),
            Tekton::Stop(
                "error getting github token: github interceptor personalAccessToken.secretKey is empty",
            ),
            Some("personalAccessToken.secretKey"),
        ),
        (
            "error parsing payload body",
            "pull_request",
            r#"{"action": "opened","repository":{"full_name": "owner/repo", "clone_url": "https://github.com/owner/repo.git"}, "sender":{"login": "test_owner"}}"#,
            owners_params("none", false),
            owners_fake(""),
            Tekton::Stop("error parsing body: pull_request body missing 'number' field"),
            Some("`number`"),
        ),
        (
            "no owners file",
            "issue_comment",
            COMMENT,
            owners_params("none", true),
            Fake::Paths(vec![(OWNERS_PATH, 404, r#"{"statusCode": 404}"#)]),
            Tekton::Stop(NOT_MET),
            Some(NOT_MET),
        ),
        (
            // Tekton gives up at once; Sluice tries again (docs/tekton.md, "Interceptor
            // calls are retried") and then reports the failure.
            "error checking owner file validation",
            "issue_comment",
            COMMENT,
            owners_params("none", true),
            Fake::Paths(vec![(OWNERS_PATH, 500, "")]),
            Tekton::Stop("an error (the table names none)"),
            Some("500 Internal Server Error"),
        ),
        (
            // Tekton is sent no context; Sluice always has one, and asks GitHub.
            "no context",
            "pull_request",
            PR_BY_NONOWNER,
            owners_params("orgMembers", true),
            owners_fake(r#"[{"login": "test_owner"}]"#),
            Tekton::Stop("error getting github token: no request context passed"),
            None,
        ),
    ];
    for (name, event, body, params, fake, tekton, cause) in rows {
        file.case(F, name, move || {
            judge(
                Event {
                    event,
                    body,
                    params,
                    extra_headers: vec![],
                },
                fake,
                tekton,
                cause,
            )
        });
    }
}
