//! The NATS side of `sluice dlq`: a bounded connection, reading dead letters from
//! `SLUICE_DLQ` (one by sequence, or all with an ephemeral ordered consumer), deleting them,
//! and publishing replayed events to `SLUICE_EVENTS` with a durable ack.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::context::{GetStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::{self, DeleteMessageErrorKind, RawMessageErrorKind};
use async_nats::jetstream::{self, ErrorCode};
use bytes::Bytes;
use futures_util::StreamExt;
use sluice_runtime::dlq::{DLQ_STREAM, DLQ_WILDCARD, DeadLetter, NotADeadLetter};
use sluice_runtime::jetstream::EVENTS_STREAM;
use sluice_runtime::nats::NatsConnect;
use sluice_runtime::subject::encode_token;
use sluice_runtime::telemetry::traces::{REPLAYED_HEADER, TRACEPARENT_HEADER};

/// How long connecting to NATS may take before the command gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long any one JetStream request (a read, a delete, a publish ack) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Which dead letters a command applies to; `None` matches any.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub namespace: Option<String>,
    pub listener: Option<String>,
}

impl Filter {
    /// Whether it selects every dead letter.
    pub fn is_empty(&self) -> bool {
        self.namespace.is_none() && self.listener.is_none()
    }

    /// The subject filter that selects the same dead letters in the stream (subjects are
    /// `sluice.dlq.<namespace>.<listener>`, each name one encoded token).
    fn subject(&self) -> String {
        if self.is_empty() {
            return DLQ_WILDCARD.to_owned();
        }
        let mut subject = String::from("sluice.dlq.");
        match &self.namespace {
            Some(namespace) => encode_token(namespace, &mut subject),
            None => subject.push('*'),
        }
        subject.push('.');
        match &self.listener {
            Some(listener) => encode_token(listener, &mut subject),
            None => subject.push('*'),
        }
        subject
    }

    /// Whether the dead letter's own headers match (the subject filter already did; this
    /// keeps a message published on the wrong subject out).
    fn matches(&self, letter: &DeadLetter) -> bool {
        self.namespace
            .as_ref()
            .is_none_or(|ns| *ns == letter.namespace)
            && self.listener.as_ref().is_none_or(|l| *l == letter.listener)
    }
}

/// One message of the dead-letter stream.
#[derive(Debug)]
pub struct Stored {
    /// Its stream sequence: the ID operators use.
    pub id: u64,
    /// The dead letter, or why the message is not one.
    pub letter: Result<DeadLetter, NotADeadLetter>,
    /// The W3C `traceparent` of the span that dead-lettered it, when traces were on.
    pub traceparent: Option<String>,
}

/// The `traceparent` header of a dead-letter message.
fn traceparent(headers: Option<&HeaderMap>) -> Option<String> {
    headers
        .and_then(|headers| headers.get(TRACEPARENT_HEADER))
        .map(|value| value.as_str().to_owned())
}

/// A connection to NATS and, when it exists, the dead-letter stream.
pub struct Store {
    js: jetstream::Context,
    /// `None` when the stream does not exist: there are no dead letters.
    dlq: Option<stream::Stream>,
}

