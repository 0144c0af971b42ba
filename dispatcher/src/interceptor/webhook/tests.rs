//! The client against real HTTP(S) servers on 127.0.0.1.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use http::{HeaderMap, Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use answer::SNIPPET_BYTES;
use protocol::{GrpcCode, USER_AGENT};

const CA: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/webhook-tls/ca.pem"
));
const OTHER_CA: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/webhook-tls/other-ca.pem"
));
const SERVER_CERT: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/webhook-tls/server.pem"
));
const SERVER_KEY: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/webhook-tls/server.key"
));

/// A request as the test server saw it.
#[derive(Debug, Clone)]
struct Received {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn values(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

struct Server {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Serves HTTP/1.1 (over TLS with `tls`), answering request number `n` (from 0) with
/// `respond(n, request)`.
async fn serve<F>(tls: Option<tokio_rustls::TlsAcceptor>, respond: F) -> Server
where
    F: Fn(usize, &Received) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let respond = Arc::new(respond);
    let log = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let respond = Arc::clone(&respond);
            let log = Arc::clone(&log);
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let respond = Arc::clone(&respond);
                    let log = Arc::clone(&log);
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let request = Received {
                            method: parts.method,
                            uri: parts.uri,
                            headers: parts.headers,
                            body,
                        };
                        let index = {
                            let mut log = log.lock().unwrap();
                            log.push(request.clone());
                            log.len() - 1
                        };
                        Ok::<_, Infallible>(respond(index, &request))
                    }
                });
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                    None => {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    Server { addr, received }
}

fn reply(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

fn settings() -> WebhookSettings {
    WebhookSettings {
        timeout: Duration::from_secs(5),
        attempts: 3,
        backoff: Duration::from_millis(10),
        max_response_bytes: 64 * 1024,
    }
}

fn interceptor(protocol: WebhookProtocol, url: &str) -> WebhookInterceptor {
    WebhookInterceptor {
        name: "ClusterInterceptor/check".to_owned(),
        protocol,
        url: url.parse().unwrap(),
        ca_bundle: None,
        params: Map::new(),
        headers: Vec::new(),
    }
}

/// An event, owned, to borrow a [`WebhookCall`] from.
struct Event {
    body: Vec<u8>,
    headers: Headers,
    extensions: Map<String, Value>,
}

/// Not re-encoded anywhere: odd spacing, an escaped `é`, a number with a trailing zero.
const BODY: &str = " {\"ref\": \"refs/heads/main\",\n  \"n\": 1.50, \"s\": \"\\u00e9\"} ";

impl Event {
    fn new() -> Self {
        let mut headers = Headers::new();
        headers.append("x-github-event", "push");
        headers.append("accept", "a");
        headers.append("Accept", "b");
        headers.append("content-type", "application/json");
        Self {
            body: BODY.as_bytes().to_vec(),
            headers,
            extensions: json!({"earlier": {"k": "v"}}).as_object().unwrap().clone(),
        }
    }

    fn empty() -> Self {
        Self {
            body: Vec::new(),
            headers: Headers::new(),
            extensions: Map::new(),
        }
    }

    fn call(&self) -> WebhookCall<'_> {
        WebhookCall {
            body: &self.body,
            headers: &self.headers,
            extensions: &self.extensions,
            event_url: "https://hooks.example.com/ns/listener",
            event_id: "0b8a3c1e-0000-4000-8000-000000000001",
            trigger_id: "namespaces/ns/triggers/build",
        }
    }
}

fn continued(outcome: WebhookOutcome) -> (Map<String, Value>, Option<(Bytes, Headers)>) {
    match outcome {
        WebhookOutcome::Continue {
            extensions,
            replaced,
        } => (extensions, replaced),
        WebhookOutcome::Stop { message } => panic!("stopped: {message}"),
    }
}

fn stopped(outcome: WebhookOutcome) -> String {
    match outcome {
        WebhookOutcome::Stop { message } => message,
        other => panic!("not stopped: {other:?}"),
    }
}

// ---- Tekton protocol ----

