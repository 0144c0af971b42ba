//! Tekton Triggers' own test tables whose result is the HTTP answer to a webhook, run
//! through ingest's real router (`sluice_ingest::app::router`, limit layers included) by
//! `tower::ServiceExt::oneshot`, no socket, with events stored in memory: whether a body
//! that is or is not JSON is accepted (Tekton's payload validation, and the EventListener
//! annotation `tekton.dev/payload-validation: "false"` that turns it off), and which
//! methods a webhook may use. Each case keeps
//! its provenance; the frame that judges and counts them is shared with the other suites
//! (`shared/triggers/tests/tekton_tables/suite.rs`).
//!
//! Run with `cargo test -p sluice-ingest --test tekton_tables`; add `-- --list` to see
//! every case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;

#[path = "tekton_tables/sink.rs"]
mod sink;
#[path = "../../shared/triggers/tests/tekton_tables/suite.rs"]
mod suite;
#[path = "tekton_tables/validate_payload.rs"]
mod validate_payload;

fn main() -> ExitCode {
    let mut suite = suite::Suite::default();
    validate_payload::cases(&mut suite);
    sink::cases(&mut suite);
    suite::run(suite, "sluice-ingest")
}
