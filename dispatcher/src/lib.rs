//! `sluice-dispatcher`: consumes webhook events from JetStream and turns each selected
//! trigger into resources created in the tenant's namespace.
//!
//! - [`consumer`] pulls events from the shared durable consumer and acks, retries or
//!   refuses each one,
//! - [`dispatch`] runs a listener's triggers for one event: bindings → template → create,
//! - [`interceptor`] runs `cel` and webhook interceptors,
//! - [`ledger`] remembers finished runs for days (objects are named from the event's key by
//!   `sluice_triggers::naming`, so a redelivery creates nothing twice),
//! - [`sink`] creates the objects: the Kubernetes API (impersonating the tenant) or a directory,
//! - [`metrics`] counts outcomes and times creates,
//! - [`events_api`] answers what became of a tenant's events, on the operations port,
//! - [`trace`] opens the spans of deliveries, interceptor calls and creates.

pub mod args;
pub mod consumer;
pub mod dispatch;
pub mod events_api;
pub mod interceptor;
pub mod ledger;
pub mod metrics;
pub mod ratelimit;
pub mod sink;
pub mod status;
pub mod trace;