#[tokio::test]
async fn tekton_request_carries_the_event_and_continue_returns_extensions() {
    let server = serve(None, |_, _| {
        reply(
            200,
            r#"{"continue": true, "extensions": {"added": {"x": [1, 2]}}, "status": {}}"#,
        )
    })
    .await;
    let mut check = interceptor(WebhookProtocol::Tekton, &server.url("http", "/check?x=1"));
    check.params = json!({"filter": "body.ref == 'x'", "n": 2})
        .as_object()
        .unwrap()
        .clone();
    let event = Event::new();

    let outcome = WebhookClient::new(settings())
        .call(&check, &event.call())
        .await
        .unwrap();

    let (extensions, replaced) = continued(outcome);
    assert_eq!(Value::Object(extensions), json!({"added": {"x": [1, 2]}}));
    assert!(replaced.is_none());

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.uri.to_string(), "/check?x=1");
    assert_eq!(request.values("content-type"), ["application/json"]);
    assert_eq!(request.values("user-agent"), [USER_AGENT]);
    let sent = request.json();
    // The body travels as a string holding its exact text.
    assert_eq!(sent["body"], Value::String(BODY.to_owned()));
    assert_eq!(
        sent["header"],
        json!({
            "Accept": ["a", "b"],
            "Content-Type": ["application/json"],
            "X-Github-Event": ["push"],
        })
    );
    assert_eq!(sent["extensions"], json!({"earlier": {"k": "v"}}));
    assert_eq!(
        sent["interceptor_params"],
        json!({"filter": "body.ref == 'x'", "n": 2})
    );
    assert_eq!(
        sent["context"],
        json!({
            "event_url": "https://hooks.example.com/ns/listener",
            "event_id": "0b8a3c1e-0000-4000-8000-000000000001",
            "trigger_id": "namespaces/ns/triggers/build",
        })
    );
}

