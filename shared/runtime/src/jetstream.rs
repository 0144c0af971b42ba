//! NATS connection and JetStream stream setup shared by every binary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use async_nats::jetstream::{self, kv, stream};

use crate::nats::NatsConnect;
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
    #[error("invalid NATS settings")]
    Settings(#[from] crate::nats::NatsConfigError),
    #[error("failed to create or look up JetStream stream {stream}")]
    Stream {
        stream: String,
        #[source]
        source: jetstream::context::CreateStreamError,
    },
    #[error("failed to look up JetStream stream {stream} after updating it")]
    Lookup {
        stream: String,
        #[source]
        source: jetstream::context::GetStreamError,
    },
}

/// Why a key-value bucket could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("failed to open key-value bucket {bucket}: {source}")]
pub struct BucketError {
    pub bucket: &'static str,
    #[source]
    pub source: jetstream::context::CreateKeyValueError,
}

/// A key-value bucket Sluice keeps: file storage, one value per key.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: &'static str,
    pub description: &'static str,
    /// How long an entry is kept after its last write.
    pub max_age: Duration,
    pub replicas: usize,
}

impl Bucket {
    /// Opens the bucket, creating it when it does not exist. An existing bucket is used as
    /// it is.
    pub async fn open(&self, js: &jetstream::Context) -> Result<kv::Store, BucketError> {
        if let Ok(store) = js.get_key_value(self.name).await {
            follow_replicas(js, &format!("KV_{}", self.name), self.replicas).await;
            return Ok(store);
        }
        js.create_key_value(kv::Config {
            bucket: self.name.to_owned(),
            description: self.description.to_owned(),
            history: 1,
            max_age: self.max_age,
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            ..Default::default()
        })
        .await
        .map_err(|source| BucketError {
            bucket: self.name,
            source,
        })
    }
}

/// Sets the existing stream `name` (a bucket's is `KV_<bucket>`) to `replicas` copies when it
/// has another number, as `--stream-replicas` asks after a cluster grew or shrank. A refusal
/// (3 replicas on a single server) is reported and the stream keeps working as it is; so is
/// a stream that cannot be read.
pub async fn follow_replicas(js: &jetstream::Context, name: &str, replicas: usize) {
    let mut stream = match js.get_stream(name).await {
        Ok(stream) => stream,
        Err(error) => {
            tracing::warn!(stream = name, %error, "cannot read the stream's replicas");
            return;
        }
    };
    let mut config = match stream.info().await {
        Ok(info) => info.config.clone(),
        Err(error) => {
            tracing::warn!(stream = name, %error, "cannot read the stream's replicas");
            return;
        }
    };
    let (current, wanted) = (config.num_replicas.max(1), replicas.max(1));
    if current == wanted {
        return;
    }
    config.num_replicas = wanted;
    match js.update_stream(&config).await {
        Ok(_) => tracing::info!(
            stream = name,
            from = current,
            to = wanted,
            "stream replicas updated to --stream-replicas"
        ),
        Err(error) => tracing::warn!(
            stream = name,
            current,
            wanted,
            %error,
            "stream replicas differ from --stream-replicas and JetStream refused the change; the stream keeps its own"
        ),
    }
}

/// JetStream's default duplicate window, also Sluice's default.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Sluice's default for [`StreamSettings::max_consumers`]: room for 10,000 tenant namespaces.
pub const DEFAULT_MAX_CONSUMERS: u32 = 10_000;

/// How the events stream is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// How long an event is kept at most.
    pub max_age: Duration,
    /// Copies kept by the NATS cluster (1 for a single server, 3 in production).
    pub replicas: usize,
    /// How long JetStream remembers a `Nats-Msg-Id`: a redelivered webhook within it is
    /// answered as a duplicate instead of being stored twice. Capped at `max_age` (JetStream
    /// refuses a window longer than the stream keeps messages).
    pub duplicate_window: Duration,
    /// Bytes the stream may hold; `None` is unlimited. Full → new events are refused.
    pub max_bytes: Option<u64>,
    /// Events the stream may hold; `None` is unlimited. Full → new events are refused.
    pub max_messages: Option<u64>,
    /// Consumers the stream may have. The dispatcher binds one per tenant namespace (per
    /// consumer prefix), so this bounds the tenants one cluster serves. Always sent: since
    /// 2.15 nats-server gives a stream that sets none a default of 1000, and reads -1 as
    /// "use the default", so "unlimited" cannot be asked for.
    pub max_consumers: u32,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(7 * 24 * 3600),
            replicas: 1,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            max_bytes: None,
            max_messages: None,
            max_consumers: DEFAULT_MAX_CONSUMERS,
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
            duplicate_window: self.effective_duplicate_window(),
            max_bytes: limit(self.max_bytes),
            max_messages: limit(self.max_messages),
            max_consumers: i32::try_from(self.max_consumers).unwrap_or(i32::MAX),
            ..Default::default()
        }
    }

    /// The duplicate window JetStream will accept: never longer than `max_age` (0 = forever).
    fn effective_duplicate_window(&self) -> Duration {
        if self.max_age.is_zero() {
            self.duplicate_window
        } else {
            self.duplicate_window.min(self.max_age)
        }
    }
}

