//! Interceptors the dispatcher runs once an event is durable: `cel`, compiled here so that a
//! bad expression is a configuration issue naming the trigger and the expression, and
//! webhook interceptors (`ClusterInterceptor`, namespaced `Interceptor`, the legacy
//! `webhook:` form), whose address must be an in-cluster service or a host the platform
//! allows (`--interceptor-allow`).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value as JsonValue};

use super::{Lookup, Resolver, Site, TRIGGER_SKIPPED, non_empty};
use crate::catalogue::{
    CelInterceptor, CelOverlay, Interceptor, WebhookInterceptor, WebhookProtocol,
};
use crate::config::documents::{
    CelDoc, CelOverlayDoc, InterceptorDoc, InterceptorParamDoc, StringOrList, WebhookDoc,
};
use crate::config::load::{Entry, Kind, Origin, join_field};
use sluice_cel::{self as cel, SecretRef};

/// Where a webhook interceptor is reached: its URL and the CA bundle its certificate must
/// chain to.
#[derive(Debug, Clone)]
pub(super) struct Target {
    url: url::Url,
    ca_bundle: Option<Arc<[u8]>>,
}

/// Port of a `clientConfig.service` without a `port`: Tekton's defaults.
const HTTP_PORT: u16 = 80;
const HTTPS_PORT: u16 = 8443;
const INTERCEPTOR_SKIPPED: &str = "interceptor skipped";

