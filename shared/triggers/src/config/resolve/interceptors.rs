//! Interceptors: the built-in ones Sluice evaluates at the edge (`github`, `gitlab`,
//! `bitbucket`, `gitee`, `slack`, `hmac`) in their v1beta1 form (`ref` + `params`), and
//! `github`, `gitlab` and `bitbucket` in their v1alpha1 shorthand (`github: {secretRef,
//! eventTypes}`), with secrets read from Secrets of the listener's namespace. Any other
//! interceptor makes its trigger invalid (fail closed).
//!
//! A secret that cannot be read (Secret or key missing, Secret invalid, value empty) does not
//! skip the trigger: it is reported, and the interceptor becomes
//! [`Interceptor::Misconfigured`], which refuses every request so that the sender learns the
//! listener is misconfigured instead of nothing happening. The github interceptor's
//! `addChangedFiles` and `githubOwners` read a `personalAccessToken` the same way; one that
//! cannot be read is reported and kept as the reason each event needing it fails in the
//! dispatcher (the edge, which does not use it, still accepts the requests).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderName;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as JsonValue};

use super::{Lookup, Resolver, Site, TRIGGER_SKIPPED, non_empty};
use crate::catalogue::{
    BitbucketInterceptor, ChangedFiles, GitHubInterceptor, GitHubOwners, GitHubToken,
    GitLabInterceptor, GiteeInterceptor, GiteeMode, HmacAlgorithm, HmacInterceptor, Interceptor,
    InterceptorKind, MisconfiguredInterceptor, OwnersCheck, SignatureEncoding, SlackInterceptor,
};
use crate::config::documents::{
    AddChangedFilesDoc, GithubOwnersDoc, InterceptorParamDoc, InterceptorRefDoc, JsonText,
    SecretDoc, SecretRefDoc, ShorthandDoc,
};
use crate::config::load::{Entry, Kind, Origin, join_field};
use crate::duration::parse_duration;
use crate::secret::SecretValue;

/// The interceptors that have a v1alpha1 shorthand key.
const SHORTHANDS: [InterceptorKind; 3] = [
    InterceptorKind::GitHub,
    InterceptorKind::GitLab,
    InterceptorKind::Bitbucket,
];
/// Default `timestampWindow` of the gitee interceptor: Gitee's own documented tolerance.
const GITEE_WINDOW: Duration = Duration::from_secs(60 * 60);
/// Default `timestampWindow` of the slack interceptor: Slack's recommendation.
const SLACK_WINDOW: Duration = Duration::from_secs(5 * 60);

/// What the `params` (or the shorthand's fields) of a built-in interceptor say, before its
/// secret is looked up.
#[derive(Default)]
struct Settings {
    /// The `secretRef` and the field it was written at.
    secret_ref: Option<(String, SecretRefDoc)>,
    event_types: Vec<String>,
    allow_sha1: bool,
    mode: Option<GiteeMode>,
    timestamp_window: Option<Duration>,
    header: Option<String>,
    algorithm: Option<HmacAlgorithm>,
    encoding: Option<SignatureEncoding>,
    prefix: Option<String>,
    requested_fields: Option<Vec<String>>,
    changed_files: Option<ChangedFiles>,
    owners: Option<GitHubOwners>,
}

/// What a secret is read for: the words an issue ends with differ.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SecretUse {
    /// Verifying requests at the edge: without it, every request is refused.
    Verify,
    /// Calling GitHub's API from the dispatcher: without it, each event that needs the call
    /// fails.
    GitHubToken,
}

/// A `secretRef` that names a Secret and key: its value, or why it is unavailable.
type SecretLookup = Result<SecretValue, String>;

