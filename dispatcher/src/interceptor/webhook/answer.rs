//! Reading an interceptor's answer, and quoting it safely: bodies bounded in size, quotes on
//! one line with control characters blanked, URLs shown without credentials or query.

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http::header::{self, HeaderMap};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use sluice_triggers::catalogue::WebhookInterceptor;

use super::retry::{Failure, classify_body_error};

/// How much of an error response's body is quoted in messages.
pub(in crate::interceptor) const SNIPPET_BYTES: usize = 1024;

/// The whole body of a 200 answer, refused when larger than `limit`.
pub(in crate::interceptor) async fn read_body(
    body: &mut Incoming,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, Failure> {
    let too_large = || {
        Failure::permanent(format!(
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
pub(in crate::interceptor) async fn read_snippet(body: &mut Incoming) -> String {
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
pub(in crate::interceptor) fn snippet(bytes: &[u8]) -> String {
    single_line(
        &String::from_utf8_lossy(&bytes[..bytes.len().min(SNIPPET_BYTES)]),
        SNIPPET_BYTES,
    )
}

/// `text` on one line (control characters become spaces), trimmed, at most `max` characters.
pub(in crate::interceptor) fn single_line(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// `what`, then `: quoted` when there is a quote.
pub(in crate::interceptor) fn with_message(what: String, quoted: &str) -> String {
    if quoted.is_empty() {
        what
    } else {
        format!("{what}: {quoted}")
    }
}

/// `403 Forbidden`, as Go prints a response's status.
pub(in crate::interceptor) fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The URL as errors and logs show it: scheme, host, port and path; no user information,
/// query or fragment, which may hold secrets.
pub(in crate::interceptor) fn redacted_url(interceptor: &WebhookInterceptor) -> String {
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
