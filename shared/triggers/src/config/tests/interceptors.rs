//! Authentication interceptors in both syntaxes, their params and defaults, secrets that
//! cannot be read, and `--require-authentication`.

use std::time::Duration;

use super::*;
use crate::catalogue::{GiteeMode, HmacAlgorithm, InterceptorKind, SignatureEncoding};
use crate::config::{LoadOptions, load_str_with};

/// A v1beta1 listener `l` in `team-a` whose trigger `t` has `interceptors` (YAML flow
/// text), with the `github` Secret (`token` = `s3cret`) and the `pipeline` template.
fn v1beta1(interceptors: &str) -> String {
    format!(
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: l, namespace: team-a}}
spec:
  triggers:
    - name: t
      interceptors: {interceptors}
      template: {{ref: pipeline}}
---
{TEMPLATE}
---
{SECRET}
"#
    )
}

/// The same in a v1alpha1 listener.
fn v1alpha1(interceptors: &str) -> String {
    v1beta1(interceptors).replacen(
        "triggers.tekton.dev/v1beta1\nkind: EventListener",
        "triggers.tekton.dev/v1alpha1\nkind: EventListener",
        1,
    )
}

const SECRET_REF: &str = "{name: secretRef, value: {secretName: github, secretKey: token}}";

/// The only interceptor of trigger `t`, from a configuration that must load cleanly.
fn the_interceptor(yaml: &str) -> Interceptor {
    let catalogue = load_str(FILE, yaml);
    assert_no_issues(&catalogue);
    let trigger = &listener(&catalogue, "team-a", "l").triggers[0];
    match trigger.interceptors.as_slice() {
        [interceptor] => interceptor.clone(),
        other => panic!("{other:?}"),
    }
}

/// The issue of a configuration whose trigger `t` is skipped for exactly one reason.
fn skipped(yaml: &str) -> ConfigIssue {
    let catalogue = load_str(FILE, yaml);
    let issue = only_issue(&catalogue).clone();
    let l = listener(&catalogue, "team-a", "l");
    assert!(l.triggers.is_empty(), "{:?}", l.triggers);
    assert_eq!(l.skipped_triggers, 1);
    assert!(issue.message.ends_with("trigger skipped"), "{issue}");
    issue
}

#[test]
fn github_allow_sha1_is_read_as_a_boolean_or_its_string() {
    for value in ["true", "\"true\""] {
        let yaml = v1beta1(&format!(
            "[{{ref: {{name: github, kind: ClusterInterceptor}}, params: [{SECRET_REF}, {{name: allowSha1, value: {value}}}]}}]"
        ));
        let Interceptor::GitHub(github) = the_interceptor(&yaml) else {
            panic!()
        };
        assert!(github.allow_sha1, "{value}");
        assert_eq!(github.secret.unwrap().expose(), b"s3cret");
    }
    let Interceptor::GitHub(github) = the_interceptor(&v1beta1(&format!(
        "[{{ref: {{name: github}}, params: [{SECRET_REF}]}}]"
    ))) else {
        panic!()
    };
    assert!(!github.allow_sha1, "SHA-1 is off unless allowed");
    let issue = skipped(&v1beta1(
        "[{ref: {name: github}, params: [{name: allowSha1, value: yes please}]}]",
    ));
    assert_eq!(
        issue.field.as_deref(),
        Some("spec.triggers[0].interceptors[0].params[0].value")
    );
}

#[test]
fn gitlab_in_both_syntaxes() {
    for yaml in [
        v1beta1(&format!(
            "[{{ref: {{name: gitlab, kind: ClusterInterceptor}}, params: [{SECRET_REF}, {{name: eventTypes, value: [Push Hook, Tag Push Hook]}}]}}]"
        )),
        v1alpha1(
            "[{gitlab: {secretRef: {secretName: github, secretKey: token}, eventTypes: [Push Hook, Tag Push Hook]}}]",
        ),
    ] {
        let Interceptor::GitLab(gitlab) = the_interceptor(&yaml) else {
            panic!("{yaml}")
        };
        assert_eq!(gitlab.secret.unwrap().expose(), b"s3cret");
        assert_eq!(gitlab.event_types, ["Push Hook", "Tag Push Hook"]);
    }
    // Without a secret it only filters, as in Tekton.
    let Interceptor::GitLab(gitlab) =
        the_interceptor(&v1alpha1("[{gitlab: {eventTypes: [Push Hook]}}]"))
    else {
        panic!()
    };
    assert!(gitlab.secret.is_none());
}

