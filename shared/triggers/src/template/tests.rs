//! Rendering TriggerTemplates: param seeding, `$(uid)`, what values look like once the
//! created resource is parsed (compared with Tekton's byte substitution), and injection.

use serde_json::json;

use super::*;
use crate::catalogue::{BindingParam, ParamSpec, ResourceTemplates};
use crate::expr::{self, EventContext};
use crate::headers::Headers;

/// A template declaring `params` as `(name, default)`.
fn template(params: &[(&str, Option<&str>)], resources: Vec<Value>) -> TemplateSpec {
    TemplateSpec {
        params: params
            .iter()
            .map(|(name, default)| ParamSpec {
                name: (*name).to_owned(),
                description: None,
                default: default.map(str::to_owned),
            })
            .collect(),
        resource_templates: ResourceTemplates::new(resources),
        old_escape_quotes: false,
    }
}

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A PipelineRun whose `spec.params[0].value` is `value`.
fn pipeline_run(value: &str) -> Value {
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"generateName": "build-"},
        "spec": {"params": [{"name": "p", "value": value}]}
    })
}

fn rendered_value(resource: &Value) -> &str {
    resource["spec"]["params"][0]["value"]
        .as_str()
        .expect("a string value")
}

fn render_one(spec: &TemplateSpec, params: &BTreeMap<String, String>) -> Value {
    let mut resources = render(spec, params, "x7k2q").unwrap();
    assert_eq!(resources.len(), 1);
    resources.remove(0)
}

/// The whole path for one body: bind `p` to `binding`, render `"[$(tt.params.p)]"`, write
/// the resource as JSON text and parse it back, as the API server would receive it.
fn through_render(body: &Value, binding: &str, old_escape_quotes: bool) -> String {
    try_through_render(body, binding, old_escape_quotes)
        .unwrap_or_else(|error| panic!("{binding}: {error}"))
}

/// [`through_render`], or the render's error.
fn try_through_render(
    body: &Value,
    binding: &str,
    old_escape_quotes: bool,
) -> Result<String, RenderError> {
    let (headers, extensions) = (Headers::new(), Map::new());
    let ctx = EventContext {
        body,
        headers: &headers,
        extensions: &extensions,
        event_id: "e",
    };
    let mut spec = template(&[("p", None)], vec![pipeline_run("[$(tt.params.p)]")]);
    spec.old_escape_quotes = old_escape_quotes;
    let binding = BindingParam {
        name: "p".into(),
        value: binding.into(),
    };
    let params = expr::resolve_params(&[binding], &spec.params, &ctx).unwrap();
    let mut resources = render(&spec, &params, "x7k2q")?;
    assert_eq!(resources.len(), 1);
    let resource = resources.remove(0);
    let parsed: Value = serde_json::from_str(&resource.to_string()).unwrap();
    assert_eq!(parsed, resource);
    Ok(rendered_value(&parsed).to_owned())
}

#[test]
fn body_strings_arrive_exactly_as_sent() {
    for text in [
        "plain",
        "v\r\n烈",
        r#"say "hi""#,
        r"C:\path\to\file",
        r#"\"already escaped\""#,
        "tab\tbell\u{7}nul\u{0}del\u{7f}",
        "emoji 😀 and \u{2028} line separator",
        "<script>&amp;</script>",
        "$(body.other) and $(tt.params.p) and $$(x)",
        "\"}], \"kind\": \"Secret\", \"x\": [{\"",
        "ends with a backslash \\",
    ] {
        let body = json!({ "s": text });
        // A `$(` from the event arrives as `$$(`: inert for Tekton Pipelines.
        assert_eq!(
            through_render(&body, "$(body.s)", false),
            format!("[{}]", text.replace("$(", "$$(")),
            "{text:?}"
        );
    }
}

