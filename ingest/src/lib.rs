//! `sluice-ingest`: the HTTP edge. It authenticates webhooks, wraps them in an event
//! envelope and answers 202 only once JetStream has stored them.
//!
//! - [`app`] builds the router and holds the request path,
//! - `sluice_triggers::auth` verifies provider signatures (shared with `sluice render`),
//! - [`publish`] writes events to JetStream and waits for the durable ack,
//! - [`limits`] composes the hardening limits (timeouts, load shedding, header size),
//! - [`server`] accepts connections and serves them with those limits,
//! - [`error`] maps every refusal to a status and a stable JSON `code`,
//! - [`metrics`] counts outcomes and times publish acks,
//! - [`report`] logs each webhook that is not stored, within a budget of lines,
//! - [`trace`] opens each webhook's span, when traces are on.

pub mod admission;
pub mod app;
pub mod args;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod publish;
pub mod report;
pub mod server;
pub mod trace;