/// JetStream's encoding of a limit: -1 for none.
fn limit(value: Option<u64>) -> i64 {
    value.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// A limit as JetStream reports it, where 0 and -1 both mean none.
fn describe_limit(value: i64) -> String {
    if value <= 0 {
        "unlimited".to_owned()
    } else {
        value.to_string()
    }
}

/// One setting of the existing stream that differs from the configured one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamChange {
    pub field: &'static str,
    pub from: String,
    pub to: String,
}

impl std::fmt::Display for StreamChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.field, self.from, self.to)
    }
}

/// The settings Sluice owns that differ between the stream as it is (`current`) and as
/// configured (`wanted`), and `current` with them set to the configured values. Limits are
/// compared as JetStream means them (0 and -1 are both "unlimited", 0 replicas is 1), so an
/// unchanged stream is never updated. Everything else (storage, retention, consumers' state)
/// is left as it is: storage cannot change in place, and the rest is not Sluice's to decide.
fn reconcile(
    current: &stream::Config,
    wanted: &stream::Config,
) -> (Vec<StreamChange>, stream::Config) {
    let mut changes = Vec::new();
    let mut updated = current.clone();
    let mut note = |field, from: String, to: String| {
        changes.push(StreamChange { field, from, to });
    };
    if current.max_age != wanted.max_age {
        note(
            "max_age",
            format!("{:?}", current.max_age),
            format!("{:?}", wanted.max_age),
        );
        updated.max_age = wanted.max_age;
    }
    // 0 asks JetStream for its default window, which is what it then reports.
    if !wanted.duplicate_window.is_zero() && current.duplicate_window != wanted.duplicate_window {
        note(
            "duplicate_window",
            format!("{:?}", current.duplicate_window),
            format!("{:?}", wanted.duplicate_window),
        );
        updated.duplicate_window = wanted.duplicate_window;
    }
    if current.max_bytes.max(0) != wanted.max_bytes.max(0) {
        note(
            "max_bytes",
            describe_limit(current.max_bytes),
            describe_limit(wanted.max_bytes),
        );
        updated.max_bytes = wanted.max_bytes;
    }
    if current.max_messages.max(0) != wanted.max_messages.max(0) {
        note(
            "max_messages",
            describe_limit(current.max_messages),
            describe_limit(wanted.max_messages),
        );
        updated.max_messages = wanted.max_messages;
    }
    // A server that reports no limit (before 2.15) already allows every tenant; an update
    // there could only restrict it, and older servers refuse to change this setting at all.
    if current.max_consumers > 0 && current.max_consumers != wanted.max_consumers {
        note(
            "max_consumers",
            current.max_consumers.to_string(),
            wanted.max_consumers.to_string(),
        );
        updated.max_consumers = wanted.max_consumers;
    }
    if current.discard != wanted.discard {
        note(
            "discard",
            format!("{:?}", current.discard),
            format!("{:?}", wanted.discard),
        );
        updated.discard = wanted.discard;
    }
    if current.num_replicas.max(1) != wanted.num_replicas.max(1) {
        note(
            "replicas",
            current.num_replicas.max(1).to_string(),
            wanted.num_replicas.max(1).to_string(),
        );
        updated.num_replicas = wanted.num_replicas;
    }
    if current.subjects != wanted.subjects {
        note(
            "subjects",
            current.subjects.join(","),
            wanted.subjects.join(","),
        );
        updated.subjects = wanted.subjects.clone();
    }
    (changes, updated)
}

/// What [`reconcile_events_stream`] found and did.
#[derive(Debug)]
pub struct Reconciled {
    pub stream: stream::Stream,
    /// Settings that differed from the configured ones. Applied unless `update_error` is set.
    pub changes: Vec<StreamChange>,
    /// Why JetStream refused to apply `changes` (e.g. 3 replicas on a single server). The
    /// stream still works with its old settings, so this is reported, not fatal: a mistyped
    /// flag must not take every replica out of service.
    pub update_error: Option<String>,
}

