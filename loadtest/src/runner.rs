//! `run`: the open-loop generator against a server that is already running (configured with
//! `config`'s output), with the report on stdout and optionally as JSON and SVG.

use std::sync::Arc;

use anyhow::bail;

use crate::cli::RunArgs;
use crate::client::Base;
use crate::generator::{self, Plan};
use crate::payload::{Ids, RequestFactory};
use crate::report;
use crate::schedule::Schedule;

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let scenario = args.scenario.scenario();
    let load = &args.load;
    let base = Base::parse(&args.url)?;
    let factory = RequestFactory::new(
        &scenario,
        &args.scenario.secret,
        load.body_size,
        &base.host,
        &base.path_prefix,
        Ids::random(),
    )?;
    let plan = Plan {
        label: args.label.clone(),
        url: args.url.clone(),
        base,
        scenario,
        warmup: load.warmup,
        duration: load.duration,
        schedule: Schedule::new(load.rate, load.warmup, load.duration)?,
        connections: load.connections,
        threads: load.threads,
        timeout: load.timeout,
        grace: load.grace,
        factory: Arc::new(factory),
        keep_accepted: false,
        server_pid: None,
        nats_pid: None,
    };
    let report = generator::run(plan).await?.report;
    print!("{}", report.table());
    if let Some(path) = &args.report.report_json {
        report::write_json(path, &report)?;
    }
    if let Some(path) = &args.report.report_svg {
        report::write_text(path, &report.svg())?;
    }
    if report.failed() && !args.report.allow_errors {
        bail!(
            "{} requests failed (pass --allow-errors to exit 0 anyway)",
            report.errors + report.warmup_errors
        );
    }
    Ok(())
}