impl Store {
    /// Connects (once, within [`CONNECT_TIMEOUT`]) and looks up `SLUICE_DLQ`.
    pub async fn connect(nats: &NatsConnect) -> anyhow::Result<Store> {
        let shown = nats.shown_url();
        let connect = nats
            .options()
            .await?
            .name("sluice-cli")
            .connection_timeout(CONNECT_TIMEOUT)
            .request_timeout(Some(REQUEST_TIMEOUT))
            .connect(nats.servers());
        let client = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => bail!("cannot connect to NATS at {shown}: {error}"),
            Err(_) => bail!(
                "cannot connect to NATS at {shown}: no answer within {}s",
                CONNECT_TIMEOUT.as_secs()
            ),
        };
        let js = sluice_runtime::jetstream::context(client, REQUEST_TIMEOUT);
        let dlq = match js.get_stream(DLQ_STREAM).await {
            Ok(stream) => Some(stream),
            Err(error) => match error.kind() {
                GetStreamErrorKind::JetStream(inner)
                    if inner.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    None
                }
                _ => {
                    return Err(anyhow!(error).context(format!(
                        "cannot look up stream {DLQ_STREAM} at {shown} (is JetStream enabled?)"
                    )));
                }
            },
        };
        Ok(Store { js, dlq })
    }

    /// The JetStream context the store reads and publishes through.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// The message with stream sequence `id`, or `None` when there is none.
    pub async fn get(&self, id: u64) -> anyhow::Result<Option<Stored>> {
        let Some(dlq) = &self.dlq else {
            return Ok(None);
        };
        if id == 0 {
            // Sequences start at 1; the server would call 0 a bad request.
            return Ok(None);
        }
        match dlq.get_raw_message(id).await {
            Ok(message) => Ok(Some(Stored {
                id,
                traceparent: traceparent(Some(&message.headers)),
                letter: DeadLetter::from_message(Some(&message.headers), message.payload),
            })),
            Err(error) if matches!(error.kind(), RawMessageErrorKind::NoMessageFound) => Ok(None),
            Err(error) => Err(anyhow!(error).context(format!("cannot read dead letter {id}"))),
        }
    }

    /// Every message that `filter` selects, in stream order.
    ///
    /// Reads with an ephemeral ordered consumer (one round trip per batch, not per message)
    /// up to the last message stored when the listing started.
    pub async fn list(&self, filter: &Filter) -> anyhow::Result<Vec<Stored>> {
        let Some(dlq) = &self.dlq else {
            return Ok(Vec::new());
        };
        let state = dlq
            .get_info()
            .await
            .with_context(|| format!("cannot read the state of stream {DLQ_STREAM}"))?
            .state;
        if state.messages == 0 {
            return Ok(Vec::new());
        }
        let consumer = dlq
            .create_consumer(pull::OrderedConfig {
                filter_subject: filter.subject(),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot read stream {DLQ_STREAM}"))?;
        if consumer.cached_info().num_pending == 0 {
            return Ok(Vec::new());
        }
        let mut messages = consumer
            .messages()
            .await
            .with_context(|| format!("cannot read stream {DLQ_STREAM}"))?;
        let mut stored = Vec::new();
        loop {
            let message = match tokio::time::timeout(REQUEST_TIMEOUT, messages.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(error))) => {
                    return Err(anyhow!(error).context(format!("cannot read stream {DLQ_STREAM}")));
                }
                Ok(None) => break,
                Err(_) => bail!(
                    "reading stream {DLQ_STREAM} stalled for {}s",
                    REQUEST_TIMEOUT.as_secs()
                ),
            };
            let (id, pending) = {
                let info = message.info().map_err(|error| {
                    anyhow!("a message of {DLQ_STREAM} has no metadata: {error}")
                })?;
                (info.stream_sequence, info.pending)
            };
            let letter =
                DeadLetter::from_message(message.headers.as_ref(), message.payload.clone());
            let selected = match &letter {
                Ok(letter) => filter.matches(letter),
                // Its subject matched; it is shown as what it is.
                Err(_) => true,
            };
            if selected {
                stored.push(Stored {
                    id,
                    letter,
                    traceparent: traceparent(message.headers.as_ref()),
                });
            }
            if pending == 0 || id >= state.last_sequence {
                break;
            }
        }
        Ok(stored)
    }

    /// Deletes message `id`; `false` when it was already gone.
    pub async fn delete(&self, id: u64) -> anyhow::Result<bool> {
        let Some(dlq) = &self.dlq else {
            return Ok(false);
        };
        match dlq.delete_message(id).await {
            Ok(deleted) => Ok(deleted),
            Err(error) => match error.kind() {
                // The server answers "message delete failed" with the reason in words.
                DeleteMessageErrorKind::JetStream(inner)
                    if inner.error_code() == ErrorCode::NO_MESSAGE_FOUND
                        || (inner.error_code() == ErrorCode::STREAM_MESSAGE_DELETE_FAILED
                            && inner.to_string().starts_with("no message found")) =>
                {
                    Ok(false)
                }
                _ => Err(anyhow!(error).context(format!("cannot delete dead letter {id}"))),
            },
        }
    }

    /// Publishes `payload` on `subject` with `Nats-Msg-Id: msg_id` and waits for the events
    /// stream to store it.
    pub async fn publish_event(
        &self,
        subject: String,
        msg_id: &str,
        payload: Bytes,
        dead_lettered_in: Option<&str>,
    ) -> anyhow::Result<PublishAck> {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
        // Linked by the replay's consumer span, which starts a trace of its own.
        if let Some(traceparent) = dead_lettered_in {
            headers.insert(REPLAYED_HEADER, traceparent);
        }
        let published = async {
            self.js
                .publish_with_headers(subject.clone(), headers, payload)
                .await?
                .await
        };
        let ack = match tokio::time::timeout(REQUEST_TIMEOUT, published).await {
            Ok(Ok(ack)) => ack,
            Ok(Err(error)) if matches!(error.kind(), PublishErrorKind::StreamNotFound) => bail!(
                "no stream stores {subject}: stream {EVENTS_STREAM} does not exist (sluice-ingest creates it)"
            ),
            Ok(Err(error)) => {
                return Err(anyhow!(error).context(format!("cannot publish to {subject}")));
            }
            Err(_) => bail!(
                "{EVENTS_STREAM} did not acknowledge the event within {}s",
                REQUEST_TIMEOUT.as_secs()
            ),
        };
        if ack.stream != EVENTS_STREAM {
            bail!(
                "{subject} is stored by stream {}, not {EVENTS_STREAM}; the dispatcher would not see it",
                ack.stream
            );
        }
        Ok(ack)
    }
}

/// `url` with any user name, password or token replaced by `***`, for messages.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_subject_filters() {
        let filter = |namespace: Option<&str>, listener: Option<&str>| Filter {
            namespace: namespace.map(str::to_owned),
            listener: listener.map(str::to_owned),
        };
        assert_eq!(filter(None, None).subject(), "sluice.dlq.>");
        assert_eq!(
            filter(Some("team-a"), None).subject(),
            "sluice.dlq.team-a.*"
        );
        assert_eq!(
            filter(None, Some("git.hub")).subject(),
            "sluice.dlq.*.git_2Ehub"
        );
        assert_eq!(
            filter(Some("a"), Some("*")).subject(),
            "sluice.dlq.a._2A",
            "names are encoded, never wildcards"
        );
    }
}