/// Creates the events stream if it does not exist; if it exists with other limits (messages,
/// bytes, consumers), max age,
/// duplicate window, discard policy, replicas or subjects than configured, updates it to the
/// configured ones. Storage is never changed (JetStream cannot do it in place).
pub async fn reconcile_events_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<Reconciled, Error> {
    let wanted = settings.config();
    let stream = js
        .get_or_create_stream(wanted.clone())
        .await
        .map_err(|source| Error::Stream {
            stream: EVENTS_STREAM.to_owned(),
            source,
        })?;
    let (changes, updated) = reconcile(&stream.cached_info().config, &wanted);
    if changes.is_empty() {
        return Ok(Reconciled {
            stream,
            changes,
            update_error: None,
        });
    }
    if let Err(error) = js.update_stream(&updated).await {
        return Ok(Reconciled {
            stream,
            changes,
            update_error: Some(error.to_string()),
        });
    }
    let stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|source| Error::Lookup {
            stream: EVENTS_STREAM.to_owned(),
            source,
        })?;
    Ok(Reconciled {
        stream,
        changes,
        update_error: None,
    })
}

fn log_changes(reconciled: &Reconciled) {
    if reconciled.changes.is_empty() || reconciled.update_error.is_some() {
        return;
    }
    let changes = describe_changes(&reconciled.changes);
    tracing::info!(stream = EVENTS_STREAM, %changes, "events stream updated to the configured settings");
}

fn describe_changes(changes: &[StreamChange]) -> String {
    changes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How often the client pings its server.
const PING_INTERVAL: Duration = Duration::from_secs(1);

/// Connects to NATS, retrying the first connection and reconnecting forever, with reconnect
/// delays capped at one second so service resumes quickly after an outage. Authentication
/// and TLS come from `nats`; a refused login or TLS handshake is logged and retried, and the
/// process stays unready meanwhile.
pub async fn connect(nats: &NatsConnect, name: &str) -> Result<async_nats::Client, Error> {
    let url = nats.shown_url();
    tracing::info!(
        url = %url,
        auth = nats.auth_method(),
        tls = nats.tls_required(),
        "connecting to NATS"
    );
    nats.options()
        .await?
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        // A server that stops answering (stalled, cut off) is given up after three pings
        // without a pong, 3–4 s, and another of the cluster's servers taken: the default
        // (a ping every 2 minutes) kept a connection to a stalled node for minutes.
        .ping_interval(PING_INTERVAL)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * attempts as u64).min(1000))
        })
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
                // Refused logins and failed TLS handshakes arrive here, never with a secret.
                async_nats::Event::ClientError(error) => {
                    tracing::warn!(%error, "cannot connect to NATS");
                }
                async_nats::Event::ServerError(error) => {
                    tracing::warn!(%error, "NATS server reported an error");
                }
                other => tracing::debug!(event = %other, "NATS event"),
            }
        })
        .connect(nats.servers())
        .await
        .map_err(|source| Error::Connect { url, source })
}

/// A JetStream context whose requests (publish acks included) time out after `timeout`.
pub fn context(client: async_nats::Client, timeout: Duration) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(timeout)
        .build(client)
}

/// Creates the events stream if it does not exist, brings an existing one to the configured
/// settings (see [`reconcile_events_stream`]), logs what changed, and returns it.
pub async fn ensure_events_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Stream, Error> {
    let reconciled = reconcile_events_stream(js, settings).await?;
    log_changes(&reconciled);
    if let Some(error) = &reconciled.update_error {
        let changes = describe_changes(&reconciled.changes);
        tracing::warn!(stream = EVENTS_STREAM, %changes, %error, "events stream kept its old settings: JetStream refused the configured ones");
    }
    Ok(reconciled.stream)
}

/// How often an unready [`StreamHealth`] checks again.
const UNREADY_RECHECK: Duration = Duration::from_millis(25);

