//! `sluice-loadtest`: load tests for Sluice.
//!
//! - `run`: the open-loop generator against a running server ([`runner`], [`generator`]).
//! - `config`: a scenario's Tekton Triggers configuration ([`config_dir`]).
//! - `reference`: the smallest server doing what ingest must ([`reference`]).
//! - `ingest`: ingest against the reference, round by round ([`bench_ingest`]).
//! - `e2e`: webhook → PipelineRun latency through the whole path ([`e2e`]).
//! - `dispatcher`: backlog drain rate of the dispatcher ([`bench_dispatcher`]).
//! - `config-scale`: start-up and memory with many namespaces' configuration read from the
//!   Kubernetes API ([`config_scale`]).
//! - `soak`: a long run through a 3-node JetStream cluster with faults on a schedule
//!   ([`soak`]).
//! - `tenant-scale`: many tenants on a 3-node cluster ([`tenant_scale`]).

mod bench_dispatcher;
mod bench_ingest;
mod cli;
mod client;
mod config_dir;
mod config_scale;
mod e2e;
mod generator;
mod payload;
mod procstat;
mod progress;
mod reference;
mod reference_dispatch;
mod report;
mod runner;
mod scenario;
mod schedule;
mod soak;
mod stack;
mod svg;
mod tenant_scale;

use clap::Parser as _;

use crate::cli::{Cli, Command};

/// Ingest's allocator, so that the reference (this binary's `reference` command) pays for
/// memory what ingest pays and the ratio compares the work done, not the allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => runner::run(args).await,
        Command::Config(args) => {
            let scenario = args.scenario.scenario();
            let files = config_dir::write(&scenario, &args.scenario.secret, &args.out, args.force)?;
            println!(
                "wrote {files} files for {} into {}",
                scenario.describe(),
                args.out.display()
            );
            Ok(())
        }
        Command::Reference(args) => reference::serve(args).await,
        Command::ReferenceDispatcher(args) => reference_dispatch::serve(args).await,
        Command::Ingest(args) => bench_ingest::run(args).await,
        Command::E2e(args) => e2e::run(args).await,
        Command::Dispatcher(args) => bench_dispatcher::run(args).await,
        Command::ConfigScale(args) => config_scale::run(args).await,
        Command::Soak(args) => soak::run(args).await,
        Command::TenantScale(args) => tenant_scale::run(args).await,
    }
}
