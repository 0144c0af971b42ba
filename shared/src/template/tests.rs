//! Rendering TriggerTemplates: param seeding, `$(uid)`, escaping and injection safety.

use serde_json::json;

use super::*;
use crate::catalogue::ParamSpec;

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
        resource_templates: resources,
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
fn undeclared_or_valueless_params_stay_literal() {
    let spec = template(
        &[("declared", None)],
        vec![pipeline_run(
            "$(tt.params.declared)|$(tt.params.undeclared)|$(params.declared)",
        )],
    );
    // `undeclared` has a binding value, but the template does not declare it.
    let out = render_one(&spec, &values(&[("undeclared", "u")]));
    assert_eq!(
        rendered_value(&out),
        "$(tt.params.declared)|$(tt.params.undeclared)|$(params.declared)"
    );

    let out = render_one(&spec, &values(&[("declared", "d")]));
    // The deprecated `$(params.x)` form is left alone.
    assert_eq!(
        rendered_value(&out),
        "d|$(tt.params.undeclared)|$(params.declared)"
    );
}

#[test]
fn uid_is_the_same_in_every_resource() {
    let spec = template(
        &[],
        vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg-$(uid)"}}),
            json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
                   "metadata": {"name": "run-$(uid)"},
                   "spec": {"workspaces": [{"configMap": {"name": "cfg-$(uid)"}}]}}),
        ],
    );
    let out = render(&spec, &values(&[]), "b4z9q").unwrap();
    assert_eq!(out[0]["metadata"]["name"], "cfg-b4z9q");
    assert_eq!(out[1]["metadata"]["name"], "run-b4z9q");
    assert_eq!(
        out[1]["spec"]["workspaces"][0]["configMap"]["name"],
        "cfg-b4z9q"
    );
}

#[test]
fn values_cannot_inject_structure() {
    let attack = "\"}], \"spec\": {\"x\": \"y\nkind: Secret\n---\n{";
    let spec = template(
        &[("message", None)],
        vec![pipeline_run("msg: $(tt.params.message)")],
    );
    let out = render_one(&spec, &values(&[("message", attack)]));

    assert_eq!(rendered_value(&out), format!("msg: {attack}"));
    assert_eq!(out["kind"], "PipelineRun");
    assert_eq!(out["spec"].as_object().unwrap().len(), 1);
    // The same holds after a round trip through JSON text.
    let reparsed: Value = serde_json::from_str(&out.to_string()).unwrap();
    assert_eq!(reparsed, out);
}

#[test]
fn values_are_never_expanded_again() {
    let spec = template(
        &[("a", None), ("b", Some("B"))],
        vec![pipeline_run("$(tt.params.a)/$(tt.params.b)")],
    );
    let out = render_one(&spec, &values(&[("a", "$(tt.params.b)-$(uid)")]));
    assert_eq!(rendered_value(&out), "$(tt.params.b)-$(uid)/B");
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
fn old_escape_quotes_puts_a_backslash_before_each_quote() {
    let mut spec = template(&[("m", None)], vec![pipeline_run("[$(tt.params.m)]")]);
    let params = values(&[("m", r#"say "hi""#)]);

    assert_eq!(rendered_value(&render_one(&spec, &params)), r#"[say "hi"]"#);

    spec.old_escape_quotes = true;
    assert_eq!(
        rendered_value(&render_one(&spec, &params)),
        r#"[say \"hi\"]"#
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
fn uids_are_five_characters_from_the_kubernetes_alphabet() {
    let uids: Vec<String> = (0..50).map(|_| new_uid()).collect();
    for uid in &uids {
        assert_eq!(uid.len(), 5, "{uid}");
        assert!(uid.bytes().all(|b| UID_ALPHABET.contains(&b)), "{uid}");
    }
    // 27^5 possibilities: fifty draws all equal would mean the generator is broken.
    assert!(uids.iter().any(|uid| uid != &uids[0]));
}
