//! The Sluice/Tekton configuration of a scenario: per namespace a Secret, a TriggerBinding
//! per provider in use, one TriggerTemplate and an EventListener per listener. `config`
//! writes them as one YAML file per namespace; `config-scale` stores the same objects in the
//! Kubernetes API double, as `kubectl apply` of those files would.
//!
//! Every listener authenticates with its provider's interceptor (GitHub signature, GitLab
//! token) against the one shared secret and lets push events through. The binding takes the
//! revision from `$(body.after)` and the provider's delivery id from its header, and the
//! template passes that id on as the PipelineRun's `delivery` param, so an end-to-end run
//! can match each created run to the webhook that caused it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::scenario::{Provider, Scenario};

/// The Secret (in every namespace) that holds the shared secret under `token`.
pub const SECRET_NAME: &str = "loadtest-webhook";
/// The service account runs are created as.
pub const SERVICE_ACCOUNT: &str = "loadtest-runner";
/// The template every trigger uses.
const TEMPLATE: &str = "loadtest-run";
/// The name of every listener's trigger (the envelope's `triggers`).
pub const TRIGGER: &str = "push";
/// The API version of the Trigger kinds written.
const TRIGGERS_API: &str = "triggers.tekton.dev/v1beta1";

/// The binding of a provider's push events.
fn binding_name(provider: Provider) -> String {
    format!("{}-push", provider.name())
}

/// The objects of one namespace, as `kubectl apply` would send them (the Secret with
/// `stringData`): the Secret, the bindings, the template, then the listeners.
pub fn namespace_objects(scenario: &Scenario, tenant: u32, secret: &str) -> Vec<Value> {
    let namespace = Scenario::namespace(tenant);
    let metadata = |name: &str| json!({"name": name, "namespace": namespace});
    let mut objects = vec![json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(SECRET_NAME),
        "type": "Opaque",
        "stringData": {"token": secret},
    })];
    let mut providers: Vec<Provider> = Vec::new();
    for listener in 0..scenario.listeners {
        let provider = scenario.provider_of(listener);
        if !providers.contains(&provider) {
            providers.push(provider);
        }
    }
    for provider in providers {
        let (delivery_header, repository) = match provider {
            Provider::GitHub => ("X-GitHub-Delivery", "$(body.repository.clone_url)"),
            Provider::GitLab => ("X-Gitlab-Event-UUID", "$(body.project.git_http_url)"),
        };
        objects.push(json!({
            "apiVersion": TRIGGERS_API,
            "kind": "TriggerBinding",
            "metadata": metadata(&binding_name(provider)),
            "spec": {"params": [
                {"name": "revision", "value": "$(body.after)"},
                {"name": "git-ref", "value": "$(body.ref)"},
                {"name": "repository", "value": repository},
                {"name": "delivery", "value": format!("$(header.{delivery_header})")},
                {"name": "provider", "value": provider.name()},
            ]},
        }));
    }
    let param = |name: &str| json!({"name": name, "value": format!("$(tt.params.{name})")});
    objects.push(json!({
        "apiVersion": TRIGGERS_API,
        "kind": "TriggerTemplate",
        "metadata": metadata(TEMPLATE),
        "spec": {
            "params": [
                {"name": "revision"},
                {"name": "git-ref"},
                {"name": "repository"},
                {"name": "delivery", "description": "the webhook's delivery id"},
                {"name": "provider"},
            ],
            "resourcetemplates": [{
                "apiVersion": "tekton.dev/v1",
                "kind": "PipelineRun",
                "metadata": {
                    "generateName": "loadtest-",
                    "labels": {"loadtest.sluice.dev/provider": "$(tt.params.provider)"},
                },
                "spec": {
                    "pipelineRef": {"name": "build"},
                    "params": [
                        param("revision"),
                        param("git-ref"),
                        param("repository"),
                        param("delivery"),
                    ],
                },
            }],
        },
    }));
    for listener in 0..scenario.listeners {
        objects.push(listener_object(scenario, tenant, listener));
    }
    objects
}

/// The EventListener number `listener` (counted from 0) of a namespace.
pub fn listener_object(scenario: &Scenario, tenant: u32, listener: u32) -> Value {
    let provider = scenario.provider_of(listener);
    let event = match provider {
        Provider::GitHub => "push",
        Provider::GitLab => "Push Hook",
    };
    json!({
        "apiVersion": TRIGGERS_API,
        "kind": "EventListener",
        "metadata": {
            "name": scenario.listener_name(listener),
            "namespace": Scenario::namespace(tenant),
        },
        "spec": {
            "serviceAccountName": SERVICE_ACCOUNT,
            "triggers": [{
                "name": TRIGGER,
                "interceptors": [{
                    "ref": {"name": provider.name(), "kind": "ClusterInterceptor"},
                    "params": [
                        {"name": "secretRef", "value": {"secretName": SECRET_NAME, "secretKey": "token"}},
                        {"name": "eventTypes", "value": [event]},
                    ],
                }],
                "bindings": [{"ref": binding_name(provider)}],
                "template": {"ref": TEMPLATE},
            }],
        },
    })
}

