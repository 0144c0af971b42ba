//! The webhook interceptor client: calls a `ClusterInterceptor`, a namespaced `Interceptor`
//! or a legacy `webhook:` interceptor over HTTP(S) and turns its answer into a decision.
//!
//! Two protocols are spoken (see [`WebhookProtocol`]):
//!
//! - [`WebhookProtocol::Tekton`]: Tekton Triggers' `InterceptorRequest` JSON is POSTed and an
//!   `InterceptorResponse` JSON is expected back with HTTP 200. It is wire-compatible with
//!   interceptors written against Tekton's Go types.
//! - [`WebhookProtocol::Legacy`]: the event's body and headers are forwarded as they are; HTTP
//!   200 continues and its body and headers replace the event's, any other 2xx or 4xx stops
//!   the trigger.
//!
//! Failures are classified by what went wrong, never by message text: a failure that may go
//! away by itself (no connection, DNS, a timeout, HTTP 5xx, 408, 429) is retried inside
//! [`WebhookClient::call`] with exponential backoff and jitter, and reported as
//! [`WebhookErrorKind::Transient`] when every attempt failed, so that the event is redelivered
//! later. Anything that the same request would hit again (a refused TLS certificate, an
//! unexpected status, an invalid or oversize answer, a bad configuration) is
//! [`WebhookErrorKind::Permanent`].
//!
//! Redirects are never followed. Connections are pooled and kept alive: one pool for plain
//! HTTP, one for HTTPS with the platform's root certificates, and one per distinct `caBundle`.
//!
//! Neither errors nor logs ever contain the event body, and the interceptor's URL appears in
//! them without user information or query.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use sluice_triggers::catalogue::{WebhookInterceptor, WebhookProtocol};
use sluice_triggers::headers::Headers;

#[cfg(test)]
mod tests;

/// `User-Agent` of every request (the legacy protocol keeps the event's own when it has one).
const USER_AGENT: &str = concat!("sluice-dispatcher/", env!("CARGO_PKG_VERSION"));

/// How much of an error response's body is quoted in messages.
const SNIPPET_BYTES: usize = 1024;

/// How much of an interceptor's own `status.message` is quoted.
const MESSAGE_CHARS: usize = 1024;

/// Backoff never grows past this, whatever the settings.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Distinct `caBundle`s whose clients are kept; the cache starts over when it is full (only
/// configuration reloads with ever-new bundles could get there).
const MAX_CACHED_BUNDLES: usize = 64;

/// Headers of the event that are never forwarded to a legacy interceptor: hop-by-hop headers
/// (they describe the sender's connection, not the event), `Host` and `Content-Length` (set
/// for the new request), `Expect`, and `Accept-Encoding` (a compressed answer could not be
/// used as the new body).
const NOT_FORWARDED: &[&str] = &[
    "accept-encoding",
    "connection",
    "content-length",
    "expect",
    "host",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// Response headers of a legacy interceptor that do not become event headers: they describe
/// the connection to the interceptor.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// How the client calls interceptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Limit for one attempt, from connecting to the last byte of the answer. Default 10 s.
    pub timeout: Duration,
    /// Attempts per call, the first included; `0` counts as `1`. Default 3.
    pub attempts: u32,
    /// Wait before the second attempt; doubled before each following one (up to a minute),
    /// and jittered: the actual wait is between half of it and all of it. A `Retry-After`
    /// in seconds on a 429 or 503 answer replaces it, capped at [`Self::timeout`].
    /// Default 200 ms.
    pub backoff: Duration,
    /// Largest response body accepted; a larger one is a permanent failure. Default 10 MiB.
    pub max_response_bytes: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(200),
            max_response_bytes: 10 * 1024 * 1024,
        }
    }
}

/// The event as a webhook interceptor sees it.
///
/// Its `Debug` shows the body's length, not the body.
#[derive(Clone, Copy)]
pub struct WebhookCall<'a> {
    /// The event body, exact bytes.
    pub body: &'a [u8],
    /// The event's headers (credentials already removed by ingest).
    pub headers: &'a Headers,
    /// Extensions added by the interceptors before this one.
    pub extensions: &'a Map<String, Value>,
    /// The URL the event was received on (Tekton's `context.event_url`).
    pub event_url: &'a str,
    /// The event's ID (`context.event_id`).
    pub event_id: &'a str,
    /// `namespaces/NAMESPACE/triggers/NAME` (`context.trigger_id`).
    pub trigger_id: &'a str,
}

