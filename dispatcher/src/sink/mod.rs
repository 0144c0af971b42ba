//! Where rendered objects go: the Kubernetes API, or a directory of YAML files.

pub mod dir;
pub mod kube;

use std::error::Error as StdError;
use std::time::Duration;

use serde_json::Value;
use sluice_runtime::retry::FailureKind;

/// A create (or read) that did not happen, classified where it failed: API 5xx, 429, 408,
/// timeouts and connection errors are transient; refusals (403, 422, an invalid object)
/// are permanent.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub kind: FailureKind,
    /// HTTP status from the API, when there was an answer.
    pub status: Option<u16>,
    /// How long the API asked us to wait (429 `Retry-After`).
    pub retry_after: Option<Duration>,
    /// What happened, with its cause.
    pub message: String,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl SinkError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            retry_after: None,
            message: message.into(),
            source: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Permanent, message)
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Transient, message)
    }

    /// The same, keeping `source` as its cause.
    pub fn caused_by(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

/// HTTP status of a create that met an existing object.
pub const CONFLICT: u16 = 409;

/// An object that was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub kind: String,
    pub name: String,
    /// It was created by an earlier delivery of the same event.
    pub existed: bool,
}

/// The configured destination.
pub enum Sink {
    Kube(kube::KubeSink),
    Dir(dir::DirSink),
}

impl Sink {
    /// Creates `object` in `namespace` as `user` (an impersonated service account).
    pub async fn create(
        &self,
        object: &Value,
        namespace: &str,
        user: &str,
    ) -> Result<Created, SinkError> {
        match self {
            Self::Kube(sink) => sink.create(object, namespace, user).await,
            Self::Dir(sink) => sink.create(object, namespace).await,
        }
    }

    /// The object of `object`'s kind named `name` in `namespace`, if it exists. Read with
    /// the dispatcher's own identity: it only compares idempotency keys.
    pub async fn get(
        &self,
        object: &Value,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, SinkError> {
        match self {
            Self::Kube(sink) => sink.get(object, namespace, name).await,
            Self::Dir(sink) => {
                let kind = str_field(object, "/kind").unwrap_or_default();
                sink.get(kind, namespace, name).await
            }
        }
    }
}

/// `apiVersion` split into group and version (`v1` is the core group `""`).
pub(crate) fn group_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

pub(crate) fn str_field<'v>(object: &'v Value, pointer: &str) -> Option<&'v str> {
    object.pointer(pointer).and_then(Value::as_str)
}
