//! The two protocols interceptors speak: the request each is sent, and how an answer
//! becomes a decision.
//!
//! - Tekton's: an `InterceptorRequest` JSON is POSTed and an `InterceptorResponse` JSON
//!   is expected back with HTTP 200 (wire-compatible with interceptors written against
//!   Tekton's Go types);
//! - the legacy `webhook:` form: the event's body and headers are forwarded as they are,
//!   and a 200's body and headers replace the event's.

use std::fmt;

use bytes::Bytes;
use http::Uri;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sluice_triggers::catalogue::{WebhookInterceptor, WebhookProtocol};
use sluice_triggers::headers::Headers;

use super::answer::single_line;
use super::retry::Failure;
use super::{WebhookCall, WebhookOutcome};
use sluice_runtime::retry::FailureKind;

/// `User-Agent` of every request (the legacy protocol keeps the event's own when it has one).
pub(super) const USER_AGENT: &str = concat!("sluice-dispatcher/", env!("CARGO_PKG_VERSION"));

/// How much of an interceptor's own `status.message` is quoted.
const MESSAGE_CHARS: usize = 1024;

/// Headers that describe a connection rather than the event or the answer: never forwarded
/// to a legacy interceptor, and never taken from its answer into the event.
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

/// Besides [`HOP_BY_HOP`], event headers never forwarded to a legacy interceptor: `Host` and
/// `Content-Length` (set for the new request), `Expect`, `Proxy-Authorization`, and
/// `Accept-Encoding` (a compressed answer could not be used as the new body).
const NOT_FORWARDED: &[&str] = &[
    "accept-encoding",
    "content-length",
    "expect",
    "host",
    "proxy-authorization",
];

/// A request ready to be sent, once per attempt.
pub(super) struct Prepared {
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Builds the request for the interceptor's protocol; a failure is permanent.
pub(super) fn prepare(
    interceptor: &WebhookInterceptor,
    call: &WebhookCall<'_>,
) -> Result<Prepared, Failure> {
    let url = &interceptor.url;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Failure::permanent(
            "credentials in the URL are not supported",
        ));
    }
    let mut without_fragment = url.clone();
    without_fragment.set_fragment(None);
    let uri: Uri = without_fragment
        .as_str()
        .parse()
        .map_err(|error| Failure::permanent(format!("the URL is not usable: {error}")))?;

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
            (headers, legacy_body(call)?)
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
) -> Result<Bytes, Failure> {
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
        .map_err(|error| Failure::permanent(format!("the request could not be encoded: {error}")))
}

/// The body a legacy interceptor is sent: the event's as it is, or, once earlier interceptors
/// have added extensions, the body with each of them set at `extensions.KEY`, as Tekton's
/// `extendBodyWithExtensions` does (a dotted key nests; an empty body starts as `{}`). The
/// body's other members keep their order and exact text. A body that is not a JSON object
/// cannot take them, and the trigger fails for this event, as in Tekton.
fn legacy_body(call: &WebhookCall<'_>) -> Result<Bytes, Failure> {
    if call.extensions.is_empty() {
        return Ok(Bytes::copy_from_slice(call.body));
    }
    let cannot = |why: &str| Failure {
        kind: FailureKind::BadInput,
        message: format!("could not merge the extensions into the body: {why}"),
        retry_after: None,
    };
    let Members(mut members) = if call.body.iter().all(u8::is_ascii_whitespace) {
        Members(Vec::new())
    } else {
        serde_json::from_slice(call.body).map_err(|_| cannot("the body is not a JSON object"))?
    };
    let mut extensions = match members.iter().position(|(key, _)| key == "extensions") {
        Some(at) => match serde_json::from_str(members.remove(at).1.get()) {
            Ok(Value::Object(extensions)) => extensions,
            _ => return Err(cannot("the body's `extensions` is not an object")),
        },
        None => Map::new(),
    };
    for (key, value) in call.extensions {
        let mut object = &mut extensions;
        let mut segments = key.split('.').peekable();
        while let Some(segment) = segments.next() {
            if segments.peek().is_none() {
                object.insert(segment.to_owned(), value.clone());
                break;
            }
            match object
                .entry(segment)
                .or_insert_with(|| Value::Object(Map::new()))
            {
                Value::Object(inner) => object = inner,
                _ => return Err(cannot(&format!("extension `{segment}` is not an object"))),
            }
        }
    }
    let extensions = serde_json::value::to_raw_value(&extensions)
        .map_err(|error| Failure::permanent(format!("the body could not be encoded: {error}")))?;
    members.push(("extensions".to_owned(), extensions));
    let mut body = Vec::with_capacity(call.body.len() + 64);
    body.push(b'{');
    for (index, (key, value)) in members.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, key).expect("a string encodes into a Vec");
        body.push(b':');
        body.extend_from_slice(value.get().as_bytes());
    }
    body.push(b'}');
    Ok(Bytes::from(body))
}

/// A JSON object's members in order, each value as its exact text.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// The event's headers as a legacy interceptor receives them: forwarded (less those in
/// [`HOP_BY_HOP`], [`NOT_FORWARDED`] and those the event's `Connection` header names), plus
/// `EventListener-Request-URL`, then the interceptor's configured headers, each replacing any
/// header of its name.
fn legacy_headers(
    interceptor: &WebhookInterceptor,
    call: &WebhookCall<'_>,
) -> Result<HeaderMap, Failure> {
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
        if HOP_BY_HOP.contains(&name.as_str())
            || NOT_FORWARDED.contains(&name.as_str())
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
            .map_err(|_| Failure::permanent(format!("header name `{name}` is not valid")))?;
        headers.remove(&header_name);
        for value in values {
            let value = HeaderValue::from_str(value).map_err(|_| {
                Failure::permanent(format!(
                    "a value of header `{name}` is not a valid header value"
                ))
            })?;
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
pub(super) struct GrpcCode(pub u32);

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
    pub(super) fn from_name(name: &str) -> Option<Self> {
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

/// What a Tekton interceptor's answer decides, or why the answer is not an
/// `InterceptorResponse`.
pub(super) fn tekton_outcome(
    interceptor: &WebhookInterceptor,
    body: &[u8],
) -> Result<WebhookOutcome, Failure> {
    let response: InterceptorResponse = serde_json::from_slice(body).map_err(|error| {
        Failure::permanent(format!(
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

/// A legacy interceptor's response headers as event headers (connection headers left out,
/// credentials dropped by [`Headers::append`]).
pub(super) fn response_headers(headers: &HeaderMap) -> Headers {
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