impl Resolver<'_> {
    // ----- cel -------------------------------------------------------------------------

    /// The v1alpha1 `cel: {filter, overlays}` form.
    pub(super) fn cel_shorthand(
        &mut self,
        site: &Site<'_>,
        field: &str,
        value: &JsonValue,
    ) -> Option<Interceptor> {
        let doc: CelDoc = self.parse_json(site.origin, field, value)?;
        let filter = doc.filter.map(|f| (join_field(field, "filter"), f));
        let overlays = doc
            .overlays
            .into_iter()
            .enumerate()
            .map(|(i, overlay)| (join_field(field, &format!("overlays[{i}]")), overlay))
            .collect();
        self.cel(site, filter, overlays)
    }

    /// The v1beta1 `ref: {name: cel}` form with `filter` and `overlays` params.
    pub(super) fn cel_params(
        &mut self,
        site: &Site<'_>,
        params_field: &str,
        params: Option<&JsonValue>,
    ) -> Option<Interceptor> {
        let origin = site.origin;
        let params: Vec<InterceptorParamDoc> = match params {
            Some(params) => self.parse_json(origin, params_field, params)?,
            None => Vec::new(),
        };
        let mut filter = None;
        let mut overlays = Vec::new();
        let mut valid = true;
        for (index, param) in params.into_iter().enumerate() {
            let field = join_field(params_field, &format!("[{index}]"));
            let value_field = join_field(&field, "value");
            match param.name.as_str() {
                "filter" => match param.value {
                    JsonValue::String(text) => filter = Some((value_field, text)),
                    JsonValue::Null => {}
                    _ => {
                        self.issue(
                            origin,
                            &value_field,
                            format!("the cel filter must be a string; {TRIGGER_SKIPPED}"),
                        );
                        valid = false;
                    }
                },
                "overlays" => {
                    let docs: Vec<CelOverlayDoc> =
                        match self.parse_json(origin, &value_field, &param.value) {
                            Some(docs) => docs,
                            None => {
                                valid = false;
                                continue;
                            }
                        };
                    overlays.extend(docs.into_iter().enumerate().map(|(i, overlay)| {
                        (join_field(&value_field, &format!("[{i}]")), overlay)
                    }));
                }
                other => {
                    self.issue(
                        origin,
                        &join_field(&field, "name"),
                        format!(
                            "the cel interceptor has no param `{other}` (it takes `filter` and `overlays`); {TRIGGER_SKIPPED}"
                        ),
                    );
                    valid = false;
                }
            }
        }
        if !valid {
            return None;
        }
        self.cel(site, filter, overlays)
    }

    /// Compiles a filter and overlays; resolves the Secrets their `compareSecret` calls name.
    fn cel(
        &mut self,
        site: &Site<'_>,
        filter: Option<(String, String)>,
        overlays: Vec<(String, CelOverlayDoc)>,
    ) -> Option<Interceptor> {
        let origin = site.origin;
        let mut valid = true;
        let filter = match filter {
            Some((field, source)) if !source.trim().is_empty() => {
                let program = self.compile(origin, &field, "filter", &source);
                valid &= program.is_some();
                program
            }
            _ => None,
        };
        let mut compiled = Vec::new();
        for (field, overlay) in overlays {
            let key_field = join_field(&field, "key");
            if overlay.key.is_empty() || overlay.key.split('.').any(str::is_empty) {
                self.issue(
                    origin,
                    &key_field,
                    format!(
                        "`{}` is not an overlay key (dot-separated names, none empty); {TRIGGER_SKIPPED}",
                        overlay.key
                    ),
                );
                valid = false;
                continue;
            }
            let what = format!("overlay `{}`", overlay.key);
            let expression_field = join_field(&field, "expression");
            match self.compile(origin, &expression_field, &what, &overlay.expression) {
                Some(expression) => compiled.push(CelOverlay {
                    key: overlay.key,
                    expression,
                }),
                None => valid = false,
            }
        }
        let references: Vec<SecretRef> = filter
            .iter()
            .chain(compiled.iter().map(|overlay| &overlay.expression))
            .flat_map(cel::Program::secret_refs)
            .collect();
        let mut secrets = BTreeMap::new();
        for reference in references {
            match self.cel_secret(site, &reference) {
                Some(value) => {
                    secrets.insert(reference, value);
                }
                None => valid = false,
            }
        }
        valid.then(|| {
            Interceptor::Cel(Arc::new(CelInterceptor {
                filter,
                overlays: compiled,
                secrets,
            }))
        })
    }

    fn compile(
        &mut self,
        origin: &Origin,
        field: &str,
        what: &str,
        source: &str,
    ) -> Option<cel::Program> {
        match cel::Program::compile(source) {
            Ok(program) => Some(program),
            Err(error) => {
                self.issue(
                    origin,
                    field,
                    format!(
                        "cel {what} `{}` does not compile: {error}; {TRIGGER_SKIPPED}",
                        abbreviate(source)
                    ),
                );
                None
            }
        }
    }

    /// The value a `compareSecret` call compares with, from a Secret of the trigger's
    /// namespace (never another's).
    fn cel_secret(
        &mut self,
        site: &Site<'_>,
        reference: &SecretRef,
    ) -> Option<crate::secret::SecretValue> {
        let origin = site.origin;
        let field = site.field("interceptors");
        let namespace = site.namespace;
        let SecretRef { key, name, .. } = reference;
        if let Some(other) = reference.namespace.as_deref().filter(|ns| *ns != namespace) {
            self.issue(
                origin,
                &field,
                format!(
                    "compareSecret names Secret `{name}` in namespace `{other}`; a trigger reads Secrets of its own namespace `{namespace}` only; {TRIGGER_SKIPPED}"
                ),
            );
            return None;
        }
        self.secrets_named
            .insert((namespace.to_owned(), name.clone()));
        let problem = match self.lookup(&self.secrets, Kind::Secret, namespace, name) {
            Lookup::Found(data) => match data.get(key.as_str()) {
                Some(value) => return Some(value.clone()),
                None => format!("Secret `{name}` in namespace `{namespace}` has no key `{key}`"),
            },
            Lookup::Invalid => format!(
                "Secret `{name}` in namespace `{namespace}` is invalid (see the issue reported for it)"
            ),
            Lookup::Missing => format!("Secret `{name}` in namespace `{namespace}` not found"),
        };
        self.issue(
            origin,
            &field,
            format!("compareSecret: {problem}; {TRIGGER_SKIPPED}"),
        );
        None
    }

    // ----- webhooks --------------------------------------------------------------------

    /// Checks a `ClusterInterceptor` or `Interceptor` document once, whoever refers to it.
    pub(super) fn interceptor_target(&mut self, entry: &Entry<InterceptorDoc>) -> Option<Target> {
        let origin = &entry.origin;
        let config = &entry.doc.spec.client_config;
        let field = "spec.clientConfig";
        let ca_bundle = match non_empty(config.ca_bundle.as_deref()) {
            None => None,
            Some(encoded) => match STANDARD.decode(encoded.trim()) {
                Ok(pem)
                    if String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") =>
                {
                    Some(Arc::<[u8]>::from(pem))
                }
                Ok(_) => {
                    return self.refuse_target(
                        origin,
                        &join_field(field, "caBundle"),
                        "holds no PEM certificate",
                    );
                }
                Err(_) => {
                    return self.refuse_target(
                        origin,
                        &join_field(field, "caBundle"),
                        "is not valid base64",
                    );
                }
            },
        };
        let url = match (non_empty(config.url.as_deref()), &config.service) {
            (Some(_), Some(_)) => {
                return self.refuse_target(origin, field, "has both `url` and `service`; give one");
            }
            (None, None) => {
                return self.refuse_target(origin, field, "needs a `url` or a `service`");
            }
            (Some(text), None) => match url::Url::parse(text) {
                Ok(url) => url,
                Err(error) => {
                    let message = format!("`{text}` is not a URL: {error}");
                    return self.refuse_target(origin, &join_field(field, "url"), &message);
                }
            },
            (None, Some(service)) => {
                let namespace = match non_empty(service.namespace.as_deref()) {
                    Some(namespace) => namespace,
                    None if !entry.namespace.is_empty() => entry.namespace.as_str(),
                    None => {
                        return self.refuse_target(
                            origin,
                            &join_field(field, "service.namespace"),
                            "is required for a ClusterInterceptor",
                        );
                    }
                };
                let (scheme, default_port) = match ca_bundle {
                    Some(_) => ("https", HTTPS_PORT),
                    None => ("http", HTTP_PORT),
                };
                let port = service.port.unwrap_or(default_port);
                let path = service.path.as_deref().unwrap_or_default();
                let text = format!("{scheme}://{}.{namespace}.svc:{port}/", service.name);
                match url::Url::parse(&text)
                    .and_then(|base| base.join(path.trim_start_matches('/')))
                {
                    Ok(url) => url,
                    Err(error) => {
                        let message =
                            format!("does not make a URL ({text}, path `{path}`): {error}");
                        return self.refuse_target(origin, &join_field(field, "service"), &message);
                    }
                }
            }
        };
        if let Err(problem) = self.check_destination(&url) {
            return self.refuse_target(origin, field, &problem);
        }
        Some(Target { url, ca_bundle })
    }

    fn refuse_target(&mut self, origin: &Origin, field: &str, problem: &str) -> Option<Target> {
        self.issue(origin, field, format!("{problem}; {INTERCEPTOR_SKIPPED}"));
        None
    }

    /// Whether the platform lets interceptors call `url`: `http`/`https` only, to an
    /// in-cluster service address or a host listed in `--interceptor-allow`.
    fn check_destination(&self, url: &url::Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{url}` is not an http or https URL"));
        }
        let Some(host) = url.host_str() else {
            return Err(format!("`{url}` has no host"));
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.ends_with(".svc") || host.ends_with(".svc.cluster.local") {
            return Ok(());
        }
        let port = url.port_or_known_default().unwrap_or_default();
        if self.options.allows_host(&host, port) {
            Ok(())
        } else {
            Err(format!(
                "`{host}` is neither an in-cluster service (NAME.NAMESPACE.svc) nor a host this platform allows interceptors to call (--interceptor-allow)"
            ))
        }
    }

    /// `ref: {name, kind: ClusterInterceptor}` (or no kind) naming no built-in interceptor,
    /// or `kind: NamespacedInterceptor` naming an `Interceptor` of the trigger's namespace.
    pub(super) fn webhook_reference(
        &mut self,
        site: &Site<'_>,
        name_field: &str,
        name: &str,
        namespaced: bool,
        params_field: &str,
        params: Option<&JsonValue>,
    ) -> Option<Interceptor> {
        let origin = site.origin;
        let (map, kind, namespace, display) = if namespaced {
            (
                &self.namespaced_interceptors,
                Kind::Interceptor,
                site.namespace,
                format!("Interceptor/{}/{name}", site.namespace),
            )
        } else {
            (
                &self.cluster_interceptors,
                Kind::ClusterInterceptor,
                "",
                format!("ClusterInterceptor/{name}"),
            )
        };
        let target = match self.lookup(map, kind, namespace, name) {
            Lookup::Found(target) => target.clone(),
            Lookup::Invalid => {
                let scope = namespaced.then_some(namespace);
                return self.dangling(origin, name_field, kind, scope, name, true);
            }
            Lookup::Missing => {
                let scope = namespaced.then_some(namespace);
                return self.dangling(origin, name_field, kind, scope, name, false);
            }
        };
        let params: Vec<InterceptorParamDoc> = match params {
            Some(params) => self.parse_json(origin, params_field, params)?,
            None => Vec::new(),
        };
        let params: Map<String, JsonValue> = params
            .into_iter()
            .map(|param| (param.name, param.value))
            .collect();
        Some(Interceptor::Webhook(Arc::new(WebhookInterceptor {
            name: display,
            protocol: WebhookProtocol::Tekton,
            url: target.url,
            ca_bundle: target.ca_bundle,
            params,
            headers: Vec::new(),
        })))
    }

    /// The legacy `webhook: {objectRef | url, header}` form: a Service (`http`, port 80, in
    /// the trigger's namespace unless it names one) or a URL.
    pub(super) fn legacy_webhook(
        &mut self,
        site: &Site<'_>,
        field: &str,
        value: &JsonValue,
    ) -> Option<Interceptor> {
        let origin = site.origin;
        let doc: WebhookDoc = self.parse_json(origin, field, value)?;
        let url = match (non_empty(doc.url.as_deref()), &doc.object_ref) {
            (Some(text), _) => match url::Url::parse(text) {
                Ok(url) => url,
                Err(error) => {
                    self.issue(
                        origin,
                        &join_field(field, "url"),
                        format!("`{text}` is not a URL: {error}; {TRIGGER_SKIPPED}"),
                    );
                    return None;
                }
            },
            (None, Some(object)) => {
                let is_service = object.kind.as_deref() == Some("Service")
                    && matches!(object.api_version.as_deref(), Some("v1") | None);
                if !is_service {
                    self.issue(
                        origin,
                        &join_field(field, "objectRef"),
                        format!("must name a `v1` `Service`; {TRIGGER_SKIPPED}"),
                    );
                    return None;
                }
                let namespace = non_empty(object.namespace.as_deref()).unwrap_or(site.namespace);
                let text = format!("http://{}.{namespace}.svc/", object.name);
                match url::Url::parse(&text) {
                    Ok(url) => url,
                    Err(error) => {
                        self.issue(
                            origin,
                            &join_field(field, "objectRef"),
                            format!("does not make a URL ({text}): {error}; {TRIGGER_SKIPPED}"),
                        );
                        return None;
                    }
                }
            }
            (None, None) => {
                self.issue(
                    origin,
                    field,
                    format!("needs an `objectRef` or a `url`; {TRIGGER_SKIPPED}"),
                );
                return None;
            }
        };
        if let Err(problem) = self.check_destination(&url) {
            self.issue(origin, field, format!("{problem}; {TRIGGER_SKIPPED}"));
            return None;
        }
        let headers = doc
            .header
            .into_iter()
            .map(|param| {
                let values = match param.value {
                    StringOrList::One(value) => vec![value],
                    StringOrList::Many(values) => values,
                };
                (param.name, values)
            })
            .collect();
        Some(Interceptor::Webhook(Arc::new(WebhookInterceptor {
            name: "webhook".to_owned(),
            protocol: WebhookProtocol::Legacy,
            url,
            ca_bundle: None,
            params: Map::new(),
            headers,
        })))
    }
}

/// An expression shortened for a message: its first line, at most 80 characters.
fn abbreviate(source: &str) -> String {
    let line = source.lines().next().unwrap_or_default();
    let mut short: String = line.chars().take(80).collect();
    if short.len() < source.len() {
        short.push('…');
    }
    short
}