/// Tracks whether the NATS connection is up and the events stream exists, re-creating the
/// stream when a NATS server comes back without it (a fresh store).
#[derive(Debug)]
pub struct StreamHealth {
    client: async_nats::Client,
    stream_ok: AtomicBool,
    /// The last refused update, so that a setting JetStream keeps refusing is logged once,
    /// not every second.
    refused_update: Mutex<Option<String>>,
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
            refused_update: Mutex::new(None),
        });
        health.refresh(&js, &settings).await;
        let watcher = health.clone();
        tokio::spawn(async move {
            loop {
                // While unready (the connection is usually still being made at start),
                // look again soon: readiness then follows the connection within tens of
                // milliseconds, not a whole interval later.
                let pause = if watcher.check().is_ok() {
                    interval
                } else {
                    interval.min(UNREADY_RECHECK)
                };
                tokio::time::sleep(pause).await;
                watcher.refresh(&js, &settings).await;
            }
        });
        health
    }

    async fn refresh(&self, js: &jetstream::Context, settings: &StreamSettings) {
        let ok = if self.connected() {
            match reconcile_events_stream(js, settings).await {
                Ok(reconciled) => {
                    log_changes(&reconciled);
                    self.note_refused_update(&reconciled);
                    true
                }
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

    fn note_refused_update(&self, reconciled: &Reconciled) {
        let refused = reconciled
            .update_error
            .as_ref()
            .map(|error| format!("{} ({error})", describe_changes(&reconciled.changes)));
        let mut last = self
            .refused_update
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *last != refused {
            if let Some(refused) = &refused {
                tracing::warn!(stream = EVENTS_STREAM, update = %refused, "events stream kept its old settings: JetStream refused the configured ones");
            }
            *last = refused;
        }
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

/// Set on a diverted tenant's consumer while it is given back: the first stream sequence the
/// common consumer runs again.
pub const RELEASED_AT: &str = "sluice.dev/released-at";

/// Where a diverted tenant's consumer being given back stops owning events, if it is.
pub fn consumer_released_at(config: &consumer::Config) -> Option<u64> {
    config.metadata.get(RELEASED_AT)?.parse().ok()
}

/// The first stream sequence a consumer delivers: 0 when it starts from the first stored
/// event (or any place other than a sequence).
pub fn consumer_start(config: &consumer::Config) -> u64 {
    match config.deliver_policy {
        DeliverPolicy::ByStartSequence { start_sequence } => start_sequence,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_with_the_configured_settings_is_left_alone() {
        let wanted = StreamSettings::default().config();
        // JetStream reports "no limit" as -1 whatever was asked.
        let mut current = wanted.clone();
        current.max_bytes = 0;
        current.max_messages = -1;
        current.num_replicas = 0;
        let (changes, _) = reconcile(&current, &wanted);
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn other_limits_are_updated_and_named() {
        let wanted = StreamSettings {
            max_messages: Some(5),
            max_bytes: Some(1 << 20),
            duplicate_window: Duration::from_secs(600),
            ..StreamSettings::default()
        }
        .config();
        let mut current = StreamSettings::default().config();
        current.discard = stream::DiscardPolicy::Old;
        current.description = Some("kept".to_owned());
        let (changes, updated) = reconcile(&current, &wanted);
        let fields: Vec<_> = changes.iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            ["duplicate_window", "max_bytes", "max_messages", "discard"]
        );
        assert_eq!(changes[2].to_string(), "max_messages: unlimited -> 5");
        assert_eq!(updated.max_messages, 5);
        assert_eq!(updated.max_bytes, 1 << 20);
        assert_eq!(updated.duplicate_window, Duration::from_secs(600));
        assert_eq!(updated.discard, stream::DiscardPolicy::New);
        assert_eq!(updated.description.as_deref(), Some("kept"));
    }

    #[test]
    fn the_consumer_limit_is_raised_from_the_servers_default_but_never_imposed_on_unlimited() {
        let wanted = StreamSettings::default().config();
        assert_eq!(wanted.max_consumers, 10_000);
        // nats-server 2.15 gave the stream its default of 1000.
        let mut current = wanted.clone();
        current.max_consumers = 1000;
        let (changes, updated) = reconcile(&current, &wanted);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].to_string(), "max_consumers: 1000 -> 10000");
        assert_eq!(updated.max_consumers, 10_000);
        // Older servers report -1: no limit to raise.
        current.max_consumers = -1;
        assert!(reconcile(&current, &wanted).0.is_empty());
    }

    #[test]
    fn the_duplicate_window_never_exceeds_max_age() {
        let settings = StreamSettings {
            max_age: Duration::from_secs(60),
            ..StreamSettings::default()
        };
        assert_eq!(settings.config().duplicate_window, Duration::from_secs(60));
        let forever = StreamSettings {
            max_age: Duration::ZERO,
            ..StreamSettings::default()
        };
        assert_eq!(forever.config().duplicate_window, DEFAULT_DUPLICATE_WINDOW);
    }

    #[test]
    fn unlimited_is_minus_one() {
        assert_eq!(limit(None), -1);
        assert_eq!(limit(Some(5)), 5);
        assert_eq!(limit(Some(u64::MAX)), i64::MAX);
    }
}
