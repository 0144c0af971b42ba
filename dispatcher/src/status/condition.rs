//! What an EventListener's `status` should say, from the catalogue built from the cluster's
//! objects: its URL, whether every trigger resolved (`Ready`, and `Available`, which `kubectl
//! get el` and `tkn eventlistener list` show), why not, and which generation was judged.

use serde_json::{Value, json};
use sluice_triggers::catalogue::{Catalogue, ConfigIssue};

/// How many issues a condition's message lists before it counts the rest.
const MESSAGE_ISSUES: usize = 3;

/// The part of a listener's status Sluice owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// `<public-url>/hooks/<namespace>/<name>`, when `--public-url` is set.
    pub url: Option<String>,
    pub ready: bool,
    /// `CamelCase`, as Kubernetes condition reasons are.
    pub reason: String,
    pub message: String,
    pub observed_generation: Option<i64>,
}

/// The status `listener` (the object as the API server holds it) should have.
pub fn desired(listener: &Value, catalogue: &Catalogue, public_url: Option<&str>) -> Desired {
    let namespace = text(listener, "/metadata/namespace");
    let name = text(listener, "/metadata/name");
    let url =
        public_url.map(|base| format!("{}/hooks/{namespace}/{name}", base.trim_end_matches('/')));
    let observed_generation = listener
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let source = listener_source(namespace, name);
    let own: Vec<&ConfigIssue> = catalogue
        .issues()
        .iter()
        .filter(|issue| issue.file.as_os_str() == source.as_str())
        .collect();
    let (ready, reason, message) = match catalogue.listener(namespace, name) {
        Some(served) if served.skipped_triggers == 0 && !served.triggers.is_empty() => (
            true,
            "Ready".to_owned(),
            format!(
                "serving {} trigger{}",
                served.triggers.len(),
                if served.triggers.len() == 1 { "" } else { "s" }
            ),
        ),
        served => {
            let reason = own.iter().map(|issue| reason_of(issue)).next().unwrap_or(
                if served.is_some_and(|l| l.triggers.is_empty()) {
                    "NoTriggers"
                } else {
                    "InvalidListener"
                },
            );
            let mut message = describe(&own, catalogue);
            if let Some(served) = served.filter(|l| !l.triggers.is_empty()) {
                message = format!(
                    "{} of {} triggers skipped, the others serve: {message}",
                    served.skipped_triggers,
                    served.skipped_triggers + served.triggers.len()
                );
            }
            (false, reason.to_owned(), message)
        }
    };
    Desired {
        url,
        ready,
        reason,
        message,
        observed_generation,
    }
}

/// How the issues of a listener's own document read in its condition, with the issues of
/// the objects they say are invalid.
fn describe(own: &[&ConfigIssue], catalogue: &Catalogue) -> String {
    if own.is_empty() {
        return "the listener could not be read (see the configuration issues logged)".to_owned();
    }
    let mut parts: Vec<String> = Vec::new();
    for issue in own.iter().take(MESSAGE_ISSUES) {
        let mut part = match &issue.field {
            Some(field) => format!("{field}: {}", issue.message),
            None => issue.message.clone(),
        };
        // "TriggerTemplate `build` in namespace `x` is invalid (see the issue reported for
        // it)": that issue is the useful one.
        if let Some(referred) = referred_source(issue)
            && let Some(cause) = catalogue
                .issues()
                .iter()
                .find(|other| other.file.as_os_str() == referred.as_str())
        {
            let field = cause
                .field
                .as_deref()
                .map(|f| format!("{f}: "))
                .unwrap_or_default();
            part.push_str(&format!(" [{referred}: {field}{}]", cause.message));
        }
        parts.push(part);
    }
    if own.len() > MESSAGE_ISSUES {
        parts.push(format!("and {} more", own.len() - MESSAGE_ISSUES));
    }
    parts.join("; ")
}

