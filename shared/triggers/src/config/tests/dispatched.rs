//! Interceptors the dispatcher runs: webhook interceptors (ClusterInterceptor, namespaced
//! Interceptor, legacy `webhook:`) and where they may point. `cel` compilation is covered
//! with the CEL engine's own tests and end to end.

use super::*;
use crate::catalogue::{WebhookInterceptor, WebhookProtocol};

const INTERCEPTORS: &str = r#"
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {name: by-service}
spec:
  clientConfig:
    service: {name: checker, namespace: platform, path: /check}
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {name: by-tls-service}
spec:
  clientConfig:
    caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
    service: {name: checker, namespace: platform}
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {name: by-url}
spec:
  clientConfig:
    url: http://127.0.0.1:8080/gate
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: Interceptor
metadata: {name: team-check, namespace: team-a}
spec:
  clientConfig:
    service: {name: team-checker, port: 9000}
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {name: github}
spec:
  clientConfig:
    service: {name: tekton-triggers-core-interceptors, namespace: tekton-pipelines}
"#;

fn listener(interceptors: &[&str]) -> String {
    let triggers: String = interceptors
        .iter()
        .enumerate()
        .map(|(index, interceptor)| {
            format!("    - name: t{index}\n      interceptors: [{interceptor}]\n      template: {{ref: pipeline}}\n")
        })
        .collect();
    format!(
        "apiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\nmetadata: {{name: l, namespace: team-a}}\nspec:\n  triggers:\n{triggers}---\n{TEMPLATE}\n---\n{INTERCEPTORS}"
    )
}

fn webhook(interceptor: &Interceptor) -> &WebhookInterceptor {
    match interceptor {
        Interceptor::Webhook(webhook) => webhook,
        other => panic!("not a webhook interceptor: {other:?}"),
    }
}