#[test]
fn other_values_arrive_as_their_json_text() {
    let body = json!({
        "n": 42, "u": 12345678901234567890_u64, "i": -9007199254740993_i64,
        "f": 3.0, "t": true, "z": null,
        "o": {"b": [1, "two"], "a": "x\"y"}
    });
    for (binding, expected) in [
        ("$(body.n)", "[42]"),
        ("$(body.u)", "[12345678901234567890]"),
        ("$(body.i)", "[-9007199254740993]"),
        ("$(body.f)", "[3]"),
        ("$(body.t)", "[true]"),
        ("$(body.z)", "[null]"),
        // Tekton's own resource would not parse here (the object's quotes end the string);
        // Sluice keeps the object's JSON text as the string.
        ("$(body.o)", r#"[{"a":"x\"y","b":[1,"two"]}]"#),
    ] {
        assert_eq!(through_render(&body, binding, false), expected, "{binding}");
    }
}

#[test]
fn static_binding_text_is_read_as_json_string_content_as_in_tekton() {
    let body = json!({});
    // Tekton pastes the text into a JSON string: its escapes are decoded.
    assert_eq!(
        through_render(&body, r"line1\nline2", false),
        "[line1\nline2]"
    );
    assert_eq!(through_render(&body, r"\u00e9\/", false), "[é/]");
    assert_eq!(through_render(&body, r"\ud83d\ude00", false), "[😀]");
    assert_eq!(
        through_render(&body, r"lone \ud800 surrogate", false),
        "[lone \u{fffd} surrogate]"
    );
    assert_eq!(through_render(&body, r"C:\\path", false), r"[C:\path]");
    // A backslash that starts no escape fails the trigger, as Tekton's resource would not
    // parse; with or without old-escape-quotes (which escapes quotes only).
    for old_escape_quotes in [false, true] {
        for text in [r"C:\path", r"trailing\", r"\u12 short", r"\x41"] {
            let error = try_through_render(&body, text, old_escape_quotes)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("param `p` cannot be inserted into a JSON string")
                    && error.contains("starts no JSON escape"),
                "{text:?}: {error}"
            );
        }
    }
    // Where only quotes or control characters would make Tekton's JSON invalid, the text is
    // kept as written: it cannot add structure here.
    assert_eq!(
        through_render(&body, r#"{"a":"b"}"#, false),
        r#"[{"a":"b"}]"#
    );
    assert_eq!(
        through_render(&body, "raw\nnewline", false),
        "[raw\nnewline]"
    );
}

#[test]
fn old_escape_quotes_escapes_quotes_before_insertion() {
    let body = json!({"o": {"a": "b"}, "s": "x\ny"});
    // The use it exists for: an object's JSON text inside a string.
    assert_eq!(through_render(&body, "$(body.o)", true), r#"[{"a":"b"}]"#);
    // A static value's quotes.
    assert_eq!(through_render(&body, r#"say "hi""#, true), r#"[say "hi"]"#);
    // Escapes in the text are still decoded, as in Tekton.
    assert_eq!(through_render(&body, "$(body.s)", true), "[x\ny]");
    // A body string with a quote is `\"`, which becomes `\\"`: Tekton's resource would not
    // parse; Sluice inserts the text as it stands.
    let body = json!({"s": r#"say "hi""#});
    assert_eq!(
        through_render(&body, "$(body.s)", true),
        r#"[say \\"hi\\"]"#
    );
}

#[test]
fn dollar_parentheses_in_a_value_pass_through_unchanged() {
    // Tekton Triggers inserts values verbatim; Tekton Pipelines has no `$$(` escape.
    let spec = template(&[("p", None)], vec![pipeline_run("$(tt.params.p)")]);
    let out = render_one(&spec, &values(&[("p", "$(tasks.x.results.y)")]));
    assert_eq!(rendered_value(&out), "$(tasks.x.results.y)");
}

#[test]
fn defaults_seed_params_and_bindings_override_them() {
    let spec = template(
        &[("revision", Some("main")), ("url", Some("https://default"))],
        vec![pipeline_run("$(tt.params.url)@$(tt.params.revision)")],
    );
    let out = render_one(
        &spec,
        &values(&[("url", "https://github.com/octo/hello.git")]),
    );
    assert_eq!(
        rendered_value(&out),
        "https://github.com/octo/hello.git@main"
    );
    let out = render_one(&spec, &values(&[]));
    assert_eq!(rendered_value(&out), "https://default@main");
}

#[test]
fn params_without_a_value_stay_literal_and_params_x_is_untouched() {
    let spec = template(
        &[("declared", None)],
        vec![pipeline_run(
            "$(tt.params.declared)|$(tt.params.undeclared)|$(params.declared)",
        )],
    );
    let out = render_one(&spec, &values(&[]));
    assert_eq!(
        rendered_value(&out),
        "$(tt.params.declared)|$(tt.params.undeclared)|$(params.declared)"
    );
    // Tekton substitutes every resolved param, declared or not (its admission webhook is
    // what refuses templates that use undeclared params).
    let out = render_one(&spec, &values(&[("declared", "d"), ("undeclared", "u")]));
    assert_eq!(rendered_value(&out), "d|u|$(params.declared)");
}

#[test]
fn uid_is_one_uuid_shared_by_every_resource_of_a_run() {
    let spec = template(
        &[],
        vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg-$(uid)"}}),
            json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
                   "metadata": {"name": "run-$(uid)"},
                   "spec": {"workspaces": [{"configMap": {"name": "cfg-$(uid)"}}]}}),
        ],
    );
    let uid = new_uid();
    let out = render(&spec, &values(&[]), &uid).unwrap();
    assert_eq!(out[0]["metadata"]["name"], format!("cfg-{uid}"));
    assert_eq!(out[1]["metadata"]["name"], format!("run-{uid}"));
    assert_eq!(
        out[1]["spec"]["workspaces"][0]["configMap"]["name"],
        format!("cfg-{uid}")
    );
}

#[test]
fn uids_are_random_version_4_uuids() {
    let uids: Vec<String> = (0..20).map(|_| new_uid()).collect();
    for uid in &uids {
        let parsed = uuid::Uuid::parse_str(uid).unwrap();
        assert_eq!(parsed.get_version_num(), 4, "{uid}");
        assert_eq!(
            uid,
            &parsed.hyphenated().to_string(),
            "lower-case, hyphenated"
        );
    }
    assert!(uids.iter().any(|uid| uid != &uids[0]));
}

#[test]
fn only_uid_is_expanded_inside_a_value() {
    let spec = template(
        &[("a", None), ("b", Some("B"))],
        vec![pipeline_run("$(tt.params.a)/$(tt.params.b)")],
    );
    let out = render_one(&spec, &values(&[("a", "$(tt.params.b)-$(uid)")]));
    // Tekton replaces `$(uid)` after the params, in the whole text.
    assert_eq!(rendered_value(&out), "$(tt.params.b)-x7k2q/B");
}

#[test]
fn every_occurrence_and_nested_variables_substitute() {
    let spec = template(
        &[("file", None)],
        vec![pipeline_run(
            "cat $(tt.params.file); wc $(tt.params.file); x=$(cat $(tt.params.file)) $(tt.params.file",
        )],
    );
    let out = render_one(&spec, &values(&[("file", "a.txt")]));
    assert_eq!(
        rendered_value(&out),
        "cat a.txt; wc a.txt; x=$(cat a.txt) $(tt.params.file"
    );
}

#[test]
fn values_cannot_inject_structure() {
    for attack in [
        "\"}], \"spec\": {\"x\": \"y\nkind: Secret\n---\n{",
        r#"", "kind": "Secret", "x": ""#,
        r#"\", \"kind\": \"Secret"#,
        r"\u0022, \u0022kind\u0022: \u0022Secret",
        "\\",
        "}\n---\napiVersion: v1\nkind: Secret",
    ] {
        let spec = template(&[("m", None)], vec![pipeline_run("msg: $(tt.params.m)")]);
        // Refused (Tekton's resource would not parse), or kept inside its string.
        let Ok(mut resources) = render(&spec, &values(&[("m", attack)]), "x7k2q") else {
            continue;
        };
        let out = resources.remove(0);
        assert_eq!(out["kind"], "PipelineRun", "{attack:?}");
        assert_eq!(out["spec"].as_object().unwrap().len(), 1, "{attack:?}");
        assert_eq!(out.as_object().unwrap().len(), 4, "{attack:?}");
        assert!(rendered_value(&out).starts_with("msg: "), "{attack:?}");
        let reparsed: Value = serde_json::from_str(&out.to_string()).unwrap();
        assert_eq!(reparsed, out);
    }
}

#[test]
fn a_json_object_param_in_a_flow_mapping_stays_a_string() {
    // `{"foo": $(tt.params.p1)}` in YAML is a flow mapping whose value is the string
    // `$(tt.params.p1)`; the object's text is inserted into that string, never as structure.
    let resource: Value = serde_norway::from_str(
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "data": {"foo": $(tt.params.p1)}}"#,
    )
    .unwrap();
    let spec = template(&[("p1", None)], vec![resource]);
    let out = render_one(&spec, &values(&[("p1", r#"{"a":"b"}"#)]));
    assert_eq!(out["data"], json!({"foo": r#"{"a":"b"}"#}));
}

#[test]
fn object_keys_are_substituted() {
    let spec = template(
        &[("label", None)],
        vec![json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"labels": {"sluice.dev/$(tt.params.label)": "$(uid)"}},
            "data": {"$(uid).json": "{}"}
        })],
    );
    let out = render_one(&spec, &values(&[("label", "push")]));
    assert_eq!(
        out["metadata"]["labels"],
        json!({"sluice.dev/push": "x7k2q"})
    );
    assert_eq!(out["data"], json!({"x7k2q.json": "{}"}));
}

#[test]
fn a_key_cannot_be_rendered_onto_another_key() {
    let spec = template(
        &[("k", None)],
        vec![json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": {"$(tt.params.k)": "from param", "safe": "kept"}
        })],
    );
    let err = render(&spec, &values(&[("k", "safe")]), "u").unwrap_err();
    assert!(matches!(
        &err,
        RenderError::Invalid { index: 0, problem: ResourceProblem::KeyCollision(a, b) }
            if a == "$(tt.params.k)" && b == "safe"
    ));
    assert_eq!(
        err.to_string(),
        "resourcetemplates[0]: object keys `$(tt.params.k)` and `safe` are the same after substitution"
    );
}

#[test]
fn non_string_values_are_left_as_they_are() {
    let spec = template(
        &[("n", None)],
        vec![json!({
            "apiVersion": "v1", "kind": "Pod",
            "spec": {"replicas": 3, "enabled": true, "none": null, "n": "$(tt.params.n)"}
        })],
    );
    let out = render_one(&spec, &values(&[("n", "9007199254740993")]));
    assert_eq!(
        out["spec"],
        json!({"replicas": 3, "enabled": true, "none": null, "n": "9007199254740993"})
    );
}

#[test]
fn rendered_resources_must_be_objects_with_api_version_and_kind() {
    let good = pipeline_run("x");
    for (bad, expected) in [
        (json!("$(tt.params.k)"), ResourceProblem::NotAnObject),
        (json!([good.clone()]), ResourceProblem::NotAnObject),
        (
            json!({"kind": "PipelineRun"}),
            ResourceProblem::MissingField("apiVersion"),
        ),
        (
            json!({"apiVersion": 1, "kind": "PipelineRun"}),
            ResourceProblem::MissingField("apiVersion"),
        ),
        (
            json!({"apiVersion": "v1"}),
            ResourceProblem::MissingField("kind"),
        ),
        // A kind that renders empty is as bad as none.
        (
            json!({"apiVersion": "v1", "kind": "$(tt.params.k)"}),
            ResourceProblem::MissingField("kind"),
        ),
    ] {
        let spec = template(&[("k", Some(""))], vec![good.clone(), bad.clone()]);
        match render(&spec, &values(&[]), "u") {
            Err(RenderError::Invalid { index: 1, problem }) => {
                assert_eq!(problem, expected, "{bad}")
            }
            other => panic!("{bad}: expected resourcetemplates[1] to fail, got {other:?}"),
        }
    }
    let spec = template(&[], vec![json!(null)]);
    assert_eq!(
        render(&spec, &values(&[]), "u").unwrap_err().to_string(),
        "resourcetemplates[0]: is not a JSON object"
    );
}

#[test]
fn decoding_follows_json_string_rules() {
    use insert::decode;
    assert_eq!(decode("plain").as_deref(), Some("plain"));
    assert_eq!(
        decode(r#"\"\\\/\b\f\n\r\t"#).as_deref(),
        Some("\"\\/\u{8}\u{c}\n\r\t")
    );
    assert_eq!(decode(r"\u00E9\u00e9").as_deref(), Some("éé"));
    assert_eq!(decode(r"\udc00").as_deref(), Some("\u{fffd}"));
    assert_eq!(decode(r"\ud800\u0041").as_deref(), Some("\u{fffd}A"));
    for invalid in [
        "\"",
        "\\",
        r"\x41",
        r"\u12",
        r"\U0001F600",
        "a\u{1}b",
        "tab\there",
    ] {
        assert_eq!(decode(invalid), None, "{invalid:?}");
    }
}
