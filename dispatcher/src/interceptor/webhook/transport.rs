//! Connections to interceptors: pooled, kept alive, HTTP/1.1, redirects never followed. One
//! pool for plain HTTP, one for HTTPS with the platform's root certificates (read on first
//! use), and one per distinct `caBundle`; TLS 1.2 and 1.3 with the ring provider.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use sluice_triggers::catalogue::WebhookInterceptor;

use super::retry::Failure;

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Distinct `caBundle`s whose clients are kept; the cache starts over when it is full (only
/// configuration reloads with ever-new bundles could get there).
const MAX_CACHED_BUNDLES: usize = 64;

/// A pooled HTTP/1.1 client, plain or TLS.
#[derive(Clone)]
pub(in crate::interceptor) enum Transport {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

impl Transport {
    pub fn request(&self, request: Request<Full<Bytes>>) -> ResponseFuture {
        match self {
            Self::Plain(client) => client.request(request),
            Self::Tls(client) => client.request(request),
        }
    }
}

/// Every pool a client uses.
pub(in crate::interceptor) struct Pools {
    /// Bounds connecting, as it bounds a whole attempt.
    timeout: Duration,
    /// For `http` URLs.
    plain: Transport,
    /// For `https` URLs without a `caBundle`; built on first use (it reads the platform's
    /// certificates), or why it could not be.
    platform: tokio::sync::OnceCell<Result<Transport, Failure>>,
    /// For `https` URLs with a `caBundle`, by the bundle's bytes.
    bundles: Mutex<HashMap<Arc<[u8]>, Transport>>,
}

impl Pools {
    /// Nothing is connected or read until the first request.
    pub fn new(timeout: Duration) -> Self {
        let plain = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(http_connector(timeout));
        Self {
            timeout,
            plain: Transport::Plain(plain),
            platform: tokio::sync::OnceCell::new(),
            bundles: Mutex::new(HashMap::new()),
        }
    }

    /// The pooled client for the interceptor's scheme and `caBundle`; a failure is permanent.
    pub async fn for_interceptor(
        &self,
        interceptor: &WebhookInterceptor,
    ) -> Result<Transport, Failure> {
        match interceptor.url.scheme() {
            "http" => Ok(self.plain.clone()),
            "https" => match &interceptor.ca_bundle {
                Some(bundle) => self.bundle(bundle),
                None => self.platform().await,
            },
            other => Err(Failure::permanent(format!(
                "unsupported URL scheme `{other}` (only http and https are)"
            ))),
        }
    }

    /// The pooled client for `http` or `https` (the platform's root certificates); another
    /// scheme is a permanent failure.
    pub async fn for_scheme(&self, scheme: &str) -> Result<Transport, Failure> {
        match scheme {
            "http" => Ok(self.plain.clone()),
            "https" => self.platform().await,
            other => Err(Failure::permanent(format!(
                "unsupported URL scheme `{other}` (only http and https are)"
            ))),
        }
    }

    fn bundle(&self, bundle: &Arc<[u8]>) -> Result<Transport, Failure> {
        let mut cache = self.bundles.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(transport) = cache.get(bundle) {
            return Ok(transport.clone());
        }
        let roots = bundle_roots(bundle)?;
        let config = tls_builder()?.with_root_certificates(roots);
        let transport = tls_transport(config.with_no_client_auth(), self.timeout);
        if cache.len() >= MAX_CACHED_BUNDLES {
            cache.clear();
        }
        cache.insert(Arc::clone(bundle), transport.clone());
        Ok(transport)
    }

    async fn platform(&self) -> Result<Transport, Failure> {
        let timeout = self.timeout;
        self.platform
            .get_or_init(|| async move {
                // Reading the platform's certificates is blocking file I/O.
                let built = tokio::task::spawn_blocking(move || -> Result<Transport, Failure> {
                    let config = tls_builder()?
                        .with_native_roots()
                        .map_err(|error| {
                            Failure::permanent(format!(
                                "no usable platform root certificates: {error}"
                            ))
                        })?
                        .with_no_client_auth();
                    Ok(tls_transport(config, timeout))
                })
                .await
                .unwrap_or_else(|error| {
                    Err(Failure::permanent(format!(
                        "loading platform root certificates failed: {error}"
                    )))
                });
                if let Err(failure) = &built {
                    tracing::warn!(error = %failure.message, "https webhook interceptors without a caBundle cannot be called");
                }
                built
            })
            .await
            .clone()
    }
}

/// The TCP connector of every client: no Nagle delay, connecting bounded by the attempt's
/// time limit; `https` URLs are let through to the TLS layer.
fn http_connector(timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(timeout));
    http
}

/// TLS 1.2 and 1.3 with the ring provider, whatever the process default is.
fn tls_builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, Failure> {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| Failure::permanent(format!("TLS setup failed: {error}")))
}

fn tls_transport(config: ClientConfig, timeout: Duration) -> Transport {
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(http_connector(timeout));
    Transport::Tls(
        Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector),
    )
}

/// The certificates of a PEM `caBundle`; other PEM sections (keys, CRLs) are ignored.
fn bundle_roots(bundle: &[u8]) -> Result<RootCertStore, Failure> {
    let mut roots = RootCertStore::empty();
    for (index, certificate) in CertificateDer::pem_slice_iter(bundle).enumerate() {
        let certificate = certificate.map_err(|error| {
            Failure::permanent(format!(
                "caBundle is not valid PEM (certificate {index}): {error}"
            ))
        })?;
        roots.add(certificate).map_err(|error| {
            Failure::permanent(format!(
                "caBundle certificate {index} is not a valid CA certificate: {error}"
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(Failure::permanent("caBundle holds no PEM certificate"));
    }
    Ok(roots)
}
