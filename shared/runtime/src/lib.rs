//! What Sluice's binaries run on, beneath the Tekton model (`sluice-triggers`):
//!
//! - the queue: [`envelope`] (a webhook as stored), [`subject`] (where it is stored),
//!   [`jetstream`] (connecting, the events stream and its health), [`kv_batch`] (many
//!   keys of a bucket read at once), [`dlq`] (dead letters);
//! - operating: [`ops`] (`/metrics`, `/healthz`, `/readyz`, signals), [`telemetry`]
//!   (logging, traces), [`metrics`] (the registry, `process_*`, label values);
//! - configuring: [`flags`] (the flags every binary shares), [`reload`] (the configuration
//!   directory kept current), [`cluster`] (the configuration read from the Kubernetes API),
//!   [`tenants`] (the platform's per-tenant policy);
//! - deciding again: [`retry`] (backoff with jitter and what is worth retrying) and
//!   [`token_bucket`] (the rate arithmetic behind admission and run limits);
//! - [`clock`]: the wall-clock time events record.

pub mod clock;
pub mod cluster;
pub mod dlq;
pub mod envelope;
pub mod event_status;
pub mod flags;
pub mod jetstream;
pub mod kv_batch;
pub mod metrics;
pub mod nats;
pub mod ops;
pub mod reload;
pub mod retry;
pub mod subject;
pub mod telemetry;
pub mod tenants;
pub mod token_bucket;