#[tokio::test]
async fn tekton_request_omits_empty_fields_but_not_the_context() {
    let server = serve(None, |_, _| reply(200, r#"{"continue": true}"#)).await;
    let check = interceptor(WebhookProtocol::Tekton, &server.url("http", "/"));
    let event = Event::empty();

    let outcome = WebhookClient::new(settings())
        .call(&check, &event.call())
        .await
        .unwrap();

    let (extensions, _) = continued(outcome);
    assert!(extensions.is_empty());
    let sent = server.requests()[0].json();
    let keys: Vec<&String> = sent.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["context"]);
}

#[tokio::test]
async fn tekton_stop_names_the_code_and_the_message() {
    let server = serve(None, |_, _| {
        reply(
            200,
            r#"{"continue": false, "status": {"code": 9, "message": "branch is not main"}}"#,
        )
    })
    .await;
    let check = interceptor(WebhookProtocol::Tekton, &server.url("http", "/"));
    let event = Event::new();

    let outcome = WebhookClient::new(settings())
        .call(&check, &event.call())
        .await
        .unwrap();

    assert_eq!(
        stopped(outcome),
        "interceptor ClusterInterceptor/check stopped the trigger: \
         FailedPrecondition: branch is not main"
    );
}

#[tokio::test]
async fn tekton_status_codes_parse_from_names() {
    let server = serve(None, |index, _| {
        let code = [
            "\"FailedPrecondition\"",
            "\"PERMISSION_DENIED\"",
            "\"Nonsense\"",
        ][index];
        reply(
            200,
            format!(r#"{{"continue": false, "status": {{"code": {code}, "message": "no"}}}}"#),
        )
    })
    .await;
    let check = interceptor(WebhookProtocol::Tekton, &server.url("http", "/"));
    let event = Event::new();
    let client = WebhookClient::new(settings());

    let first = stopped(client.call(&check, &event.call()).await.unwrap());
    assert!(
        first.ends_with("stopped the trigger: FailedPrecondition: no"),
        "{first}"
    );
    let second = stopped(client.call(&check, &event.call()).await.unwrap());
    assert!(
        second.ends_with("stopped the trigger: PermissionDenied: no"),
        "{second}"
    );
    let unknown = client.call(&check, &event.call()).await.unwrap_err();
    assert_eq!(unknown.kind, FailureKind::Permanent);
    assert!(unknown.message.contains("Nonsense"), "{unknown}");
}

#[test]
fn grpc_codes_print_like_go() {
    assert_eq!(GrpcCode(0).to_string(), "OK");
    assert_eq!(GrpcCode(1).to_string(), "Canceled");
    assert_eq!(GrpcCode(16).to_string(), "Unauthenticated");
    assert_eq!(GrpcCode(17).to_string(), "Code(17)");
    assert_eq!(GrpcCode::from_name("CANCELLED"), Some(GrpcCode(1)));
    assert_eq!(GrpcCode::from_name("DeadlineExceeded"), Some(GrpcCode(4)));
    assert_eq!(GrpcCode::from_name("data_loss"), Some(GrpcCode(15)));
    assert_eq!(GrpcCode::from_name(""), None);
}

// ---- Retries and failure kinds ----

#[tokio::test]
async fn retries_server_errors_until_an_answer() {
    let server = serve(None, |index, _| match index {
        0 | 1 => reply(503, "busy"),
        _ => reply(200, r#"{"continue": true}"#),
    })
    .await;
    let check = interceptor(WebhookProtocol::Tekton, &server.url("http", "/"));
    let event = Event::new();

    let outcome = WebhookClient::new(settings())
        .call(&check, &event.call())
        .await
        .unwrap();

    continued(outcome);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    // Every attempt sends the same request.
    assert!(requests.iter().all(|r| r.body == requests[0].body));
}

#[tokio::test]
async fn gives_up_after_the_attempts_as_transient() {
    let server = serve(None, |_, _| reply(503, "still busy")).await;
    let check = interceptor(
        WebhookProtocol::Tekton,
        &server.url("http", "/?token=secret"),
    );
    let event = Event::new();
    let client = WebhookClient::new(WebhookSettings {
        attempts: 4,
        ..settings()
    });

    let error = client.call(&check, &event.call()).await.unwrap_err();

    assert_eq!(error.kind, FailureKind::Transient);
    assert!(error.is_transient());
    assert_eq!(server.requests().len(), 4);
    assert!(error.message.contains("503 Service Unavailable"), "{error}");
    assert!(error.message.contains("still busy"), "{error}");
    assert!(error.message.contains("4 attempts"), "{error}");
    assert!(!error.message.contains("secret"), "{error}");
    assert!(!error.message.contains("refs/heads/main"), "{error}");
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_the_timeout() {
    let server = serve(None, |index, _| match index {
        0 | 1 => Response::builder()
            .status(429)
            .header("retry-after", "3600")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        _ => reply(200, r#"{"continue": true}"#),
    })
    .await;
    let check = interceptor(WebhookProtocol::Tekton, &server.url("http", "/"));
    let event = Event::new();
    let client = WebhookClient::new(WebhookSettings {
        timeout: Duration::from_millis(300),
        ..settings()
    });

    let started = Instant::now();
    continued(client.call(&check, &event.call()).await.unwrap());
    let elapsed = started.elapsed();

    assert_eq!(server.requests().len(), 3);
    // Two waits of the timeout (not of the 10 ms backoff, nor of an hour).
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let check = interceptor(WebhookProtocol::Tekton, &format!("http://{addr}/"));
    let event = Event::new();

    let error = WebhookClient::new(settings())
        .call(&check, &event.call())
        .await
        .unwrap_err();

    assert_eq!(error.kind, FailureKind::Transient);
    assert!(error.message.contains("3 attempts"), "{error}");
}

#[tokio::test]
async fn a_silent_server_times_out_as_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    let check = interceptor(WebhookProtocol::Tekton, &format!("http://{addr}/"));
    let event = Event::new();
    let client = WebhookClient::new(WebhookSettings {
        timeout: Duration::from_millis(200),
        ..settings()
    });

    let started = Instant::now();
    let error = client.call(&check, &event.call()).await.unwrap_err();

    assert_eq!(error.kind, FailureKind::Transient);
    assert!(
        error.message.contains("no complete answer within 200ms"),
        "{error}"
    );
    assert!(started.elapsed() >= Duration::from_millis(600));
    // Each timed-out attempt's connection is dropped, never reused.
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_client_error_without_a_decision_fails_the_trigger_and_is_not_retried() {
    let server = serve(None, |_, _| reply(400, "bad request\nfrom interceptor")).await;
    let check = interceptor(WebhookProtocol::Tekton, &server.url("http", "/"));
    let event = Event::new();

    let error = WebhookClient::new(settings())
        .call(&check, &event.call())
        .await
        .unwrap_err();

    assert_eq!(error.kind, FailureKind::BadInput);
    assert_eq!(server.requests().len(), 1);
    assert!(
        error
            .message
            .contains("answered 400 Bad Request: bad request from interceptor"),
        "{error}"
    );
}

#[tokio::test]
async fn a_decision_in_the_body_holds_whatever_the_status() {
    // As Tekton's own ClusterInterceptor examples answer a wrong token: 503 with a decision.
    let refusal = r#"{"continue": false, "status": {"code": 14, "message": "error param"}}"#;
    for status in [503, 403, 500, 429] {
        let server = serve(None, move |_, _| reply(status, refusal)).await;
        let check = interceptor(WebhookProtocol::Tekton, &server.url("http", "/"));
        let event = Event::new();
        let outcome = WebhookClient::new(settings())
            .call(&check, &event.call())
            .await
            .unwrap_or_else(|error| panic!("{status}: {error}"));
        match outcome {
            WebhookOutcome::Stop { message } => assert!(
                message.contains("stopped the trigger: Unavailable: error param"),
                "{status}: {message}"
            ),
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(
            server.requests().len(),
            1,
            "{status}: a decision is not retried"
        );
    }

    // Without a decision, the status decides: a 503 is retried, and so is one whose body
    // says to continue (a failing answer is no permission).
    for body in ["overloaded", r#"{"continue": true}"#] {
        let server = serve(None, move |_, _| reply(503, body)).await;
        let check = interceptor(WebhookProtocol::Tekton, &server.url("http", "/"));
        let event = Event::new();
        let error = WebhookClient::new(settings())
            .call(&check, &event.call())
            .await
            .unwrap_err();
        assert_eq!(error.kind, FailureKind::Transient, "{body}: {error}");
        assert_eq!(server.requests().len(), 3, "{body}");
    }
}

#[tokio::test]
async fn an_invalid_or_misshaped_answer_is_permanent() {
    let server = serve(None, |index, _| match index {
        0 => reply(200, "<html>not json</html>"),
        1 => reply(200, r#"{"continue": "yes"}"#),
        _ => reply(200, "null"),
    })
    .await;
    let check = interceptor(WebhookProtocol::Tekton, &server.url("http", "/"));
    let event = Event::new();
    let client = WebhookClient::new(settings());

    for _ in 0..3 {
        let error = client.call(&check, &event.call()).await.unwrap_err();
        assert_eq!(error.kind, FailureKind::Permanent);
        assert!(
            error.message.contains("not a valid InterceptorResponse"),
            "{error}"
        );
    }
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn an_oversize_answer_is_permanent() {
    let server = serve(None, |_, _| reply(200, vec![b' '; 2048])).await;
    let check = interceptor(WebhookProtocol::Tekton, &server.url("http", "/"));
    let event = Event::new();
    let client = WebhookClient::new(WebhookSettings {
        max_response_bytes: 1024,
        ..settings()
    });

    let error = client.call(&check, &event.call()).await.unwrap_err();

    assert_eq!(error.kind, FailureKind::Permanent);
    assert!(
        error.message.contains("larger than the 1024 bytes"),
        "{error}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn an_oversize_chunked_answer_is_permanent() {
    // No Content-Length: the limit is enforced while reading.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0; 64 * 1024];
                let _ = stream.read(&mut buffer).await;
                let mut response =
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for _ in 0..4 {
                    response.extend_from_slice(b"200\r\n");
                    response.extend_from_slice(&[b' '; 0x200]);
                    response.extend_from_slice(b"\r\n");
                }
                response.extend_from_slice(b"0\r\n\r\n");
                let _ = stream.write_all(&response).await;
            });
        }
    });
    let check = interceptor(WebhookProtocol::Tekton, &format!("http://{addr}/"));
    let event = Event::new();
    let client = WebhookClient::new(WebhookSettings {
        max_response_bytes: 1024,
        ..settings()
    });

    let error = client.call(&check, &event.call()).await.unwrap_err();

    assert_eq!(error.kind, FailureKind::Permanent);
    assert!(
        error.message.contains("larger than the 1024 bytes"),
        "{error}"
    );
}

#[tokio::test]
async fn a_redirect_is_permanent_and_not_followed() {
    let server = serve(None, |_, _| {
        Response::builder()
            .status(302)
            .header("location", "http://elsewhere.example/moved")
            .body(Full::new(Bytes::new()))
            .unwrap()
    })
    .await;
    let check = interceptor(WebhookProtocol::Tekton, &server.url("http", "/"));
    let event = Event::new();

    let error = WebhookClient::new(settings())
        .call(&check, &event.call())
        .await
        .unwrap_err();

    assert_eq!(error.kind, FailureKind::Permanent);
    assert!(error.message.contains("302 Found"), "{error}");
    assert!(
        error.message.contains("http://elsewhere.example/moved"),
        "{error}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn unsupported_urls_are_permanent() {
    let event = Event::new();
    let client = WebhookClient::new(settings());
    for url in ["ftp://127.0.0.1/x", "http://user:pw@127.0.0.1:1/"] {
        let check = interceptor(WebhookProtocol::Tekton, url);
        let error = client.call(&check, &event.call()).await.unwrap_err();
        assert_eq!(error.kind, FailureKind::Permanent, "{url}");
        assert!(!error.message.contains("pw"), "{error}");
    }
}

// ---- Legacy protocol ----

#[tokio::test]
async fn legacy_forwards_the_event_and_returns_the_replacement() {
    let server = serve(None, |_, _| {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("x-reply", "one")
            .header("x-reply", "two")
            .header("set-cookie", "dropped=1")
            .body(Full::new(Bytes::from_static(br#"{"replaced": true}"#)))
            .unwrap()
    })
    .await;
    let mut hook = interceptor(WebhookProtocol::Legacy, &server.url("http", "/legacy"));
    hook.name = "webhook".to_owned();
    hook.headers = vec![
        ("X-Github-Event".to_owned(), vec!["overridden".to_owned()]),
        ("X-List".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
    ];
    let mut event = Event::new();
    // First in the chain: no extensions yet, so the body goes as it came.
    event.extensions.clear();
    event.headers.append("connection", "keep-alive, x-hop");
    event.headers.append("x-hop", "hop");
    event.headers.append("user-agent", "GitHub-Hookshot/1");

    let outcome = WebhookClient::new(settings())
        .call(&hook, &event.call())
        .await
        .unwrap();

    let (extensions, replaced) = continued(outcome);
    assert!(extensions.is_empty());
    let (body, headers) = replaced.unwrap();
    assert_eq!(body, Bytes::from_static(br#"{"replaced": true}"#));
    assert_eq!(
        headers.get_all("x-reply").unwrap(),
        ["one".to_owned(), "two".to_owned()]
    );
    assert_eq!(
        headers.get_joined("content-type").as_deref(),
        Some("application/json")
    );
    assert!(headers.get_all("set-cookie").is_some());

    let requests = server.requests();
    let request = &requests[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.body, BODY.as_bytes());
    assert_eq!(request.values("x-github-event"), ["overridden"]);
    assert_eq!(request.values("x-list"), ["a", "b"]);
    assert_eq!(request.values("accept"), ["a", "b"]);
    assert_eq!(request.values("content-type"), ["application/json"]);
    assert_eq!(request.values("user-agent"), ["GitHub-Hookshot/1"]);
    assert_eq!(
        request.values("eventlistener-request-url"),
        ["https://hooks.example.com/ns/listener"]
    );
    assert!(request.values("x-hop").is_empty());
    assert_eq!(request.values("content-length"), [BODY.len().to_string()]);
}

/// Tekton's `TestExtendBodyWithExtensions` cases and the edges around them.
#[tokio::test]
async fn legacy_is_sent_earlier_extensions_inside_the_body() {
    let server = serve(None, |_, _| reply(200, "{}")).await;
    let mut hook = interceptor(WebhookProtocol::Legacy, &server.url("http", "/"));
    hook.name = "webhook".to_owned();
    let cases: [(&str, Value, &str); 5] = [
        (
            r#"{"sha": "abcdef"}"#,
            json!({"added_field": "val1", "nested": {"field": "nestedVal"}}),
            r#"{"sha":"abcdef","extensions":{"added_field":"val1","nested":{"field":"nestedVal"}}}"#,
        ),
        (
            r#"{"sha": "abcdef", "extensions": {"foo": "bar"}}"#,
            json!({"added_field": "val1"}),
            r#"{"sha":"abcdef","extensions":{"added_field":"val1","foo":"bar"}}"#,
        ),
        // Members keep their order and exact text: a big integer, a trailing zero.
        (
            r#"{"z": 1, "id": 123456789012345678901234567890, "n": 1.50, "a": [ 1 ]}"#,
            json!({"k": true}),
            r#"{"z":1,"id":123456789012345678901234567890,"n":1.50,"a":[ 1 ],"extensions":{"k":true}}"#,
        ),
        // A dotted key nests, as a path does in Tekton's.
        ("", json!({"a.b": 1}), r#"{"extensions":{"a":{"b":1}}}"#),
        ("  ", json!({"k": null}), r#"{"extensions":{"k":null}}"#),
    ];
    for (body, extensions, sent) in cases {
        let mut event = Event::new();
        event.body = body.as_bytes().to_vec();
        event.extensions = extensions.as_object().unwrap().clone();
        let outcome = WebhookClient::new(settings())
            .call(&hook, &event.call())
            .await
            .unwrap();
        continued(outcome);
        let requests = server.requests();
        let request = requests.last().unwrap();
        assert_eq!(String::from_utf8_lossy(&request.body), sent, "{body}");
        let _: Value = serde_json::from_slice(&request.body).unwrap();
    }
}

#[tokio::test]
async fn legacy_extensions_cannot_merge_into_a_body_that_is_not_an_object() {
    let server = serve(None, |_, _| reply(200, "{}")).await;
    let mut hook = interceptor(WebhookProtocol::Legacy, &server.url("http", "/"));
    hook.name = "webhook".to_owned();
    for body in ["[1, 2]", "\"text\"", "{not json", r#"{"extensions": 3}"#] {
        let mut event = Event::new();
        event.body = body.as_bytes().to_vec();
        let error = WebhookClient::new(settings())
            .call(&hook, &event.call())
            .await
            .unwrap_err();
        assert_eq!(error.kind, FailureKind::BadInput, "{body}");
        assert!(
            error
                .message
                .contains("could not merge the extensions into the body"),
            "{body}: {}",
            error.message
        );
    }
    assert!(server.requests().is_empty(), "nothing is sent");
}

#[tokio::test]
async fn legacy_rejection_stops_the_trigger() {
    let server = serve(None, |_, _| reply(403, "not for this repository")).await;
    let mut hook = interceptor(WebhookProtocol::Legacy, &server.url("http", "/"));
    hook.name = "webhook".to_owned();
    let event = Event::new();

    let outcome = WebhookClient::new(settings())
        .call(&hook, &event.call())
        .await
        .unwrap();

    assert_eq!(
        stopped(outcome),
        "interceptor webhook: request rejected; status: 403 Forbidden; \
         message: not for this repository"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn legacy_retries_too_many_requests() {
    let server = serve(None, |index, _| match index {
        0 => reply(429, ""),
        _ => reply(200, "ok"),
    })
    .await;
    let hook = interceptor(WebhookProtocol::Legacy, &server.url("http", "/"));
    let event = Event::new();

    let outcome = WebhookClient::new(settings())
        .call(&hook, &event.call())
        .await
        .unwrap();

    let (_, replaced) = continued(outcome);
    assert_eq!(replaced.unwrap().0, Bytes::from_static(b"ok"));
    assert_eq!(server.requests().len(), 2);
}

// ---- TLS ----

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let chain = CertificateDer::pem_slice_iter(SERVER_CERT)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn https_trusts_the_ca_bundle_only() {
    let server = serve(Some(tls_acceptor()), |_, _| {
        reply(200, r#"{"continue": true}"#)
    })
    .await;
    let event = Event::new();
    let client = WebhookClient::new(settings());

    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}/", server.addr.port());
        let mut check = interceptor(WebhookProtocol::Tekton, &url);
        check.ca_bundle = Some(Arc::from(CA));
        continued(client.call(&check, &event.call()).await.unwrap());
    }
    assert_eq!(server.requests().len(), 2);

    // Another CA: the certificate is refused, permanently (no attempt could succeed until
    // the configuration or the certificate changes), after a single attempt.
    let mut other = interceptor(WebhookProtocol::Tekton, &server.url("https", "/"));
    other.ca_bundle = Some(Arc::from(OTHER_CA));
    let error = client.call(&other, &event.call()).await.unwrap_err();
    assert_eq!(error.kind, FailureKind::Permanent);
    assert!(error.message.contains("TLS failed"), "{error}");
    assert!(error.message.contains("UnknownIssuer"), "{error}");

    // The platform's roots do not hold the test CA either.
    let platform = interceptor(WebhookProtocol::Tekton, &server.url("https", "/"));
    let error = client.call(&platform, &event.call()).await.unwrap_err();
    assert_eq!(error.kind, FailureKind::Permanent, "{error}");

    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_permanent() {
    let server = serve(None, |_, _| reply(200, r#"{"continue": true}"#)).await;
    let mut check = interceptor(WebhookProtocol::Tekton, &server.url("https", "/"));
    check.ca_bundle = Some(Arc::from(CA));
    let event = Event::new();

    let error = WebhookClient::new(settings())
        .call(&check, &event.call())
        .await
        .unwrap_err();

    assert_eq!(error.kind, FailureKind::Permanent, "{error}");
}

#[tokio::test]
async fn a_bundle_without_certificates_is_permanent() {
    let event = Event::new();
    let client = WebhookClient::new(settings());
    for bundle in [&b"not a certificate"[..], SERVER_KEY] {
        let mut check = interceptor(WebhookProtocol::Tekton, "https://127.0.0.1:1/");
        check.ca_bundle = Some(Arc::from(bundle));
        let error = client.call(&check, &event.call()).await.unwrap_err();
        assert_eq!(error.kind, FailureKind::Permanent);
        assert!(error.message.contains("no PEM certificate"), "{error}");
    }
}

// ---- Helpers ----

#[test]
fn snippets_are_one_bounded_line() {
    let long = "é\n".repeat(2000);
    let quoted = snippet(long.as_bytes());
    assert!(!quoted.contains('\n'));
    assert!(quoted.len() <= SNIPPET_BYTES * 3);
    assert_eq!(snippet(b"\xff ok \r\n"), "\u{fffd} ok");
}

#[test]
fn debug_output_never_shows_the_body() {
    let event = Event::new();
    let call = format!("{:?}", event.call());
    assert!(!call.contains("refs/heads/main"), "{call}");
    assert!(
        call.contains(&format!("body_len: {}", BODY.len())),
        "{call}"
    );
    let outcome = WebhookOutcome::Continue {
        extensions: Map::new(),
        replaced: Some((Bytes::from_static(BODY.as_bytes()), Headers::new())),
    };
    assert!(!format!("{outcome:?}").contains("refs/heads/main"));
}