#[test]
fn cluster_and_namespaced_interceptors_resolve_to_their_addresses() {
    let yaml = listener(&[
        "{ref: {name: by-service}, params: [{name: token, value: 123456}, {name: list, value: [a, b]}]}",
        "{ref: {name: by-tls-service, kind: ClusterInterceptor}}",
        "{ref: {name: team-check, kind: NamespacedInterceptor}}",
        "{ref: {name: github}}",
        "{webhook: {objectRef: {kind: Service, name: legacy, apiVersion: v1}, header: [{name: X-Extra, value: one}, {name: X-Many, value: [a, b]}]}}",
    ]);
    let options = LoadOptions {
        interceptor_allow: vec!["127.0.0.1".to_owned()],
        ..LoadOptions::default()
    };
    let catalogue = load_str_with(FILE, &yaml, &options);
    assert_no_issues(&catalogue);
    let l = super::listener(&catalogue, "team-a", "l");

    let by_service = webhook(&l.triggers[0].interceptors[0]);
    assert_eq!(by_service.name, "ClusterInterceptor/by-service");
    assert_eq!(by_service.protocol, WebhookProtocol::Tekton);
    assert_eq!(
        by_service.url.as_str(),
        "http://checker.platform.svc/check",
        "without a caBundle: http on port 80, as Tekton"
    );
    assert_eq!(by_service.params["token"], 123456);
    assert_eq!(by_service.params["list"], serde_json::json!(["a", "b"]));

    let tls = webhook(&l.triggers[1].interceptors[0]);
    assert_eq!(tls.url.as_str(), "https://checker.platform.svc:8443/");
    let bundle = tls.ca_bundle.as_deref().unwrap();
    assert!(String::from_utf8_lossy(bundle).starts_with("-----BEGIN CERTIFICATE-----"));

    let namespaced = webhook(&l.triggers[2].interceptors[0]);
    assert_eq!(namespaced.name, "Interceptor/team-a/team-check");
    assert_eq!(
        namespaced.url.as_str(),
        "http://team-checker.team-a.svc:9000/",
        "a namespaced Interceptor's service defaults to its own namespace"
    );

    assert!(
        matches!(l.triggers[3].interceptors[0], Interceptor::GitHub(_)),
        "a ClusterInterceptor named like a built-in one is not called: Sluice runs it"
    );

    let legacy = webhook(&l.triggers[4].interceptors[0]);
    assert_eq!(legacy.protocol, WebhookProtocol::Legacy);
    assert_eq!(legacy.url.as_str(), "http://legacy.team-a.svc/");
    assert_eq!(
        legacy.headers,
        [
            ("X-Extra".to_owned(), vec!["one".to_owned()]),
            ("X-Many".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
        ]
    );
}

#[test]
fn an_interceptor_outside_the_cluster_needs_the_platforms_allowance() {
    let yaml = listener(&["{ref: {name: by-url}}", "{ref: {name: by-service}}"]);
    let closed = load_str(FILE, &yaml);
    let found: Vec<_> = closed
        .issues()
        .iter()
        .map(|i| (i.document, i.field.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(
        found,
        [
            (0, "spec.triggers[0].interceptors[0].ref.name"),
            (4, "spec.clientConfig"),
        ],
        "{:#?}",
        closed.issues()
    );
    assert!(
        closed.issues()[0]
            .message
            .contains("ClusterInterceptor `by-url` is invalid"),
        "{}",
        closed.issues()[0]
    );
    assert!(
        closed.issues()[1].message.contains("--interceptor-allow"),
        "{}",
        closed.issues()[1]
    );
    let l = super::listener(&closed, "team-a", "l");
    assert_eq!(
        trigger_names(l),
        ["t1"],
        "in-cluster services need no allowance"
    );

    for allow in ["127.0.0.1", "127.0.0.1:8080"] {
        let options = LoadOptions {
            interceptor_allow: vec![allow.to_owned()],
            ..LoadOptions::default()
        };
        let open = load_str_with(FILE, &yaml, &options);
        assert_no_issues(&open);
        let l = super::listener(&open, "team-a", "l");
        assert_eq!(
            webhook(&l.triggers[0].interceptors[0]).url.as_str(),
            "http://127.0.0.1:8080/gate"
        );
    }
    let other_port = LoadOptions {
        interceptor_allow: vec!["127.0.0.1:9999".to_owned()],
        ..LoadOptions::default()
    };
    assert_eq!(load_str_with(FILE, &yaml, &other_port).issues().len(), 2);
}

#[test]
fn broken_interceptor_documents_are_reported_where_they_are() {
    let yaml = r#"
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {name: both}
spec:
  clientConfig:
    url: http://a.b.svc/
    service: {name: a, namespace: b}
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {name: neither}
spec: {clientConfig: {}}
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {name: no-namespace}
spec: {clientConfig: {service: {name: a}}}
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {name: bad-bundle}
spec: {clientConfig: {caBundle: "bm90IGEgY2VydGlmaWNhdGU=", service: {name: a, namespace: b}}}
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {name: ftp}
spec: {clientConfig: {url: "ftp://a.b.svc/"}}
"#;
    let catalogue = load_str(FILE, yaml);
    let found: Vec<_> = catalogue
        .issues()
        .iter()
        .map(|i| {
            (
                i.document,
                i.field.as_deref().unwrap_or_default(),
                i.message.as_str(),
            )
        })
        .collect();
    let expected = [
        (0, "spec.clientConfig", "has both `url` and `service`"),
        (1, "spec.clientConfig", "needs a `url` or a `service`"),
        (
            2,
            "spec.clientConfig.service.namespace",
            "is required for a ClusterInterceptor",
        ),
        (3, "spec.clientConfig.caBundle", "holds no PEM certificate"),
        (4, "spec.clientConfig", "is not an http or https URL"),
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for ((document, field, message), (want_document, want_field, want_message)) in
        found.iter().zip(expected)
    {
        assert_eq!((*document, *field), (want_document, want_field));
        assert!(message.contains(want_message), "{message}");
        assert!(message.ends_with("interceptor skipped"), "{message}");
    }
}

#[test]
fn cel_expressions_compile_at_load_and_name_their_trigger_and_expression() {
    let yaml = listener(&[
        "{cel: {filter: \"body.action == 'opened'\", overlays: [{key: short.sha, expression: 'body.sha.truncate(7)'}]}}",
        "{ref: {name: cel}, params: [{name: filter, value: \"body.action ==\"}]}",
        "{cel: {overlays: [{key: x, expression: 'nosuchfunction(body)'}]}}",
        "{cel: {filter: \"body.token.compareSecret('token', 'github')\"}}",
        "{cel: {filter: \"body.token.compareSecret('token', 'github', 'team-b')\"}}",
        "{cel: {filter: \"body.token.compareSecret('nokey', 'github')\"}}",
        "{ref: {name: cel}, params: [{name: filters, value: \"true\"}]}",
        "{cel: {overlays: [{key: 'a..b', expression: '1'}]}}",
    ]);
    let yaml = format!("{yaml}\n---\n{SECRET}");
    let catalogue = load_str(FILE, &yaml);
    let found: Vec<_> = catalogue
        .issues()
        .iter()
        .filter(|i| i.document == 0)
        .map(|i| (i.field.as_deref().unwrap_or_default(), i.message.as_str()))
        .collect();
    let expected = [
        (
            "spec.triggers[1].interceptors[0].params[0].value",
            "cel filter `body.action ==` does not compile",
        ),
        (
            "spec.triggers[2].interceptors[0].cel.overlays[0].expression",
            "cel overlay `x` `nosuchfunction(body)` does not compile",
        ),
        (
            "spec.triggers[4].interceptors",
            "a trigger reads Secrets of its own namespace `team-a` only",
        ),
        (
            "spec.triggers[5].interceptors",
            "Secret `github` in namespace `team-a` has no key `nokey`",
        ),
        (
            "spec.triggers[6].interceptors[0].params[0].name",
            "has no param `filters`",
        ),
        (
            "spec.triggers[7].interceptors[0].cel.overlays[0].key",
            "is not an overlay key",
        ),
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for ((field, message), (want_field, want_message)) in found.iter().zip(expected) {
        assert_eq!(*field, want_field, "{message}");
        assert!(message.contains(want_message), "{message}");
        assert!(!message.contains("czNjcmV0") && !message.contains("s3cret"));
    }
    let l = super::listener(&catalogue, "team-a", "l");
    assert_eq!(trigger_names(l), ["t0", "t3"]);
    let Interceptor::Cel(cel) = &l.triggers[1].interceptors[0] else {
        panic!("not cel");
    };
    assert_eq!(
        cel.secrets.len(),
        1,
        "compareSecret's Secret is read at load"
    );
}
