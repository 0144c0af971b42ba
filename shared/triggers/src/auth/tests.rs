//! The listener-level decision: which triggers accept, and which answer wins when none does.

use std::sync::Arc;
use std::time::Duration;

use crate::catalogue::{
    BitbucketInterceptor, GitHubInterceptor, GitLabInterceptor, GiteeInterceptor, GiteeMode,
    HmacAlgorithm, HmacInterceptor, MisconfiguredInterceptor, ResourceTemplates, SignatureEncoding,
    SlackInterceptor, TemplateSpec,
};
use crate::secret::SecretValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::request::MacAlgorithm;
use super::request::tests::{NOW_SECS, headers, mac, now};
use super::*;

fn trigger(name: &str, interceptors: Vec<Interceptor>) -> Trigger {
    Trigger {
        name: name.into(),
        namespace: "ns".into(),
        service_account: "default".into(),
        interceptors,
        group: None,
        cross_namespace: false,
        params: vec![],
        body_reads: Default::default(),
        template: Arc::new(TemplateSpec {
            params: vec![],
            resource_templates: ResourceTemplates::new(vec![]),
            old_escape_quotes: false,
        }),
    }
}

fn listener(triggers: Vec<Trigger>) -> Listener {
    Listener {
        namespace: "ns".into(),
        name: "l".into(),
        uid: "u".into(),
        triggers,
        skipped_triggers: 0,
        annotations: Default::default(),
        payload_validation: true,
    }
}

fn events(list: &[&str]) -> Vec<String> {
    list.iter().map(|e| e.to_string()).collect()
}

fn github(secret: Option<&str>, list: &[&str]) -> Interceptor {
    Interceptor::GitHub(GitHubInterceptor {
        secret: secret.map(SecretValue::new),
        event_types: events(list),
        allow_sha1: false,
        ..GitHubInterceptor::default()
    })
}

fn gitlab(secret: &str, list: &[&str]) -> Interceptor {
    Interceptor::GitLab(GitLabInterceptor {
        secret: Some(SecretValue::new(secret)),
        event_types: events(list),
    })
}

fn misconfigured(kind: InterceptorKind, list: &[&str]) -> Interceptor {
    Interceptor::Misconfigured(MisconfiguredInterceptor {
        kind,
        event_types: events(list),
        reason: format!("{kind} interceptor: Secret `gone` in namespace `ns` not found"),
    })
}

fn sign(secret: &str, body: &[u8]) -> Vec<u8> {
    format!(
        "sha256={}",
        hex::encode(mac(MacAlgorithm::Sha256, secret.as_bytes(), &[body]))
    )
    .into_bytes()
}