impl Resolver<'_> {
    /// A trigger's interceptors in declaration order; every problem is reported, and any
    /// makes the trigger invalid.
    pub(super) fn interceptors(
        &mut self,
        site: &Site<'_>,
        interceptors: &[JsonText<Map<String, JsonValue>>],
    ) -> Option<Vec<Interceptor>> {
        let mut resolved = Vec::new();
        let mut valid = true;
        for (index, interceptor) in interceptors.iter().enumerate() {
            let field = site.field(&format!("interceptors[{index}]"));
            let interceptor = match interceptor.parse() {
                Ok(interceptor) => self.interceptor(site, &field, &interceptor),
                Err(error) => {
                    let message = format!("cannot be read back: {error}; {TRIGGER_SKIPPED}");
                    self.issue(site.origin, &field, message);
                    None
                }
            };
            match interceptor {
                Some(interceptor) => resolved.push(interceptor),
                None => valid = false,
            }
        }
        valid.then_some(resolved)
    }

    /// Under `--require-authentication`, a trigger must have an interceptor that
    /// authenticates the sender; one that accepts any caller is reported and skipped.
    pub(super) fn require_authentication(
        &mut self,
        site: &Site<'_>,
        interceptors: Vec<Interceptor>,
    ) -> Option<Vec<Interceptor>> {
        if !self.options.require_authentication
            || interceptors.iter().any(Interceptor::authenticates)
        {
            return Some(interceptors);
        }
        self.issue(
            site.origin,
            &site.field("interceptors"),
            format!(
                "no interceptor authenticates the sender (github, gitlab or bitbucket with a `secretRef`; gitee, slack or hmac), and this platform requires one (--require-authentication); {TRIGGER_SKIPPED}"
            ),
        );
        None
    }

    /// One interceptor: a built-in one by `ref` or by shorthand key, or an issue. Any other
    /// key (`cel`, `webhook`, …) names an interceptor Sluice does not evaluate, and the
    /// trigger must not run without it.
    fn interceptor(
        &mut self,
        site: &Site<'_>,
        field: &str,
        interceptor: &Map<String, JsonValue>,
    ) -> Option<Interceptor> {
        let origin = site.origin;
        let mut unsupported = false;
        for (key, value) in interceptor {
            let known = matches!(key.as_str(), "name" | "ref" | "params" | "cel" | "webhook")
                || SHORTHANDS.iter().any(|kind| kind.name() == key);
            if !known && !value.is_null() {
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
        let mut forms = ["ref", "cel", "webhook"]
            .into_iter()
            .chain(SHORTHANDS.iter().map(|kind| kind.name()))
            .filter_map(|key| present(key).map(|value| (key, value)));
        let (form, value) = match (forms.next(), forms.next()) {
            (Some(form), None) => form,
            (Some(_), Some(_)) => {
                self.issue(
                    origin,
                    field,
                    format!(
                        "an interceptor has exactly one of `ref`, `cel`, `webhook`, `github`, `gitlab` or `bitbucket`; {TRIGGER_SKIPPED}"
                    ),
                );
                return None;
            }
            (None, _) => {
                self.issue(
                    origin,
                    field,
                    format!("an interceptor needs a `ref`; {TRIGGER_SKIPPED}"),
                );
                return None;
            }
        };
        if form == "ref" {
            return self.reference(site, field, value, present("params"));
        }
        if present("params").is_some() {
            self.issue(
                origin,
                &join_field(field, "params"),
                format!("`params` only apply to an interceptor with a `ref`; {TRIGGER_SKIPPED}"),
            );
            return None;
        }
        let shorthand_field = join_field(field, form);
        match form {
            "cel" => return self.cel_shorthand(site, &shorthand_field, value),
            "webhook" => return self.legacy_webhook(site, &shorthand_field, value),
            _ => {}
        }
        let kind = InterceptorKind::from_name(form)?;
        let shorthand: ShorthandDoc = self.parse_json(origin, &shorthand_field, value)?;
        let settings = Settings {
            secret_ref: shorthand
                .secret_ref
                .map(|secret_ref| (join_field(&shorthand_field, "secretRef"), secret_ref)),
            event_types: shorthand.event_types,
            ..Settings::default()
        };
        self.build(site, &shorthand_field, kind, settings)
    }

    /// The v1beta1 form: `ref: {name, kind}` and `params`.
    fn reference(
        &mut self,
        site: &Site<'_>,
        field: &str,
        reference: &JsonValue,
        params: Option<&JsonValue>,
    ) -> Option<Interceptor> {
        let origin = site.origin;
        let ref_field = join_field(field, "ref");
        let reference: InterceptorRefDoc = self.parse_json(origin, &ref_field, reference)?;
        let ref_kind = non_empty(reference.kind.as_deref());
        let name_field = join_field(&ref_field, "name");
        let params_field = join_field(field, "params");
        let namespaced = match ref_kind {
            None | Some("ClusterInterceptor") => false,
            Some("NamespacedInterceptor" | "Interceptor") => true,
            Some(other) => {
                self.issue(
                    origin,
                    &join_field(&ref_field, "kind"),
                    format!(
                        "`{other}` is not an interceptor kind (ClusterInterceptor or NamespacedInterceptor); {TRIGGER_SKIPPED}"
                    ),
                );
                return None;
            }
        };
        // Sluice evaluates the built-in ClusterInterceptors itself: a ClusterInterceptor
        // document with one of their names (Tekton's install declares them) is not called.
        let built_in = InterceptorKind::from_name(&reference.name).filter(|_| !namespaced);
        let Some(kind) = built_in else {
            if reference.name == "cel" && !namespaced {
                return self.cel_params(site, &params_field, params);
            }
            return self.webhook_reference(
                site,
                &name_field,
                &reference.name,
                namespaced,
                &params_field,
                params,
            );
        };
        let params: Vec<InterceptorParamDoc> = match params {
            Some(params) => self.parse_json(origin, &params_field, params)?,
            None => Vec::new(),
        };
        let mut settings = Settings::default();
        let mut valid = true;
        for (index, param) in params.iter().enumerate() {
            let param_field = join_field(&params_field, &format!("[{index}]"));
            valid &= self.param(site, kind, &param_field, param, &mut settings);
        }
        if !valid {
            return None;
        }
        self.build(site, &params_field, kind, settings)
    }

    /// Reads one param of a `kind` interceptor into `settings`. Unknown params are refused:
    /// each could be a check Sluice would otherwise skip.
    fn param(
        &mut self,
        site: &Site<'_>,
        kind: InterceptorKind,
        param_field: &str,
        param: &InterceptorParamDoc,
        settings: &mut Settings,
    ) -> bool {
        use InterceptorKind::{Bitbucket, GitHub, GitLab, Gitee, Hmac, Slack};

        let origin = site.origin;
        let field = join_field(param_field, "value");
        let value = &param.value;
        match (kind, param.name.as_str()) {
            (_, "secretRef") => self
                .parse_json::<SecretRefDoc>(origin, &field, value)
                .map(|secret_ref| settings.secret_ref = Some((field, secret_ref)))
                .is_some(),
            (GitHub | GitLab | Bitbucket | Gitee, "eventTypes") => self
                .parse_json(origin, &field, value)
                .map(|event_types| settings.event_types = event_types)
                .is_some(),
            (GitHub, "addChangedFiles") => {
                let Some(doc) = self.parse_json::<AddChangedFilesDoc>(origin, &field, value) else {
                    return false;
                };
                if !doc.enabled {
                    return true;
                }
                let token_field = join_field(&field, "personalAccessToken");
                let Some(token) = self.token(site, &token_field, doc.personal_access_token) else {
                    return false;
                };
                settings.changed_files = Some(ChangedFiles { token });
                true
            }
            (GitHub, "githubOwners") => {
                let Some(doc) = self.parse_json::<GithubOwnersDoc>(origin, &field, value) else {
                    return false;
                };
                if !doc.enabled {
                    return true;
                }
                let check = match &doc.check_type {
                    None | Some(JsonValue::Null) => Some(OwnersCheck::Unset),
                    Some(check_type) => self.choice(
                        origin,
                        &join_field(&field, "checkType"),
                        check_type,
                        &[
                            ("orgMembers", OwnersCheck::OrgMembers),
                            ("repoMembers", OwnersCheck::RepoMembers),
                            ("all", OwnersCheck::All),
                            ("none", OwnersCheck::None),
                        ],
                    ),
                };
                let token_field = join_field(&field, "personalAccessToken");
                let token = self.token(site, &token_field, doc.personal_access_token);
                let (Some(check), Some(token)) = (check, token) else {
                    return false;
                };
                if matches!(token, Ok(None)) && check != OwnersCheck::None {
                    self.issue(
                        origin,
                        &field,
                        "githubOwners needs a `personalAccessToken` unless its `checkType` is `none`; the trigger is kept, and each pull_request and issue_comment event fails (dead-lettered, for a replay) until one is given",
                    );
                }
                settings.owners = Some(GitHubOwners { token, check });
                true
            }
            (GitHub, "allowSha1") => self
                .boolean(origin, &field, value)
                .map(|allow| settings.allow_sha1 = allow)
                .is_some(),
            (Gitee, "mode") => self
                .choice(
                    origin,
                    &field,
                    value,
                    &[
                        ("auto", GiteeMode::Auto),
                        ("password", GiteeMode::Password),
                        ("signature", GiteeMode::Signature),
                    ],
                )
                .map(|mode| settings.mode = Some(mode))
                .is_some(),
            (Gitee | Slack, "timestampWindow") => self
                .window(origin, &field, value)
                .map(|window| settings.timestamp_window = Some(window))
                .is_some(),
            (Slack, "requestedFields") => self
                .parse_json(origin, &field, value)
                .map(|fields| settings.requested_fields = Some(fields))
                .is_some(),
            (Hmac, "header") => self
                .header_name(origin, &field, value)
                .map(|header| settings.header = Some(header))
                .is_some(),
            (Hmac, "algorithm") => self
                .choice(
                    origin,
                    &field,
                    value,
                    &[
                        ("sha256", HmacAlgorithm::Sha256),
                        ("sha512", HmacAlgorithm::Sha512),
                    ],
                )
                .map(|algorithm| settings.algorithm = Some(algorithm))
                .is_some(),
            (Hmac, "encoding") => self
                .choice(
                    origin,
                    &field,
                    value,
                    &[
                        ("hex", SignatureEncoding::Hex),
                        ("base64", SignatureEncoding::Base64),
                    ],
                )
                .map(|encoding| settings.encoding = Some(encoding))
                .is_some(),
            (Hmac, "prefix") => self
                .parse_json::<String>(origin, &field, value)
                .map(|prefix| settings.prefix = Some(prefix))
                .is_some(),
            (_, other) => {
                self.issue(
                    origin,
                    &join_field(param_field, "name"),
                    format!("unknown param `{other}` of the {kind} interceptor; {TRIGGER_SKIPPED}"),
                );
                false
            }
        }
    }

    /// The interceptor from its settings. Missing required settings skip the trigger; a
    /// secret that cannot be read makes the interceptor misconfigured.
    fn build(
        &mut self,
        site: &Site<'_>,
        field: &str,
        kind: InterceptorKind,
        settings: Settings,
    ) -> Option<Interceptor> {
        let origin = site.origin;
        let mut valid = true;
        let secret_required = matches!(
            kind,
            InterceptorKind::Gitee | InterceptorKind::Slack | InterceptorKind::Hmac
        );
        if secret_required && settings.secret_ref.is_none() {
            self.issue(
                origin,
                field,
                format!(
                    "the {kind} interceptor needs a `secretRef` param: Sluice verifies every {kind} request with it; {TRIGGER_SKIPPED}"
                ),
            );
            valid = false;
        }
        if kind == InterceptorKind::Hmac && settings.header.is_none() {
            self.issue(
                origin,
                field,
                format!(
                    "the hmac interceptor needs a `header` param naming the signature header; {TRIGGER_SKIPPED}"
                ),
            );
            valid = false;
        }
        if !valid {
            return None;
        }
        let secret = match &settings.secret_ref {
            Some((secret_field, secret_ref)) => {
                Some(self.secret(site, secret_field, secret_ref, SecretUse::Verify)?)
            }
            None => None,
        };
        let secret = match secret {
            Some(Err(problem)) => {
                return Some(Interceptor::Misconfigured(MisconfiguredInterceptor {
                    kind,
                    event_types: settings.event_types,
                    reason: format!("{kind} interceptor: {problem}"),
                }));
            }
            Some(Ok(secret)) => Some(secret),
            None => None,
        };
        let interceptor = match (kind, secret) {
            (InterceptorKind::GitHub, secret) => Interceptor::GitHub(GitHubInterceptor {
                secret,
                event_types: settings.event_types,
                allow_sha1: settings.allow_sha1,
                changed_files: settings.changed_files,
                owners: settings.owners,
            }),
            (InterceptorKind::GitLab, secret) => Interceptor::GitLab(GitLabInterceptor {
                secret,
                event_types: settings.event_types,
            }),
            (InterceptorKind::Bitbucket, secret) => Interceptor::Bitbucket(BitbucketInterceptor {
                secret,
                event_types: settings.event_types,
            }),
            (InterceptorKind::Gitee, Some(secret)) => Interceptor::Gitee(GiteeInterceptor {
                secret,
                event_types: settings.event_types,
                mode: settings.mode.unwrap_or(GiteeMode::Auto),
                timestamp_window: settings.timestamp_window.unwrap_or(GITEE_WINDOW),
            }),
            (InterceptorKind::Slack, Some(secret)) => Interceptor::Slack(SlackInterceptor {
                secret,
                timestamp_window: settings.timestamp_window.unwrap_or(SLACK_WINDOW),
                requested_fields: settings.requested_fields,
            }),
            (InterceptorKind::Hmac, Some(secret)) => Interceptor::Hmac(HmacInterceptor {
                secret,
                header: settings.header.unwrap_or_default(),
                algorithm: settings.algorithm.unwrap_or(HmacAlgorithm::Sha256),
                encoding: settings.encoding.unwrap_or(SignatureEncoding::Hex),
                prefix: settings.prefix.unwrap_or_default(),
            }),
            // A missing secret was refused above.
            (InterceptorKind::Gitee | InterceptorKind::Slack | InterceptorKind::Hmac, None) => {
                return None;
            }
        };
        Some(interceptor)
    }

    /// The value of a `secretRef`, from a Secret in the trigger's (= listener's) namespace.
    /// `None`: the reference itself is incomplete (reported; the trigger is skipped).
    /// `Some(Err(problem))`: the Secret or key is missing, invalid or empty (reported; what
    /// follows depends on `purpose`). Issues and reasons name the Secret and key, never the
    /// value.
    fn secret(
        &mut self,
        site: &Site<'_>,
        field: &str,
        secret_ref: &SecretRefDoc,
        purpose: SecretUse,
    ) -> Option<SecretLookup> {
        let origin = site.origin;
        let namespace = site.namespace;
        let (name, key) = (
            secret_ref.secret_name.as_str(),
            secret_ref.secret_key.as_str(),
        );
        let name_field = join_field(field, "secretName");
        let key_field = join_field(field, "secretKey");
        if let Some(other) = secret_ref
            .namespace
            .as_deref()
            .filter(|ns| !ns.is_empty() && *ns != namespace)
        {
            self.issue(
                origin,
                &join_field(field, "namespace"),
                format!(
                    "Secret `{name}` is named in namespace `{other}`; a listener reads Secrets of its own namespace `{namespace}` only; {TRIGGER_SKIPPED}"
                ),
            );
            return None;
        }
        if name.is_empty() || key.is_empty() {
            let missing = if name.is_empty() {
                &name_field
            } else {
                &key_field
            };
            self.issue(origin, missing, format!("is required; {TRIGGER_SKIPPED}"));
            return None;
        }
        self.secrets_named
            .insert((namespace.to_owned(), name.to_owned()));
        let (problem_field, problem) = match self.lookup(
            &self.secrets,
            Kind::Secret,
            namespace,
            name,
        ) {
            Lookup::Found(data) => match data.get(key) {
                Some(value) if !value.expose().is_empty() => return Some(Ok(value.clone())),
                Some(_) => (
                    &key_field,
                    format!("key `{key}` of Secret `{name}` in namespace `{namespace}` is empty"),
                ),
                None => (
                    &key_field,
                    format!("Secret `{name}` in namespace `{namespace}` has no key `{key}`"),
                ),
            },
            Lookup::Invalid => (
                &name_field,
                format!(
                    "Secret `{name}` in namespace `{namespace}` is invalid (see the issue reported for it)"
                ),
            ),
            Lookup::Missing => (
                &name_field,
                match self.elsewhere(Kind::Secret, namespace, name) {
                    Some(other) => format!(
                        "Secret `{name}` in namespace `{namespace}` not found (one exists in namespace `{other}`, and a listener reads Secrets of its own namespace only)"
                    ),
                    None => format!("Secret `{name}` in namespace `{namespace}` not found"),
                },
            ),
        };
        let consequence = match purpose {
            SecretUse::Verify => {
                "the trigger is kept but refuses every webhook (500 listener_misconfigured) until the Secret is fixed"
            }
            SecretUse::GitHubToken => {
                "the trigger is kept, and each event that needs the token fails (dead-lettered, for a replay) until the Secret is fixed"
            }
        };
        self.issue(origin, problem_field, format!("{problem}; {consequence}"));
        Some(Err(problem))
    }

    /// A `personalAccessToken` of the github interceptor: `Some(Ok(None))` when none is
    /// given, `Some(Err(reason))` when its Secret cannot be read (reported; each event that
    /// needs it fails), `None` when the reference is incomplete (reported; the trigger is
    /// skipped).
    fn token(
        &mut self,
        site: &Site<'_>,
        field: &str,
        secret_ref: Option<SecretRefDoc>,
    ) -> Option<GitHubToken> {
        let Some(secret_ref) = secret_ref else {
            return Some(Ok(None));
        };
        let lookup = self.secret(site, field, &secret_ref, SecretUse::GitHubToken)?;
        Some(lookup.map(Some))
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

    /// A boolean param: `true`/`false`, or the strings `"true"`/`"false"` (Tekton params are
    /// often strings).
    fn boolean(&mut self, origin: &Origin, field: &str, value: &JsonValue) -> Option<bool> {
        match value {
            JsonValue::Bool(value) => Some(*value),
            JsonValue::String(text) if text == "true" => Some(true),
            JsonValue::String(text) if text == "false" => Some(false),
            _ => {
                self.issue(
                    origin,
                    field,
                    format!("must be `true` or `false`; {TRIGGER_SKIPPED}"),
                );
                None
            }
        }
    }

    /// A string param that must be one of `choices`.
    fn choice<T: Copy>(
        &mut self,
        origin: &Origin,
        field: &str,
        value: &JsonValue,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let text = value.as_str().unwrap_or_default();
        if let Some((_, choice)) = choices.iter().find(|(name, _)| *name == text) {
            return Some(*choice);
        }
        let names: Vec<String> = choices.iter().map(|(n, _)| format!("`{n}`")).collect();
        self.issue(
            origin,
            field,
            format!("must be one of {}; {TRIGGER_SKIPPED}", names.join(", ")),
        );
        None
    }

    /// A `timestampWindow`: a positive duration such as `5m` or `1h`.
    fn window(&mut self, origin: &Origin, field: &str, value: &JsonValue) -> Option<Duration> {
        let parsed = match value.as_str() {
            Some(text) => parse_duration(text),
            None => Err("must be a duration such as `5m` or `1h`".to_owned()),
        };
        match parsed {
            Ok(window) if !window.is_zero() => Some(window),
            Ok(_) => {
                self.issue(
                    origin,
                    field,
                    format!("must be longer than zero; {TRIGGER_SKIPPED}"),
                );
                None
            }
            Err(problem) => {
                self.issue(origin, field, format!("{problem}; {TRIGGER_SKIPPED}"));
                None
            }
        }
    }

    /// The hmac interceptor's `header`: an HTTP header name, kept in lower case.
    fn header_name(&mut self, origin: &Origin, field: &str, value: &JsonValue) -> Option<String> {
        let name = value
            .as_str()
            .and_then(|text| HeaderName::from_bytes(text.as_bytes()).ok());
        match name {
            Some(name) => Some(name.as_str().to_owned()),
            None => {
                self.issue(
                    origin,
                    field,
                    format!("must be an HTTP header name; {TRIGGER_SKIPPED}"),
                );
                None
            }
        }
    }

    /// Parses part of an interceptor; a failure names the field.
    pub(super) fn parse_json<T: DeserializeOwned>(
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
