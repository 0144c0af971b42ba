//! The HTTP client the OTLP exporter sends spans with: hyper's, as the rest of the workspace
//! uses it (TLS through rustls with the platform's roots for `https` collectors).
//!
//! The SDK's batch processor exports from a thread of its own, outside the Tokio runtime;
//! each request is therefore run as a task on the runtime the exporter was built in, and
//! awaited from that thread. A request never outlives the exporter's timeout, body included.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use opentelemetry_http::{HttpClient, HttpError};
use rustls::{ClientConfig, RootCertStore};

/// A collector's answer is a small protobuf message; anything larger is not read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Idle connections to the collector are closed after this.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends the exporter's requests on `runtime`, each bounded by `timeout`.
#[derive(Clone)]
pub(super) struct CollectorClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
}

impl std::fmt::Debug for CollectorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectorClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl CollectorClient {
    /// A client for `http` and `https` collectors; the platform's root certificates are read
    /// only when `tls` (the endpoint is `https`).
    pub(super) fn new(
        runtime: tokio::runtime::Handle,
        timeout: Duration,
        tls: bool,
    ) -> Result<Self, String> {
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|error| format!("TLS setup failed: {error}"))?;
        let config = if tls {
            builder
                .with_native_roots()
                .map_err(|error| format!("no usable platform root certificates: {error}"))?
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth()
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Ok(Self {
            client,
            runtime,
            timeout,
        })
    }
}

/// Why a request to the collector got no answer.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("the collector did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the request to the collector failed")]
    Request(#[source] hyper_util::client::legacy::Error),
    #[error("the collector's answer could not be read")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the request was cancelled: the runtime is shutting down")]
    Cancelled(#[source] tokio::task::JoinError),
}

#[async_trait::async_trait]
impl HttpClient for CollectorClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, Full::new(body));
        let client = self.client.clone();
        let timeout = self.timeout;
        let exchange = async move {
            let response = client.request(request).await.map_err(SendError::Request)?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(SendError::Body)?
                .to_bytes();
            Ok::<_, SendError>(Response::from_parts(parts, body))
        };
        let task = self.runtime.spawn(async move {
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or(Err(SendError::Timeout(timeout)))
        });
        let answer = task.await.map_err(SendError::Cancelled)??;
        Ok(answer)
    }
}
