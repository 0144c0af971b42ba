//! `pkg/interceptors/bitbucket/bitbucket_test.go`: which requests the `bitbucket` interceptor
//! lets through (`X-Hub-Signature` with SHA-1, `X-Event-Key`). See [`crate::interceptor`]
//! for the mapping.

use crate::interceptor::{Row, Secret, hmac_header};
use crate::suite::Suite;

const FILE: &str = "pkg/interceptors/bitbucket/bitbucket_test.go";
const EMPTY: &[u8] = b"{}";
const SECRET_REF: &str = "{name: secretRef, value: {secretName: mysecret, secretKey: token}}";
const EVENT_TYPES: &str = "{name: eventTypes, value: ['pr:opened', 'repo:refs_changed']}";

fn secret(value: &'static str) -> Option<Secret> {
    Some(Secret {
        name: "mysecret",
        key: "token",
        value,
    })
}

fn row(
    params: &[&str],
    secret: Option<Secret>,
    signature: Option<String>,
    event: Option<&str>,
    body: &'static [u8],
    continues: bool,
) -> Row {
    let mut headers = vec![("Content-Type", "application/json".to_owned())];
    if let Some(event) = event {
        headers.push(("X-Event-Key", event.to_owned()));
    }
    if let Some(signature) = signature {
        headers.push(("X-Hub-Signature", signature));
    }
    Row {
        kind: "bitbucket",
        params: format!("[{}]", params.join(", ")),
        secret,
        headers,
        body,
        continues,
    }
}

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);
    let signed = || Some(hmac_header("secret", EMPTY, "sha1"));
    let not_a_signature = || Some("foo".to_owned());
    let continues = vec![
        (
            "no secret",
            row(&[], None, not_a_signature(), None, EMPTY, true),
        ),
        (
            "valid header for secret",
            row(&[SECRET_REF], secret("secret"), signed(), None, EMPTY, true),
        ),
        (
            "matching event",
            row(
                &[EVENT_TYPES],
                None,
                None,
                Some("repo:refs_changed"),
                EMPTY,
                true,
            ),
        ),
        (
            "valid header for secret and matching event",
            row(
                &[SECRET_REF, EVENT_TYPES],
                secret("secret"),
                signed(),
                Some("repo:refs_changed"),
                EMPTY,
                true,
            ),
        ),
        (
            "nil body does not panic",
            row(&[], None, not_a_signature(), None, b"", true),
        ),
    ];
    for (name, row) in continues {
        file.case("TestInterceptor_Process_ShouldContinue", name, move || {
            row.judge()
        });
    }
    let stops = vec![
        (
            "invalid header for secret",
            row(
                &[SECRET_REF],
                secret("secrettoken"),
                not_a_signature(),
                None,
                EMPTY,
                false,
            ),
        ),
        (
            "no X-Hub-Signature header for secret",
            row(
                &[SECRET_REF],
                secret("secrettoken"),
                None,
                None,
                EMPTY,
                false,
            ),
        ),
        (
            "no matching event",
            row(&[EVENT_TYPES], None, None, Some("event"), EMPTY, false),
        ),
        (
            "invalid header for secret, but matching event",
            row(
                &[SECRET_REF, EVENT_TYPES],
                secret("secrettoken"),
                not_a_signature(),
                Some("pr:opened"),
                EMPTY,
                false,
            ),
        ),
        (
            "valid header for secret, but no matching event",
            row(
                &[SECRET_REF, EVENT_TYPES],
                secret("secret"),
                signed(),
                Some("event"),
                EMPTY,
                false,
            ),
        ),
        (
            "empty secret",
            row(
                &["{name: secretRef, value: {secretName: mysecret}}"],
                secret("secret"),
                signed(),
                None,
                EMPTY,
                false,
            ),
        ),
    ];
    for (name, row) in stops {
        file.case(
            "TestInterceptor_Process_ShouldNotContinue",
            name,
            move || row.judge(),
        );
    }
    file.skip(
        "TestInterceptor_Process_InvalidParams",
        &[""],
        "the params hold a Go function value, which no YAML can express",
    );
}
