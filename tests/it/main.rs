//! Integration tests: a real `nats-server` per test, Sluice's binaries started as users start
//! them, and the Kubernetes API test double driven by the real `kube` client.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod bad_input;
mod cli;
mod cluster;
mod cluster_changes;
mod cluster_status;
mod compat;
mod dashboard;
mod dlq_cli;
mod event_status;
mod events_api;
mod faults;
mod hardening;
mod ingest_reliability;
mod interceptors;
mod kv_batch;
mod metrics;
mod nats_auth;
mod nats_cluster;
mod pipeline;
mod reliability;
mod support;
mod tenants;
mod traces;
