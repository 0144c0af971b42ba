//! Creates objects through the Kubernetes API, impersonating the tenant's service account so
//! the API server's RBAC decides what a tenant may create.

use std::time::Duration;

use http::HeaderValue;
use kube::Resource;
use kube::api::{ApiResource, DynamicObject, GetParams, GroupVersionKind, PostParams};
use kube::core::Request;
use serde::Deserialize;
use serde_json::Value;

use sluice_runtime::retry::FailureKind;

use super::{Created, SinkError, group_version, str_field};

/// Creates objects with one shared client; the identity is chosen per request.
pub struct KubeSink {
    client: kube::Client,
    timeout: Duration,
}

impl KubeSink {
    /// `timeout` bounds each create request.
    pub fn new(client: kube::Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    pub async fn create(
        &self,
        object: &Value,
        namespace: &str,
        user: &str,
    ) -> Result<Created, SinkError> {
        let resource = api_resource(object)?;
        let kind = resource.kind.clone();
        let url = DynamicObject::url_path(&resource, Some(namespace));
        let body = serde_json::to_vec(object).map_err(|e| {
            SinkError::permanent(format!("the object cannot be encoded: {e}")).caused_by(e)
        })?;
        let mut request = Request::new(url)
            .create(&PostParams::default(), body)
            .map_err(|e| {
                SinkError::permanent(format!("the request cannot be built: {e}")).caused_by(e)
            })?;
        let impersonate = HeaderValue::from_str(user).map_err(|_| {
            SinkError::permanent("the service account name is not a valid header value")
        })?;
        request
            .headers_mut()
            .insert("Impersonate-User", impersonate);

        let created: CreatedObject =
            tokio::time::timeout(self.timeout, self.client.request(request))
                .await
                .map_err(|_| {
                    SinkError::transient(format!("create timed out after {:?}", self.timeout))
                })?
                .map_err(classify)?;
        Ok(Created {
            kind,
            name: created.metadata.name.unwrap_or_default(),
            existed: false,
        })
    }

    /// The object of `object`'s kind named `name` in `namespace`, or `None` (404).
    pub async fn get(
        &self,
        object: &Value,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, SinkError> {
        let resource = api_resource(object)?;
        let request = Request::new(DynamicObject::url_path(&resource, Some(namespace)))
            .get(name, &GetParams::default())
            .map_err(|e| {
                SinkError::permanent(format!("the request cannot be built: {e}")).caused_by(e)
            })?;
        let answer = tokio::time::timeout(self.timeout, self.client.request::<Value>(request))
            .await
            .map_err(|_| SinkError::transient(format!("get timed out after {:?}", self.timeout)))?;
        match answer {
            Ok(found) => Ok(Some(found)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(error) => Err(classify(error)),
        }
    }
}

/// What a create's answer is read for: the object's name. The rest of the answer (the whole
/// object as stored) is skipped without being built.
#[derive(Deserialize)]
struct CreatedObject {
    #[serde(default)]
    metadata: CreatedMeta,
}

#[derive(Default, Deserialize)]
struct CreatedMeta {
    #[serde(default)]
    name: Option<String>,
}

/// The API resource of an object, from its `apiVersion` and `kind`.
fn api_resource(object: &Value) -> Result<ApiResource, SinkError> {
    let api_version = str_field(object, "/apiVersion")
        .ok_or_else(|| SinkError::permanent("the object has no apiVersion"))?;
    let kind =
        str_field(object, "/kind").ok_or_else(|| SinkError::permanent("the object has no kind"))?;
    let (group, version) = group_version(api_version);
    Ok(ApiResource::from_gvk(&GroupVersionKind::gvk(
        group, version, kind,
    )))
}

/// Decides retry or refuse from the error's kind and status code, never from its text.
fn classify(error: kube::Error) -> SinkError {
    match error {
        kube::Error::Api(status) => {
            let code = status.code;
            let transient = code == 429 || code >= 500 || code == 408;
            let retry_after = status
                .details
                .as_ref()
                .map(|d| d.retry_after_seconds)
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(u64::from(s)));
            let kind = if transient {
                FailureKind::Transient
            } else {
                FailureKind::Permanent
            };
            let message = format!(
                "the API answered {code} {}: {}",
                status.reason, status.message
            );
            let mut error = SinkError::new(kind, message);
            error.status = Some(code);
            error.retry_after = retry_after;
            error.caused_by(kube::Error::Api(status))
        }
        kube::Error::SerdeError(e) => {
            SinkError::permanent(format!("unexpected API answer: {e}")).caused_by(e)
        }
        kube::Error::BuildRequest(e) => {
            SinkError::permanent(format!("the request cannot be built: {e}")).caused_by(e)
        }
        other => {
            SinkError::transient(format!("the API could not be reached: {other}")).caused_by(other)
        }
    }
}
