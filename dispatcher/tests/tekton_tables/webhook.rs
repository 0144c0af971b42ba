//! `pkg/interceptors/webhook/webhook_test.go`: the legacy `webhook:` interceptor, which
//! forwards the event's body and headers (`ExecuteTrigger`), where it is sent (`getURI`) and
//! the headers it adds (`addInterceptorHeaders`).
//!
//! The interceptor is a local stand-in at `webhook.url`; Tekton's tables reach the Service
//! of `objectRef` through a proxy, and where that Service is is checked on its own
//! (`TestGetURI`, on the loaded configuration). What the interceptor answers is observed as
//! the bindings see it afterwards.

use serde_json::{Value, json};
use sluice_triggers::catalogue::Interceptor;
use sluice_triggers::config::load_str;

use crate::harness::{Answer, Handled, Outcome, Request, StandIn, created, handle, load};
use crate::suite::{Compared, Suite};

const FILE: &str = "pkg/interceptors/webhook/webhook_test.go";

/// Listener `my-el` in `foo` whose trigger `t` has the legacy interceptor `webhook` (YAML
/// flow), binds `bindings` and shows them in a ConfigMap's `data`.
fn listener(webhook: &str, bindings: &[(&str, &str)]) -> String {
    let params: Vec<String> = bindings
        .iter()
        .map(|(name, default)| format!("{{name: {name}, default: {default:?}}}"))
        .collect();
    let values: Vec<String> = bindings
        .iter()
        .map(|(name, _)| format!("{{name: {name}, value: $(header.{name})}}"))
        .collect();
    let data: Vec<String> = bindings
        .iter()
        .map(|(name, _)| format!("{name}: $(tt.params.{name})"))
        .collect();
    format!(
        "apiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\nmetadata: {{name: my-el, namespace: foo}}\n\
         spec: {{triggers: [{{name: t, interceptors: [{{webhook: {webhook}}}], bindings: [{}], \
         template: {{spec: {{params: [{}], resourcetemplates: [{{apiVersion: v1, kind: ConfigMap, \
         metadata: {{name: seen}}, data: {{{}}}}}]}}}}}}]}}\n",
        values.join(", "),
        params.join(", "),
        data.join(", ")
    )
}