#[test]
fn bitbucket_in_both_syntaxes() {
    for yaml in [
        v1beta1(&format!(
            "[{{ref: {{name: bitbucket}}, params: [{SECRET_REF}, {{name: eventTypes, value: [\"repo:refs_changed\", \"repo:push\"]}}]}}]"
        )),
        v1alpha1(
            "[{bitbucket: {secretRef: {secretName: github, secretKey: token}, eventTypes: [\"repo:refs_changed\", \"repo:push\"]}}]",
        ),
    ] {
        let Interceptor::Bitbucket(bitbucket) = the_interceptor(&yaml) else {
            panic!("{yaml}")
        };
        assert_eq!(bitbucket.secret.unwrap().expose(), b"s3cret");
        assert_eq!(bitbucket.event_types, ["repo:refs_changed", "repo:push"]);
    }
}

#[test]
fn gitee_modes_windows_and_defaults() {
    let Interceptor::Gitee(gitee) = the_interceptor(&v1beta1(&format!(
        "[{{ref: {{name: gitee}}, params: [{SECRET_REF}, {{name: eventTypes, value: [Push Hook]}}]}}]"
    ))) else {
        panic!()
    };
    assert_eq!(gitee.secret.expose(), b"s3cret");
    assert_eq!(gitee.event_types, ["Push Hook"]);
    assert_eq!(gitee.mode, GiteeMode::Auto);
    assert_eq!(gitee.timestamp_window, Duration::from_secs(3600));

    for (mode, expected) in [
        ("password", GiteeMode::Password),
        ("signature", GiteeMode::Signature),
        ("auto", GiteeMode::Auto),
    ] {
        let Interceptor::Gitee(gitee) = the_interceptor(&v1beta1(&format!(
            "[{{ref: {{name: gitee}}, params: [{SECRET_REF}, {{name: mode, value: {mode}}}, {{name: timestampWindow, value: 10m}}]}}]"
        ))) else {
            panic!()
        };
        assert_eq!(gitee.mode, expected);
        assert_eq!(gitee.timestamp_window, Duration::from_secs(600));
    }

    for (params, field, says) in [
        (
            format!("[{SECRET_REF}, {{name: mode, value: hmac}}]"),
            "params[1].value",
            "`auto`, `password`, `signature`",
        ),
        (
            format!("[{SECRET_REF}, {{name: timestampWindow, value: 1 hour}}]"),
            "params[1].value",
            "not a unit",
        ),
        (
            format!("[{SECRET_REF}, {{name: timestampWindow, value: 0s}}]"),
            "params[1].value",
            "longer than zero",
        ),
        (
            "[{name: eventTypes, value: [Push Hook]}]".to_owned(),
            "params",
            "needs a `secretRef`",
        ),
        (
            format!("[{SECRET_REF}, {{name: allowSha1, value: true}}]"),
            "params[1].name",
            "unknown param `allowSha1` of the gitee interceptor",
        ),
    ] {
        let issue = skipped(&v1beta1(&format!(
            "[{{ref: {{name: gitee}}, params: {params}}}]"
        )));
        assert_eq!(
            issue.field.as_deref(),
            Some(format!("spec.triggers[0].interceptors[0].{field}").as_str()),
            "{issue}"
        );
        assert!(issue.message.contains(says), "{issue}");
    }
}

#[test]
fn slack_needs_its_signing_secret_and_has_a_five_minute_window() {
    let Interceptor::Slack(slack) = the_interceptor(&v1beta1(&format!(
        "[{{ref: {{name: slack}}, params: [{SECRET_REF}]}}]"
    ))) else {
        panic!()
    };
    assert_eq!(slack.secret.expose(), b"s3cret");
    assert_eq!(slack.timestamp_window, Duration::from_secs(300));
    let Interceptor::Slack(slack) = the_interceptor(&v1beta1(&format!(
        "[{{ref: {{name: slack}}, params: [{SECRET_REF}, {{name: timestampWindow, value: 90s}}]}}]"
    ))) else {
        panic!()
    };
    assert_eq!(slack.timestamp_window, Duration::from_secs(90));

    // Tekton's slack interceptor needs no secret; Sluice verifies, so it needs one.
    let issue = skipped(&v1beta1("[{ref: {name: slack}}]"));
    assert!(issue.message.contains("needs a `secretRef`"), "{issue}");
    assert_eq!(slack.requested_fields, None);
    let Interceptor::Slack(slack) = the_interceptor(&v1beta1(&format!(
        "[{{ref: {{name: slack}}, params: [{SECRET_REF}, {{name: requestedFields, value: [text, user_id]}}]}}]"
    ))) else {
        panic!()
    };
    assert_eq!(
        slack.requested_fields,
        Some(vec!["text".to_owned(), "user_id".to_owned()])
    );
    let issue = skipped(&v1beta1(&format!(
        "[{{ref: {{name: slack}}, params: [{SECRET_REF}, {{name: requestedFields, value: text}}]}}]"
    )));
    assert!(
        issue.field.as_deref().unwrap_or("").contains("params[1]"),
        "{issue}"
    );
    let issue = skipped(&v1beta1(&format!(
        "[{{ref: {{name: slack}}, params: [{SECRET_REF}, {{name: eventTypes, value: [x]}}]}}]"
    )));
    assert!(
        issue.message.contains("unknown param `eventTypes`"),
        "{issue}"
    );
}