fn admit_now(
    listener: &Listener,
    pairs: &[(&'static str, &[u8])],
    body: &[u8],
) -> Result<Admission, Refusal> {
    admit_at(listener, &headers(pairs), body, now())
}

fn accepted(names: &[&str]) -> Result<Admission, Refusal> {
    Ok(Admission::Accepted(
        names.iter().map(|n| n.to_string()).collect(),
    ))
}

fn code(result: Result<Admission, Refusal>) -> &'static str {
    match result {
        Ok(admission) => panic!("expected a refusal, got {admission:?}"),
        Err(refusal) => refusal.code(),
    }
}

#[test]
fn only_triggers_that_authenticate_are_selected() {
    let body = br#"{"a":1}"#;
    let l = listener(vec![
        trigger("right", vec![github(Some("s1"), &[])]),
        trigger("wrong", vec![github(Some("s2"), &[])]),
        trigger("also-right", vec![github(Some("s1"), &[])]),
    ]);
    let signature = sign("s1", body);
    assert_eq!(
        admit_now(&l, &[("x-hub-signature-256", &signature)], body),
        accepted(&["right", "also-right"])
    );
}

#[test]
fn authentic_request_for_another_event_type_is_filtered_not_refused() {
    let body = b"{}";
    let l = listener(vec![trigger(
        "push-only",
        vec![github(Some("s"), &["push"])],
    )]);
    let signature = sign("s", body);
    assert_eq!(
        admit_now(
            &l,
            &[
                ("x-hub-signature-256", &signature),
                ("x-github-event", b"issues")
            ],
            body
        ),
        Ok(Admission::Filtered)
    );
    assert_eq!(
        admit_now(
            &l,
            &[
                ("x-hub-signature-256", &signature),
                ("x-github-event", b"push")
            ],
            body
        ),
        accepted(&["push-only"])
    );
}

#[test]
fn a_wrong_signature_is_refused_whatever_the_event_type() {
    let l = listener(vec![trigger("t", vec![github(Some("s"), &["push"])])]);
    let wrong = sign("other", b"{}");
    assert_eq!(
        code(admit_now(
            &l,
            &[
                ("x-hub-signature-256", &wrong),
                ("x-github-event", b"issues")
            ],
            b"{}"
        )),
        "signature_invalid"
    );
}

#[test]
fn trigger_without_interceptors_accepts_any_caller() {
    let l = listener(vec![trigger("open", vec![])]);
    assert_eq!(admit_now(&l, &[], b"{}"), accepted(&["open"]));
}

#[test]
fn the_first_refusing_trigger_names_the_code() {
    let l = listener(vec![
        trigger("gitlab", vec![gitlab("t", &[])]),
        trigger("github", vec![github(Some("s"), &[])]),
    ]);
    let wrong = sign("other", b"{}");
    assert_eq!(
        code(admit_now(&l, &[("x-hub-signature-256", &wrong)], b"{}")),
        "token_missing"
    );
    let l = listener(vec![
        trigger("github", vec![github(Some("s"), &[])]),
        trigger("gitlab", vec![gitlab("t", &[])]),
    ]);
    assert_eq!(
        code(admit_now(&l, &[("x-hub-signature-256", &wrong)], b"{}")),
        "signature_invalid"
    );
}

#[test]
fn every_interceptor_of_a_trigger_must_pass() {
    let body = b"{}";
    let l = listener(vec![trigger(
        "both",
        vec![github(Some("s"), &["push"]), gitlab("t", &[])],
    )]);
    let signature = sign("s", body);
    let github_ok: (&'static str, &[u8]) = ("x-hub-signature-256", &signature);
    let push: (&'static str, &[u8]) = ("x-github-event", b"push");
    assert_eq!(
        admit_now(&l, &[github_ok, push, ("x-gitlab-token", b"t")], body),
        accepted(&["both"])
    );
    assert_eq!(
        code(admit_now(
            &l,
            &[github_ok, push, ("x-gitlab-token", b"x")],
            body
        )),
        "token_invalid"
    );
    assert_eq!(
        code(admit_now(&l, &[github_ok, push], body)),
        "token_missing"
    );
}

#[test]
fn each_provider_filters_on_its_own_event_header() {
    let body = br#"{"k":"v"}"#;
    let now_ms = (NOW_SECS * 1000).to_string();
    let gitee_token = STANDARD.encode(mac(
        MacAlgorithm::Sha256,
        b"ge",
        &[now_ms.as_bytes(), b"\n", b"ge"],
    ));
    let l = listener(vec![
        trigger("gitlab", vec![gitlab("gl", &["Push Hook"])]),
        trigger(
            "bitbucket",
            vec![Interceptor::Bitbucket(BitbucketInterceptor {
                secret: Some(SecretValue::new("bb")),
                event_types: events(&["repo:refs_changed", "repo:push"]),
            })],
        ),
        trigger(
            "gitee",
            vec![Interceptor::Gitee(GiteeInterceptor {
                secret: SecretValue::new("ge"),
                event_types: events(&["Push Hook"]),
                mode: GiteeMode::Signature,
                timestamp_window: Duration::from_secs(3600),
            })],
        ),
    ]);
    let bb_signature = sign("bb", body);
    assert_eq!(
        admit_now(
            &l,
            &[("x-gitlab-token", b"gl"), ("x-gitlab-event", b"Push Hook")],
            body
        ),
        accepted(&["gitlab"])
    );
    assert_eq!(
        admit_now(
            &l,
            &[
                ("x-gitlab-token", b"gl"),
                ("x-gitlab-event", b"Tag Push Hook")
            ],
            body
        ),
        Ok(Admission::Filtered)
    );
    for key in [&b"repo:refs_changed"[..], b"repo:push"] {
        assert_eq!(
            admit_now(
                &l,
                &[("x-hub-signature", &bb_signature), ("x-event-key", key)],
                body
            ),
            accepted(&["bitbucket"])
        );
    }
    assert_eq!(
        admit_now(
            &l,
            &[
                ("x-hub-signature", &bb_signature),
                ("x-event-key", b"pr:opened")
            ],
            body
        ),
        Ok(Admission::Filtered)
    );
    assert_eq!(
        admit_now(
            &l,
            &[
                ("x-gitee-token", gitee_token.as_bytes()),
                ("x-gitee-timestamp", now_ms.as_bytes()),
                ("x-gitee-event", b"Push Hook")
            ],
            body
        ),
        accepted(&["gitee"])
    );
}

#[test]
fn slack_and_hmac_triggers_accept_signed_requests() {
    let body = br#"{"type":"event_callback"}"#;
    let l = listener(vec![
        trigger(
            "slack",
            vec![Interceptor::Slack(SlackInterceptor {
                secret: SecretValue::new("sl"),
                timestamp_window: Duration::from_secs(300),
                requested_fields: None,
            })],
        ),
        trigger(
            "hmac",
            vec![Interceptor::Hmac(HmacInterceptor {
                secret: SecretValue::new("hm"),
                header: "x-signature".into(),
                algorithm: HmacAlgorithm::Sha512,
                encoding: SignatureEncoding::Base64,
                prefix: "sha512=".into(),
            })],
        ),
    ]);
    let ts = NOW_SECS.to_string();
    let slack = format!(
        "v0={}",
        hex::encode(mac(
            MacAlgorithm::Sha256,
            b"sl",
            &[b"v0:", ts.as_bytes(), b":", body]
        ))
    );
    assert_eq!(
        admit_now(
            &l,
            &[
                ("x-slack-signature", slack.as_bytes()),
                ("x-slack-request-timestamp", ts.as_bytes())
            ],
            body
        ),
        accepted(&["slack"])
    );
    let hmac = format!(
        "sha512={}",
        STANDARD.encode(mac(MacAlgorithm::Sha512, b"hm", &[body]))
    );
    assert_eq!(
        admit_now(&l, &[("x-signature", hmac.as_bytes())], body),
        accepted(&["hmac"])
    );
    // Neither: the first trigger's refusal.
    assert_eq!(code(admit_now(&l, &[], body)), "signature_missing");
}

#[test]
fn a_misconfigured_trigger_that_could_have_accepted_makes_the_listener_answer_500() {
    let body = b"{}";
    let signature = sign("s", body);
    let signed: (&'static str, &[u8]) = ("x-hub-signature-256", &signature);

    // Alone, it refuses everything as misconfigured, naming the cause for the logs.
    let l = listener(vec![trigger(
        "broken",
        vec![misconfigured(InterceptorKind::GitHub, &["push"])],
    )]);
    match admit_now(&l, &[signed, ("x-github-event", b"push")], body) {
        Err(Refusal::Misconfigured(m)) => {
            assert_eq!(m.trigger.as_deref(), Some("broken"));
            assert!(m.reason.contains("Secret `gone`"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        code(admit_now(&l, &[("x-github-event", b"issues")], body)),
        "listener_misconfigured"
    );

    // Another trigger accepting wins: the event is queued for it.
    let l = listener(vec![
        trigger("broken", vec![misconfigured(InterceptorKind::GitHub, &[])]),
        trigger("good", vec![github(Some("s"), &[])]),
    ]);
    assert_eq!(admit_now(&l, &[signed], body), accepted(&["good"]));

    // Another trigger refusing: the broken one could have been the right one, so 500…
    let wrong = sign("x", body);
    assert_eq!(
        code(admit_now(&l, &[("x-hub-signature-256", &wrong)], body)),
        "listener_misconfigured"
    );
    // …unless its event types rule the request out: then the refusal stands.
    let l = listener(vec![
        trigger(
            "broken",
            vec![misconfigured(InterceptorKind::GitLab, &["Push Hook"])],
        ),
        trigger("good", vec![github(Some("s"), &[])]),
    ]);
    assert_eq!(
        code(admit_now(
            &l,
            &[
                ("x-hub-signature-256", &wrong),
                ("x-gitlab-event", b"Issue Hook")
            ],
            body
        )),
        "signature_invalid"
    );
    assert_eq!(
        code(admit_now(
            &l,
            &[
                ("x-hub-signature-256", &wrong),
                ("x-gitlab-event", b"Push Hook")
            ],
            body
        )),
        "listener_misconfigured"
    );

    // Authentic but filtered elsewhere: 500 if the broken trigger wanted it, else filtered.
    let l = listener(vec![
        trigger(
            "broken",
            vec![misconfigured(InterceptorKind::GitHub, &["issues"])],
        ),
        trigger("good", vec![github(Some("s"), &["push"])]),
    ]);
    assert_eq!(
        code(admit_now(
            &l,
            &[signed, ("x-github-event", b"issues")],
            body
        )),
        "listener_misconfigured"
    );
    assert_eq!(
        admit_now(&l, &[signed, ("x-github-event", b"release")], body),
        Ok(Admission::Filtered)
    );

    // A credential that fails in the same trigger is a plain refusal.
    let l = listener(vec![trigger(
        "half",
        vec![
            github(Some("s"), &[]),
            misconfigured(InterceptorKind::Slack, &[]),
        ],
    )]);
    assert_eq!(code(admit_now(&l, &[], body)), "signature_missing");
    assert_eq!(
        code(admit_now(&l, &[signed], body)),
        "listener_misconfigured"
    );
}

#[test]
fn a_listener_whose_every_trigger_is_invalid_is_misconfigured_one_without_any_is_not() {
    let mut l = listener(vec![]);
    assert_eq!(admit_now(&l, &[], b"{}"), Ok(Admission::Filtered));
    l.skipped_triggers = 2;
    match admit_now(&l, &[], b"{}") {
        Err(Refusal::Misconfigured(m)) => {
            assert_eq!(m.trigger, None);
            assert!(m.reason.contains("2 declared trigger(s)"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn duplicate_signature_headers_are_refused_even_when_one_is_right() {
    let l = listener(vec![trigger("t", vec![github(Some("s"), &[])])]);
    let right = sign("s", b"{}");
    let wrong = sign("x", b"{}");
    for pair in [[&right, &wrong], [&wrong, &right], [&right, &right]] {
        assert_eq!(
            code(admit_now(
                &l,
                &[
                    ("x-hub-signature-256", pair[0]),
                    ("x-hub-signature-256", pair[1])
                ],
                b"{}"
            )),
            "signature_invalid"
        );
    }
}

#[test]
fn debug_of_any_interceptor_prints_no_secret() {
    let secret = "hunter2-very-secret";
    let all = vec![
        github(Some(secret), &[]),
        gitlab(secret, &[]),
        Interceptor::Bitbucket(BitbucketInterceptor {
            secret: Some(SecretValue::new(secret)),
            event_types: vec![],
        }),
        Interceptor::Gitee(GiteeInterceptor {
            secret: SecretValue::new(secret),
            event_types: vec![],
            mode: GiteeMode::Auto,
            timestamp_window: Duration::from_secs(1),
        }),
        Interceptor::Slack(SlackInterceptor {
            secret: SecretValue::new(secret),
            timestamp_window: Duration::from_secs(1),
            requested_fields: None,
        }),
        Interceptor::Hmac(HmacInterceptor {
            secret: SecretValue::new(secret),
            header: "x-signature".into(),
            algorithm: HmacAlgorithm::Sha256,
            encoding: SignatureEncoding::Hex,
            prefix: String::new(),
        }),
    ];
    let l = listener(vec![trigger("t", all)]);
    let printed = format!("{l:?} {l:#?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("redacted"), "{printed}");
}

#[test]
fn hmac_signature_headers_are_credentials_of_their_listener() {
    let l = listener(vec![trigger(
        "t",
        vec![Interceptor::Hmac(HmacInterceptor {
            secret: SecretValue::new("s"),
            header: "x-signature".into(),
            algorithm: HmacAlgorithm::Sha256,
            encoding: SignatureEncoding::Hex,
            prefix: String::new(),
        })],
    )]);
    assert!(is_credential_header(&l, "x-signature"));
    assert!(!is_credential_header(&l, "x-github-event"));
}
