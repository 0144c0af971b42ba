//! `pkg/template/resource_test.go`: params substituted into resource templates
//! (`applyParamToResourceTemplate`, `applyParamsToResourceTemplate`), `$(uid)`, the escaping
//! of Tekton variables in values, and bindings resolved and merged
//! (`ResolveTrigger`, `mergeBindingParams`).
//!
//! - Substitution maps to [`sluice_triggers::template::render`], the tables' raw JSON
//!   templates parsed as the resources they are (with the `apiVersion` and `kind` Sluice
//!   requires, on both sides). Tekton's `Test_ApplyParamsToResourceTemplate` template text
//!   lacks its closing brace; it is closed here, as any template Tekton can store is.
//! - Tekton escapes `$(` in every value it substitutes. In Sluice a value with `$(` comes
//!   from the event (a binding's own `$(` is an expression), and it is escaped there; so the
//!   escaping cases bind the table's value from the event body and render it.
//! - Resolution and merging map to the params of a trigger loaded with
//!   [`sluice_triggers::config::load_str`]: TriggerBindings, ClusterTriggerBindings and inline
//!   bindings in declaration order; an error is the trigger refused at load. The tables'
//!   TriggerTemplate has no resources, which Tekton's admission refuses as Sluice does; here
//!   it has one.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sluice_triggers::catalogue::{ResourceTemplates, TemplateSpec};
use sluice_triggers::config::load_str;

use crate::common::{Event, param, spec};
use crate::suite::{Compared, File, Suite};
use crate::template_event::with_kind;

const FILE: &str = "pkg/template/resource_test.go";

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);
    escape_tekton_variables(&mut file);
    apply_param(&mut file);
    apply_params(&mut file);
    resolve_trigger(&mut file);
    apply_uid(&mut file);
    merge_binding_params(&mut file);
}

/// The event's `v` bound to `p` and rendered into a resource's `data.v`.
fn through_event(value: &str) -> String {
    let template = TemplateSpec {
        params: vec![spec("p", None)],
        resource_templates: ResourceTemplates::new(vec![json!({
            "apiVersion": "v1", "kind": "ConfigMap", "data": {"v": "$(tt.params.p)"}
        })]),
        old_escape_quotes: false,
    };
    let event = Event::new(json!({ "v": value }));
    let params = match sluice_triggers::expr::resolve_params(
        &[param("p", "$(body.v)")],
        &template.params,
        &event.ctx(),
    ) {
        Ok(params) => params,
        Err(error) => return format!("error: {error}"),
    };
    match sluice_triggers::template::render(&template, &params, "uid") {
        Ok(resources) => match resources[0]["data"]["v"].as_str() {
            Some(text) => text.to_owned(),
            None => format!("not a string: {}", resources[0]),
        },
        Err(error) => format!("error: {error}"),
    }
}

fn escape_tekton_variables(file: &mut File<'_>) {
    let table = [
        (
            "no tekton variables",
            "simple text without variables",
            "simple text without variables",
        ),
        (
            "single tekton variable",
            "$(tasks.initial-skip-check.results.skip)",
            "$$(tasks.initial-skip-check.results.skip)",
        ),
        (
            "multiple tekton variables",
            "$(tasks.a.results.b) and $(params.c) and $(context.d.e)",
            "$$(tasks.a.results.b) and $$(params.c) and $$(context.d.e)",
        ),
        (
            "tekton variables in yaml",
            "tasks:\n  - name: test\n    value: $(params.foo)\n    result: $(tasks.bar.results.baz)",
            "tasks:\n  - name: test\n    value: $$(params.foo)\n    result: $$(tasks.bar.results.baz)",
        ),
        (
            "already escaped variable",
            "$$(tasks.already.escaped)",
            "$$$(tasks.already.escaped)",
        ),
        (
            "mixed content",
            "Normal text with $(params.value) and more text",
            "Normal text with $$(params.value) and more text",
        ),
    ];
    for (name, input, want) in table {
        file.case("Test_escapeTektonVariables", name, move || {
            Compared::new(
                format!("event value {input:?}, bound and rendered"),
                want,
                through_event(input),
            )
        });
    }
}

/// Renders one table resource with `values`, directly (the params as resolved).
fn render(rt: &str, values: &[(&str, &str)], old_escape_quotes: bool, uid: &str) -> String {
    let template = TemplateSpec {
        params: vec![],
        resource_templates: ResourceTemplates::new(vec![with_kind(rt)]),
        old_escape_quotes,
    };
    let values: BTreeMap<String, String> = values
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match sluice_triggers::template::render(&template, &values, uid) {
        Ok(mut resources) => resources.remove(0).to_string(),
        Err(error) => format!("error: {error}"),
    }
}

