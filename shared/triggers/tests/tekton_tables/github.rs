//! `pkg/interceptors/github/github_test.go`: which requests the `github` interceptor lets
//! through (signature, event types, content type). See [`crate::interceptor`] for the
//! mapping. `addChangedFiles` is refused by Sluice, as documented; `githubOwners` is refused
//! too (an unknown param), which the documentation does not say.

use sluice_triggers::config::load_str;

use crate::interceptor::{Row, Secret, listener_yaml, request_headers, verdict};
use crate::suite::{Compared, File, Suite};

const FILE: &str = "pkg/interceptors/github/github_test.go";
const EMPTY: &[u8] = b"{}";

fn secret(value: &'static str) -> Option<Secret> {
    Some(Secret {
        name: "mysecret",
        key: "token",
        value,
    })
}

const SECRET_REF: &str = "{name: secretRef, value: {secretName: mysecret, secretKey: token}}";
const EVENT_TYPES: &str = "{name: eventTypes, value: [MY_EVENT, YOUR_EVENT]}";

fn row(
    params: &[&str],
    secret: Option<Secret>,
    headers: Vec<(&'static str, String)>,
    body: &'static [u8],
    continues: bool,
) -> Row {
    let mut all = vec![("Content-Type", "application/json".to_owned())];
    all.extend(headers);
    Row {
        kind: "github",
        params: format!("[{}]", params.join(", ")),
        secret,
        headers: all,
        body,
        continues,
    }
}

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);
    signature(&mut file);
    should_not_continue(&mut file);
    file.case(
        "TestInterceptor_ExecuteTrigger_with_invalid_content_type",
        "",
        || {
            let yaml = listener_yaml("github", "[]", None);
            let headers = vec![
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded".to_owned(),
                ),
                ("X-Hub-Signature-256", "foo".to_owned()),
            ];
            let sluice = verdict(
                &load_str("l.yaml", &yaml),
                &request_headers(&headers),
                EMPTY,
            );
            let same = sluice.starts_with("stop");
            Compared::judged(
                format!("github params []; headers {headers:?}"),
                "stop",
                sluice,
                same,
            )
        },
    );
    file.skip(
        "TestInterceptor_Process_InvalidParams",
        &[""],
        "the params hold a Go function value, which no YAML can express",
    );
    let changed_files = "`addChangedFiles` of the github interceptor is refused \
                         (docs/tekton.md, \"Not evaluated, so refused\")";
    file.skip(
        "TestInterceptor_ExecuteTrigger_Changed_Files_Pull_Request",
        &[
            "changed_files",
            "empty body, failure",
            "non json body, failure",
            "pull request, missing 'number' json field",
            "missing repository json field, failure",
            "missing full_name json field, failure",
            "event type not push or pull_request, failure",
        ],
        changed_files,
    );
    file.skip(
        "TestInterceptor_ExecuteTrigger_Changed_Files_Push",
        &[
            "changed_files",
            "missing commits added json field, failure",
            "missing commits removed json field, failure",
            "missing commits modified json field, failure",
            "no context with secretRef",
            "no context",
            "invalid secret",
        ],
        changed_files,
    );
    let helper = "a Go helper of the interceptor (reading a token Secret, building a GitHub \
                  API client, parsing the body for owners) with no behaviour of its own to observe";
    file.skip(
        "Test_getGithubTokenSecret",
        &[
            "valid secret",
            "nil secret reference",
            "missing secret key, failure",
        ],
        helper,
    );
    file.skip(
        "Test_makeClient",
        &["public github", "enterprise github"],
        helper,
    );
    file.skip(
        "Test_getPersonalAccessTokenSecret",
        &[
            "valid secret",
            "nil secret reference",
            "missing secret key, failure",
        ],
        helper,
    );
    file.skip(
        "TestInterceptor_ExecuteTrigger_owners_parseBodyForOwners",
        &[
            "No payload supplied",
            "PR number missing on the payload",
            "Issue comment missing issue on the payload",
            "Issue comment missing issue on the payload (second)",
            "Payload body missing repository field",
            "Payload body missing full_name in repository field",
            "Payload body missing sender field",
            "Issue_comment missing 'comment' section",
            "Issue_comment missing body field in comment section",
            "Payload return with all details issue_comment",
        ],
        helper,
    );
    owners(&mut file);
}

fn signature(file: &mut File<'_>) {
    const F: &str = "TestInterceptor_ExecuteTrigger_Signature";
    let signed = || {
        vec![(
            "X-Hub-Signature-256",
            crate::interceptor::hmac_header("secret", EMPTY, "sha256"),
        )]
    };
    let not_a_signature = || vec![("X-Hub-Signature-256", "foo".to_owned())];
    let event = |name: &str| ("X-GITHUB-EVENT", name.to_owned());
    let rows = vec![
        ("no secret", row(&[], None, not_a_signature(), EMPTY, true)),
        (
            "valid header for secret",
            row(&[SECRET_REF], secret("secret"), signed(), EMPTY, true),
        ),
        (
            "valid sha-256 header for secret",
            row(&[SECRET_REF], secret("secret"), signed(), EMPTY, true),
        ),
        (
            "no secret, matching event",
            row(&[EVENT_TYPES], None, vec![event("YOUR_EVENT")], EMPTY, true),
        ),
        (
            "valid header for secret and matching event",
            row(
                &[SECRET_REF, EVENT_TYPES],
                secret("secret"),
                [vec![event("MY_EVENT")], signed()].concat(),
                EMPTY,
                true,
            ),
        ),
        (
            "nil body does not panic",
            row(&[], None, not_a_signature(), b"", true),
        ),
    ];
    for (name, row) in rows {
        file.case(F, name, move || row.judge());
    }
}

