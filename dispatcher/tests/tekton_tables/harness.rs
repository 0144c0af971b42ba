//! What the dispatcher's tables share: configuration loaded from YAML, a request judged at
//! the edge and each accepted trigger planned as the dispatcher plans it
//! (`dispatch::plan_trigger`), local HTTP servers standing in for interceptors, and the
//! created objects as text.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;
use sluice_dispatcher::args::InterceptorArgs;
use sluice_dispatcher::dispatch::{GroupOutcomes, TriggerError, initial_state, plan_trigger};
use sluice_dispatcher::interceptor::Interceptors;
use sluice_runtime::envelope::{EventMeta, SCHEMA_VERSION};
use sluice_triggers::auth::{Admission, admit_at};
use sluice_triggers::catalogue::{Catalogue, Listener};
use sluice_triggers::config::{LoadOptions, load_str_with};
use sluice_triggers::headers::Headers;
use sluice_triggers::idempotency;
use sluice_triggers::naming::ANNOTATION;
use sluice_triggers::plan::Plan;
use tokio::runtime::Runtime;

/// The event id Tekton's sink tables give every event.
pub const EVENT_ID: &str = "12345";

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// Runs `future` to completion on the suite's runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// The interceptor client with the dispatcher's default settings, whatever the environment
/// says (the documented retries are counted).
pub fn interceptors() -> Interceptors {
    interceptors_with(&[])
}

/// The interceptor client with the dispatcher's default settings and these flags.
pub fn interceptors_with(flags: &[&str]) -> Interceptors {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        interceptors: InterceptorArgs,
    }
    let args = std::iter::once("tekton-tables").chain(flags.iter().copied());
    Cli::parse_from(args).interceptors.interceptors()
}

/// Loads YAML, allowing webhook interceptors on this machine (the stand-ins) and, with
/// `cross_namespace`, what `--allow-cross-namespace` allows.
pub fn load(yaml: &str, cross_namespace: bool) -> Catalogue {
    let options = LoadOptions {
        interceptor_allow: vec!["127.0.0.1".to_owned()],
        allow_cross_namespace: cross_namespace,
        ..LoadOptions::default()
    };
    load_str_with("tables.yaml", yaml, &options)
}

pub fn issues(catalogue: &Catalogue) -> String {
    let issues: Vec<String> = catalogue.issues().iter().map(|i| i.to_string()).collect();
    issues.join("; ")
}

/// A request to a listener.
pub struct Request {
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub url: String,
}