fn data(handled: &Handled) -> String {
    match handled {
        Handled::Triggers(outcomes) => match outcomes.first() {
            Some((_, Outcome::Created(objects))) => objects[0]["data"].to_string(),
            _ => created(handled),
        },
        _ => created(handled),
    }
}

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);

    file.case("TestWebHookInterceptor", "", || {
        const URL: &str = "/hooks/foo/my-el";
        // As the table's handler: refuse unless the configured header and the event's URL
        // came with the request; answer with a header and a body of its own. (The table's
        // body is not JSON, which Tekton's bindings could not read either; it is a JSON
        // object here.)
        let webhook = StandIn::serve(|request| {
            if request.header("Param-Header") != ["val"] {
                return Answer::status(400, "Expected header does not match");
            }
            if request.header("EventListener-Request-URL") != [URL] {
                return Answer::status(400, "Expected webhookURLHeader does not match");
            }
            Answer::ok(json!({"payload": "fake webhook response"}).to_string()).header("Foo", "bar")
        });
        let mut yaml = listener(
            &format!("{{url: \"{}\", header: [{{name: Param-Header, value: val}}]}}", webhook.url("/")),
            &[("Foo", "absent"), ("Param-Header", "absent")],
        );
        yaml = yaml.replace(
            "bindings: [",
            "bindings: [{name: payload, value: $(body.payload)}, ",
        );
        yaml = yaml.replace("params: [", "params: [{name: payload}, ");
        yaml = yaml.replace("data: {", "data: {payload: $(tt.params.payload), ");
        let catalogue = load(&yaml, false);
        let request = Request::new(r#"{"eventType":"push","foo":"bar"}"#)
            .header("Content-Type", "application/json");
        Compared::new(
            "legacy webhook with header Param-Header: val, event body {\"eventType\":\"push\",\"foo\":\"bar\"}; \
             the bindings read the answer's body and headers",
            json!({"Foo": "bar", "Param-Header": "absent", "payload": "fake webhook response"}),
            data(&handle(&catalogue, "foo", "my-el", &request)),
        )
    });

    file.case("TestWebHookInterceptor_NotOK", "", || {
        let webhook = StandIn::serve(|_| Answer::status(202, ""));
        let yaml = listener(&format!("{{url: \"{}\"}}", webhook.url("/")), &[]);
        let catalogue = load(&yaml, false);
        let handled = handle(&catalogue, "foo", "my-el", &Request::new("{}"));
        let nothing = match &handled {
            Handled::Triggers(outcomes) => outcomes
                .iter()
                .all(|(_, outcome)| !matches!(outcome, Outcome::Created(_))),
            _ => false,
        };
        Compared::judged(
            "a legacy webhook interceptor answering 202",
            "the trigger stops: nothing created",
            created(&handled),
            nothing,
        )
    });

    let uris: [(&str, &str, Option<&str>); 4] = [
        (
            "namespace specified",
            "{objectRef: {kind: Service, name: foo, apiVersion: v1, namespace: bar}}",
            Some("http://foo.bar.svc/"),
        ),
        (
            "no namespace",
            "{objectRef: {kind: Service, name: foo, apiVersion: v1}}",
            Some("http://foo.default.svc/"),
        ),
        (
            "non services",
            "{objectRef: {kind: Blah, name: foo, apiVersion: v1}}",
            None,
        ),
        (
            "webhook interceptor with url",
            "{url: \"http://foo.default.svc\"}",
            Some("http://foo.default.svc"),
        ),
    ];
    for (name, webhook, want) in uris {
        let check = move || {
            let yaml = format!(
                "apiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\nmetadata: {{name: l, namespace: default}}\n\
                 spec: {{triggers: [{{name: t, interceptors: [{{webhook: {webhook}}}], template: {{spec: \
                 {{resourcetemplates: [{{apiVersion: v1, kind: ConfigMap, metadata: {{generateName: c-}}}}]}}}}}}]}}\n"
            );
            let catalogue = load_str("uri.yaml", &yaml);
            let url = catalogue
                .listener("default", "l")
                .and_then(|l| l.trigger("t"))
                .and_then(|t| match t.interceptors.first() {
                    Some(Interceptor::Webhook(webhook)) => Some(webhook.url.to_string()),
                    _ => None,
                });
            let input = format!("listener namespace default, webhook {webhook}");
            match (want, url) {
                // A URL and the same URL with the root path are one request target.
                (Some(want), Some(url)) => {
                    let same = url == want || url == format!("{want}/");
                    Compared::judged(input, want, url, same)
                }
                (Some(want), None) => Compared::new(
                    input,
                    want,
                    format!("error: {}", crate::harness::issues(&catalogue)),
                ),
                (None, url) => Compared::error_expected(
                    input,
                    url.unwrap_or_else(|| format!("error: {}", crate::harness::issues(&catalogue))),
                ),
            }
        };
        file.case("TestGetURI", name, check);
    }

    let headers: [(&str, &str, Value); 4] = [
        ("Empty params", "[]", json!({"Header1": ["val"]})),
        (
            "One string param",
            "[{name: header2, value: val}]",
            json!({"Header1": ["val"], "Header2": ["val"]}),
        ),
        (
            "One array param",
            "[{name: header2, value: [val1, val2]}]",
            json!({"Header1": ["val"], "Header2": ["val1", "val2"]}),
        ),
        (
            "Clobber param",
            "[{name: header1, value: [new_val]}]",
            json!({"Header1": ["new_val"]}),
        ),
    ];
    for (name, params, want) in headers {
        file.case("Test_addInterceptorHeaders", name, move || {
            let webhook = StandIn::serve(|_| Answer::ok("{}"));
            let yaml = listener(
                &format!("{{url: \"{}\", header: {params}}}", webhook.url("/")),
                &[],
            );
            let catalogue = load(&yaml, false);
            let handled = handle(
                &catalogue,
                "foo",
                "my-el",
                &Request::new("{}").header("Header1", "val"),
            );
            let sluice = match webhook.requests().first() {
                Some(received) => {
                    let mut seen = serde_json::Map::new();
                    for header in ["Header1", "Header2"] {
                        let values = received.header(header);
                        if !values.is_empty() {
                            seen.insert(header.to_owned(), json!(values));
                        }
                    }
                    Value::Object(seen).to_string()
                }
                None => format!("not called: {}", created(&handled)),
            };
            Compared::new(
                format!("event header Header1: val, interceptor header params {params}"),
                want,
                sluice,
            )
        });
    }
}