#[test]
fn hmac_params_and_defaults() {
    let Interceptor::Hmac(hmac) = the_interceptor(&v1beta1(&format!(
        "[{{ref: {{name: hmac}}, params: [{SECRET_REF}, {{name: header, value: X-Signature}}, {{name: algorithm, value: sha512}}, {{name: encoding, value: base64}}, {{name: prefix, value: \"sha512=\"}}]}}]"
    ))) else {
        panic!()
    };
    assert_eq!(hmac.secret.expose(), b"s3cret");
    assert_eq!(hmac.header, "x-signature");
    assert_eq!(hmac.algorithm, HmacAlgorithm::Sha512);
    assert_eq!(hmac.encoding, SignatureEncoding::Base64);
    assert_eq!(hmac.prefix, "sha512=");

    let Interceptor::Hmac(hmac) = the_interceptor(&v1beta1(&format!(
        "[{{ref: {{name: hmac}}, params: [{SECRET_REF}, {{name: header, value: X-Hook-Signature}}]}}]"
    ))) else {
        panic!()
    };
    assert_eq!(hmac.algorithm, HmacAlgorithm::Sha256);
    assert_eq!(hmac.encoding, SignatureEncoding::Hex);
    assert_eq!(hmac.prefix, "");

    for (params, says) in [
        (format!("[{SECRET_REF}]"), "needs a `header`"),
        (
            "[{name: header, value: X-Signature}]".to_owned(),
            "needs a `secretRef`",
        ),
        (
            format!("[{SECRET_REF}, {{name: header, value: \"X Signature\"}}]"),
            "must be an HTTP header name",
        ),
        (
            format!(
                "[{SECRET_REF}, {{name: header, value: X-S}}, {{name: algorithm, value: md5}}]"
            ),
            "`sha256`, `sha512`",
        ),
        (
            format!(
                "[{SECRET_REF}, {{name: header, value: X-S}}, {{name: encoding, value: base32}}]"
            ),
            "`hex`, `base64`",
        ),
    ] {
        let issue = skipped(&v1beta1(&format!(
            "[{{ref: {{name: hmac}}, params: {params}}}]"
        )));
        assert!(issue.message.contains(says), "{params}: {issue}");
    }
}

#[test]
fn interceptor_forms_are_exclusive_and_shorthand_fields_are_checked() {
    let issue = skipped(&v1alpha1(
        "[{github: {eventTypes: [push]}, gitlab: {eventTypes: [Push Hook]}}]",
    ));
    assert!(issue.message.contains("exactly one of"), "{issue}");
    let issue = skipped(&v1alpha1(
        "[{ref: {name: gitlab}, bitbucket: {eventTypes: [\"repo:push\"]}}]",
    ));
    assert!(issue.message.contains("exactly one of"), "{issue}");
    let issue = skipped(&v1alpha1(
        "[{bitbucket: {secretRef: {secretName: github, secretKey: token}, allowSha1: true}}]",
    ));
    assert_eq!(
        issue.field.as_deref(),
        Some("spec.triggers[0].interceptors[0].bitbucket.allowSha1")
    );
    let issue = skipped(&v1alpha1(
        "[{gitlab: {eventTypes: [Push Hook]}, params: [{name: x, value: y}]}]",
    ));
    assert!(issue.message.contains("`params` only apply"), "{issue}");
    let issue = skipped(&v1beta1(
        "[{ref: {name: gitlab}, params: [{name: secretRef, value: {secretName: github}}]}]",
    ));
    assert_eq!(
        issue.field.as_deref(),
        Some("spec.triggers[0].interceptors[0].params[0].value.secretKey"),
        "an incomplete reference is a configuration error, not a missing Secret"
    );
}

