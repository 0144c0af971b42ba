//! `pkg/template/event_test.go`: binding params resolved against an event
//! (`applyEventValuesToParams`, `ResolveParams`) with template defaults, and templates
//! rendered with params (`ResolveResources`).
//!
//! Params map to [`sluice_triggers::expr::resolve_params`]; Tekton's tables compare them as
//! a set, so they are compared sorted by name. `ResolveResources` maps to
//! [`sluice_triggers::template::render`] of a TriggerTemplate loaded from YAML, with the
//! table's annotation, and `$(uid)` given as the value the table seeds Tekton's generator
//! with. Sluice refuses a resource without `apiVersion` and `kind`, as Tekton's admission
//! does; the tables' resources have none, so both sides get the same
//! `apiVersion: v1, kind: ConfigMap`.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sluice_triggers::catalogue::{BindingParam, ParamSpec};
use sluice_triggers::config::load_str;
use sluice_triggers::plan::PlanError;

use crate::common::{Event, body, expected, pairs_text, params, spec};
use crate::suite::{Compared, Suite};

const FILE: &str = "pkg/template/event_test.go";
const EVENT_ID: &str = "1234567";

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);
    merge_in_default_params(&mut file);
    apply_event_values(&mut file);
    resolve_params(&mut file);
    resolve_resources(&mut file);
}

fn merge_in_default_params(file: &mut crate::suite::File<'_>) {
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static [(&'static str, Option<&'static str>)],
        &'static [(&'static str, &'static str)],
    );
    const ONE: (&str, Option<&str>) = ("oneid", Some("onedefault"));
    const TWO: (&str, Option<&str>) = ("twoid", Some("twodefault"));
    const THREE: (&str, Option<&str>) = ("threeid", Some("threedefault"));
    let table: [Case; 4] = [
        (
            "add one default param",
            &[],
            &[ONE],
            &[("oneid", "onedefault")],
        ),
        (
            "add multiple default params",
            &[],
            &[ONE, TWO, THREE],
            &[
                ("oneid", "onedefault"),
                ("twoid", "twodefault"),
                ("threeid", "threedefault"),
            ],
        ),
        (
            "do not override existing value",
            &[("oneid", "onevalue")],
            &[ONE],
            &[("oneid", "onevalue")],
        ),
        ("add no default params", &[], &[("nodefault", None)], &[]),
    ];
    for (name, bindings, specs, want) in table {
        file.case(
            "TestApplyEventValuesMergeInDefaultParams",
            name,
            move || {
                let declared: Vec<_> = specs.iter().map(|(n, d)| spec(n, *d)).collect();
                let event = Event::new(Value::Null).with_event_id(EVENT_ID);
                Compared::new(
                    format!(
                        "bindings [{}], template params {specs:?}, no body",
                        pairs_text(bindings)
                    ),
                    expected(want),
                    event.resolve(&params(bindings), &declared),
                )
            },
        );
    }
}

