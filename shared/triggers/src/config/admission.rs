//! What Tekton's admission webhook refuses in a binding or template on its own
//! (`pkg/apis/triggers/v1beta1/*_validation.go`), refused here as the configuration loads.
//!
//! Such a document never exists on a cluster that runs Tekton Triggers, so refusing it keeps
//! every configuration Sluice serves one that Tekton would have admitted, and names the
//! problem where it was written rather than at the first webhook.

use super::documents::{ParamSpecDoc, TriggerBindingSpec};
use crate::expr;

/// A binding's `spec`, as a TriggerBinding or ClusterTriggerBinding: no param name twice,
/// and no expression opened inside another. The problem is the field and what is wrong with
/// it.
///
/// A binding without params, which Tekton's webhook also refuses, is accepted: it binds
/// nothing, as Tekton's event handling reads it, and refusing it would skip the triggers
/// that name it for no gain.
pub(super) fn binding_spec(spec: &TriggerBindingSpec) -> Result<(), (String, String)> {
    for (index, param) in spec.params.iter().enumerate() {
        if spec.params[..index].iter().any(|p| p.name == param.name) {
            return Err((
                format!("spec.params[{index}].name"),
                format!("`{}` is declared twice in this binding", param.name),
            ));
        }
        if expr::nests(&param.value.0) {
            return Err((
                format!("spec.params[{index}].value"),
                "opens a `$(` inside an expression that has not closed (Tekton refuses nested expressions)"
                    .to_owned(),
            ));
        }
    }
    Ok(())
}

/// The first `$(tt.params.NAME)` in a resource template's JSON text whose NAME is not
/// declared, as Tekton's `verifyParamDeclarations` finds it (its pattern's unescaped dots
/// included).
pub(super) fn undeclared_param<'t>(text: &'t str, declared: &[ParamSpecDoc]) -> Option<&'t str> {
    let mut rest = text;
    while let Some(at) = rest.find("$(tt") {
        let after = &rest[at + "$(tt".len()..];
        match param_reference(after) {
            Some((name, len)) => {
                if !declared.iter().any(|param| param.name == name) {
                    return Some(name);
                }
                rest = &after[len..];
            }
            None => rest = after,
        }
    }
    None
}

/// After `$(tt`: any character, `params`, any character, then a name
/// (`[_a-zA-Z][_a-zA-Z0-9.-]*`) and `)`. Returns the name and the length matched.
fn param_reference(text: &str) -> Option<(&str, usize)> {
    let mut chars = text.char_indices();
    // Go's `.` matches any character but a newline.
    let any = |c: Option<(usize, char)>| c.filter(|&(_, c)| c != '\n');
    let (_, first) = any(chars.next())?;
    let after_first = first.len_utf8();
    let rest = text[after_first..].strip_prefix("params")?;
    let second = rest.chars().next().filter(|&c| c != '\n')?;
    let name_start = after_first + "params".len() + second.len_utf8();
    let name_and_more = &text[name_start..];
    let name_len = name_and_more
        .char_indices()
        .find(|&(i, c)| {
            let allowed = c == '_'
                || c.is_ascii_alphabetic()
                || (i > 0 && (c.is_ascii_digit() || c == '.' || c == '-'));
            !allowed
        })
        .map_or(name_and_more.len(), |(i, _)| i);
    if name_len == 0 || !name_and_more[name_len..].starts_with(')') {
        return None;
    }
    Some((&name_and_more[..name_len], name_start + name_len + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(names: &[&str]) -> Vec<ParamSpecDoc> {
        names
            .iter()
            .map(|name| ParamSpecDoc {
                name: (*name).to_owned(),
                description: None,
                default: None,
            })
            .collect()
    }

    #[test]
    fn every_reference_must_be_declared() {
        let text = r#"{"a":"$(tt.params.foo)","b":"$(tt.params.bar-1.x) $(tt.params.foo)"}"#;
        assert_eq!(undeclared_param(text, &declared(&["foo", "bar-1.x"])), None);
        assert_eq!(undeclared_param(text, &declared(&["foo"])), Some("bar-1.x"));
        assert_eq!(undeclared_param(text, &declared(&[])), Some("foo"));
    }

    #[test]
    fn only_the_reference_pattern_counts() {
        let none = declared(&[]);
        // Not references: a name starting with a digit, an unclosed one, other roots, the
        // deprecated `$(params.x)`, and text that merely mentions `tt`.
        for text in [
            r#"{"a":"$(tt.params.1x)"}"#,
            r#"{"a":"$(tt.params.foo"}"#,
            r#"{"a":"$(body.tt.params.x)"}"#,
            r#"{"a":"$(params.foo)"}"#,
            r#"{"a":"$(tt)"}"#,
            r#"{"a":"$(tt.params.)"}"#,
        ] {
            assert_eq!(undeclared_param(text, &none), None, "{text}");
        }
        // Tekton's pattern leaves its dots unescaped, so these are references too.
        assert_eq!(
            undeclared_param(r#"{"a":"$(tt_params_foo)"}"#, &none),
            Some("foo")
        );
        assert_eq!(
            undeclared_param(r#"{"a":"$(tt.params.é)$(tt.params.b)"}"#, &none),
            Some("b")
        );
    }
}