impl Request {
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            headers: Vec::new(),
            url: "/hooks/foo/my-el".to_owned(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// The event as ingest queues it: headers under their canonical names, credentials
    /// dropped.
    fn meta(&self, listener: &Listener, triggers: Vec<String>) -> EventMeta {
        let mut headers = Headers::new();
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        EventMeta {
            schema: SCHEMA_VERSION,
            event_id: EVENT_ID.to_owned(),
            namespace: listener.namespace.clone(),
            listener: listener.name.clone(),
            received_at_ms: 0,
            idempotency_key: String::new(),
            triggers,
            traceparent: None,
            request_url: self.url.clone(),
            headers,
        }
    }
}

/// What became of one trigger.
pub enum Outcome {
    Created(Vec<Value>),
    Filtered(String),
    Failed(TriggerError),
}

/// What a listener made of a request: refused at the edge, or each accepted trigger's
/// outcome in order.
pub enum Handled {
    Refused(String),
    Filtered,
    Triggers(Vec<(String, Outcome)>),
}

/// Judges the request at the edge as ingest does, then plans every accepted trigger as the
/// dispatcher does.
pub fn handle(
    catalogue: &Catalogue,
    namespace: &str,
    listener: &str,
    request: &Request,
) -> Handled {
    handle_with(&interceptors(), catalogue, namespace, listener, request)
}

/// [`handle`] with these interceptor settings.
pub fn handle_with(
    interceptors: &Interceptors,
    catalogue: &Catalogue,
    namespace: &str,
    listener: &str,
    request: &Request,
) -> Handled {
    let Some(listener) = catalogue.listener(namespace, listener) else {
        return Handled::Refused(format!("no such listener ({})", issues(catalogue)));
    };
    let accepted = match admit_at(
        listener,
        &request.header_map(),
        &request.body,
        SystemTime::now(),
    ) {
        Ok(Admission::Accepted(names)) => names,
        Ok(Admission::Filtered) => return Handled::Filtered,
        Err(refusal) => return Handled::Refused(refusal.code().to_owned()),
    };
    let meta = request.meta(listener, accepted.clone());
    let input = initial_state(Bytes::from(request.body.clone()), &meta);
    let mut groups = GroupOutcomes::default();
    let mut outcomes = Vec::new();
    for name in accepted {
        let trigger = listener.trigger(&name).expect("an accepted trigger");
        let event_key = idempotency::event_key(&meta.idempotency_key, &meta.event_id);
        let run_key = idempotency::run_key(&event_key, trigger);
        let planned = block_on(plan_trigger(
            interceptors,
            listener,
            trigger,
            &meta,
            &run_key,
            &input,
            &mut groups,
        ));
        let outcome = match planned {
            Ok(Plan::Create(objects)) => Outcome::Created(objects),
            Ok(Plan::Filtered {
                interceptor,
                reason,
            }) => Outcome::Filtered(format!("{interceptor}: {reason}")),
            Err(error) => Outcome::Failed(error),
        };
        outcomes.push((name, outcome));
    }
    Handled::Triggers(outcomes)
}

/// Every object created, without the annotation Sluice adds (its idempotency key), sorted by
/// name as Tekton's tables compare them; or why none was.
pub fn created(handled: &Handled) -> String {
    match handled {
        Handled::Refused(code) => format!("refused at the edge: {code}"),
        Handled::Filtered => "filtered at the edge".to_owned(),
        Handled::Triggers(outcomes) => {
            let mut objects = Vec::new();
            let mut others = Vec::new();
            for (name, outcome) in outcomes {
                match outcome {
                    Outcome::Created(created) => {
                        objects.extend(created.iter().map(without_sluice_annotations))
                    }
                    Outcome::Filtered(why) => others.push(format!("{name} filtered by {why}")),
                    Outcome::Failed(error) => {
                        others.push(format!("{name} failed ({:?}): {error}", error.kind()))
                    }
                }
            }
            objects.sort_by_key(|o| o["metadata"]["name"].as_str().unwrap_or("").to_owned());
            let mut text = Value::Array(objects).to_string();
            if !others.is_empty() {
                text.push_str(&format!("; {}", others.join("; ")));
            }
            text
        }
    }
}

fn without_sluice_annotations(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
    {
        // Sluice's own annotations (the key, the event and delivery ids) are its additions.
        annotations.retain(|key, _| key != ANNOTATION && !key.starts_with("sluice.dev/"));
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
    object
}

/// A request as a stand-in received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path and query.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// An answer of a stand-in.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            headers: vec![],
            body: body.into(),
        }
    }

    pub fn json(value: &Value) -> Self {
        Self::ok(value.to_string()).header("Content-Type", "application/json")
    }

    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![],
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// A local HTTP server standing in for an interceptor; it records what it receives.
pub struct StandIn {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl StandIn {
    /// Serves `respond` on 127.0.0.1.
    pub fn serve(respond: impl Fn(&Received) -> Answer + Send + Sync + 'static) -> Self {
        let respond = Arc::new(respond);
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let respond = Arc::clone(&respond);
            let log = Arc::clone(&log);
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .unwrap_or_default();
                let received = Received {
                    target: parts
                        .uri
                        .path_and_query()
                        .map(|target| target.as_str().to_owned())
                        .unwrap_or_default(),
                    headers: parts.headers,
                    body,
                };
                log.lock().unwrap().push(received.clone());
                let answer = respond(&received);
                let mut response = http::Response::new(axum::body::Body::from(answer.body));
                *response.status_mut() = StatusCode::from_u16(answer.status).unwrap();
                for (name, value) in answer.headers {
                    // The server frames the answer itself (a stand-in that copies the
                    // request's headers must not copy its framing).
                    if ["content-length", "transfer-encoding", "connection"]
                        .contains(&name.to_ascii_lowercase().as_str())
                    {
                        continue;
                    }
                    response.headers_mut().append(
                        HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        HeaderValue::from_str(&value).unwrap(),
                    );
                }
                response
            }
        });
        let listener = block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime().spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, received }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A server on 127.0.0.1 that speaks TLS with a certificate no root trusts (the
/// dispatcher's test CA), so every handshake is refused by the client.
pub fn untrusted_tls() -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    const CERT: &[u8] = include_bytes!("../fixtures/webhook-tls/server.pem");
    const KEY: &[u8] = include_bytes!("../fixtures/webhook-tls/server.key");
    let chain = CertificateDer::pem_slice_iter(CERT)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime().spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(stream).await;
            });
        }
    });
    addr
}

/// `sha1=<hex>` or `sha256=<hex>`: the HMAC of `body` under `secret`, as Tekton's test
/// helper `HMACHeader` writes it.
pub fn hmac_header(secret: &str, body: &[u8], algorithm: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let tag = match algorithm {
        "sha1" => {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        }
        "sha256" => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        }
        other => panic!("no such algorithm {other}"),
    };
    format!("{algorithm}={}", hex::encode(tag))
}
