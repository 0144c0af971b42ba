//! `pkg/interceptors/gitlab/gitlab_test.go`: which requests the `gitlab` interceptor lets
//! through (`X-Gitlab-Token`, event types). See [`crate::interceptor`] for the mapping. The
//! table's rows that should stop set their event type in `X-interceptorParams-Event`, a
//! header no interceptor reads; that is carried over as written.

use crate::interceptor::{Row, Secret};
use crate::suite::Suite;

const FILE: &str = "pkg/interceptors/gitlab/gitlab_test.go";
const PAYLOAD: &[u8] = b"somepayload";
const SECRET_REF: &str = "{name: secretRef, value: {secretName: mysecret, secretKey: token}}";
const EVENT_TYPES: &str = "{name: eventTypes, value: [foo, bar]}";

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
    token: Option<&str>,
    event: Option<(&'static str, &str)>,
    body: &'static [u8],
    continues: bool,
) -> Row {
    let mut headers = vec![("Content-Type", "application/json".to_owned())];
    if let Some(token) = token {
        headers.push(("X-GitLab-Token", token.to_owned()));
    }
    if let Some((header, event)) = event {
        headers.push((header, event.to_owned()));
    }
    Row {
        kind: "gitlab",
        params: format!("[{}]", params.join(", ")),
        secret,
        headers,
        body,
        continues,
    }
}

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);
    const EVENT: &str = "X-GitLab-Event";
    const MISNAMED: &str = "X-interceptorParams-Event";
    let continues = vec![
        (
            "no secret",
            row(&[], None, Some("foo"), None, PAYLOAD, true),
        ),
        (
            "valid header for secret",
            row(
                &[SECRET_REF],
                secret("secret"),
                Some("secret"),
                None,
                PAYLOAD,
                true,
            ),
        ),
        (
            "valid event",
            row(
                &[EVENT_TYPES],
                None,
                None,
                Some((EVENT, "foo")),
                PAYLOAD,
                true,
            ),
        ),
        (
            "valid event, valid secret",
            row(
                &[EVENT_TYPES, SECRET_REF],
                secret("secrettoken"),
                Some("secrettoken"),
                Some((EVENT, "bar")),
                PAYLOAD,
                true,
            ),
        ),
    ];
    for (name, row) in continues {
        file.case(
            "TestInterceptor_ExecuteTrigger_ShouldContinue",
            name,
            move || row.judge(),
        );
    }
    let stops = vec![
        (
            "invalid header for secret",
            row(
                &[SECRET_REF],
                secret("secrettoken"),
                Some("foo"),
                None,
                PAYLOAD,
                false,
            ),
        ),
        (
            "missing header for secret",
            row(
                &[SECRET_REF],
                secret("secrettoken"),
                None,
                None,
                PAYLOAD,
                false,
            ),
        ),
        (
            "invalid event",
            row(
                &[EVENT_TYPES],
                None,
                None,
                Some((MISNAMED, "baz")),
                PAYLOAD,
                false,
            ),
        ),
        (
            "valid event, invalid secret",
            row(
                &[EVENT_TYPES, SECRET_REF],
                secret("secrettoken"),
                Some("foo"),
                Some((MISNAMED, "bar")),
                PAYLOAD,
                false,
            ),
        ),
        (
            "invalid event, valid secret",
            row(
                &[EVENT_TYPES, SECRET_REF],
                secret("secrettoken"),
                Some("secrettoken"),
                Some((MISNAMED, "baz")),
                PAYLOAD,
                false,
            ),
        ),
        (
            "empty secret",
            row(
                &["{name: secretRef, value: {secretName: mysecret}}"],
                secret("secrettoken"),
                None,
                None,
                b"",
                false,
            ),
        ),
    ];
    for (name, row) in stops {
        file.case(
            "TestInterceptor_ExecuteTrigger_ShouldNotContinue",
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
