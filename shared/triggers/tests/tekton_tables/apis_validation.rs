//! `pkg/apis/triggers/v1beta1/{trigger_binding,cluster_trigger_binding,trigger_template,trigger}_validation_test.go`:
//! which TriggerBindings, ClusterTriggerBindings, TriggerTemplates and Triggers Tekton's
//! admission webhook accepts.
//!
//! Sluice checks documents when the configuration loads
//! ([`sluice_triggers::config::load_str`]); a document is accepted when it loads without an
//! issue and a trigger referring to it (or, for a Trigger, the listener's `triggerRef` to
//! it) is kept. Admission does not look at what a Trigger refers to, but Sluice's loader
//! does, so every TriggerBinding and TriggerTemplate a table's Trigger names is given (each
//! binding with a param of its own name), and the Triggers are all in one namespace.

use sluice_triggers::config::load_str;

use crate::suite::{Compared, Suite};

const BINDING: &str = "pkg/apis/triggers/v1beta1/trigger_binding_validation_test.go";
const CLUSTER_BINDING: &str =
    "pkg/apis/triggers/v1beta1/cluster_trigger_binding_validation_test.go";
const TEMPLATE: &str = "pkg/apis/triggers/v1beta1/trigger_template_validation_test.go";
const TRIGGER: &str = "pkg/apis/triggers/v1beta1/trigger_validation_test.go";

const RESOURCE: &str = "{apiVersion: v1, kind: ConfigMap, metadata: {generateName: c-}}";

/// `accepted`, or `refused:` with the issues, for `document` and a listener whose trigger
/// `t` is `trigger` (YAML flow).
fn admitted(document: &str, trigger: &str) -> String {
    let yaml = format!(
        "{document}---\napiVersion: triggers.tekton.dev/v1beta1\nkind: EventListener\n\
         metadata: {{name: l, namespace: foo}}\nspec: {{triggers: [{trigger}]}}\n"
    );
    let catalogue = load_str("validation.yaml", &yaml);
    let kept = catalogue
        .listener("foo", "l")
        .is_some_and(|l| l.trigger("t").is_some());
    if kept && catalogue.issues().is_empty() {
        "accepted".to_owned()
    } else {
        let issues: Vec<String> = catalogue.issues().iter().map(|i| i.to_string()).collect();
        format!("refused: {}", issues.join("; "))
    }
}

fn judged(input: String, accepted: bool, sluice: String) -> Compared {
    if accepted {
        Compared::new(input, "accepted", sluice)
    } else {
        let same = sluice.starts_with("refused");
        Compared::judged(input, "refused", sluice, same)
    }
}

fn binding_document(kind: &str, spec: Option<&[(&str, &str)]>) -> String {
    let namespace = if kind == "TriggerBinding" {
        ", namespace: foo"
    } else {
        ""
    };
    let spec = match spec {
        None => String::new(),
        Some(params) => {
            let params: Vec<String> = params
                .iter()
                .map(|(n, v)| format!("{{name: {n}, value: {v:?}}}"))
                .collect();
            format!("spec: {{params: [{}]}}\n", params.join(", "))
        }
    };
    format!(
        "apiVersion: triggers.tekton.dev/v1beta1\nkind: {kind}\nmetadata: {{name: name{namespace}}}\n{spec}"
    )
}

/// A binding's params; `None` is a binding without a spec.
type Params = Option<&'static [(&'static str, &'static str)]>;