#[test]
fn every_provider_with_an_unreadable_secret_is_misconfigured_not_skipped() {
    let absent = "{name: secretRef, value: {secretName: absent, secretKey: token}}";
    for (interceptor, kind) in [
        (
            format!("{{ref: {{name: github}}, params: [{absent}]}}"),
            InterceptorKind::GitHub,
        ),
        (
            "{gitlab: {secretRef: {secretName: absent, secretKey: token}, eventTypes: [Push Hook]}}"
                .to_owned(),
            InterceptorKind::GitLab,
        ),
        (
            "{bitbucket: {secretRef: {secretName: github, secretKey: other}}}".to_owned(),
            InterceptorKind::Bitbucket,
        ),
        (
            format!("{{ref: {{name: gitee}}, params: [{absent}]}}"),
            InterceptorKind::Gitee,
        ),
        (
            format!("{{ref: {{name: slack}}, params: [{absent}]}}"),
            InterceptorKind::Slack,
        ),
        (
            format!("{{ref: {{name: hmac}}, params: [{absent}, {{name: header, value: X-S}}]}}"),
            InterceptorKind::Hmac,
        ),
    ] {
        let catalogue = load_str(FILE, &v1alpha1(&format!("[{interceptor}]")));
        let issue = only_issue(&catalogue);
        assert!(issue.message.contains("listener_misconfigured"), "{issue}");
        let l = listener(&catalogue, "team-a", "l");
        assert_eq!(l.skipped_triggers, 0);
        let Interceptor::Misconfigured(misconfigured) = &l.triggers[0].interceptors[0] else {
            panic!("{interceptor}: {:?}", l.triggers[0].interceptors)
        };
        assert_eq!(misconfigured.kind, kind);
        assert!(
            misconfigured
                .reason
                .starts_with(&format!("{} interceptor: Secret `", kind.name())),
            "{misconfigured:?}"
        );
        assert!(l.triggers[0].interceptors[0].authenticates());
    }
}

#[test]
fn a_secret_that_failed_to_parse_makes_its_users_misconfigured() {
    let yaml = v1beta1(
        "[{ref: {name: gitlab}, params: [{name: secretRef, value: {secretName: broken, secretKey: token}}]}]",
    ) + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: broken, namespace: team-a}\ndata: {token: '***'}\n";
    let catalogue = load_str(FILE, &yaml);
    assert_eq!(catalogue.issues().len(), 2, "{:#?}", catalogue.issues());
    let l = listener(&catalogue, "team-a", "l");
    let Interceptor::Misconfigured(misconfigured) = &l.triggers[0].interceptors[0] else {
        panic!()
    };
    assert!(
        misconfigured.reason.contains("is invalid"),
        "{misconfigured:?}"
    );
}

/// A listener with an open trigger, a github trigger without a secret, a github trigger
/// with one, and a misconfigured gitlab trigger, plus a Trigger resource without
/// interceptors used by `triggerRef` from a second listener.
const MIXED: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: l, namespace: team-a}
spec:
  triggers:
    - name: open
      template: {ref: pipeline}
    - name: events-only
      interceptors: [{ref: {name: github}, params: [{name: eventTypes, value: [push]}]}]
      template: {ref: pipeline}
    - name: signed
      interceptors:
        - ref: {name: github}
          params: [{name: secretRef, value: {secretName: github, secretKey: token}}]
      template: {ref: pipeline}
    - name: broken
      interceptors: [{gitlab: {secretRef: {secretName: absent, secretKey: token}}}]
      template: {ref: pipeline}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: shared-open, namespace: team-a}
spec:
  template: {ref: pipeline}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: by-ref, namespace: team-a}
spec:
  triggers: [{triggerRef: shared-open}]
"#;

#[test]
fn require_authentication_skips_triggers_that_accept_any_caller() {
    let yaml = docs(&[MIXED, TEMPLATE, SECRET]);

    let open = load_str(FILE, &yaml);
    assert_eq!(
        open.issues().len(),
        1,
        "only the missing Secret: {:#?}",
        open.issues()
    );
    assert_eq!(
        trigger_names(listener(&open, "team-a", "l")),
        ["open", "events-only", "signed", "broken"]
    );

    let options = LoadOptions {
        require_authentication: true,
        ..LoadOptions::default()
    };
    let strict = load_str_with(FILE, &yaml, &options);
    let found: Vec<_> = strict
        .issues()
        .iter()
        .map(|i| (i.document, i.field.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(
        found,
        [
            (0, "spec.triggers[0].interceptors"),
            (0, "spec.triggers[1].interceptors"),
            (
                0,
                "spec.triggers[3].interceptors[0].gitlab.secretRef.secretName"
            ),
            (1, "spec.interceptors"),
            (2, "spec.triggers[0].triggerRef"),
        ],
        "{:#?}",
        strict.issues()
    );
    assert!(
        strict.issues()[0]
            .message
            .contains("--require-authentication"),
        "{}",
        strict.issues()[0]
    );
    let l = listener(&strict, "team-a", "l");
    assert_eq!(trigger_names(l), ["signed", "broken"]);
    assert_eq!(l.skipped_triggers, 2);
    let by_ref = listener(&strict, "team-a", "by-ref");
    assert!(by_ref.triggers.is_empty());
    assert_eq!(by_ref.skipped_triggers, 1);
}