/// The file of one namespace.
pub fn namespace_yaml(scenario: &Scenario, tenant: u32, secret: &str) -> String {
    let mut out = format!(
        "# Generated by `sluice-loadtest config` for {}.\n",
        scenario.describe()
    );
    for (index, object) in namespace_objects(scenario, tenant, secret)
        .iter()
        .enumerate()
    {
        if index > 0 {
            out.push_str("---\n");
        }
        yaml(&mut out, object, 0);
    }
    out
}

/// Writes `value` (an object) as YAML at `indent`: collections of scalars on one line in
/// flow style (`{name: revision, value: "$(body.after)"}`), others as blocks; strings plain
/// when YAML reads them back as the same string, else as JSON strings (a JSON string is a
/// valid YAML double-quoted scalar, whatever it holds).
fn yaml(out: &mut String, value: &Value, indent: usize) {
    let Value::Object(map) = value else {
        let _ = writeln!(out, "{:indent$}{}", "", flow(value));
        return;
    };
    for (key, value) in map {
        let _ = write!(out, "{:indent$}{}:", "", flow(&Value::from(key.as_str())));
        match value {
            Value::Object(_) if !flat(value) => {
                out.push('\n');
                yaml(out, value, indent + 2);
            }
            Value::Array(items) if !flat(value) => {
                out.push('\n');
                for item in items {
                    if flat(item) {
                        let _ = writeln!(out, "{:width$}- {}", "", flow(item), width = indent + 2);
                        continue;
                    }
                    // The item as a block two deeper, its first line's indent becoming `- `.
                    let mut block = String::new();
                    yaml(&mut block, item, indent + 4);
                    let _ = write!(
                        out,
                        "{:width$}- {}",
                        "",
                        &block[indent + 4..],
                        width = indent + 2
                    );
                }
            }
            _ => {
                let _ = writeln!(out, " {}", flow(value));
            }
        }
    }
}

/// Whether `value` is a scalar or a collection of scalars (written on one line).
fn flat(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.values().all(|v| !v.is_object() && !v.is_array()),
        Value::Array(items) => items.iter().all(|v| !v.is_object() && !v.is_array()),
        _ => true,
    }
}

/// A scalar, or a collection of scalars in flow style.
fn flow(value: &Value) -> String {
    match value {
        Value::String(text) if plain(text) => text.clone(),
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(key, value)| {
                    format!("{}: {}", flow(&Value::from(key.as_str())), flow(value))
                })
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// Whether YAML reads `text` unquoted back as the same string: it starts with a letter,
/// holds only letters, digits, `-_./` and inner spaces (nothing that ends a flow collection),
/// and is no YAML 1.1 boolean or null.
fn plain(text: &str) -> bool {
    let starts_with_letter = text.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let safe = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ' '));
    let keyword = matches!(
        text.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
    );
    starts_with_letter && safe && !text.ends_with(' ') && !keyword
}

/// `object` as the API server stores it: a Secret's `stringData` merged into `data`,
/// base64-encoded. Other objects are unchanged.
pub fn as_stored(mut object: Value) -> Value {
    let Some(map) = object.as_object_mut() else {
        return object;
    };
    if let Some(Value::Object(strings)) = map.remove("stringData") {
        let data = map
            .entry("data")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(data) = data {
            for (key, value) in strings {
                let text = value.as_str().unwrap_or_default();
                data.insert(key, Value::from(base64(text.as_bytes())));
            }
        }
    }
    object
}

/// Standard base64 with padding (RFC 4648 §4), as Secrets' `data` holds values.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (index, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if index <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The API group and resource (plural) of a kind written here.
pub fn resource_of(kind: &str) -> Option<(&'static str, &'static str)> {
    match kind {
        "Secret" => Some(("", "secrets")),
        "TriggerBinding" => Some(("triggers.tekton.dev", "triggerbindings")),
        "TriggerTemplate" => Some(("triggers.tekton.dev", "triggertemplates")),
        "EventListener" => Some(("triggers.tekton.dev", "eventlisteners")),
        _ => None,
    }
}

