//! Integration test harness: real infrastructure behind clean-up-on-drop handles.
//!
//! - [`nats::NatsServer`]: a real `nats-server` with JetStream per test.
//! - [`api_double::ApiDouble`]: an in-memory test double of the Kubernetes API server,
//!   spoken to over HTTP by the real `kube` client.
//! - [`pki::TestPki`] and [`nats_jwt::OperatorMode`]: certificates for TLS, and the operator,
//!   accounts and `.creds` files of NATS's decentralised (JWT) authentication.
//! - [`otlp::OtlpReceiver`]: a real OTLP/HTTP receiver that the binaries export traces to.
//! - [`prometheus::Prometheus`]: a real Prometheus scraping test processes, and
//!   [`nats_exporter::NatsExporter`], a stand-in for the NATS exporter it scrapes JetStream's
//!   figures from.

pub mod api_double;
pub mod nats;
pub mod nats_exporter;
pub mod nats_jwt;
pub mod otlp;
pub mod pki;
pub mod procs;
pub mod prometheus;

pub use api_double::ApiDouble;
pub use nats::{NatsCluster, NatsServer};