fn rendered_case(
    rt: &'static str,
    values: &'static [(&'static str, &'static str)],
    old_escape_quotes: bool,
    want: &'static str,
) -> impl FnOnce() -> Compared {
    move || {
        Compared::new(
            format!("template {rt}, params {values:?}, old escape {old_escape_quotes}"),
            with_kind(want),
            render(rt, values, old_escape_quotes, "uid"),
        )
    }
}

const OUTSIDE_STRING: &str = "the placeholder sits outside a JSON string (`{\"foo\": $(tt.params.p1)}`), \
                              which a template written as YAML cannot express";

fn apply_param(file: &mut File<'_>) {
    const F: &str = "Test_applyParamToResourceTemplate";
    const ONE: &[(&str, &str)] = &[("oneid", "onevalue")];
    const QUOTED: &[(&str, &str)] = &[("p1", r#"this is a \"quoted\" string"#)];
    file.case(
        F,
        "replace no param vars",
        rendered_case(r#"{"foo": "bar"}"#, ONE, false, r#"{"foo": "bar"}"#),
    );
    file.case(
        F,
        "replace no param vars with non match present",
        rendered_case(
            r#"{"foo": "$(tt.params.no.matching.path)"}"#,
            ONE,
            false,
            r#"{"foo": "$(tt.params.no.matching.path)"}"#,
        ),
    );
    file.case(
        F,
        "replace one param var",
        rendered_case(
            r#"{"foo": "bar-$(tt.params.oneid)-bar"}"#,
            ONE,
            false,
            r#"{"foo": "bar-onevalue-bar"}"#,
        ),
    );
    file.case(
        F,
        "replace multiple param vars",
        rendered_case(
            r#"{"$(tt.params.oneid)": "bar-$(tt.params.oneid)-$(tt.params.oneid)$(tt.params.oneid)$(tt.params.oneid)-$(tt.params.oneid)-bar"}"#,
            ONE,
            false,
            r#"{"onevalue": "bar-onevalue-onevalueonevalueonevalue-onevalue-bar"}"#,
        ),
    );
    file.skip(
        F,
        &[
            "escape quotes in param val",
            "escape string with object with quoted string",
        ],
        OUTSIDE_STRING,
    );
    file.case(
        F,
        "escape quotes in param val - old escaping",
        rendered_case(
            r#"{"foo": "$(tt.params.p1)"}"#,
            &[("p1", r#"{"a":"b"}"#)],
            true,
            r#"{"foo": "{\"a\":\"b\"}"}"#,
        ),
    );
    file.case(
        F,
        "escape string with quoted message inside",
        rendered_case(
            r#"{"foo": "$(tt.params.p1)"}"#,
            QUOTED,
            false,
            r#"{"foo": "this is a \"quoted\" string"}"#,
        ),
    );
    file.case(
        F,
        "join string with quoted message",
        rendered_case(
            r#"{"foo": "bar-$(tt.params.p1)-bar"}"#,
            QUOTED,
            false,
            r#"{"foo": "bar-this is a \"quoted\" string-bar"}"#,
        ),
    );
    let variables = [
        (
            "escape tekton variable syntax - simple",
            "$(tasks.initial-skip-check.results.skip)",
            "$$(tasks.initial-skip-check.results.skip)",
        ),
        (
            "escape tekton variable syntax - multiple occurrences",
            "timeout: $(tasks.slack-start.results.thread-timestamp) and $(tasks.initial-skip-check.results.skip)",
            "timeout: $$(tasks.slack-start.results.thread-timestamp) and $$(tasks.initial-skip-check.results.skip)",
        ),
        (
            "escape tekton variable syntax - real PR body example",
            "Fixed issue with $(tasks.initial-skip-check.results.skip) and $(tasks.slack-start.results.thread-timestamp)",
            "Fixed issue with $$(tasks.initial-skip-check.results.skip) and $$(tasks.slack-start.results.thread-timestamp)",
        ),
        (
            "escape tekton variable syntax - params reference",
            "value: $(params.git-tag)",
            "value: $$(params.git-tag)",
        ),
        (
            "escape tekton variable syntax - context reference",
            "name: $(context.pipelineRun.name)",
            "name: $$(context.pipelineRun.name)",
        ),
    ];
    for (name, value, want) in variables {
        file.case(F, name, move || {
            Compared::new(
                format!("param pr-body {value:?} (from the event), template value \"$(tt.params.pr-body)\""),
                want,
                through_event(value),
            )
        });
    }
}

fn apply_params(file: &mut File<'_>) {
    const F: &str = "Test_ApplyParamsToResourceTemplate";
    const RT: &str = r#"{"oneparam": "$(tt.params.oneid)", "twoparam": "$(tt.params.twoid)", "threeparam": "$(tt.params.threeid)"}"#;
    const RT3: &str = r#"{"actualParam": "$(tt.params.oneid)", "invalidParam": "$(tt.params1.invalidid)", "deprecatedParam": "$(params.twoid)"}"#;
    file.case(F, "no params", rendered_case(RT, &[], false, RT));
    file.case(
        F,
        "one param",
        rendered_case(
            RT,
            &[("oneid", "onevalue")],
            false,
            r#"{"oneparam": "onevalue", "twoparam": "$(tt.params.twoid)", "threeparam": "$(tt.params.threeid)"}"#,
        ),
    );
    file.case(
        F,
        "old escape behaviour",
        rendered_case(
            RT,
            &[("oneid", "this \"is a value\"")],
            true,
            r#"{"oneparam": "this \"is a value\"", "twoparam": "$(tt.params.twoid)", "threeparam": "$(tt.params.threeid)"}"#,
        ),
    );
    file.case(
        F,
        "multiple params",
        rendered_case(
            RT,
            &[
                ("oneid", "onevalue"),
                ("twoid", "twovalue"),
                ("threeid", "threevalue"),
            ],
            false,
            r#"{"oneparam": "onevalue", "twoparam": "twovalue", "threeparam": "threevalue"}"#,
        ),
    );
    file.case(
        F,
        "valid and invalid params together",
        rendered_case(
            RT3,
            &[
                ("oneid", "actualValue"),
                ("invalidid", "invalidValue"),
                ("twoid", "deprecatedParamValue"),
            ],
            false,
            r#"{"actualParam": "actualValue", "invalidParam": "$(tt.params1.invalidid)", "deprecatedParam": "$(params.twoid)"}"#,
        ),
    );
}

/// The documents every `ResolveTrigger` case can refer to.
const RESOLVE_DOCUMENTS: &str = r#"
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: my-triggerbinding, namespace: ns}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: tb-params, namespace: ns}
spec:
  params: [{name: foo, value: bar}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: ClusterTriggerBinding
metadata: {name: my-clustertriggerbinding}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: ClusterTriggerBinding
metadata: {name: ctb-params}
spec:
  params: [{name: foo-ctb, value: bar-ctb}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: my-triggertemplate, namespace: ns}
spec:
  resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: c-}}]
"#;

/// The params (and, with `template`, the resource templates) of trigger `t` once the
/// documents and a listener with the trigger `trigger` (YAML flow) are loaded, or `error:`
/// with the issues when the trigger is refused.
fn resolved_trigger(documents: &str, trigger: &str, template: bool) -> String {
    let yaml = format!(
        "{documents}\n---\napiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\n\
         metadata: {{name: l, namespace: ns}}\nspec:\n  triggers: [{trigger}]\n"
    );
    let catalogue = load_str("trigger.yaml", &yaml);
    let trigger = catalogue
        .listener("ns", "l")
        .and_then(|listener| listener.trigger("t"));
    let Some(trigger) = trigger else {
        let issues: Vec<String> = catalogue.issues().iter().map(|i| i.to_string()).collect();
        return format!("error: {}", issues.join("; "));
    };
    let params: Vec<Value> = trigger
        .params
        .iter()
        .map(|p| json!([p.name, p.value]))
        .collect();
    let mut out = json!({ "params": params });
    if template {
        let resources = trigger.template.resource_templates.get().map(<[_]>::to_vec);
        out["template"] = match resources {
            Ok(resources) => Value::Array(resources),
            Err(error) => Value::String(format!("error: {error}")),
        };
    }
    out.to_string()
}

fn want_params(params: &[(&str, &str)]) -> Value {
    Value::Array(params.iter().map(|(n, v)| json!([n, v])).collect())
}

fn resolve_trigger(file: &mut File<'_>) {
    const F: &str = "Test_ResolveTrigger";
    type Case = (
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    );
    let table: [Case; 7] = [
        (
            "1 binding",
            "{name: t, bindings: [{ref: my-triggerbinding, kind: TriggerBinding}], template: {ref: my-triggertemplate, apiVersion: v1alpha1}}",
            &[],
        ),
        (
            "1 clustertype binding",
            "{name: t, bindings: [{ref: my-clustertriggerbinding, kind: ClusterTriggerBinding}], template: {ref: my-triggertemplate, apiVersion: v1alpha1}}",
            &[],
        ),
        (
            "1 embed binding",
            "{name: t, bindings: [{name: key, value: value}], template: {ref: my-triggertemplate, apiVersion: v1alpha1}}",
            &[("key", "value")],
        ),
        (
            "no binding",
            "{name: t, template: {ref: my-triggertemplate, apiVersion: v1alpha1}}",
            &[],
        ),
        (
            "concise bindings",
            "{name: t, template: {ref: my-triggertemplate}, bindings: [{name: p1, value: v1}, {name: p2, value: v2}]}",
            &[("p1", "v1"), ("p2", "v2")],
        ),
        (
            "multiple binding params are merged",
            "{name: t, bindings: [{kind: TriggerBinding, ref: my-triggerbinding}, {kind: TriggerBinding, ref: tb-params}, {kind: ClusterTriggerBinding, ref: my-clustertriggerbinding}, {kind: ClusterTriggerBinding, ref: ctb-params}, {name: p1, value: v1}, {name: p2, value: v2}], template: {ref: my-triggertemplate, apiVersion: v1alpha1}}",
            &[
                ("foo", "bar"),
                ("foo-ctb", "bar-ctb"),
                ("p1", "v1"),
                ("p2", "v2"),
            ],
        ),
        (
            "missing kind implies namespacedTriggerBinding",
            "{name: t, bindings: [{name: my-triggerbinding, apiVersion: v1alpha1, ref: my-triggerbinding}], template: {ref: my-triggertemplate, apiVersion: v1alpha1}}",
            &[],
        ),
    ];
    for (name, trigger, want) in table {
        file.case(F, name, move || {
            Compared::new(
                format!("trigger {trigger}"),
                json!({ "params": want_params(want) }),
                resolved_trigger(RESOLVE_DOCUMENTS, trigger, false),
            )
        });
    }
    file.case(F, "embedded trigger template", || {
        let trigger = "{name: t, bindings: [{name: my-triggerbinding, apiVersion: v1alpha1, ref: my-triggerbinding}], template: {spec: {resourcetemplates: [{apiVersion: tekton.dev/v1alpha1, kind: PipelineRun}]}}}";
        Compared::new(
            format!("trigger {trigger}"),
            json!({
                "params": [],
                "template": [{"apiVersion": "tekton.dev/v1alpha1", "kind": "PipelineRun"}],
            }),
            resolved_trigger(RESOLVE_DOCUMENTS, trigger, true),
        )
    });

    const E: &str = "Test_ResolveTrigger_error";
    let errors = [
        (
            "triggerbinding not found",
            "{name: t, bindings: [{ref: invalid-tb-name, kind: TriggerBinding}], template: {ref: my-triggertemplate, apiVersion: v1alpha1}}",
        ),
        (
            "clustertriggerbinding not found",
            "{name: t, bindings: [{ref: invalid-ctb-name, kind: ClusterTriggerBinding}], template: {ref: my-triggertemplate, apiVersion: v1alpha1}}",
        ),
        (
            "triggertemplate not found",
            "{name: t, bindings: [{ref: my-triggerbinding, kind: TriggerBinding}], template: {ref: invalid-tt-name, apiVersion: v1alpha1}}",
        ),
        (
            "triggerbinding and triggertemplate not found",
            "{name: t, bindings: [{ref: invalid-tb-name, kind: TriggerBinding}], template: {ref: invalid-tt-name, apiVersion: v1alpha1}}",
        ),
        (
            "trigger template missing ref",
            "{name: t, template: {ref: ''}}",
        ),
        (
            "invalid trigger binding",
            "{name: t, template: {ref: my-triggertemplate}, bindings: [{value: only-val}]}",
        ),
        (
            "same param name across multiple bindings",
            "{name: t, bindings: [{ref: tb-params, kind: TriggerBinding}, {name: foo, value: bar}], template: {ref: my-triggertemplate}}",
        ),
    ];
    for (name, trigger) in errors {
        file.case(E, name, move || {
            Compared::error_expected(
                format!("trigger {trigger}"),
                resolved_trigger(RESOLVE_DOCUMENTS, trigger, false),
            )
        });
    }
}

fn apply_uid(file: &mut File<'_>) {
    const F: &str = "Test_ApplyUIDToResourceTemplate";
    let table = [
        (
            "No uid",
            r#"{"rt": "nothing to see here"}"#,
            r#"{"rt": "nothing to see here"}"#,
        ),
        (
            "One uid",
            r#"{"rt": "uid is $(uid)"}"#,
            r#"{"rt": "uid is abcde"}"#,
        ),
        (
            "Three uid",
            r#"{"rt1": "uid is $(uid)", "rt2": "nothing", "rt3": "$(uid)-center-$(uid)"}"#,
            r#"{"rt1": "uid is abcde", "rt2": "nothing", "rt3": "abcde-center-abcde"}"#,
        ),
    ];
    for (name, rt, want) in table {
        file.case(F, name, move || {
            Compared::new(
                format!("template {rt}, uid abcde"),
                with_kind(want),
                render(rt, &[], false, "abcde"),
            )
        });
    }
}

fn merge_binding_params(file: &mut File<'_>) {
    const F: &str = "TestMergeBindingParams";
    /// TriggerBindings then ClusterTriggerBindings, each a list of params, and the
    /// expected params (`None`: an error).
    type Case = (
        &'static str,
        &'static [&'static [(&'static str, &'static str)]],
        &'static [&'static [(&'static str, &'static str)]],
        Option<&'static [(&'static str, &'static str)]>,
    );
    let table: [Case; 6] = [
        ("empty bindings", &[&[], &[]], &[], Some(&[])),
        (
            "single binding with multiple params",
            &[&[("param1", "value1"), ("param2", "value2")]],
            &[],
            Some(&[("param1", "value1"), ("param2", "value2")]),
        ),
        (
            "single cluster type binding with multiple params",
            &[],
            &[&[("param1", "value1"), ("param2", "value2")]],
            Some(&[("param1", "value1"), ("param2", "value2")]),
        ),
        (
            "multiple bindings each with multiple params",
            &[
                &[("param1", "value1"), ("param2", "value2")],
                &[("param3", "value3"), ("param4", "value4")],
            ],
            &[&[("param5", "value1"), ("param6", "value2")]],
            Some(&[
                ("param1", "value1"),
                ("param2", "value2"),
                ("param3", "value3"),
                ("param4", "value4"),
                ("param5", "value1"),
                ("param6", "value2"),
            ]),
        ),
        (
            "multiple bindings with duplicate params",
            &[
                &[("param1", "value1")],
                &[("param1", "value1"), ("param4", "value4")],
            ],
            &[],
            None,
        ),
        (
            "single binding with duplicate params",
            &[&[("param1", "value1"), ("param1", "value3")]],
            &[],
            None,
        ),
    ];
    for (name, bindings, cluster_bindings, want) in table {
        file.case(F, name, move || {
            // The table's bindings are unnamed or share a name; here each has its own.
            let mut documents = Vec::new();
            let mut refs = Vec::new();
            for (i, params) in bindings.iter().enumerate() {
                documents.push(binding_document("TriggerBinding", &format!("tb-{i}"), params));
                refs.push(format!("{{ref: tb-{i}, kind: TriggerBinding}}"));
            }
            for (i, params) in cluster_bindings.iter().enumerate() {
                documents.push(binding_document(
                    "ClusterTriggerBinding",
                    &format!("ctb-{i}"),
                    params,
                ));
                refs.push(format!("{{ref: ctb-{i}, kind: ClusterTriggerBinding}}"));
            }
            documents.push(
                "apiVersion: triggers.tekton.dev/v1beta1\nkind: TriggerTemplate\nmetadata: {name: tt, namespace: ns}\n\
                 spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: c-}}]}\n"
                    .to_owned(),
            );
            let trigger = format!("{{name: t, bindings: [{}], template: {{ref: tt}}}}", refs.join(", "));
            let sluice = resolved_trigger(&documents.join("---\n"), &trigger, false);
            let input = format!("TriggerBindings {bindings:?}, ClusterTriggerBindings {cluster_bindings:?}");
            match want {
                Some(want) => Compared::new(input, json!({ "params": want_params(want) }), sluice),
                None => Compared::error_expected(input, sluice),
            }
        });
    }
}

fn binding_document(kind: &str, name: &str, params: &[(&str, &str)]) -> String {
    let namespace = if kind == "TriggerBinding" {
        ", namespace: ns"
    } else {
        ""
    };
    let params: Vec<String> = params
        .iter()
        .map(|(n, v)| format!("{{name: {n}, value: {v}}}"))
        .collect();
    format!(
        "apiVersion: triggers.tekton.dev/v1beta1\nkind: {kind}\nmetadata: {{name: {name}{namespace}}}\nspec:\n  params: [{}]\n",
        params.join(", ")
    )
}
