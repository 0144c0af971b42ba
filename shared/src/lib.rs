//! Sluice's shared library: what `sluice-ingest`, `sluice-dispatcher` and the `sluice` CLI
//! agree on — the event envelope and its subjects, the Tekton Triggers catalogue and the
//! expression language, JetStream setup and telemetry.

pub mod catalogue;
pub mod cel;
pub mod cli;
pub mod config;
pub mod dlq;
pub mod event;
pub mod expr;
pub mod jetstream;
pub mod metrics;
pub mod names;
pub mod ops;
pub mod secret;
pub mod subject;
pub mod telemetry;
pub mod template;
pub mod tenants;