pub fn cases(suite: &mut Suite) {
    const VALID: &str = "Test_TriggerBindingValidate";
    const INVALID: &str = "Test_TriggerBindingValidate_error";
    let bindings: [(&str, &str, Params, bool); 8] = [
        (
            VALID,
            "multiple params",
            Some(&[
                ("param1", "$(body.input1)"),
                ("param2", "$(body.input2)"),
                ("param3", "$(body.(input3))"),
                ("param4", "static-input"),
            ]),
            true,
        ),
        (
            VALID,
            "multiple params case sensitive",
            Some(&[
                ("param1", "$(body.input1)"),
                ("PARAM1", "$(body.input2)"),
                ("param3", "$(body.input3)"),
            ]),
            true,
        ),
        (
            VALID,
            "multiple expressions in one body",
            Some(&[("param1", "$(body.input1)-$(body.input2)")]),
            true,
        ),
        (INVALID, "empty", None, false),
        (
            INVALID,
            "duplicate params",
            Some(&[
                ("param1", "$(body.input1)"),
                ("param1", "$(body.input2)"),
                ("param3", "$(body.input3)"),
            ]),
            false,
        ),
        (
            INVALID,
            "invalid parameter",
            Some(&[("param1", "$($(body.param1))")]),
            false,
        ),
        (
            INVALID,
            "invalid parameter further nested",
            Some(&[("param1", "$(body.test-$(body.param1))")]),
            false,
        ),
        (
            INVALID,
            "invalid parameter triple nested",
            Some(&[("param1", "$($($(body.param1)))")]),
            false,
        ),
    ];
    let mut file = suite.file(BINDING);
    for (function, name, params, accepted) in bindings {
        let check = move || {
            let document = binding_document("TriggerBinding", params);
            let sluice = admitted(
                &document,
                &format!(
                    "{{name: t, bindings: [{{ref: name, kind: TriggerBinding}}], template: {{spec: {{resourcetemplates: [{RESOURCE}]}}}}}}"
                ),
            );
            judged(document.replace('\n', " "), accepted, sluice)
        };
        if ACCEPTED_ANYWAY.contains(&(BINDING, name)) {
            file.documented(function, name, ACCEPTED_ANYWAY_REFERENCE, "accepted", check);
        } else {
            file.case(function, name, check);
        }
    }

    let cluster_bindings: [(&str, &str, Params, bool); 4] = [
        (
            "Test_ClusterTriggerBindingValidate",
            "multiple params",
            Some(&[
                ("param1", "$(body.input1)"),
                ("param2", "$(body.input2)"),
                ("param3", "$(body.input3)"),
            ]),
            true,
        ),
        (
            "Test_ClusterTriggerBindingValidate",
            "multiple params case sensitive",
            Some(&[
                ("param1", "$(body.input1)"),
                ("PARAM1", "$(body.input2)"),
                ("param3", "$(body.input3)"),
            ]),
            true,
        ),
        (
            "Test_ClusterTriggerBindingValidate_error",
            "empty",
            None,
            false,
        ),
        (
            "Test_ClusterTriggerBindingValidate_error",
            "duplicate params",
            Some(&[
                ("param1", "$(body.input1)"),
                ("param1", "$(body.input2)"),
                ("param3", "$(body.input3)"),
            ]),
            false,
        ),
    ];
    let mut file = suite.file(CLUSTER_BINDING);
    for (function, name, params, accepted) in cluster_bindings {
        let check = move || {
            let document = binding_document("ClusterTriggerBinding", params);
            let sluice = admitted(
                &document,
                &format!(
                    "{{name: t, bindings: [{{ref: name, kind: ClusterTriggerBinding}}], template: {{spec: {{resourcetemplates: [{RESOURCE}]}}}}}}"
                ),
            );
            judged(document.replace('\n', " "), accepted, sluice)
        };
        if ACCEPTED_ANYWAY.contains(&(CLUSTER_BINDING, name)) {
            file.documented(function, name, ACCEPTED_ANYWAY_REFERENCE, "accepted", check);
        } else {
            file.case(function, name, check);
        }
    }

    const FOO: &str = "[{name: foo, description: desc, default: val}]";
    const SIMPLE: &str = "{apiVersion: tekton.dev/v1beta1, kind: PipelineRun}";
    const PARAM: &str = "{apiVersion: tekton.dev/v1beta1, kind: PipelineRun, spec: {params: [{name: message, value: $(tt.params.foo)}]}}";
    const INVALID_PARAM: &str = "{apiVersion: tekton.dev/v1beta1, kind: PipelineRun, spec: {params: [{name: message, value: $(.foo)}]}}";
    let long_name = "t".repeat(67);
    let templates: Vec<(&str, String, Option<String>, bool)> = vec![
        (
            "invalid objectmetadata, name too long",
            long_name,
            Some(format!("{{params: {FOO}, resourcetemplates: [{SIMPLE}]}}")),
            false,
        ),
        (
            "valid template",
            "tt".into(),
            Some(format!(
                "{{params: {FOO}, resourcetemplates: [{SIMPLE}, {{apiVersion: tekton.dev/v1alpha1, kind: Run}}]}}"
            )),
            true,
        ),
        (
            "valid v1beta1 template",
            "tt".into(),
            Some(format!("{{params: {FOO}, resourcetemplates: [{SIMPLE}]}}")),
            true,
        ),
        (
            "missing resource template",
            "tt".into(),
            Some(format!("{{params: {FOO}}}")),
            false,
        ),
        (
            "resource template missing kind",
            "tt".into(),
            Some(format!(
                "{{params: {FOO}, resourcetemplates: [{{apiVersion: tekton.dev/v1beta1}}]}}"
            )),
            false,
        ),
        (
            "resource template missing apiVersion",
            "tt".into(),
            Some(format!(
                "{{params: {FOO}, resourcetemplates: [{{kind: PipelineRun}}]}}"
            )),
            false,
        ),
        (
            "resource template other kind then tekton resource",
            "tt".into(),
            Some(format!(
                "{{params: {FOO}, resourcetemplates: [{{apiVersion: v1, kind: batch/Job}}]}}"
            )),
            true,
        ),
        (
            "tt.params used in resource template are declared",
            "tt".into(),
            Some(format!("{{params: {FOO}, resourcetemplates: [{PARAM}]}}")),
            true,
        ),
        (
            "tt.params used in resource template are not declared",
            "tt".into(),
            Some(format!("{{resourcetemplates: [{PARAM}]}}")),
            false,
        ),
        (
            "invalid params used in resource template are not declared",
            "tt".into(),
            Some(format!("{{resourcetemplates: [{INVALID_PARAM}]}}")),
            true,
        ),
        (
            "invalid params used in resource template are declared",
            "tt".into(),
            Some(format!(
                "{{params: {FOO}, resourcetemplates: [{INVALID_PARAM}]}}"
            )),
            true,
        ),
        ("no spec to triggertemplate", "tt".into(), None, false),
    ];
    let mut file = suite.file(TEMPLATE);
    for (name, template, spec, accepted) in templates {
        let check = move || {
            let spec = spec.map_or_else(String::new, |spec| format!("spec: {spec}\n"));
            let document = format!(
                "apiVersion: triggers.tekton.dev/v1beta1\nkind: TriggerTemplate\n\
                 metadata: {{name: {template}, namespace: foo}}\n{spec}"
            );
            let sluice = admitted(
                &document,
                &format!("{{name: t, template: {{ref: {template}}}}}"),
            );
            judged(document.replace('\n', " "), accepted, sluice)
        };
        if ACCEPTED_ANYWAY.contains(&(TEMPLATE, name)) {
            file.documented(
                "TestTriggerTemplate_Validate",
                name,
                ACCEPTED_ANYWAY_REFERENCE,
                "accepted",
                check,
            );
        } else {
            file.case("TestTriggerTemplate_Validate", name, check);
        }
    }
    triggers(suite);
}