/// What the interceptor decided.
///
/// Its `Debug` shows the extensions' keys and the replacement body's length, not their
/// content (which may come from the event body).
#[derive(Clone, PartialEq)]
pub enum WebhookOutcome {
    /// The trigger goes on.
    Continue {
        /// Extensions to merge into the chain's (a key set here wins over an earlier one).
        /// Always empty for the legacy protocol.
        extensions: Map<String, Value>,
        /// Legacy protocol only: the body and headers that replace the event's from here on
        /// (response headers describing the connection left out). `None` for Tekton's.
        replaced: Option<(Bytes, Headers)>,
    },
    /// The interceptor stopped the trigger; it does not run for this event.
    Stop {
        /// Why, naming the interceptor and quoting its status and message.
        message: String,
    },
}

impl fmt::Debug for WebhookCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookCall")
            .field("body_len", &self.body.len())
            .field("event_id", &self.event_id)
            .field("trigger_id", &self.trigger_id)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for WebhookOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Continue {
                extensions,
                replaced,
            } => f
                .debug_struct("Continue")
                .field("extension_keys", &extensions.keys().collect::<Vec<_>>())
                .field(
                    "replaced_body_len",
                    &replaced.as_ref().map(|(body, _)| body.len()),
                )
                .finish(),
            Self::Stop { message } => f.debug_struct("Stop").field("message", message).finish(),
        }
    }
}

/// Whether a failed call may succeed if the event is delivered again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookErrorKind {
    /// Every attempt failed for a reason that may go away (the interceptor unreachable,
    /// overloaded or too slow): redeliver the event later.
    Transient,
    /// The same call would fail again (configuration, certificate, protocol): do not retry.
    Permanent,
}

/// A call that did not get a decision from the interceptor.
///
/// The message names the interceptor and its URL (without user information or query) and
/// says what went wrong; it never contains the event body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WebhookError {
    pub kind: WebhookErrorKind,
    pub message: String,
}

impl WebhookError {
    /// Whether redelivering the event later may help.
    pub fn is_transient(&self) -> bool {
        self.kind == WebhookErrorKind::Transient
    }
}

/// Calls webhook interceptors. Cheap to clone: clones share their connection pools.
#[derive(Clone)]
pub struct WebhookClient {
    inner: Arc<Inner>,
}

struct Inner {
    settings: WebhookSettings,
    /// For `http` URLs.
    plain: Transport,
    /// For `https` URLs without a `caBundle`; built on first use (it reads the platform's
    /// certificates), or why it could not be.
    platform: tokio::sync::OnceCell<Result<Transport, String>>,
    /// For `https` URLs with a `caBundle`, by the bundle's bytes.
    bundles: Mutex<HashMap<Arc<[u8]>, Transport>>,
}

impl fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookClient")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// A pooled HTTP/1.1 client, plain or TLS.
#[derive(Clone)]
enum Transport {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

impl Transport {
    fn request(&self, request: Request<Full<Bytes>>) -> ResponseFuture {
        match self {
            Self::Plain(client) => client.request(request),
            Self::Tls(client) => client.request(request),
        }
    }
}

/// What one attempt ended with, when not with a decision.
enum Failure {
    /// Worth another attempt.
    Retryable {
        message: String,
        /// From `Retry-After` on a 429 or 503.
        retry_after: Option<Duration>,
    },
    Permanent(String),
}

impl Failure {
    fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }
}

