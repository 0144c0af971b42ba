//! Reading many keys of a key-value bucket in one request: JetStream's batched direct get
//! (`multi_last`, nats-server 2.11 and later), which async-nats has no call for.
//!
//! One request names the keys' subjects; the server answers with the last message of each
//! subject that has one, then an end-of-batch status (`204`), or only `404` when none has.
//! A key whose last message is a delete or a purge marker has no value, as
//! `kv::Store::get` reads it.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::StatusCode;
use bytes::Bytes;
use futures_util::StreamExt;

/// Why a batch read gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BatchReadError {
    /// The server does not read keys in batches (older than 2.11, or it refused the request):
    /// read them one by one.
    #[error("the server does not read keys in batches: {0}")]
    Unsupported(String),
    /// No answer in time, or NATS unavailable: worth trying again later.
    #[error("{0}")]
    Failed(String),
}

/// The end of a batch's answer.
const END_OF_BATCH: u16 = 204;

/// The values of those of `keys` that have one in `bucket`, each key's latest.
pub async fn last_values(
    client: &async_nats::Client,
    bucket: &str,
    keys: &[&str],
    timeout: Duration,
) -> Result<HashMap<String, Bytes>, BatchReadError> {
    let prefix = format!("$KV.{bucket}.");
    let subjects: Vec<String> = keys.iter().map(|key| format!("{prefix}{key}")).collect();
    let request = serde_json::json!({ "multi_last": subjects, "batch": subjects.len() });
    let failed = |what: &str, error: &dyn std::fmt::Display| {
        BatchReadError::Failed(format!("batch read of {bucket}: {what}: {error}"))
    };
    let inbox = client.new_inbox();
    let mut answers = client
        .subscribe(inbox.clone())
        .await
        .map_err(|error| failed("cannot subscribe", &error))?;
    client
        .publish_with_reply(
            format!("$JS.API.DIRECT.GET.KV_{bucket}"),
            inbox,
            request.to_string().into(),
        )
        .await
        .map_err(|error| failed("cannot send the request", &error))?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut values = HashMap::with_capacity(keys.len());
    loop {
        let answer = match tokio::time::timeout_at(deadline, answers.next()).await {
            Ok(Some(answer)) => answer,
            Ok(None) => return Err(failed("the answer ended early", &"connection closed")),
            Err(_) => return Err(failed("no answer", &format!("after {timeout:?}"))),
        };
        match answer.status {
            None => {}
            Some(status) if status.as_u16() == END_OF_BATCH => return Ok(values),
            // Nothing found.
            Some(StatusCode::NOT_FOUND) if values.is_empty() => return Ok(values),
            Some(StatusCode::NO_RESPONDERS) => {
                return Err(failed(
                    "no answer",
                    &"no responders (the bucket's stream is unavailable)",
                ));
            }
            Some(status) => {
                let reason = answer.description.unwrap_or_default();
                return Err(BatchReadError::Unsupported(format!("{status} {reason}")));
            }
        }
        let headers = answer.headers.as_ref();
        let Some(key) = headers
            .and_then(|headers| headers.get("Nats-Subject"))
            .and_then(|subject| subject.as_str().strip_prefix(prefix.as_str()))
        else {
            return Err(BatchReadError::Unsupported(
                "an answer that names no subject of the bucket".to_owned(),
            ));
        };
        let removed = headers
            .and_then(|headers| headers.get("KV-Operation"))
            .is_some_and(|operation| matches!(operation.as_str(), "DEL" | "PURGE"));
        if removed {
            values.remove(key);
        } else {
            values.insert(key.to_owned(), answer.payload);
        }
    }
}
