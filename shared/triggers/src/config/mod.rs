//! Tekton Triggers configuration from files: parsing YAML documents and resolving them into
//! a [`Catalogue`].
//!
//! - [`walk`]: which files (recursive, sorted, hidden entries skipped, each file once);
//! - [`split`]: a YAML stream cut into documents, so one broken document spoils no other;
//! - [`documents`]: the serde shapes of the Tekton Triggers kinds and `Secret`;
//! - [`load`]: documents dispatched on `apiVersion`/`kind`, names checked, typed;
//! - [`admission`]: what Tekton's admission webhook refuses in a binding or template;
//! - [`resolve`]: references followed within each listener's namespace into the catalogue
//!   (interceptors and their secrets in `resolve/interceptors.rs`).
//!
//! Nothing here fails on bad configuration: every problem becomes a [`ConfigIssue`] naming
//! the file, document and field, the smallest unit affected is skipped, and everything else
//! still serves.
//!
//! [`ConfigIssue`]: crate::catalogue::ConfigIssue

mod admission;
mod documents;
mod load;
mod resolve;
mod split;
mod walk;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::catalogue::{Catalogue, ConfigIssue};

use load::Loaded;
use walk::Format;

/// Platform policy applied while loading, the same in every binary (`--require-authentication`
/// and friends in the binaries' shared flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// A trigger without an authentication interceptor (one with a secret to check) is
    /// reported and skipped instead of accepting any caller.
    pub require_authentication: bool,
    /// Hosts (`host` or `host:port`; `*.domain` for a whole domain) that webhook
    /// interceptors may call besides in-cluster services (`*.svc`, `*.svc.cluster.local`).
    /// A trigger whose interceptor points elsewhere is reported and skipped.
    pub interceptor_allow: Vec<String>,
    /// An EventListener may select Triggers in other namespaces (`namespaceSelector`).
    pub allow_cross_namespace: bool,
}

impl LoadOptions {
    /// Whether `host` (lower case, without a trailing dot) on `port` is listed in
    /// [`Self::interceptor_allow`]: as `host`, as `host:port`, or under a `*.domain`.
    pub fn allows_host(&self, host: &str, port: u16) -> bool {
        allows_host(&self.interceptor_allow, host, port)
    }
}

/// Whether `host` (lower case, without a trailing dot) on `port` is listed in `allow`
/// (entries as in `--interceptor-allow`: `host`, `host:port` or `*.domain`).
pub fn allows_host(allow: &[String], host: &str, port: u16) -> bool {
    let with_port = format!("{host}:{port}");
    allow.iter().any(|entry| {
        entry == host
            || entry == &with_port
            || entry
                .strip_prefix("*.")
                .is_some_and(|domain| host.ends_with(&format!(".{domain}")))
    })
}

/// Loads every `*.yaml`, `*.yml` and `*.json` file under `dir` (recursively) into a
/// catalogue with the default [`LoadOptions`]. Fails only when `dir` itself cannot be read;
/// every other problem is an issue in the catalogue.
pub fn load_dir(dir: &Path) -> std::io::Result<Catalogue> {
    load_dir_with(dir, &LoadOptions::default())
}

/// [`load_dir`] under the platform's [`LoadOptions`].
pub fn load_dir_with(dir: &Path, options: &LoadOptions) -> std::io::Result<Catalogue> {
    let mut loaded = Loaded::default();
    loaded.read_dir(dir)?;
    Ok(build(loaded, options))
}

/// The configuration files under `dir`, in the order they are read: what a reloader
/// watches for changes. Fails only when `dir` itself cannot be read.
pub fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    walk::config_files(dir, &mut Vec::new())
}

/// Loads one multi-document YAML text as if it were the file `name`: for tests, and for
/// configuration that does not come from a directory.
///
/// ```
/// let catalogue = sluice_triggers::config::load_str(
///     "listener.yaml",
///     r#"
/// apiVersion: triggers.tekton.dev/v1beta1
/// kind: EventListener
/// metadata: {name: github, namespace: team-a}
/// spec:
///   triggers:
///     - bindings: [{name: revision, value: $(body.after)}]
///       template:
///         spec:
///           resourcetemplates:
///             - {apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {generateName: ci-}}
/// "#,
/// );
/// assert!(catalogue.issues().is_empty());
/// let listener = catalogue.listener("team-a", "github").unwrap();
/// assert_eq!(listener.triggers[0].name, "trigger-0");
/// ```
pub fn load_str(name: &str, yaml: &str) -> Catalogue {
    load_str_with(name, yaml, &LoadOptions::default())
}

/// [`load_str`] under the platform's [`LoadOptions`].
pub fn load_str_with(name: &str, yaml: &str, options: &LoadOptions) -> Catalogue {
    let mut loaded = Loaded::default();
    loaded.read_text(Path::new(name), yaml, Format::Yaml);
    build(loaded, options)
}

fn build(loaded: Loaded, options: &LoadOptions) -> Catalogue {
    let catalogue = resolve_catalogue(loaded, options);
    for issue in catalogue.issues() {
        log_issue(issue);
    }
    catalogue
}

fn resolve_catalogue(loaded: Loaded, options: &LoadOptions) -> Catalogue {
    let resolve::Resolved {
        listeners,
        mut issues,
        secrets_named,
    } = resolve::resolve(loaded, options);
    // Stable: within one document, issues stay in the order they were found.
    issues.sort_by(|a, b| (&a.file, a.document).cmp(&(&b.file, b.document)));
    Catalogue::new(listeners, issues).with_secrets_named(secrets_named)
}

/// Logs a configuration issue as every loader reports one. Issues never hold secret
/// values: Secret parse errors name only the field.
pub fn log_issue(issue: &ConfigIssue) {
    tracing::warn!(
        file = %issue.file.display(),
        document = issue.document,
        field = issue.field.as_deref().unwrap_or_default(),
        "configuration skipped: {}",
        issue.message
    );
}

/// Configuration from objects that are not files: the API server's. Each object is added
/// with the name its issues give as their file (`eventlisteners/team-a/github`, say), then
/// [`Objects::build`] resolves them as [`load_dir`] resolves a directory's documents.
///
/// ```
/// use serde_json::json;
/// let mut objects = sluice_triggers::config::Objects::default();
/// objects.add(
///     "eventlisteners/team-a/github",
///     json!({
///         "apiVersion": "triggers.tekton.dev/v1beta1",
///         "kind": "EventListener",
///         "metadata": {"name": "github", "namespace": "team-a"},
///         "spec": {"triggers": [{"template": {"spec": {"resourcetemplates": [
///             {"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
///              "metadata": {"generateName": "ci-"}}
///         ]}}}]}
///     }),
/// );
/// let catalogue = objects.build(&Default::default());
/// assert!(catalogue.listener("team-a", "github").is_some());
/// ```
#[derive(Default)]
pub struct Objects {
    loaded: Loaded,
}

impl Objects {
    /// Adds one object (any kind: what is not Tekton Triggers' or a Secret is skipped).
    pub fn add(&mut self, source: &str, object: serde_json::Value) {
        self.loaded.read_json(Path::new(source), object);
    }

    /// Adds one object given as JSON text; text that is not JSON is reported as the issue
    /// of `source`.
    pub fn add_json(&mut self, source: &str, json: &str) {
        self.loaded.read_json_text(Path::new(source), json);
    }

    /// Resolves every object added into a catalogue. Its issues are not logged: a source
    /// that rebuilds on every change logs what changed ([`log_issue`]).
    pub fn build(self, options: &LoadOptions) -> Catalogue {
        resolve_catalogue(self.loaded, options)
    }
}
