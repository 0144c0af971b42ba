//! `run`: the open-loop generator against a server that is already running (configured with
//! `config`'s output), with the report on stdout and optionally as JSON and SVG.

use anyhow::bail;

use crate::cli::RunArgs;
use crate::generator::{self, Plan, Sending};
use crate::payload::Ids;
use crate::report;

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let scenario = args.scenario.scenario();
    let load = &args.load;
    let sending = Sending {
        label: &args.label,
        url: &args.url,
        scenario,
        secret: &args.scenario.secret,
    };
    let plan = Plan::new(sending, load, Ids::random())?;
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
