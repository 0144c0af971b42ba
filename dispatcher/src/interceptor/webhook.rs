//! Placeholder: the webhook interceptor client.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};
use sluice_shared::catalogue::WebhookInterceptor;
use sluice_shared::event::Headers;

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub timeout: Duration,
    pub attempts: u32,
    pub backoff: Duration,
    pub max_response_bytes: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(200),
            max_response_bytes: 10 << 20,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WebhookClient {
    settings: WebhookSettings,
}

pub struct WebhookCall<'a> {
    pub body: &'a [u8],
    pub headers: &'a Headers,
    pub extensions: &'a Map<String, Value>,
    pub event_url: &'a str,
    pub event_id: &'a str,
    pub trigger_id: &'a str,
}

#[derive(Debug)]
pub enum WebhookOutcome {
    Continue {
        extensions: Map<String, Value>,
        replaced: Option<(Bytes, Headers)>,
    },
    Stop {
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookErrorKind {
    Transient,
    Permanent,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct WebhookError {
    pub kind: WebhookErrorKind,
    pub message: String,
}

impl WebhookClient {
    pub fn new(settings: WebhookSettings) -> Self {
        Self { settings }
    }

    pub async fn call(
        &self,
        interceptor: &WebhookInterceptor,
        call: &WebhookCall<'_>,
    ) -> Result<WebhookOutcome, WebhookError> {
        let _ = (call, &self.settings);
        Err(WebhookError {
            kind: WebhookErrorKind::Transient,
            message: format!("{} is not reachable in this build", interceptor.name),
        })
    }
}