/// What the tables' Triggers refer to.
const REFERENCED: &str = "apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: tb, namespace: foo}
spec: {params: [{name: p-tb, value: v}]}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: tb2, namespace: foo}
spec: {params: [{name: p-tb2, value: v}]}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: ref-to-another-binding, namespace: foo}
spec: {params: [{name: p-ref-to-another-binding, value: v}]}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: foo, namespace: foo}
spec: {params: [{name: p-foo, value: v}]}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: ClusterTriggerBinding
metadata: {name: tb}
spec: {params: [{name: p-ctb, value: v}]}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: tt, namespace: foo}
spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: c-}}]}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: ttname, namespace: foo}
spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: c-}}]}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: tt-name, namespace: foo}
spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: c-}}]}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: baz, namespace: foo}
spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: c-}}]}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: ref-to-a-template, namespace: foo}
spec: {resourcetemplates: [{apiVersion: v1, kind: ConfigMap, metadata: {generateName: c-}}]}
";

fn triggers(suite: &mut Suite) {
    const PIPELINE_RUN: &str = "{apiVersion: tekton.dev/v1beta1, kind: PipelineRun}";
    let valid: [(&str, Option<String>); 8] = [
        (
            "Valid Trigger No TriggerBinding",
            Some("{template: {ref: tt, apiVersion: v1beta1}}".into()),
        ),
        (
            "Valid Trigger with TriggerBinding",
            Some("{bindings: [{ref: tb, kind: TriggerBinding, apiVersion: v1beta1}], template: {ref: tt, apiVersion: v1beta1}}".into()),
        ),
        (
            "Valid Trigger with ClusterTriggerBinding",
            Some("{bindings: [{ref: tb, kind: ClusterTriggerBinding, apiVersion: v1beta1}], template: {ref: tt, apiVersion: v1beta1}}".into()),
        ),
        (
            "Valid Trigger with multiple TriggerBindings",
            Some("{bindings: [{ref: tb, kind: TriggerBinding, apiVersion: v1beta1}, {ref: tb, kind: ClusterTriggerBinding, apiVersion: v1beta1}, {ref: tb2, kind: TriggerBinding, apiVersion: v1beta1}], template: {ref: tt, apiVersion: v1beta1}}".into()),
        ),
        (
            "Trigger with new embedded TriggerBindings",
            Some("{bindings: [{name: param1, value: val1}, {name: param2, value: val2}, {ref: ref-to-another-binding, kind: TriggerBinding}], template: {ref: baz}}".into()),
        ),
        (
            "Valid Trigger with no trigger name",
            Some("{template: {ref: tt, apiVersion: v1beta1}}".into()),
        ),
        (
            "Trigger with embedded Template",
            Some(format!("{{template: {{spec: {{params: [{{name: tparam}}], resourcetemplates: [{PIPELINE_RUN}]}}}}}}")),
        ),
        (
            "Trigger referenced with deprecated name field",
            Some("{template: {ref: ref-to-a-template}}".into()),
        ),
    ];
    let invalid: [(&str, Option<String>); 13] = [
        ("TriggerBinding with no spec", None),
        (
            "Bindings missing ref",
            Some("{bindings: [{name: '', kind: TriggerBinding, ref: '', apiVersion: v1beta1}], template: {ref: tt}}".into()),
        ),
        (
            "Bindings with ref missing kind",
            Some("{bindings: [{name: tb, kind: '', ref: tb, apiVersion: v1beta1}], template: {ref: tt}}".into()),
        ),
        (
            "Bindings with ref wrong kind",
            Some("{bindings: [{kind: BadKind, ref: tb, apiVersion: v1beta1}], template: {ref: tt}}".into()),
        ),
        (
            "Bindings with name but no value",
            Some("{bindings: [{name: foo}], template: {ref: tt}}".into()),
        ),
        (
            "Template with wrong apiVersion",
            Some("{bindings: [{name: tb, kind: TriggerBinding, ref: tb, apiVersion: v1beta1}], template: {ref: tt, apiVersion: invalid}}".into()),
        ),
        (
            "Template with nil Ref",
            Some("{bindings: [{name: tb, kind: TriggerBinding, ref: tb, apiVersion: v1beta1}], template: {apiVersion: v1beta1}}".into()),
        ),
        (
            "Template with empty Ref",
            Some("{bindings: [{name: tb, kind: TriggerBinding, ref: tb, apiVersion: v1beta1}], template: {ref: '', apiVersion: v1beta1}}".into()),
        ),
        (
            "Valid Trigger with invalid TriggerBinding",
            Some("{bindings: [{ref: tb, kind: BADBINDINGKIND, apiVersion: v1beta1}], template: {ref: tt, apiVersion: v1beta1}}".into()),
        ),
        (
            "Trigger template with both ref and spec",
            Some(format!("{{template: {{ref: ttname, spec: {{resourcetemplates: [{PIPELINE_RUN}]}}}}}}")),
        ),
        (
            "Trigger template with both name and spec",
            Some("{template: {ref: tt-name, spec: {resourcetemplates: [{apiVersion: tekton.dev/v1, kind: PipelineRun}]}}}".into()),
        ),
        ("Trigger template missing both ref and spec", Some("{template: {}}".into())),
        (
            "Trigger template with invalid spec",
            Some("{template: {spec: {resourcetemplates: [{}]}}}".into()),
        ),
    ];
    let mut file = suite.file(TRIGGER);
    let rows = valid
        .into_iter()
        .map(|(name, spec)| ("Test_TriggerValidate", name, spec, true))
        .chain(
            invalid
                .into_iter()
                .map(|(name, spec)| ("TestTriggerValidate_error", name, spec, false)),
        );
    for (function, name, spec, accepted) in rows {
        let check = move || {
            let spec = spec.map_or_else(String::new, |spec| format!("spec: {spec}\n"));
            let document = format!(
                "{REFERENCED}---\napiVersion: triggers.tekton.dev/v1beta1\nkind: Trigger\n\
                 metadata: {{name: t, namespace: foo}}\n{spec}"
            );
            let sluice = admitted(&document, "{triggerRef: t}");
            judged(format!("Trigger t: {}", spec.trim_end()), accepted, sluice)
        };
        if ACCEPTED_ANYWAY.contains(&(TRIGGER, name)) {
            file.documented(function, name, ACCEPTED_ANYWAY_REFERENCE, "accepted", check);
        } else {
            file.case(function, name, check);
        }
    }
    // Tekton's webhook admits any text as a `cel` param; Sluice compiles and type-checks it
    // when the configuration loads, and `test` and `testing` name no variable.
    let check = || {
        let document = format!(
            "{REFERENCED}---\napiVersion: triggers.tekton.dev/v1beta1\nkind: Trigger\n\
             metadata: {{name: t, namespace: foo}}\n\
             spec:\n  interceptors:\n  - ref: {{name: cel, kind: ClusterInterceptor, apiVersion: v1beta1}}\n    \
             params:\n    - {{name: filter, value: 'body.value == test'}}\n    \
             - {{name: overlays, value: [{{key: value, expression: testing}}]}}\n  \
             bindings: [{{ref: tb, kind: ClusterTriggerBinding, apiVersion: v1beta1}}]\n  \
             template: {{ref: tt, apiVersion: v1beta1}}\n"
        );
        let sluice = admitted(&document, "{triggerRef: t}");
        let undeclared = ["'test'", "'testing'"]
            .iter()
            .all(|name| sluice.contains(&format!("undeclared reference to {name}")));
        let sluice = if undeclared {
            "refused: undeclared references to test and testing".to_owned()
        } else {
            sluice
        };
        judged(
            "Trigger t with a `cel` filter on undeclared names".into(),
            true,
            sluice,
        )
    };
    file.documented(
        "Test_TriggerValidate",
        "Valid Trigger Interceptor",
        CEL_CHECKED_REFERENCE,
        "refused: undeclared references to test and testing",
        check,
    );
}

/// Where `docs/tekton.md` says CEL is compiled and type-checked when the configuration loads.
const CEL_CHECKED_REFERENCE: &str =
    "docs/tekton.md, Where Sluice differs: CEL is checked when the configuration loads";

/// The cases where Sluice's load accepts what Tekton's admission webhook refuses, as
/// `docs/tekton.md` says: a binding without params, and `name` beside a binding's `ref`.
const ACCEPTED_ANYWAY: &[(&str, &str)] = &[
    (BINDING, "empty"),
    (CLUSTER_BINDING, "empty"),
    (TRIGGER, "Bindings with ref missing kind"),
];

/// Where `docs/tekton.md` documents [`ACCEPTED_ANYWAY`].
const ACCEPTED_ANYWAY_REFERENCE: &str =
    "docs/tekton.md, Where Sluice differs: Accepted where Tekton's webhook refuses";
