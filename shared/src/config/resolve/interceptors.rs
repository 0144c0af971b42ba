//! Interceptors: the GitHub interceptor in its v1beta1 (`ref` + `params`) and v1alpha1
//! (`github:`) forms, with its secret read from a Secret of the listener's namespace; any
//! other interceptor makes its trigger invalid (fail closed).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as JsonValue};

use super::{GITHUB, Lookup, Resolver, Site, TRIGGER_SKIPPED, non_empty};
use crate::catalogue::{GitHubInterceptor, Interceptor};
use crate::config::documents::{
    AddChangedFilesDoc, GitHubDoc, InterceptorParamDoc, InterceptorRefDoc, SecretDoc, SecretRefDoc,
};
use crate::config::load::{Entry, Kind, Origin, join_field};
use crate::secret::SecretValue;

impl Resolver<'_> {
    /// A trigger's interceptors in declaration order; every problem is reported, and any
    /// makes the trigger invalid.
    pub(super) fn interceptors(
        &mut self,
        site: &Site<'_>,
        interceptors: &[Map<String, JsonValue>],
    ) -> Option<Vec<Interceptor>> {
        let mut resolved = Vec::new();
        let mut valid = true;
        for (index, interceptor) in interceptors.iter().enumerate() {
            let field = site.field(&format!("interceptors[{index}]"));
            match self.interceptor(site, &field, interceptor) {
                Some(interceptor) => resolved.push(interceptor),
                None => valid = false,
            }
        }
        valid.then_some(resolved)
    }

    /// One interceptor: the GitHub one in either form, or an issue. Any key that is not part
    /// of those forms (`cel`, `gitlab`, `bitbucket`, `webhook`, …) names an interceptor Sluice
    /// does not evaluate, and the trigger must not run without it.
    fn interceptor(
        &mut self,
        site: &Site<'_>,
        field: &str,
        interceptor: &Map<String, JsonValue>,
    ) -> Option<Interceptor> {
        let origin = site.origin;
        let mut unsupported = false;
        for (key, value) in interceptor {
            if !matches!(key.as_str(), "name" | "ref" | "params" | GITHUB) && !value.is_null() {
                self.issue(
                    origin,
                    &join_field(field, key),
                    format!("interceptor `{key}` is not supported yet; {TRIGGER_SKIPPED}"),
                );
                unsupported = true;
            }
        }
        if unsupported {
            return None;
        }
        let present = |key: &str| interceptor.get(key).filter(|value| !value.is_null());
        match (present("ref"), present(GITHUB)) {
            (Some(_), Some(_)) => {
                self.issue(
                    origin,
                    field,
                    format!(
                        "an interceptor has either `ref` or `github`, not both; {TRIGGER_SKIPPED}"
                    ),
                );
                None
            }
            (Some(reference), None) => {
                let ref_field = join_field(field, "ref");
                let reference: InterceptorRefDoc =
                    self.parse_json(origin, &ref_field, reference)?;
                let kind = non_empty(reference.kind.as_deref());
                if reference.name != GITHUB || !matches!(kind, None | Some("ClusterInterceptor")) {
                    let kind = kind.map(|kind| format!(" ({kind})")).unwrap_or_default();
                    self.issue(
                        origin,
                        &join_field(&ref_field, "name"),
                        format!(
                            "interceptor `{}`{kind} is not supported yet; {TRIGGER_SKIPPED}",
                            reference.name
                        ),
                    );
                    return None;
                }
                let params_field = join_field(field, "params");
                let params: Vec<InterceptorParamDoc> = match present("params") {
                    Some(params) => self.parse_json(origin, &params_field, params)?,
                    None => Vec::new(),
                };
                self.github_params(site, &params_field, &params)
                    .map(Interceptor::GitHub)
            }
            (None, Some(github)) => {
                if present("params").is_some() {
                    self.issue(
                        origin,
                        &join_field(field, "params"),
                        format!(
                            "`params` only apply to an interceptor with a `ref`; {TRIGGER_SKIPPED}"
                        ),
                    );
                    return None;
                }
                let github_field = join_field(field, GITHUB);
                let github: GitHubDoc = self.parse_json(origin, &github_field, github)?;
                let secret = match &github.secret_ref {
                    Some(secret_ref) => {
                        let secret_field = join_field(&github_field, "secretRef");
                        Some(self.secret(site, &secret_field, secret_ref)?)
                    }
                    None => None,
                };
                Some(Interceptor::GitHub(GitHubInterceptor {
                    secret,
                    event_types: github.event_types,
                }))
            }
            (None, None) => {
                self.issue(
                    origin,
                    field,
                    format!("an interceptor needs a `ref`; {TRIGGER_SKIPPED}"),
                );
                None
            }
        }
    }

    /// The v1beta1 GitHub interceptor's params. Unknown params are refused: each could be
    /// a check Sluice would otherwise skip.
    fn github_params(
        &mut self,
        site: &Site<'_>,
        field: &str,
        params: &[InterceptorParamDoc],
    ) -> Option<GitHubInterceptor> {
        let origin = site.origin;
        let mut github = GitHubInterceptor {
            secret: None,
            event_types: Vec::new(),
        };
        let mut valid = true;
        for (index, param) in params.iter().enumerate() {
            let param_field = join_field(field, &format!("[{index}]"));
            let value_field = join_field(&param_field, "value");
            let value = &param.value;
            match param.name.as_str() {
                "secretRef" => {
                    let secret = self
                        .parse_json::<SecretRefDoc>(origin, &value_field, value)
                        .and_then(|secret_ref| self.secret(site, &value_field, &secret_ref));
                    match secret {
                        Some(secret) => github.secret = Some(secret),
                        None => valid = false,
                    }
                }
                "eventTypes" => match self.parse_json(origin, &value_field, value) {
                    Some(event_types) => github.event_types = event_types,
                    None => valid = false,
                },
                "addChangedFiles" => {
                    match self.parse_json::<AddChangedFilesDoc>(origin, &value_field, value) {
                        Some(changed_files) if changed_files.enabled => {
                            self.issue(
                                origin,
                                &join_field(&value_field, "enabled"),
                                format!(
                                    "`addChangedFiles` of the github interceptor is not supported yet; {TRIGGER_SKIPPED}"
                                ),
                            );
                            valid = false;
                        }
                        Some(_) => {}
                        None => valid = false,
                    }
                }
                other => {
                    self.issue(
                        origin,
                        &join_field(&param_field, "name"),
                        format!(
                            "unknown param `{other}` of the github interceptor; {TRIGGER_SKIPPED}"
                        ),
                    );
                    valid = false;
                }
            }
        }
        valid.then_some(github)
    }

    /// The value of a `secretRef`, from a Secret in the trigger's (= listener's) namespace.
    /// Issues name the Secret and key, never the value.
    fn secret(
        &mut self,
        site: &Site<'_>,
        field: &str,
        secret_ref: &SecretRefDoc,
    ) -> Option<SecretValue> {
        let origin = site.origin;
        let namespace = site.namespace;
        let (name, key) = (
            secret_ref.secret_name.as_str(),
            secret_ref.secret_key.as_str(),
        );
        let name_field = join_field(field, "secretName");
        let key_field = join_field(field, "secretKey");
        if name.is_empty() || key.is_empty() {
            let missing = if name.is_empty() {
                &name_field
            } else {
                &key_field
            };
            self.issue(origin, missing, format!("is required; {TRIGGER_SKIPPED}"));
            return None;
        }
        let data = match self.lookup(&self.secrets, Kind::Secret, namespace, name) {
            Lookup::Found(data) => data,
            Lookup::Invalid => {
                return self.dangling(
                    origin,
                    &name_field,
                    Kind::Secret,
                    Some(namespace),
                    name,
                    true,
                );
            }
            Lookup::Missing => {
                return self.dangling(
                    origin,
                    &name_field,
                    Kind::Secret,
                    Some(namespace),
                    name,
                    false,
                );
            }
        };
        match data.get(key) {
            Some(value) if !value.expose().is_empty() => Some(value.clone()),
            Some(_) => {
                self.issue(
                    origin,
                    &key_field,
                    format!(
                        "key `{key}` of Secret `{name}` in namespace `{namespace}` is empty; {TRIGGER_SKIPPED}"
                    ),
                );
                None
            }
            None => {
                self.issue(
                    origin,
                    &key_field,
                    format!(
                        "Secret `{name}` in namespace `{namespace}` has no key `{key}`; {TRIGGER_SKIPPED}"
                    ),
                );
                None
            }
        }
    }

    /// A Secret's values: `data` decoded from base64, then `stringData` over it (as the API
    /// server merges them on write).
    pub(super) fn secret_data(
        &mut self,
        entry: &Entry<SecretDoc>,
    ) -> Option<BTreeMap<String, SecretValue>> {
        let mut values = BTreeMap::new();
        let mut valid = true;
        for (key, encoded) in &entry.doc.data {
            match STANDARD.decode(encoded) {
                Ok(bytes) => {
                    values.insert(key.clone(), SecretValue::new(bytes));
                }
                Err(_) => {
                    self.issue(
                        &entry.origin,
                        &format!("data.{key}"),
                        "is not valid base64; Secret skipped",
                    );
                    valid = false;
                }
            }
        }
        for (key, value) in &entry.doc.string_data {
            values.insert(key.clone(), SecretValue::new(value.as_bytes()));
        }
        valid.then_some(values)
    }

    /// Parses part of an interceptor; a failure names the field.
    fn parse_json<T: DeserializeOwned>(
        &mut self,
        origin: &Origin,
        field: &str,
        value: &JsonValue,
    ) -> Option<T> {
        match serde_path_to_error::deserialize(value) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                let path = join_field(field, &error.path().to_string());
                self.issue(
                    origin,
                    &path,
                    format!("{}; {TRIGGER_SKIPPED}", error.inner()),
                );
                None
            }
        }
    }
}