/// A row of `TestApplyEventValuesToParams`.
struct Row {
    name: &'static str,
    params: &'static [(&'static str, &'static str)],
    body: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
    extensions: Option<&'static str>,
    want: Vec<(&'static str, String)>,
}

fn apply_event_values(file: &mut crate::suite::File<'_>) {
    const OBJECTS: &str = r#"{"a":"v","c":{"d":"e"},"empty": "","null": null, "number": 42}"#;
    const ARRAYS: &str = r#"[{"a": "b"}, {"c": "d"}, {"e": "f"}]"#;
    const CHILD: &str =
        r#"{"child":[{"a": "b", "w": "1"}, {"a": "c", "w": "2"}, {"a": "d", "w": "3"}]}"#;
    let row = |name, params, body, headers, want: &[(&'static str, &str)]| Row {
        name,
        params,
        body,
        headers,
        extensions: None,
        want: want.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    };
    let rows = vec![
        row(
            "header with single values",
            &[("foo", "$(header)")],
            None,
            &[("Header-One", "val1"), ("Header-One", "val2")],
            &[("foo", r#"{"Header-One":"val1,val2"}"#)],
        ),
        row(
            "header keys miss-match case",
            &[("foo", "$(header.header-one)")],
            None,
            &[("Header-One", "val1")],
            &[("foo", "val1")],
        ),
        row(
            "header keys match case",
            &[("foo", "$(header.Header-One)")],
            None,
            &[("Header-One", "val1")],
            &[("foo", "val1")],
        ),
        row(
            "headers - multiple values joined by comma",
            &[("foo", "$(header.header-one)")],
            None,
            &[("Header-One", "val1"), ("Header-One", "val2")],
            &[("foo", "val1,val2")],
        ),
        row(
            "header values",
            &[("foo", "$(header)")],
            None,
            &[("Header-One", "val1"), ("Header-One", "val2")],
            &[("foo", r#"{"Header-One":"val1,val2"}"#)],
        ),
        row(
            "no body",
            &[("foo", "$(body)")],
            Some(""),
            &[],
            &[("foo", "null")],
        ),
        row(
            "empty body",
            &[("foo", "$(body)")],
            Some("{}"),
            &[],
            &[("foo", "{}")],
        ),
        Row {
            want: vec![("foo", OBJECTS.replace(' ', ""))],
            ..row(
                "entire body",
                &[("foo", "$(body)")],
                Some(OBJECTS),
                &[],
                &[],
            )
        },
        Row {
            want: vec![("foo", ARRAYS.replace(' ', ""))],
            ..row(
                "entire array body",
                &[("foo", "$(body)")],
                Some(ARRAYS),
                &[],
                &[],
            )
        },
        row(
            "array key",
            &[("foo", "$(body.a[1])")],
            Some(r#"{"a": [{"k": 1}, {"k": 2}, {"k": 3}]}"#),
            &[],
            &[("foo", r#"{"k":2}"#)],
        ),
        row(
            "array last key",
            &[("foo", "$(body.a[-1:])")],
            Some(r#"{"a": [{"k": 1}, {"k": 2}, {"k": 3}]}"#),
            &[],
            &[("foo", r#"{"k":3}"#)],
        ),
        row(
            "body - key with string val",
            &[("foo", "$(body.a)")],
            Some(OBJECTS),
            &[],
            &[("foo", "v")],
        ),
        row(
            "body - key with object val",
            &[("foo", "$(body.c)")],
            Some(OBJECTS),
            &[],
            &[("foo", r#"{"d":"e"}"#)],
        ),
        row(
            "body with special chars",
            &[("foo", "$(body)")],
            Some(r#"{"a": "v\r\n烈"}"#),
            &[],
            &[("foo", r#"{"a":"v\r\n烈"}"#)],
        ),
        row(
            "param contains multiple JSONPath expressions",
            &[("foo", "$(body.a): $(body.b)")],
            Some(r#"{"a": "val1", "b": "val2"}"#),
            &[],
            &[("foo", "val1: val2")],
        ),
        row(
            "param contains both static values and JSONPath expressions",
            &[("foo", "body.a is: $(body.a)")],
            Some(r#"{"a": "val1"}"#),
            &[],
            &[("foo", "body.a is: val1")],
        ),
        row(
            "multiple params",
            &[("foo", "$(body.a)"), ("bar", "$(header.header-1)")],
            Some(r#"{"a": "val1"}"#),
            &[("Header-1", "val2")],
            &[("foo", "val1"), ("bar", "val2")],
        ),
        row(
            "Array filters",
            &[("a", "$(body.child[?(@.a == 'd')].w)")],
            Some(CHILD),
            &[],
            &[("a", "3")],
        ),
        row(
            "filters + multiple JSONPath expressions",
            &[("a", "$(body.child[?(@.a == 'd')].w) : $(body.child[0].a)")],
            Some(CHILD),
            &[],
            &[("a", "3 : b")],
        ),
        Row {
            extensions: Some(r#"{"foo": "bar"}"#),
            ..row(
                "extensions",
                &[("a", "$(extensions.foo)")],
                Some(""),
                &[],
                &[("a", "bar")],
            )
        },
        Row {
            extensions: Some(r#"{"foo": {"bar": ["a", "b", "c"]}}"#),
            ..row(
                "extensions - extract single value from JSON body",
                &[("a", "$(extensions.foo.bar[1])")],
                Some(""),
                &[],
                &[("a", "b")],
            )
        },
        Row {
            extensions: Some(r#"{"foo": [{"a": "1"}, {"b": "2"}]}"#),
            ..row(
                "extensions - extract JSON values",
                &[("a", "$(extensions.foo)")],
                Some(""),
                &[],
                &[("a", r#"[{"a":"1"},{"b":"2"}]"#)],
            )
        },
    ];
    for row in rows {
        file.case("TestApplyEventValuesToParams", row.name, move || {
            let mut event = Event::new(body(row.body))
                .with_headers(row.headers)
                .with_event_id(EVENT_ID);
            if let Some(extensions) = row.extensions {
                event = event.with_extensions(extensions);
            }
            let want: Vec<(&str, &str)> = row.want.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Compared::new(
                format!(
                    "bindings [{}], body {:?}, headers {:?}, extensions {:?}",
                    pairs_text(row.params),
                    row.body,
                    row.headers,
                    row.extensions
                ),
                expected(&want),
                event.resolve(&params(row.params), &[]),
            )
        });
    }

    type ErrorCase = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
        Option<&'static str>,
    );
    let errors: [ErrorCase; 3] = [
        ("missing key", &[("foo", "$(body.missing)")], "{}", None),
        (
            "invalid expression(s)",
            &[("foo", "$(body.[0])")],
            r#"["a", "b"]"#,
            None,
        ),
        (
            "invalid extension",
            &[("foo", "$(extensions.missing)")],
            "{}",
            Some(r#"{"foo": "bar"}"#),
        ),
    ];
    for (name, bindings, text, extensions) in errors {
        file.case("TestApplyEventValuesToParams_Error", name, move || {
            let mut event = Event::new(body(Some(text)));
            if let Some(extensions) = extensions {
                event = event.with_extensions(extensions);
            }
            Compared::error_expected(
                format!(
                    "bindings [{}], body {text}, extensions {extensions:?}",
                    pairs_text(bindings)
                ),
                event.resolve(&params(bindings), &[]),
            )
        });
    }
    // Reaches the bindings only from a listener whose payload validation is off.
    file.case(
        "TestApplyEventValuesToParams_Error",
        "non JSON body",
        || {
            let bindings = [("foo", "$(body)")];
            Compared::error_expected(
                format!("bindings [{}], body {{blahblah}}", pairs_text(&bindings)),
                resolve_raw(b"{blahblah}", &params(&bindings), &[]),
            )
        },
    );
}

/// Bindings resolved against a body as received: read by `sluice_triggers::body::parse`
/// first, whose refusal fails every binding of the trigger (`PlanError::Body`), as the
/// dispatcher renders a trigger.
fn resolve_raw(body: &[u8], bindings: &[BindingParam], declared: &[ParamSpec]) -> String {
    match sluice_triggers::body::parse(body) {
        Ok(body) => Event::new(body).resolve(bindings, declared),
        Err(not_json) => format!("error: {}", PlanError::Body(not_json)),
    }
}

fn resolve_params(file: &mut crate::suite::File<'_>) {
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        Option<&'static str>,
        &'static [(&'static str, Option<&'static str>)],
        &'static [(&'static str, &'static str)],
    );
    let table: [Case; 5] = [
        (
            "add default values for params with missing values",
            &[("p1", "val1")],
            None,
            &[("p2", Some("defaultVal"))],
            &[("p2", "defaultVal"), ("p1", "val1")],
        ),
        (
            "add default values if param missing from body",
            &[("p1", "val1"), ("p2", "$(body.p2)")],
            None,
            &[("p2", Some("defaultVal"))],
            &[("p2", "defaultVal"), ("p1", "val1")],
        ),
        (
            "default values do not override event values",
            &[("p1", "val1")],
            None,
            &[("p1", Some("defaultVal"))],
            &[("p1", "val1")],
        ),
        (
            "combination of static values and JSONPath expressions",
            &[(
                "p1",
                "Event values are - foo: $(body.foo); bar: $(body.bar)",
            )],
            Some(r#"{"foo": "fooValue", "bar": "barValue"}"#),
            &[],
            &[("p1", "Event values are - foo: fooValue; bar: barValue")],
        ),
        (
            "values with newlines",
            &[
                ("param1", "qux"),
                ("param2", "$(body.foo)"),
                ("event1", "$(context.eventID)"),
            ],
            Some(r#"{"foo": "bar\r\nbaz"}"#),
            &[("param1", Some("")), ("param2", Some(""))],
            &[
                ("param1", "qux"),
                ("param2", "bar\\r\\nbaz"),
                ("event1", "1234567"),
            ],
        ),
    ];
    for (name, bindings, text, specs, want) in table {
        file.case("TestResolveParams", name, move || {
            let declared: Vec<_> = specs.iter().map(|(n, d)| spec(n, *d)).collect();
            let event = Event::new(body(text)).with_event_id(EVENT_ID);
            Compared::new(
                format!(
                    "bindings [{}], body {text:?}, template params {specs:?}",
                    pairs_text(bindings)
                ),
                expected(want),
                event.resolve(&params(bindings), &declared),
            )
        });
    }
    file.case("TestResolveParams_Error", "invalid expression", || {
        let event = Event::new(Value::Null);
        let bindings = [("p1", "$(header.[)")];
        Compared::error_expected(
            format!("bindings [{}], no body", pairs_text(&bindings)),
            event.resolve(&params(&bindings), &[]),
        )
    });
    file.case("TestResolveParams_Error", "invalid body", || {
        let bindings = [("p1", "val1")];
        Compared::error_expected(
            format!("bindings [{}], body {{", pairs_text(&bindings)),
            resolve_raw(b"{", &params(&bindings), &[]),
        )
    });
}

/// The `$(uid)` Tekton's generator gives once the table has seeded it.
const SEEDED_UID: &str = "31313131-3131-4131-b131-313131313131";

fn resolve_resources(file: &mut crate::suite::File<'_>) {
    type Case = (
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
    );
    let table: [Case; 5] = [
        (
            "replace single values in templates",
            &["p1", "p2"],
            &[
                r#"{"rt1": "$(tt.params.p1)-$(tt.params.p2)"}"#,
                r#"{"rt2": "$(tt.params.p1)-$(tt.params.p2)"}"#,
            ],
            &[("p1", "val1"), ("p2", "42")],
            &[r#"{"rt1": "val1-42"}"#, r#"{"rt2": "val1-42"}"#],
        ),
        (
            "replace JSON string in templates",
            &["p1", "p2"],
            &[r#"{"rt1": "$(tt.params.p1)"}"#],
            &[("p1", r#"{"a": "b"}"#)],
            &[r#"{"rt1": "{\"a\": \"b\"}"}"#],
        ),
        (
            "replace JSON string with special chars in templates",
            &["p1"],
            &[r#"{"rt1": "$(tt.params.p1)"}"#],
            &[("p1", r#"{"a": "v\\r\\n烈"}"#)],
            &[r#"{"rt1": "{\"a\": \"v\\r\\n烈\"}"}"#],
        ),
        (
            "$(uid) gets replaced with a string",
            &[],
            &[r#"{"rt1": "$(uid)"}"#],
            &[],
            &[r#"{"rt1": "31313131-3131-4131-b131-313131313131"}"#],
        ),
        (
            "uid replacement is consistent across multiple templates",
            &[],
            &[r#"{"rt1": "$(uid)"}"#, r#"{"rt2": "$(uid)"}"#],
            &[],
            &[
                r#"{"rt1": "31313131-3131-4131-b131-313131313131"}"#,
                r#"{"rt2": "31313131-3131-4131-b131-313131313131"}"#,
            ],
        ),
    ];
    for (name, declared, resources, values, want) in table {
        let check = move || {
            // The table's templates carry `old-escape-quotes: "yes"` (`addOldEscape`).
            let rendered = render_yaml(declared, resources, values, Some("yes"), SEEDED_UID);
            Compared::new(
                format!(
                    "annotation old-escape-quotes: \"yes\"; templates {resources:?}; params [{}]",
                    pairs_text(values)
                ),
                expected_resources(want),
                rendered,
            )
        };
        file.case("TestResolveResources", name, check);
    }
}

/// Adds the `apiVersion` and `kind` Sluice requires to a table's resource.
pub fn with_kind(resource: &str) -> Value {
    let mut value: Value = serde_json::from_str(resource).expect("a table resource is JSON");
    let object = value
        .as_object_mut()
        .expect("a table resource is an object");
    object.insert("apiVersion".into(), json!("v1"));
    object.insert("kind".into(), json!("ConfigMap"));
    value
}

/// Tekton's expected resources as JSON values, with the same `apiVersion` and `kind`.
pub fn expected_resources(want: &[&str]) -> String {
    Value::Array(want.iter().map(|r| with_kind(r)).collect()).to_string()
}

/// Renders a TriggerTemplate written as YAML (with the annotation
/// `triggers.tekton.dev/old-escape-quotes` set to `annotation`) with resolved params.
fn render_yaml(
    declared: &[&str],
    resources: &[&str],
    values: &[(&str, &str)],
    annotation: Option<&str>,
    uid: &str,
) -> String {
    let annotations = annotation.map_or_else(String::new, |value| {
        format!(", annotations: {{triggers.tekton.dev/old-escape-quotes: {value:?}}}")
    });
    let params: Vec<String> = declared.iter().map(|p| format!("{{name: {p}}}")).collect();
    let resources: Vec<String> = resources
        .iter()
        .map(|r| format!("    - {}", with_kind(r)))
        .collect();
    let yaml = format!(
        r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {{name: tt, namespace: ns{annotations}}}
spec:
  params: [{}]
  resourcetemplates:
{}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {{name: l, namespace: ns}}
spec:
  triggers: [{{name: t, template: {{ref: tt}}}}]
"#,
        params.join(", "),
        resources.join("\n")
    );
    let catalogue = load_str("template.yaml", &yaml);
    let Some(listener) = catalogue.listener("ns", "l") else {
        return format!("error: {:?}", catalogue.issues());
    };
    let Some(trigger) = listener.triggers.first() else {
        return format!("error: {:?}", catalogue.issues());
    };
    let values: BTreeMap<String, String> = values
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match sluice_triggers::template::render(&trigger.template, &values, uid) {
        Ok(resources) => Value::Array(resources).to_string(),
        Err(error) => format!("error: {error}"),
    }
}
