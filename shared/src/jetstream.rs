//! NATS connection and JetStream stream setup shared by every binary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::subject::EVENTS_WILDCARD;

/// The stream that holds webhook events.
pub const EVENTS_STREAM: &str = "SLUICE_EVENTS";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to connect to NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("failed to create or look up JetStream stream {stream}")]
    Stream {
        stream: String,
        #[source]
        source: jetstream::context::CreateStreamError,
    },
}

/// How the events stream is kept.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// How long an event is kept at most.
    pub max_age: Duration,
    /// Copies kept by the NATS cluster (1 for a single server, 3 in production).
    pub replicas: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(7 * 24 * 3600),
            replicas: 1,
        }
    }
}

impl StreamSettings {
    fn config(&self) -> stream::Config {
        stream::Config {
            name: EVENTS_STREAM.to_owned(),
            subjects: vec![EVENTS_WILDCARD.to_owned()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            // Refuse new events when full rather than silently dropping old ones.
            discard: stream::DiscardPolicy::New,
            max_age: self.max_age,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }
}

/// Connects to NATS, retrying the first connection and reconnecting forever, with reconnect
/// delays capped at one second so service resumes quickly after an outage.
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client, Error> {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * attempts as u64).min(1000))
        })
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
                other => tracing::debug!(event = %other, "NATS event"),
            }
        })
        .connect(url)
        .await
        .map_err(|source| Error::Connect {
            url: url.to_owned(),
            source,
        })
}

/// A JetStream context whose requests (publish acks included) time out after `timeout`.
pub fn context(client: async_nats::Client, timeout: Duration) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(timeout)
        .build(client)
}

/// Creates the events stream if it does not exist and returns it.
pub async fn ensure_events_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Stream, Error> {
    js.get_or_create_stream(settings.config())
        .await
        .map_err(|source| Error::Stream {
            stream: EVENTS_STREAM.to_owned(),
            source,
        })
}

/// Tracks whether the NATS connection is up and the events stream exists, re-creating the
/// stream when a NATS server comes back without it (a fresh store).
#[derive(Debug)]
pub struct StreamHealth {
    client: async_nats::Client,
    stream_ok: AtomicBool,
}

impl StreamHealth {
    /// Checks once now, then every `interval` in a background task.
    pub async fn watch(
        client: async_nats::Client,
        js: jetstream::Context,
        settings: StreamSettings,
        interval: Duration,
    ) -> Arc<Self> {
        let health = Arc::new(Self {
            client,
            stream_ok: AtomicBool::new(false),
        });
        health.refresh(&js, &settings).await;
        let watcher = health.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                watcher.refresh(&js, &settings).await;
            }
        });
        health
    }

    async fn refresh(&self, js: &jetstream::Context, settings: &StreamSettings) {
        let ok = if self.connected() {
            match ensure_events_stream(js, settings).await {
                Ok(_) => true,
                Err(error) => {
                    tracing::warn!(error = %error, "events stream unavailable");
                    false
                }
            }
        } else {
            false
        };
        self.stream_ok.store(ok, Ordering::Relaxed);
    }

    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// `Ok` when connected and the stream was present at the last check.
    pub fn check(&self) -> Result<(), String> {
        if !self.connected() {
            return Err("not connected to NATS".to_owned());
        }
        if !self.stream_ok.load(Ordering::Relaxed) {
            return Err(format!("JetStream stream {EVENTS_STREAM} is not available"));
        }
        Ok(())
    }
}