fn should_not_continue(file: &mut File<'_>) {
    const F: &str = "TestInterceptor_ExecuteTrigger_ShouldNotContinue";
    let signed = || {
        (
            "X-Hub-Signature-256",
            crate::interceptor::hmac_header("secret", EMPTY, "sha256"),
        )
    };
    let not_a_signature = || ("X-Hub-Signature-256", "foo".to_owned());
    let event = |name: &str| ("X-GITHUB-EVENT", name.to_owned());
    let rows = vec![
        (
            "invalid signature header",
            row(
                &[SECRET_REF],
                secret("secrettoken"),
                vec![not_a_signature()],
                EMPTY,
                false,
            ),
        ),
        (
            "missing signature header",
            row(&[SECRET_REF], secret("secrettoken"), vec![], EMPTY, false),
        ),
        (
            "no secret, failing event",
            row(
                &[EVENT_TYPES],
                None,
                vec![event("OTHER_EVENT")],
                EMPTY,
                false,
            ),
        ),
        (
            "valid header for secret, failing event",
            row(
                &[SECRET_REF, EVENT_TYPES],
                secret("secret"),
                vec![event("OTHER_EVENT"), signed()],
                EMPTY,
                false,
            ),
        ),
        (
            "invalid header for secret, matching event",
            row(
                &[SECRET_REF, EVENT_TYPES],
                secret("secrettoken"),
                vec![event("MY_EVENT"), not_a_signature()],
                EMPTY,
                false,
            ),
        ),
        (
            "empty secret",
            row(
                &["{name: secretRef, value: {secretName: mysecret}}"],
                secret("secret"),
                vec![signed()],
                EMPTY,
                false,
            ),
        ),
    ];
    for (name, row) in rows {
        file.case(F, name, move || row.judge());
    }
}

/// `githubOwners` asks GitHub whether the sender may run the trigger. Sluice does not know
/// the param and refuses the trigger when the configuration loads, so none of these events
/// is evaluated.
fn owners(file: &mut File<'_>) {
    // (case, event type, checkType, personal access token given, Tekton continues)
    let table = [
        (
            "owners file have sender",
            "issue_comment",
            "none",
            true,
            true,
        ),
        (
            "sender is a collaborator but PersonalAccessToken not supplied",
            "issue_comment",
            "repoMembers",
            false,
            false,
        ),
        (
            "sender is a repository member",
            "issue_comment",
            "repoMembers",
            true,
            true,
        ),
        (
            "sender is a organization member",
            "pull_request",
            "orgMembers",
            true,
            true,
        ),
        (
            "owners file does not have sender",
            "issue_comment",
            "none",
            false,
            false,
        ),
        (
            "owners file have sender and sender commented /ok-to-test",
            "issue_comment",
            "none",
            false,
            true,
        ),
        (
            "owners file have sender and owner commented /random",
            "issue_comment",
            "none",
            false,
            false,
        ),
        (
            "owners file does not have sender and nonowner commented /ok-to-test",
            "issue_comment",
            "none",
            false,
            false,
        ),
        (
            "pull request submitted by owner",
            "pull_request",
            "none",
            true,
            true,
        ),
        (
            "sender is not a repository member",
            "pull_request",
            "repoMembers",
            true,
            false,
        ),
        (
            "sender is not a organization member",
            "pull_request",
            "orgMembers",
            true,
            false,
        ),
    ];
    for (name, event, check_type, token, continues) in table {
        file.mismatch("TestInterceptor_ExecuteTrigger_owners", name, move || {
            owners_case(event, check_type, token, continues)
        });
    }
    let validation = [
        ("personalAccessToken secretKey is empty", "pull_request"),
        ("error parsing payload body", "pull_request"),
        ("no owners file", "pull_request"),
        ("error checking owner file validation", "pull_request"),
    ];
    for (name, event) in validation {
        file.mismatch(
            "TestInterceptor_ExecuteTrigger_owners_data_validation",
            name,
            move || {
                owners_case(
                    event,
                    "none",
                    name != "personalAccessToken secretKey is empty",
                    false,
                )
            },
        );
    }
    file.skip(
        "TestInterceptor_ExecuteTrigger_owners_data_validation",
        &["no context"],
        "an interceptor request without its context cannot occur in Sluice",
    );
}

fn owners_case(event: &str, check_type: &str, token: bool, continues: bool) -> Compared {
    let token = if token {
        ", personalAccessToken: {secretName: mysecret, secretKey: token}"
    } else {
        ""
    };
    let params = format!(
        "[{{name: eventTypes, value: [pull_request, issue_comment]}}, {{name: githubOwners, value: {{enabled: true, checkType: {check_type}{token}}}}}]"
    );
    let yaml = listener_yaml("github", &params, secret("secret").as_ref());
    let headers = vec![
        ("X-Hub-Signature-256", "foo".to_owned()),
        ("X-GitHub-Event", event.to_owned()),
    ];
    let sluice = verdict(
        &load_str("l.yaml", &yaml),
        &request_headers(&headers),
        EMPTY,
    );
    let tekton = if continues {
        "evaluated: continue"
    } else {
        "evaluated: stop"
    };
    let same = !sluice.contains("refused at load") && (sluice == "continue") == continues;
    Compared::judged(
        format!("github params {params}; event {event}; GitHub API answers as in the table"),
        tekton,
        sluice,
        same,
    )
}
