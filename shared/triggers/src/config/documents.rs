//! The serde shapes of the documents Sluice reads: Tekton Triggers resources (`v1beta1` and
//! `v1alpha1`, which share these shapes) and Kubernetes `Secret`s.
//!
//! Unknown fields are ignored, as the Kubernetes API server ignores them on read, so YAML
//! written for Tekton loads unchanged. Fields that would change which triggers run are
//! captured so that [`super::resolve`] can refuse them instead of ignoring them.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// `metadata` of any object. `name` and `namespace` are checked from the raw document before
/// this is parsed; only what resolution needs is kept.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "object metadata")]
pub(super) struct ObjectMeta {
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub annotations: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, Scalar>,
}

/// `triggers.tekton.dev` `EventListener`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an EventListener")]
pub(super) struct EventListenerDoc {
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_as_default")]
    pub spec: EventListenerSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an EventListener spec")]
pub(super) struct EventListenerSpec {
    #[serde(default)]
    pub service_account_name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub triggers: Vec<TriggerSpecDoc>,
    /// Selects Triggers from other namespaces: not supported, refused unless empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub namespace_selector: NamespaceSelector,
    /// Selects Triggers by label; any non-null selector (even `{}`, which selects every
    /// Trigger of the namespace) changes which triggers run: not supported, refused.
    #[serde(default)]
    pub label_selector: Option<LabelSelectorDoc>,
    /// Not supported, refused unless empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub trigger_groups: Vec<TriggerGroupDoc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a namespace selector")]
pub(super) struct NamespaceSelector {
    #[serde(default, deserialize_with = "null_as_default")]
    pub match_names: Vec<String>,
}

/// `triggers.tekton.dev` `Trigger`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a Trigger")]
pub(super) struct TriggerDoc {
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Option<ObjectMeta>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub spec: TriggerSpecDoc,
}

/// An entry of an EventListener's `spec.triggers`, and the `spec` of a `Trigger` (the same
/// fields; `triggerRef` only means something in a listener and is ignored in a Trigger).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a trigger")]
pub(super) struct TriggerSpecDoc {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub trigger_ref: Option<String>,
    #[serde(default)]
    pub service_account_name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub bindings: Vec<BindingDoc>,
    #[serde(default)]
    pub template: Option<TemplateRefDoc>,
    /// Kept as raw objects: an interceptor with a key Sluice does not know must make its
    /// trigger invalid (fail closed), not be ignored as an unknown field.
    #[serde(default, deserialize_with = "null_as_default")]
    pub interceptors: Vec<JsonText<serde_json::Map<String, serde_json::Value>>>,
}

/// An entry of a trigger's `bindings`: `ref` (+ `kind`), inline `name` + `value`, or
/// (v1alpha1, deprecated) a bare `name` meaning a reference.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a binding")]
pub(super) struct BindingDoc {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<Scalar>,
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
}

/// A trigger's `template`: `ref`, (v1alpha1, deprecated) `name`, or an inline `spec`, with an
/// optional `apiVersion` naming the template's.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a template reference")]
pub(super) struct TemplateRefDoc {
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub spec: Option<TemplateSpecDoc>,
}

/// `triggers.tekton.dev` `TriggerBinding` and `ClusterTriggerBinding`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a TriggerBinding")]
pub(super) struct TriggerBindingDoc {
    #[serde(default, deserialize_with = "null_as_default")]
    pub spec: TriggerBindingSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a TriggerBinding spec")]
pub(super) struct TriggerBindingSpec {
    #[serde(default, deserialize_with = "null_as_default")]
    pub params: Vec<BindingParamDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a binding param")]
pub(super) struct BindingParamDoc {
    pub name: String,
    pub value: Scalar,
}

/// `triggers.tekton.dev` `TriggerTemplate`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a TriggerTemplate")]
pub(super) struct TriggerTemplateDoc {
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_as_default")]
    pub spec: TemplateSpecDoc,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a TriggerTemplate spec")]
pub(super) struct TemplateSpecDoc {
    #[serde(default, deserialize_with = "null_as_default")]
    pub params: Vec<ParamSpecDoc>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub resourcetemplates: Vec<JsonText<serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a template param")]
pub(super) struct ParamSpecDoc {
    pub name: String,
    #[serde(default)]
    pub description: Option<Scalar>,
    #[serde(default)]
    pub default: Option<Scalar>,
}

/// The `ref` of a v1beta1 interceptor.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an interceptor reference")]
pub(super) struct InterceptorRefDoc {
    pub name: String,
    #[serde(default)]
    pub kind: Option<String>,
}

/// An entry of a v1beta1 interceptor's `params`; the value may be any JSON.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an interceptor param")]
pub(super) struct InterceptorParamDoc {
    pub name: String,
    #[serde(default)]
    pub value: serde_json::Value,
}

/// The v1alpha1 shorthand interceptors `github:`, `gitlab:` and `bitbucket:`, which share
/// these fields. Unknown keys are refused: each could be a check.
#[derive(Debug, Deserialize)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    expecting = "an interceptor with `secretRef` and `eventTypes`"
)]
pub(super) struct ShorthandDoc {
    #[serde(default)]
    pub secret_ref: Option<SecretRefDoc>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub event_types: Vec<String>,
}

/// The v1beta1 GitHub interceptor's `addChangedFiles` param.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an addChangedFiles setting")]
pub(super) struct AddChangedFilesDoc {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub personal_access_token: Option<SecretRefDoc>,
}

/// The v1beta1 GitHub interceptor's `githubOwners` param; `checkType` is read apart, to
/// name the accepted values when it is wrong.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a githubOwners setting")]
pub(super) struct GithubOwnersDoc {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub personal_access_token: Option<SecretRefDoc>,
    #[serde(default)]
    pub check_type: Option<serde_json::Value>,
}

/// A Kubernetes label selector: every `matchLabels` pair and every `matchExpressions`
/// requirement must hold. An empty selector selects everything.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a label selector")]
pub(super) struct LabelSelectorDoc {
    #[serde(default, deserialize_with = "null_as_default")]
    pub match_labels: BTreeMap<String, Scalar>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub match_expressions: Vec<LabelRequirementDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a label selector requirement")]
pub(super) struct LabelRequirementDoc {
    pub key: String,
    pub operator: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub values: Vec<Scalar>,
}

/// `spec.triggerGroups[]` of an EventListener: interceptors run once, then the Triggers the
/// selector picks.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a trigger group")]
pub(super) struct TriggerGroupDoc {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub interceptors: Vec<JsonText<serde_json::Map<String, serde_json::Value>>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub trigger_selector: TriggerSelectorDoc,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a trigger selector")]
pub(super) struct TriggerSelectorDoc {
    #[serde(default, deserialize_with = "null_as_default")]
    pub namespace_selector: NamespaceSelector,
    #[serde(default)]
    pub label_selector: Option<LabelSelectorDoc>,
}

/// `triggers.tekton.dev` `ClusterInterceptor` and namespaced `Interceptor`: where a webhook
/// interceptor runs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an interceptor")]
pub(super) struct InterceptorDoc {
    #[serde(default, deserialize_with = "null_as_default")]
    pub spec: InterceptorSpecDoc,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an interceptor spec")]
pub(super) struct InterceptorSpecDoc {
    #[serde(default, deserialize_with = "null_as_default")]
    pub client_config: ClientConfigDoc,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a clientConfig")]
pub(super) struct ClientConfigDoc {
    /// Base64 of a PEM bundle, as Kubernetes encodes `[]byte` fields.
    #[serde(default)]
    pub ca_bundle: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub service: Option<ServiceRefDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a service reference")]
pub(super) struct ServiceRefDoc {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

/// The v1alpha1 `cel:` interceptor.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a cel interceptor")]
pub(super) struct CelDoc {
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub overlays: Vec<CelOverlayDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a cel overlay")]
pub(super) struct CelOverlayDoc {
    pub key: String,
    pub expression: String,
}

/// The legacy `webhook:` interceptor.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a webhook interceptor")]
pub(super) struct WebhookDoc {
    #[serde(default)]
    pub object_ref: Option<ObjectRefDoc>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub header: Vec<HeaderParamDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an object reference")]
pub(super) struct ObjectRefDoc {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A header the legacy webhook interceptor sets: one value or a list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a header param")]
pub(super) struct HeaderParamDoc {
    pub name: String,
    pub value: StringOrList,
}

#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
pub(super) enum StringOrList {
    One(String),
    Many(Vec<String>),
}

/// `secretRef` of an interceptor: a key of a Secret in the listener's namespace.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a secret reference")]
pub(super) struct SecretRefDoc {
    #[serde(default)]
    pub secret_name: String,
    #[serde(default)]
    pub secret_key: String,
    /// Tekton's optional `namespace`: only the listener's own is allowed.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// Kubernetes `v1` `Secret`. Values are only ever decoded, never shown.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a Secret")]
pub(super) struct SecretDoc {
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub string_data: BTreeMap<String, String>,
}

impl fmt::Debug for SecretDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretDoc")
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .field("string_data", &self.string_data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A YAML scalar read as a string: Tekton's string fields are often written unquoted
/// (`value: 3`, `default: true`), so numbers and booleans are taken in their text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        // YAML spells the special values `.inf`, `-.inf` and `.nan`.
        let text = if v.is_nan() {
            ".nan".to_owned()
        } else if v.is_infinite() {
            if v > 0.0 { ".inf" } else { "-.inf" }.to_owned()
        } else {
            v.to_string()
        };
        Ok(Scalar(text))
    }
}

/// A JSON value of type `T`, checked while the document is read and then kept as its
/// compact text until it is needed.
///
/// A `serde_json::Value` object is a B-tree node of about 600 bytes however few keys it
/// has, so thousands of templates and interceptors held as values take tens of MB while
/// the configuration loads. As text each takes its length, and it is parsed again (it
/// cannot fail: it is the output of `serde_json`) only when it is resolved.
#[derive(Debug)]
pub(super) struct JsonText<T> {
    text: Box<str>,
    parsed: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> JsonText<T> {
    /// The text, compact JSON.
    pub(super) fn as_str(&self) -> &str {
        &self.text
    }

    /// The value, parsed again from the text.
    pub(super) fn parse(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.text)
    }
}

impl<'de, T: Deserialize<'de> + Serialize> Deserialize<'de> for JsonText<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = T::deserialize(deserializer)?;
        let text = serde_json::to_string(&value).map_err(de::Error::custom)?;
        Ok(Self {
            text: text.into_boxed_str(),
            parsed: PhantomData,
        })
    }
}

/// Kubernetes reads an explicit `null` like an absent field.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
