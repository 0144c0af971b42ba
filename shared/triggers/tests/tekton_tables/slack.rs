//! `pkg/interceptors/slack/slack_test.go`: Tekton's `slack` interceptor copies the form
//! fields named by `requestedFields` into the extensions, given a request that says it is a
//! form and carries `X-Slack-Signature`.
//!
//! Sluice splits the interceptor where its parts run: the signature is verified at the edge
//! ([`crate::interceptor::verdict`]; Tekton only checks that the header is there), then the
//! fields are read ([`sluice_triggers::body::requested_fields`]) from the body the
//! interceptor is given, which is the table's. A row that sends the header has it replaced by
//! a valid signature of the body under the interceptor's secret, with a fresh
//! `X-Slack-Request-Timestamp`: Tekton's tables send an arbitrary value.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sluice_triggers::body::requested_fields;
use sluice_triggers::catalogue::Interceptor;
use sluice_triggers::config::load_str;
use sluice_triggers::headers::Headers;

use crate::interceptor::{NAMESPACE, Secret, listener_yaml, request_headers, verdict};
use crate::suite::{Compared, Suite};

const FILE: &str = "pkg/interceptors/slack/slack_test.go";
const SIGNING_SECRET: &str = "slack-signing-secret";

const VALID_PAYLOAD: &str = r#"{"api_app_id":["A04NXU23L"],"channel_id":["C04NETw4NBH"],"channel_name":["sample-app"],"command":["/build"],"is_enterprise_install":["false"],"response_url":["https://hooks.slack.com/commands/T04PK47EDS4/4863712501879/dOMNffCDfTjlSskBrmB1bOtR"],"team_domain":["demoworkspace-tid8978"],"team_id":["T04PK47eDS4"],"text":["main 2222"],"token":["EidhofDor5uIpqQ9RrtOVdnC"],"trigger_id":["4890883491553.4801143489888.910b8eaae200b381834de25310583f74"],"user_id":["U04NVDwF7R8"]}"#;

/// One row: `requestedFields`, the body, the table's headers, and whether Tekton continues.
struct Row {
    fields: &'static str,
    body: &'static str,
    headers: &'static [(&'static str, &'static str)],
    continues: bool,
}

impl Row {
    fn judge(self) -> Compared {
        let params = format!(
            "[{{name: secretRef, value: {{secretName: slack, secretKey: signing}}}}, \
             {{name: requestedFields, value: {}}}]",
            self.fields
        );
        let secret = Secret {
            name: "slack",
            key: "signing",
            value: SIGNING_SECRET,
        };
        let catalogue = load_str(
            "listener.yaml",
            &listener_yaml("slack", &params, Some(&secret)),
        );
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (name, value) in self.headers {
            if name.eq_ignore_ascii_case("X-Slack-Signature") {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    .to_string();
                pairs.push((name, sign(&now, self.body.as_bytes())));
                pairs.push(("X-Slack-Request-Timestamp", now));
            } else {
                pairs.push((name, (*value).to_owned()));
            }
        }
        let edge = verdict(&catalogue, &request_headers(&pairs), self.body.as_bytes());
        let sluice = if edge == "continue" {
            let fields = catalogue
                .listener(NAMESPACE, "l")
                .and_then(|listener| listener.trigger("t"))
                .and_then(|trigger| match trigger.interceptors.first() {
                    Some(Interceptor::Slack(slack)) => slack.requested_fields.clone(),
                    _ => None,
                })
                .unwrap_or_default();
            // The event's headers as the dispatcher has them (the signature never queued).
            let headers: Headers = pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect();
            match requested_fields(&fields, &headers, self.body.as_bytes()) {
                Ok(extensions) => format!(
                    "continue, extensions {}",
                    serde_json::Value::Object(extensions)
                ),
                Err(error) => format!("stop: {error}"),
            }
        } else {
            edge
        };
        let tekton = if self.continues { "continue" } else { "stop" };
        let same = sluice.starts_with(tekton);
        Compared::judged(
            format!(
                "requestedFields {}; headers {:?}; body {:?}",
                self.fields, self.headers, self.body
            ),
            tekton,
            sluice,
            same,
        )
    }
}

/// `v0=<hex HMAC-SHA256 of v0:<timestamp>:<body>>` under [`SIGNING_SECRET`].
fn sign(timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SIGNING_SECRET.as_bytes()).unwrap();
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

const FORM_AND_SIGNATURE: &[(&str, &str)] = &[
    ("Content-Type", "application/x-www-form-urlencoded"),
    ("X-Slack-Signature", "1231231231"),
];

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);
    file.case(
        "TestInterceptor_ExecuteTrigger_ShouldContinue",
        "valid case",
        || {
            Row {
                fields: "[text]",
                body: VALID_PAYLOAD,
                headers: FORM_AND_SIGNATURE,
                continues: true,
            }
            .judge()
        },
    );
    let stops = [
        ("bad payload", "{token: tttt}", FORM_AND_SIGNATURE),
        (
            "skip params - no content type",
            "somepayload",
            &[("X-Slack-Signature", "1231231231")][..],
        ),
        (
            "skip params - no slack signature",
            "somepayload",
            &[("Content-Type", "application/x-www-form-urlencoded")][..],
        ),
    ];
    for (name, body, headers) in stops {
        file.case(
            "TestInterceptor_ExecuteTrigger_ShouldNotContinue",
            name,
            move || {
                Row {
                    fields: "[text]",
                    body,
                    headers,
                    continues: false,
                }
                .judge()
            },
        );
    }
}
