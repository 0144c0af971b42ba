//! `pkg/interceptors/interceptors_test.go`: header names as interceptors see them
//! (`Canonical`), where a ClusterInterceptor is called (`ResolveToURL`), and which answers
//! of an interceptor fail the trigger (`Execute`).
//!
//! A ClusterInterceptor is a local stand-in, called as the dispatcher calls it; Tekton's
//! tables call the core `cel` interceptor, which is built into Sluice, so the stand-in has
//! another name, and the `cel` cases run Sluice's own.

use sluice_triggers::catalogue::Interceptor;
use sluice_triggers::config::{LoadOptions, load_str_with};
use sluice_triggers::headers::Headers;

use crate::harness::{
    Answer, Handled, Outcome, Request, StandIn, created, handle, load, untrusted_tls,
};
use crate::suite::{Compared, Suite};

const FILE: &str = "pkg/interceptors/interceptors_test.go";

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);
    let params = "builds the `interceptor_params` map of a Go request from a trigger's params; \
                  what a ClusterInterceptor receives is compared in the sink cases";
    file.skip(
        "TestGetInterceptorParams",
        &[
            "cel",
            "gitlab",
            "github",
            "bitbucket",
            "webhook",
            "interceptor using ref",
        ],
        params,
    );
    file.skip("TestUnmarshalParam", &[""], params);
    file.skip(
        "TestGetInterceptorParams_Error",
        &["failed to marshal json"],
        "the params hold a Go function value, which no YAML can express",
    );

    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let canonical: [Case; 2] = [
        ("all uppercase", &[("X-ABC", "foo")], r#"{"X-Abc":["foo"]}"#),
        (
            "all lowercase",
            &[("x-abc", "a"), ("x-abc", "v")],
            r#"{"X-Abc":["a","v"]}"#,
        ),
    ];
    for (name, headers, want) in canonical {
        file.case("TestCanonical", name, move || {
            let mut all = Headers::new();
            for (name, value) in headers {
                all.append(name, *value);
            }
            Compared::new(
                format!("{headers:?}"),
                want,
                serde_json::to_string(all.as_map()).unwrap(),
            )
        });
    }

    file.skip(
        "TestResolveToURL",
        &["ClusterInterceptor has status.address.url"],
        "`status.address` is what Tekton's controller derives from `spec.clientConfig`; Sluice \
         derives the address from `spec.clientConfig` itself and does not read a status",
    );
    file.case(
        "TestResolveToURL",
        "ClusterInterceptor does not have a status",
        || {
            let yaml = format!("{}{}", interceptor_doc("http://some-host/cel"), LISTENER);
            let options = LoadOptions {
                interceptor_allow: vec!["some-host".to_owned()],
                ..LoadOptions::default()
            };
            let catalogue = load_str_with("tables.yaml", &yaml, &options);
            let url = catalogue
                .listener("foo", "my-el")
                .and_then(|l| l.trigger("t"))
                .and_then(|t| match t.interceptors.first() {
                    Some(Interceptor::Webhook(webhook)) => Some(webhook.url.to_string()),
                    _ => None,
                })
                .unwrap_or_else(|| format!("error: {}", crate::harness::issues(&catalogue)));
            Compared::new(
                "ClusterInterceptor spec.clientConfig.url http://some-host/cel, no status",
                "http://some-host/cel",
                url,
            )
        },
    );
    file.case("TestResolveToURL", "interceptor has no URL", || {
        let yaml = format!(
            "apiVersion: triggers.tekton.dev/v1alpha1\nkind: ClusterInterceptor\nmetadata: {{name: check}}\n\
             spec: {{clientConfig: {{}}}}\n---\n{LISTENER}"
        );
        let catalogue = load(&yaml, false);
        Compared::error_expected(
            "ClusterInterceptor with an empty clientConfig",
            outcome(&handle(&catalogue, "foo", "my-el", &Request::new("{}"))),
        )
    });

    // Tekton's table calls its core `cel` interceptor over HTTP; Sluice evaluates it
    // in-process, so the decision is compared.
    let filters = [
        ("cel filter pass", "application/json", "continue: true"),
        (
            "cel filter fail",
            "application/xml",
            "continue: false, FailedPrecondition: expression header.match(\"Content-Type\", \"application/xml\") did not return true",
        ),
    ];
    for (name, content_type, want) in filters {
        file.case("TestExecute", name, move || {
            let filter = format!("header.match(\"Content-Type\", \"{content_type}\")");
            let yaml = format!(
                "apiVersion: triggers.tekton.dev/v1alpha1\nkind: ClusterInterceptor\nmetadata: {{name: cel}}\n\
                 spec: {{clientConfig: {{url: \"http://tekton-triggers-core-interceptors.knative-test.svc/cel\"}}}}\n---\n\
                 apiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\nmetadata: {{name: my-el, namespace: foo}}\n\
                 spec: {{triggers: [{{name: t, interceptors: [{{ref: {{name: cel}}, params: [{{name: filter, value: '{filter}'}}]}}], \
                 template: {{spec: {{resourcetemplates: [{{apiVersion: v1, kind: ConfigMap, metadata: {{generateName: c-}}}}]}}}}}}]}}\n"
            );
            let catalogue = load(&yaml, false);
            let request = Request::new("{}").header("Content-Type", "application/json");
            let handled = handle(&catalogue, "foo", "my-el", &request);
            let sluice = match &handled {
                Handled::Triggers(outcomes) => match outcomes.first() {
                    Some((_, Outcome::Created(_))) => "continue: true".to_owned(),
                    Some((_, Outcome::Filtered(why))) => format!("continue: false, {why}"),
                    _ => created(&handled),
                },
                _ => created(&handled),
            };
            // The decision must be Tekton's, and a refusal must quote the expression and say
            // it did not return true; Sluice words its own filter messages.
            let same = match want.split_once(", ") {
                None => sluice == want,
                Some(_) => {
                    sluice.starts_with("continue: false")
                        && sluice.contains(&filter)
                        && sluice.ends_with("did not return true")
                }
            };
            Compared::judged(
                format!("the core `cel` interceptor, filter {filter}, header Content-Type: application/json"),
                want,
                sluice,
                same,
            )
        });
    }
    const E: &str = "TestExecute_Error";
    file.case(E, "bad URL", || {
        let yaml = format!("{}{}", interceptor_doc("not_a_url"), LISTENER);
        let catalogue = load(&yaml, false);
        Compared::error_expected(
            "ClusterInterceptor url not_a_url",
            outcome(&handle(&catalogue, "foo", "my-el", &Request::new("{}"))),
        )
    });
    let answers: [(&str, u16, &str); 2] = [
        ("non 200 response", 400, ""),
        ("incorrect response format", 200, "not_json"),
    ];
    for (name, status, body) in answers {
        file.case(E, name, move || {
            let stand_in = StandIn::serve(move |_| Answer::status(status, body));
            let yaml = format!("{}{}", interceptor_doc(&stand_in.url("/cel")), LISTENER);
            let catalogue = load(&yaml, false);
            Compared::error_expected(
                format!("the ClusterInterceptor answers {status} {body:?}"),
                outcome(&handle(&catalogue, "foo", "my-el", &Request::new("{}"))),
            )
        });
    }
    file.case(E, "HTTPS URL", || {
        let addr = untrusted_tls();
        let yaml = format!(
            "{}{}",
            interceptor_doc(&format!("https://{addr}/")),
            LISTENER
        );
        let catalogue = load(&yaml, false);
        Compared::error_expected(
            "the ClusterInterceptor is https with a certificate no trusted root signed",
            outcome(&handle(&catalogue, "foo", "my-el", &Request::new("{}"))),
        )
    });
}

fn interceptor_doc(url: &str) -> String {
    format!(
        "apiVersion: triggers.tekton.dev/v1alpha1\nkind: ClusterInterceptor\nmetadata: {{name: check}}\n\
         spec: {{clientConfig: {{url: \"{url}\"}}}}\n---\n"
    )
}

/// A listener whose trigger `t` calls the ClusterInterceptor `check`.
const LISTENER: &str = "apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: my-el, namespace: foo}
spec:
  triggers:
    - name: t
      interceptors: [{ref: {name: check}, params: [{name: filter, value: 'header.match(\"Content-Type\", \"application/json\")'}]}]
      template: {spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: c-}}]}}
";

/// `error: …` when the trigger failed or was refused, else what it made of the event.
fn outcome(handled: &Handled) -> String {
    match handled {
        Handled::Refused(code) => format!("error: refused at the edge ({code})"),
        Handled::Triggers(outcomes) => match outcomes.first() {
            Some((_, Outcome::Failed(error))) => format!("error ({:?}): {error}", error.kind()),
            _ => created(handled),
        },
        Handled::Filtered => created(handled),
    }
}
