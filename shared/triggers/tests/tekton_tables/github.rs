//! `pkg/interceptors/github/github_test.go`: which requests the `github` interceptor lets
//! through (signature, event types, content type), which the edge decides. See
//! [`crate::interceptor`] for the mapping. The cases of its calls to GitHub's API
//! (`addChangedFiles`, `githubOwners` and their helpers), which the dispatcher makes, run in
//! `sluice-dispatcher`'s suite (`dispatcher/tests/tekton_tables/github.rs`).

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