/// The condition reason an issue stands for.
pub fn reason_of(issue: &ConfigIssue) -> &'static str {
    let message = issue.message.as_str();
    let not_found = message.contains(" not found");
    let about = |kind: &str| message.starts_with(&format!("{kind} `"));
    if message.contains("Secret `") && (not_found || message.contains("has no key")) {
        "SecretMissing"
    } else if about("TriggerTemplate") && not_found {
        "TemplateNotFound"
    } else if (about("TriggerBinding") || about("ClusterTriggerBinding")) && not_found {
        "BindingNotFound"
    } else if about("Trigger") && not_found {
        "TriggerNotFound"
    } else if (about("Interceptor") || about("ClusterInterceptor")) && not_found {
        "InterceptorNotFound"
    } else if about("TriggerTemplate") {
        "InvalidTemplate"
    } else if about("TriggerBinding") || about("ClusterTriggerBinding") {
        "InvalidBinding"
    } else if issue
        .field
        .as_deref()
        .is_some_and(|field| field.starts_with("spec.triggers"))
    {
        "InvalidTrigger"
    } else {
        "InvalidListener"
    }
}

/// The source of the object an issue says is invalid, from its "Kind `name` in namespace
/// `ns` is invalid" wording.
fn referred_source(issue: &ConfigIssue) -> Option<String> {
    let message = issue.message.as_str();
    if !message.contains("is invalid") {
        return None;
    }
    let (kind, rest) = message.split_once(" `")?;
    let (name, rest) = rest.split_once('`')?;
    let namespace = rest
        .strip_prefix(" in namespace `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(ns, _)| ns);
    let plural = match kind {
        "Trigger" => "triggers",
        "TriggerBinding" => "triggerbindings",
        "ClusterTriggerBinding" => "clustertriggerbindings",
        "TriggerTemplate" => "triggertemplates",
        "Interceptor" => "interceptors",
        "ClusterInterceptor" => "clusterinterceptors",
        _ => return None,
    };
    Some(match namespace {
        Some(ns) => format!("{plural}.triggers.tekton.dev/{ns}/{name}"),
        None => format!("{plural}.triggers.tekton.dev/{name}"),
    })
}

/// How the configuration source names a listener in issues.
/// Whether `catalogue` was built with the listener `namespace/name` in it: it serves the
/// listener or reports an issue of its document. One created since is in neither.
pub fn has_read(catalogue: &Catalogue, namespace: &str, name: &str) -> bool {
    let source = listener_source(namespace, name);
    catalogue.listener(namespace, name).is_some()
        || catalogue
            .issues()
            .iter()
            .any(|issue| issue.file.as_os_str() == source.as_str())
}

pub fn listener_source(namespace: &str, name: &str) -> String {
    format!("eventlisteners.triggers.tekton.dev/{namespace}/{name}")
}

fn text<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether `current` (the object's `status`) already says what `desired` says.
pub fn is_current(current: &Value, desired: &Desired) -> bool {
    let condition = |kind: &str| {
        current
            .get("conditions")
            .and_then(Value::as_array)
            .and_then(|all| all.iter().find(|c| c["type"] == kind))
    };
    let matches = |kind: &str| {
        condition(kind).is_some_and(|c| {
            c["status"] == status_word(desired.ready)
                && c["reason"] == desired.reason.as_str()
                && c["message"] == desired.message.as_str()
        })
    };
    current.pointer("/address/url").and_then(Value::as_str) == desired.url.as_deref()
        && current.get("observedGeneration").and_then(Value::as_i64) == desired.observed_generation
        && matches("Ready")
        && matches("Available")
}

fn status_word(ready: bool) -> &'static str {
    if ready { "True" } else { "False" }
}

/// The `status` to apply: `desired`, keeping each condition's `lastTransitionTime` when its
/// status did not change (`now` otherwise, RFC 3339).
pub fn status_patch(current: &Value, desired: &Desired, now: &str) -> Value {
    let conditions: Vec<Value> = ["Ready", "Available"]
        .into_iter()
        .map(|kind| {
            let previous = current
                .get("conditions")
                .and_then(Value::as_array)
                .and_then(|all| all.iter().find(|c| c["type"] == kind));
            let since = previous
                .filter(|c| c["status"] == status_word(desired.ready))
                .and_then(|c| c.get("lastTransitionTime"))
                .and_then(Value::as_str)
                .unwrap_or(now);
            json!({
                "type": kind,
                "status": status_word(desired.ready),
                "reason": desired.reason,
                "message": desired.message,
                "lastTransitionTime": since,
            })
        })
        .collect();
    let mut status = json!({ "conditions": conditions });
    if let Some(url) = &desired.url {
        status["address"] = json!({ "url": url });
    }
    if let Some(generation) = desired.observed_generation {
        status["observedGeneration"] = json!(generation);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_triggers::config::Objects;

    fn catalogue(objects: &[Value]) -> Catalogue {
        let mut all = Objects::default();
        for object in objects {
            let kind = object["kind"].as_str().unwrap().to_lowercase();
            let source = format!(
                "{kind}s.triggers.tekton.dev/{}/{}",
                text(object, "/metadata/namespace"),
                text(object, "/metadata/name")
            );
            all.add(&source, object.clone());
        }
        all.build(&Default::default())
    }

    fn listener(template: &str) -> Value {
        json!({
            "apiVersion": "triggers.tekton.dev/v1beta1",
            "kind": "EventListener",
            "metadata": {"name": "github", "namespace": "team-a", "generation": 3},
            "spec": {"triggers": [{"name": "build", "template": {"ref": template}}]}
        })
    }

    fn template(spec_params: Value) -> Value {
        json!({
            "apiVersion": "triggers.tekton.dev/v1beta1",
            "kind": "TriggerTemplate",
            "metadata": {"name": "build", "namespace": "team-a"},
            "spec": {"resourcetemplates": [{
                "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
                "metadata": {"generateName": "b-"},
                "spec": {"params": spec_params}
            }]}
        })
    }

    #[test]
    fn a_listener_whose_triggers_all_resolve_is_ready_with_its_url() {
        let el = listener("build");
        let catalogue = catalogue(&[el.clone(), template(json!([]))]);
        let desired = desired(&el, &catalogue, Some("https://hooks.example.com/"));
        assert!(desired.ready, "{desired:?}");
        assert_eq!(
            desired.url.as_deref(),
            Some("https://hooks.example.com/hooks/team-a/github")
        );
        assert_eq!(desired.observed_generation, Some(3));
        assert_eq!(desired.message, "serving 1 trigger");
    }

    #[test]
    fn a_listener_created_since_the_catalogue_was_built_is_not_judged_by_it() {
        let served = listener("build");
        let mut unreadable = listener("build");
        unreadable["spec"]["triggers"] = json!("not a list");
        let before = catalogue(&[template(json!([]))]);
        assert!(!has_read(&before, "team-a", "github"));
        let serving = catalogue(&[served, template(json!([]))]);
        assert!(has_read(&serving, "team-a", "github"));
        // Read, with an issue instead of a listener: judged, and reported.
        let failing = catalogue(&[unreadable, template(json!([]))]);
        assert!(failing.listener("team-a", "github").is_none());
        assert!(has_read(&failing, "team-a", "github"));
        assert!(!has_read(&failing, "team-a", "gitlab"));
    }

    #[test]
    fn a_missing_template_is_named_with_its_reason() {
        let el = listener("absent");
        let desired = desired(&el, &catalogue(std::slice::from_ref(&el)), None);
        assert!(!desired.ready);
        assert_eq!(desired.reason, "TemplateNotFound");
        assert!(desired.message.contains("`absent`"), "{}", desired.message);
        assert!(
            desired.message.contains("spec.triggers[0]"),
            "{}",
            desired.message
        );
        assert_eq!(desired.url, None);
    }

    #[test]
    fn an_invalid_template_is_explained_by_its_own_issue() {
        let el = listener("build");
        let broken = template(json!([{"name": "x", "value": "$(tt.params.undeclared)"}]));
        let desired = desired(&el, &catalogue(&[el.clone(), broken]), None);
        assert!(!desired.ready);
        assert_eq!(desired.reason, "InvalidTemplate", "{desired:?}");
        assert!(
            desired
                .message
                .contains("triggertemplates.triggers.tekton.dev/team-a/build"),
            "{}",
            desired.message
        );
        assert!(
            desired.message.contains("undeclared"),
            "{}",
            desired.message
        );
    }

    #[test]
    fn a_status_already_applied_is_current_and_keeps_its_transition_time() {
        let el = listener("build");
        let catalogue = catalogue(&[el.clone(), template(json!([]))]);
        let desired = desired(&el, &catalogue, None);
        let first = status_patch(&json!({}), &desired, "2026-12-05T00:00:00Z");
        assert!(is_current(&first, &desired));
        assert!(!is_current(&json!({}), &desired));
        let again = status_patch(&first, &desired, "2026-12-05T01:00:00Z");
        assert_eq!(
            again, first,
            "nothing changed, not even the transition time"
        );
        assert_eq!(first["conditions"][1]["type"], "Available");
    }
}