/// Writes the configuration of `scenario` into `dir` (created if missing): one file per
/// namespace. Refuses a directory that already holds files unless `force` is set, so that
/// a smaller scenario never runs with a bigger one's leftovers.
pub fn write(scenario: &Scenario, secret: &str, dir: &Path, force: bool) -> anyhow::Result<usize> {
    if secret.is_empty() {
        bail!("the webhook secret must not be empty");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let occupied = std::fs::read_dir(dir)
        .with_context(|| format!("failed to read {}", dir.display()))?
        .next()
        .is_some();
    if occupied && !force {
        bail!(
            "{} is not empty; choose an empty directory or pass --force to write into it",
            dir.display()
        );
    }
    for tenant in 0..scenario.tenants {
        let path = dir.join(format!("{}.yaml", Scenario::namespace(tenant)));
        std::fs::write(&path, namespace_yaml(scenario, tenant, secret))
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(scenario.tenants as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ProviderMix;

    #[test]
    fn a_mixed_namespace_has_both_bindings_and_every_listener() {
        let scenario = Scenario {
            tenants: 2,
            listeners: 3,
            provider: ProviderMix::Mixed,
        };
        let yaml = namespace_yaml(&scenario, 1, "it's \"secret\"");
        assert!(yaml.contains("namespace: team-0002"));
        assert!(yaml.contains(r#"stringData: {token: "it's \"secret\""}"#));
        assert_eq!(yaml.matches("kind: TriggerBinding").count(), 2);
        assert_eq!(yaml.matches("kind: EventListener").count(), 3);
        assert!(yaml.contains("metadata: {name: github-2, namespace: team-0002}"));
        assert!(yaml.contains(r#"{name: delivery, value: "$(header.X-GitHub-Delivery)"}"#));
        assert!(yaml.contains(r#""$(header.X-Gitlab-Event-UUID)""#));
        assert!(yaml.contains("value: [Push Hook]"));
        assert!(yaml.contains(r#"{name: delivery, value: "$(tt.params.delivery)"}"#));
        let catalogue = sluice_triggers::config::load_str("team-0002.yaml", &yaml);
        assert!(catalogue.issues().is_empty(), "{:?}", catalogue.issues());
        assert_eq!(catalogue.listeners().count(), 3);
        assert!(catalogue.listener("team-0002", "gitlab").is_some());
    }

    #[test]
    fn the_stored_objects_load_as_the_file_does() {
        let scenario = Scenario {
            tenants: 1,
            listeners: 2,
            provider: ProviderMix::Github,
        };
        let mut objects = sluice_triggers::config::Objects::default();
        for (index, object) in namespace_objects(&scenario, 0, "s3cret")
            .into_iter()
            .enumerate()
        {
            let stored = as_stored(object);
            let kind = stored["kind"].as_str().unwrap();
            assert!(resource_of(kind).is_some(), "{kind}");
            if kind == "Secret" {
                assert_eq!(stored["data"]["token"], "czNjcmV0");
                assert!(stored.get("stringData").is_none());
            }
            objects.add(&format!("object-{index}"), stored);
        }
        objects.add(
            "added",
            listener_object(
                &Scenario {
                    listeners: 3,
                    ..scenario
                },
                0,
                2,
            ),
        );
        let catalogue = objects.build(&Default::default());
        assert!(catalogue.issues().is_empty(), "{:?}", catalogue.issues());
        assert_eq!(catalogue.listeners().count(), 3);
        assert!(catalogue.listener("team-0001", "github-2").is_some());
    }

    #[test]
    fn strings_are_quoted_unless_yaml_reads_them_back_unchanged() {
        for text in ["team-0001", "tekton.dev/v1", "Push Hook", "loadtest-"] {
            assert!(plain(text), "{text}");
        }
        for text in [
            "",
            "yes",
            "No",
            "null",
            "1",
            "0x1",
            "$(body.after)",
            "a: b",
            "a ",
            "~",
        ] {
            assert!(!plain(text), "{text}");
        }
    }

    #[test]
    fn base64_pads_as_rfc_4648_does() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe]), "//4=");
    }

    #[test]
    fn a_full_directory_is_refused_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = Scenario {
            tenants: 3,
            listeners: 1,
            provider: ProviderMix::Github,
        };
        assert_eq!(write(&scenario, "s", dir.path(), false).unwrap(), 3);
        assert!(dir.path().join("team-0003.yaml").exists());
        assert!(write(&scenario, "s", dir.path(), false).is_err());
        assert!(write(&scenario, "s", dir.path(), true).is_ok());
        assert!(write(&scenario, "", dir.path(), true).is_err());
    }
}