/// A request ready to be sent, once per attempt.
struct Prepared {
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl WebhookClient {
    /// A client with the given settings. Nothing is connected or read until the first call.
    pub fn new(settings: WebhookSettings) -> Self {
        let plain = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(http_connector(settings.timeout));
        Self {
            inner: Arc::new(Inner {
                settings,
                plain: Transport::Plain(plain),
                platform: tokio::sync::OnceCell::new(),
                bundles: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The settings this client was built with.
    pub fn settings(&self) -> &WebhookSettings {
        &self.inner.settings
    }

    /// Calls `interceptor` for one event and returns its decision.
    ///
    /// Retryable failures are retried up to [`WebhookSettings::attempts`] times in all before
    /// a [`WebhookErrorKind::Transient`] error is returned; a permanent failure returns at
    /// once. A stop decision is an [`WebhookOutcome::Stop`], not an error.
    pub async fn call(
        &self,
        interceptor: &WebhookInterceptor,
        call: &WebhookCall<'_>,
    ) -> Result<WebhookOutcome, WebhookError> {
        let target = redacted_url(interceptor);
        let permanent = |message: String| WebhookError {
            kind: WebhookErrorKind::Permanent,
            message: format!("interceptor {} ({target}): {message}", interceptor.name),
        };
        let prepared = prepare(interceptor, call).map_err(permanent)?;
        let transport = self.transport(interceptor).await.map_err(permanent)?;

        let settings = &self.inner.settings;
        let attempts = settings.attempts.max(1);
        let mut backoff = settings.backoff.min(MAX_BACKOFF);
        let mut attempt = 1;
        loop {
            let result = tokio::time::timeout(
                settings.timeout,
                self.attempt(&transport, &prepared, interceptor),
            )
            .await
            .unwrap_or_else(|_elapsed| {
                Err(Failure::retryable(format!(
                    "no complete answer within {:?}",
                    settings.timeout
                )))
            });
            let (message, retry_after) = match result {
                Ok(outcome) => return Ok(outcome),
                Err(Failure::Permanent(message)) => return Err(permanent(message)),
                Err(Failure::Retryable {
                    message,
                    retry_after,
                }) => (message, retry_after),
            };
            if attempt >= attempts {
                return Err(WebhookError {
                    kind: WebhookErrorKind::Transient,
                    message: format!(
                        "interceptor {} ({target}): {message} (gave up after {attempts} attempt{})",
                        interceptor.name,
                        if attempts == 1 { "" } else { "s" },
                    ),
                });
            }
            let delay = retry_after.map_or_else(|| jittered(backoff), |d| d.min(settings.timeout));
            tracing::debug!(
                interceptor = %interceptor.name,
                attempt,
                failure = %message,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "webhook interceptor attempt failed, retrying"
            );
            tokio::time::sleep(delay).await;
            backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }

    /// One request and its answer, without retries or time limit.
    async fn attempt(
        &self,
        transport: &Transport,
        prepared: &Prepared,
        interceptor: &WebhookInterceptor,
    ) -> Result<WebhookOutcome, Failure> {
        let mut request = Request::new(Full::new(prepared.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = prepared.uri.clone();
        *request.headers_mut() = prepared.headers.clone();

        let response = transport
            .request(request)
            .await
            .map_err(|error| classify_send_error(&error))?;
        let (parts, mut body) = response.into_parts();
        let status = parts.status;

        if status == StatusCode::OK {
            let body = read_body(
                &mut body,
                &parts.headers,
                self.inner.settings.max_response_bytes,
            )
            .await?;
            return match interceptor.protocol {
                WebhookProtocol::Tekton => tekton_outcome(interceptor, &body),
                WebhookProtocol::Legacy => Ok(WebhookOutcome::Continue {
                    extensions: Map::new(),
                    replaced: Some((body, response_headers(&parts.headers))),
                }),
            };
        }
        if status.is_redirection() {
            let location = parts
                .headers
                .get(header::LOCATION)
                .map_or_else(|| "no Location".to_owned(), |l| snippet(l.as_bytes()));
            return Err(Failure::Permanent(format!(
                "answered {} redirecting to {location}; redirects are not followed",
                status_text(status)
            )));
        }
        if is_retryable_status(status) {
            let retry_after = retry_after(status, &parts.headers);
            let quoted = read_snippet(&mut body).await;
            return Err(Failure::Retryable {
                message: with_message(format!("answered {}", status_text(status)), &quoted),
                retry_after,
            });
        }
        let quoted = read_snippet(&mut body).await;
        match interceptor.protocol {
            // Tekton's legacy webhook interceptor rejects any answer but 200 this way.
            WebhookProtocol::Legacy if status.is_success() || status.is_client_error() => {
                Ok(WebhookOutcome::Stop {
                    message: format!(
                        "interceptor {}: request rejected; status: {}; message: {quoted}",
                        interceptor.name,
                        status_text(status),
                    ),
                })
            }
            _ => Err(Failure::Permanent(with_message(
                format!("answered {}", status_text(status)),
                &quoted,
            ))),
        }
    }

    /// The pooled client for the interceptor's scheme and `caBundle`.
    async fn transport(&self, interceptor: &WebhookInterceptor) -> Result<Transport, String> {
        match interceptor.url.scheme() {
            "http" => Ok(self.inner.plain.clone()),
            "https" => match &interceptor.ca_bundle {
                Some(bundle) => self.bundle_transport(bundle),
                None => self.platform_transport().await,
            },
            other => Err(format!(
                "unsupported URL scheme `{other}` (only http and https are)"
            )),
        }
    }

    fn bundle_transport(&self, bundle: &Arc<[u8]>) -> Result<Transport, String> {
        let mut cache = self
            .inner
            .bundles
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(transport) = cache.get(bundle) {
            return Ok(transport.clone());
        }
        let roots = bundle_roots(bundle)?;
        let config = tls_builder()?.with_root_certificates(roots);
        let transport = tls_transport(config.with_no_client_auth(), self.inner.settings.timeout);
        if cache.len() >= MAX_CACHED_BUNDLES {
            cache.clear();
        }
        cache.insert(Arc::clone(bundle), transport.clone());
        Ok(transport)
    }

    async fn platform_transport(&self) -> Result<Transport, String> {
        let timeout = self.inner.settings.timeout;
        self.inner
            .platform
            .get_or_init(|| async move {
                // Reading the platform's certificates is blocking file I/O.
                let built = tokio::task::spawn_blocking(move || -> Result<Transport, String> {
                    let config = tls_builder()?
                        .with_native_roots()
                        .map_err(|error| format!("no usable platform root certificates: {error}"))?
                        .with_no_client_auth();
                    Ok(tls_transport(config, timeout))
                })
                .await
                .unwrap_or_else(|error| {
                    Err(format!("loading platform root certificates failed: {error}"))
                });
                if let Err(error) = &built {
                    tracing::warn!(%error, "https webhook interceptors without a caBundle cannot be called");
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
fn tls_builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, String> {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS setup failed: {error}"))
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
fn bundle_roots(bundle: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for (index, certificate) in CertificateDer::pem_slice_iter(bundle).enumerate() {
        let certificate = certificate
            .map_err(|error| format!("caBundle is not valid PEM (certificate {index}): {error}"))?;
        roots.add(certificate).map_err(|error| {
            format!("caBundle certificate {index} is not a valid CA certificate: {error}")
        })?;
    }
    if roots.is_empty() {
        return Err("caBundle holds no PEM certificate".to_owned());
    }
    Ok(roots)
}

/// Builds the request for the interceptor's protocol; an error is permanent.
fn prepare(interceptor: &WebhookInterceptor, call: &WebhookCall<'_>) -> Result<Prepared, String> {
    let url = &interceptor.url;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not supported".to_owned());
    }
    let mut without_fragment = url.clone();
    without_fragment.set_fragment(None);
    let uri: Uri = without_fragment
        .as_str()
        .parse()
        .map_err(|error| format!("the URL is not usable: {error}"))?;

    let user_agent = HeaderValue::from_static(USER_AGENT);
    let (headers, body) = match interceptor.protocol {
        WebhookProtocol::Tekton => {
            let mut headers = HeaderMap::new();
            headers.insert(header::USER_AGENT, user_agent);
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
            (headers, tekton_request(interceptor, call)?)
        }
        WebhookProtocol::Legacy => {
            let mut headers = legacy_headers(interceptor, call)?;
            headers.entry(header::USER_AGENT).or_insert(user_agent);
            (headers, Bytes::copy_from_slice(call.body))
        }
    };
    Ok(Prepared { uri, headers, body })
}

/// Tekton's `InterceptorRequest`, field for field (`omitempty` where Tekton has it).
#[derive(Serialize)]
struct InterceptorRequest<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    body: &'a str,
    #[serde(skip_serializing_if = "headers_are_empty")]
    header: &'a Headers,
    #[serde(skip_serializing_if = "map_is_empty")]
    extensions: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "map_is_empty")]
    interceptor_params: &'a Map<String, Value>,
    context: TriggerContext<'a>,
}

#[derive(Serialize)]
struct TriggerContext<'a> {
    event_url: &'a str,
    event_id: &'a str,
    trigger_id: &'a str,
}

fn headers_are_empty(headers: &&Headers) -> bool {
    headers.is_empty()
}

fn map_is_empty(map: &&Map<String, Value>) -> bool {
    map.is_empty()
}

fn tekton_request(
    interceptor: &WebhookInterceptor,
    call: &WebhookCall<'_>,
) -> Result<Bytes, String> {
    // Tekton carries the body as a string; like Go's encoder, bytes that are not UTF-8 become
    // U+FFFD (a JSON body is always UTF-8, so its text is kept exactly).
    let body = String::from_utf8_lossy(call.body);
    let request = InterceptorRequest {
        body: &body,
        header: call.headers,
        extensions: call.extensions,
        interceptor_params: &interceptor.params,
        context: TriggerContext {
            event_url: call.event_url,
            event_id: call.event_id,
            trigger_id: call.trigger_id,
        },
    };
    serde_json::to_vec(&request)
        .map(Bytes::from)
        .map_err(|error| format!("the request could not be encoded: {error}"))
}

/// The event's headers as a legacy interceptor receives them: forwarded (less those in
/// [`NOT_FORWARDED`] and those the event's `Connection` header names), plus
/// `EventListener-Request-URL`, then the interceptor's configured headers, each replacing any
/// header of its name.
fn legacy_headers(
    interceptor: &WebhookInterceptor,
    call: &WebhookCall<'_>,
) -> Result<HeaderMap, String> {
    let connection_named: Vec<String> = call
        .headers
        .get_all("Connection")
        .unwrap_or_default()
        .iter()
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .collect();
    let mut headers = HeaderMap::new();
    for (name, values) in call.headers.iter() {
        // The event's headers came over HTTP, so an invalid one cannot occur; skip it if so.
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        if NOT_FORWARDED.contains(&name.as_str())
            || connection_named.iter().any(|named| named == name.as_str())
        {
            continue;
        }
        for value in values {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(name.clone(), value);
            }
        }
    }
    // Tekton sets it on every request it forwards to a legacy interceptor.
    if let Ok(event_url) = HeaderValue::from_str(call.event_url) {
        headers.insert(
            HeaderName::from_static("eventlistener-request-url"),
            event_url,
        );
    }
    for (name, values) in &interceptor.headers {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header name `{name}` is not valid"))?;
        headers.remove(&header_name);
        for value in values {
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("a value of header `{name}` is not a valid header value"))?;
            headers.append(header_name.clone(), value);
        }
    }
    Ok(headers)
}

/// Tekton's `InterceptorResponse`; absent fields take Go's zero values.
#[derive(Deserialize)]
struct InterceptorResponse {
    #[serde(default)]
    extensions: Option<Map<String, Value>>,
    #[serde(default, rename = "continue")]
    proceed: bool,
    #[serde(default)]
    status: Option<InterceptorStatus>,
}

#[derive(Deserialize)]
struct InterceptorStatus {
    #[serde(default)]
    code: Option<GrpcCode>,
    #[serde(default)]
    message: Option<String>,
}

/// A gRPC status code (`google.golang.org/grpc/codes`), from its number or its name, either
/// as Go prints it (`FailedPrecondition`) or as gRPC spells it (`FAILED_PRECONDITION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GrpcCode(u32);

/// Names of codes 0 to 16, as Go's `codes.Code.String` prints them.
const GRPC_CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

impl GrpcCode {
    fn from_name(name: &str) -> Option<Self> {
        // `FAILED_PRECONDITION` and `FailedPrecondition` both fold to `failedprecondition`;
        // gRPC spells code 1 `CANCELLED`.
        let folded: String = name
            .chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let folded = if folded == "cancelled" {
            "canceled"
        } else {
            folded.as_str()
        };
        GRPC_CODE_NAMES
            .iter()
            .position(|known| known.eq_ignore_ascii_case(folded))
            .and_then(|index| u32::try_from(index).ok())
            .map(Self)
    }
}

impl fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match usize::try_from(self.0)
            .ok()
            .and_then(|index| GRPC_CODE_NAMES.get(index))
        {
            Some(name) => f.write_str(name),
            None => write!(f, "Code({})", self.0),
        }
    }
}

impl<'de> Deserialize<'de> for GrpcCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Name(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(number) => Ok(Self(number)),
            Raw::Name(name) => Self::from_name(&name).ok_or_else(|| {
                serde::de::Error::custom(format!("unknown gRPC status code `{name}`"))
            }),
        }
    }
}

fn tekton_outcome(
    interceptor: &WebhookInterceptor,
    body: &[u8],
) -> Result<WebhookOutcome, Failure> {
    let response: InterceptorResponse = serde_json::from_slice(body).map_err(|error| {
        Failure::Permanent(format!(
            "the answer is not a valid InterceptorResponse: {error}"
        ))
    })?;
    if response.proceed {
        return Ok(WebhookOutcome::Continue {
            extensions: response.extensions.unwrap_or_default(),
            replaced: None,
        });
    }
    let (code, message) = response
        .status
        .map(|status| {
            (
                status.code.unwrap_or(GrpcCode(0)),
                status.message.unwrap_or_default(),
            )
        })
        .unwrap_or((GrpcCode(0), String::new()));
    let message = single_line(&message, MESSAGE_CHARS);
    let mut stopped = format!(
        "interceptor {} stopped the trigger: {code}",
        interceptor.name
    );
    if !message.is_empty() {
        stopped.push_str(": ");
        stopped.push_str(&message);
    }
    Ok(WebhookOutcome::Stop { message: stopped })
}

/// The whole body of a 200 answer, refused when larger than `limit`.
async fn read_body(
    body: &mut Incoming,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, Failure> {
    let too_large = || {
        Failure::Permanent(format!(
            "the answer is larger than the {limit} bytes accepted"
        ))
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if announced.is_some_and(|length| usize::try_from(length).map_or(true, |l| l > limit)) {
        return Err(too_large());
    }
    let mut collected = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| classify_body_error(&error))?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit.saturating_sub(collected.len()) {
                return Err(too_large());
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(collected.freeze())
}

/// Up to [`SNIPPET_BYTES`] of an error answer's body as one line of text; whatever could be
/// read if reading fails.
async fn read_snippet(body: &mut Incoming) -> String {
    let mut collected = BytesMut::new();
    while collected.len() < SNIPPET_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    collected.extend_from_slice(&data);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    collected.truncate(SNIPPET_BYTES);
    snippet(&collected)
}

/// Bytes from the interceptor as one line of text, lossy UTF-8, control characters blanked.
fn snippet(bytes: &[u8]) -> String {
    single_line(
        &String::from_utf8_lossy(&bytes[..bytes.len().min(SNIPPET_BYTES)]),
        SNIPPET_BYTES,
    )
}

/// `text` on one line (control characters become spaces), trimmed, at most `max` characters.
fn single_line(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn with_message(what: String, quoted: &str) -> String {
    if quoted.is_empty() {
        what
    } else {
        format!("{what}: {quoted}")
    }
}

/// `403 Forbidden`, as Go prints a response's status.
fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// `Retry-After` in seconds on a 429 or 503 (an HTTP date is ignored: the backoff applies).
fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A legacy interceptor's response headers as event headers (connection headers left out,
/// credentials dropped by [`Headers::append`]).
fn response_headers(headers: &HeaderMap) -> Headers {
    let mut out = Headers::new();
    for (name, value) in headers {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        out.append(
            name.as_str(),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        );
    }
    out
}

/// Between half of `backoff` and all of it.
fn jittered(backoff: Duration) -> Duration {
    let half = backoff / 2;
    let half_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(fastrand::u64(0..=half_nanos))
}

/// The causes of an error, outermost first. `io::Error` is looked through with `get_ref`,
/// because its `source` skips the error it wraps.
fn causes<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(
        Some(error),
        |&current: &&'a (dyn StdError + 'static)| match current.downcast_ref::<io::Error>() {
            Some(io_error) => io_error
                .get_ref()
                .map(|inner| inner as &(dyn StdError + 'static)),
            None => current.source(),
        },
    )
}

/// The error's messages along its causes, repeats dropped.
fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in causes(error) {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// A request that got no answer: a TLS failure (the certificate refused, the server not
/// speaking TLS…) or an answer that is not HTTP is permanent; anything else (connection
/// refused or reset, DNS, the connection closed early) is worth another attempt.
fn classify_send_error(error: &hyper_util::client::legacy::Error) -> Failure {
    // The outer error only says `client error (Connect)`; its causes say what happened.
    let what = if error.is_connect() {
        "connecting failed"
    } else {
        "the request failed"
    };
    let message = match error.source() {
        Some(source) => format!("{what}: {}", describe(source)),
        None => what.to_owned(),
    };
    for cause in causes(error) {
        if cause.is::<rustls::Error>() {
            return Failure::Permanent(format!("TLS failed: {message}"));
        }
        if let Some(hyper_error) = cause.downcast_ref::<hyper::Error>()
            && hyper_error.is_parse()
        {
            return Failure::Permanent(format!("the answer is not valid HTTP: {message}"));
        }
    }
    Failure::retryable(message)
}

/// Reading the answer's body failed (the connection was closed or reset): retry.
fn classify_body_error(error: &hyper::Error) -> Failure {
    Failure::retryable(format!("reading the answer failed: {}", describe(error)))
}

/// The URL as errors and logs show it: scheme, host, port and path; no user information,
/// query or fragment, which may hold secrets.
fn redacted_url(interceptor: &WebhookInterceptor) -> String {
    let url = &interceptor.url;
    let mut shown = format!("{}://", url.scheme());
    if let Some(host) = url.host_str() {
        shown.push_str(host);
    }
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}
