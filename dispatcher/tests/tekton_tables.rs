//! Tekton Triggers' own test tables, run through the dispatcher's planning of a trigger
//! (`dispatch::plan_trigger`) with interceptors served locally: EventListener sink cases,
//! webhook and ClusterInterceptor calls, header handling, and the github interceptor's
//! calls to GitHub's API (against a local stand-in). Each case keeps its
//! provenance; the frame that judges and counts them is shared with `sluice-triggers`'s
//! suite (`shared/triggers/tests/tekton_tables/suite.rs`). CEL has its own suite.
//!
//! Run with `cargo test -p sluice-dispatcher --test tekton_tables`; add `-- --list` to see
//! every case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;

#[path = "tekton_tables/github.rs"]
mod github;
#[path = "tekton_tables/harness.rs"]
mod harness;
#[path = "tekton_tables/interceptors.rs"]
mod interceptors;
#[path = "tekton_tables/server.rs"]
mod server;
#[path = "tekton_tables/sink.rs"]
mod sink;
#[path = "../../shared/triggers/tests/tekton_tables/suite.rs"]
mod suite;
#[path = "tekton_tables/webhook.rs"]
mod webhook;

fn main() -> ExitCode {
    let mut suite = suite::Suite::default();
    sink::cases(&mut suite);
    interceptors::cases(&mut suite);
    webhook::cases(&mut suite);
    github::cases(&mut suite);
    server::cases(&mut suite);
    suite::run(suite, "sluice-dispatcher")
}
