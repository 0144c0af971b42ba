//! Integration tests: a real `nats-server` per test, Sluice's binaries started as users start
//! them, and the Kubernetes API test double driven by the real `kube` client.

mod bad_input;
mod compat;
mod faults;
mod pipeline;
mod support;
