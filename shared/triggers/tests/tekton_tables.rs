//! Tekton Triggers' own test tables, run against `sluice-triggers`: JSONPath and params,
//! template rendering, binding resolution, the `github`, `gitlab`, `bitbucket` and `slack`
//! interceptors, the labels and namespace of created objects, and which TriggerBindings,
//! ClusterTriggerBindings and TriggerTemplates are accepted. Each case keeps its
//! provenance; see `tekton_tables/suite.rs` for how cases are judged and counted, and each
//! module for how its source file's tables map onto Sluice. CEL has its own suite.
//!
//! Run with `cargo test -p sluice-triggers --test tekton_tables`; add `-- --list` to see
//! every case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;

#[path = "tekton_tables/apis_validation.rs"]
mod apis_validation;
#[path = "tekton_tables/bitbucket.rs"]
mod bitbucket;
#[path = "tekton_tables/common.rs"]
mod common;
#[path = "tekton_tables/github.rs"]
mod github;
#[path = "tekton_tables/gitlab.rs"]
mod gitlab;
#[path = "tekton_tables/interceptor.rs"]
mod interceptor;
#[path = "tekton_tables/resources_create.rs"]
mod resources_create;
#[path = "tekton_tables/slack.rs"]
mod slack;
#[path = "tekton_tables/suite.rs"]
mod suite;
#[path = "tekton_tables/template_event.rs"]
mod template_event;
#[path = "tekton_tables/template_jsonpath.rs"]
mod template_jsonpath;
#[path = "tekton_tables/template_resource.rs"]
mod template_resource;

fn main() -> ExitCode {
    let mut suite = suite::Suite::default();
    template_jsonpath::cases(&mut suite);
    template_event::cases(&mut suite);
    template_resource::cases(&mut suite);
    github::cases(&mut suite);
    gitlab::cases(&mut suite);
    bitbucket::cases(&mut suite);
    slack::cases(&mut suite);
    resources_create::cases(&mut suite);
    apis_validation::cases(&mut suite);
    suite::run(suite, "sluice-triggers")
}
