//! The Tekton Triggers model as Sluice runs it: pure, with no I/O, no runtime and no network,
//! so that ingest, the dispatcher and the `sluice` CLI judge a webhook the same way.
//!
//! From configuration to a run:
//!
//! - [`config`] reads EventListener, Trigger, TriggerBinding, ClusterTriggerBinding,
//!   TriggerTemplate, interceptor and `Secret` documents and resolves them into the
//!   [`catalogue`]: every valid listener with its triggers fully resolved;
//! - [`auth`] verifies a request against a listener's authentication interceptors (GitHub,
//!   GitLab, Bitbucket, Gitee, Slack, generic HMAC), as ingest does at the edge;
//! - [`idempotency`] says what identifies a delivery: its key, its digest, its runs;
//! - [`body`] reads the event's body as Tekton does: JSON, or a form converted to JSON, and
//!   the slack interceptor's `requestedFields`;
//! - [`expr`] evaluates `$(body…)`, `$(header…)`, `$(extensions…)` in bindings, and
//!   [`template`] renders a TriggerTemplate with the params they give;
//! - [`plan`] turns a trigger and an event into the objects to create, labelled as Tekton
//!   labels them, and [`naming`] names each one from its key so it is created once.
//!
//! Beside them: [`headers`] (request headers by canonical name, credentials never kept),
//! [`secret`] (values that never print), [`names`] (Kubernetes name rules) and
//! [`duration`] (the duration syntax of configuration and flags). CEL lives in its own crate,
//! `sluice-cel`.

pub mod auth;
pub mod body;
pub mod catalogue;
pub mod config;
pub mod duration;
pub mod expr;
pub mod headers;
pub mod idempotency;
pub mod names;
pub mod naming;
pub mod plan;
pub mod secret;
pub mod template;
mod variables;
