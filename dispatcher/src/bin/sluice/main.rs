//! `sluice`: the operator's command line. `validate` checks a configuration directory and
//! the tenants file; `render` shows offline what a webhook would do: which triggers
//! authenticate it, which interceptor stops which trigger, and the objects the others would
//! create; `dlq` lists, shows, replays and purges dead letters; `events` tells what
//! happened to a webhook.

mod dlq;
mod events;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::Value;
use sluice_dispatcher::args::InterceptorArgs;
use sluice_dispatcher::dispatch::{GroupOutcomes, initial_state, plan_trigger};
use sluice_dispatcher::interceptor::Interceptors;
use sluice_dispatcher::interceptor::github::EnterpriseHosts;
use sluice_runtime::envelope::{EventMeta, SCHEMA_VERSION};
use sluice_runtime::flags::PolicyArgs;
use sluice_runtime::tenants::TenantPolicy;
use sluice_triggers::auth::{TriggerVerdict, judge_trigger};
use sluice_triggers::catalogue::Catalogue;
use sluice_triggers::config;
use sluice_triggers::headers::Headers;
use sluice_triggers::idempotency;
use sluice_triggers::plan::{Plan, service_account_user};

#[derive(Parser)]
#[command(name = "sluice", version, about = "Sluice's command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load a configuration directory, and the tenants file when one is given, and report
    /// every problem (file, document, field); exits 1 if there is any. Either may be checked
    /// alone.
    Validate {
        #[arg(
            long,
            env = "SLUICE_CONFIG_DIR",
            required_unless_present = "tenants_file"
        )]
        config_dir: Option<PathBuf>,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Show what a webhook would do: per trigger of the listener, the objects it would create,
    /// or which interceptor stopped it and why. Runs the servers' own code: authentication,
    /// `cel` and webhook interceptors and the github interceptor's GitHub API features (which
    /// are called), bindings and templates. Exits 1 if a trigger fails.
    Render {
        #[arg(long, env = "SLUICE_CONFIG_DIR")]
        config_dir: PathBuf,
        /// The listener, as NAMESPACE/NAME.
        #[arg(long)]
        listener: String,
        /// File holding the webhook's JSON body.
        #[arg(long)]
        body: PathBuf,
        /// A request header, as 'Name: value'; repeatable.
        #[arg(long = "header")]
        headers: Vec<String>,
        #[arg(long, value_enum, default_value_t = Output::Yaml)]
        output: Output,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        interceptors: InterceptorArgs,
    },
    /// Dead letters: events (or one trigger of an event) the dispatcher gave up on, kept in
    /// the JetStream stream SLUICE_DLQ. List them, show one, replay or purge them.
    Dlq(dlq::DlqArgs),
    /// What happened to a webhook: an event's triggers by event id or the sender's delivery
    /// id, a listener's recent events and refused deliveries; redeliver an event.
    Events(events::EventsArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Yaml,
    Json,
}

/// `render --output json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    event_listener: String,
    namespace: String,
    triggers: Vec<TriggerReport>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TriggerReport {
    name: String,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The user the objects would be created as.
    service_account: String,
    resources: Vec<Value>,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Created,
    Filtered,
    Error,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { config_dir, policy } => validate(config_dir.as_deref(), &policy),
        Command::Render {
            config_dir,
            listener,
            body,
            headers,
            output,
            policy,
            interceptors,
        } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("failed to start the async runtime")?;
            let tenants = policy.load_policy()?;
            let catalogue = load(&config_dir, &policy.load_options_with(&tenants))?;
            // GitHub Enterprise hosts are called only where the servers would call them.
            let interceptors = interceptors.interceptors_with(EnterpriseHosts {
                flags: policy.interceptor_allow.clone(),
                policy: Some(std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(
                    tenants,
                ))),
            });
            let report = runtime.block_on(render(
                &catalogue,
                &config_dir,
                &listener,
                &body,
                &headers,
                &interceptors,
            ))?;
            print_report(&report, output)?;
            let failed = report.triggers.iter().any(|t| t.status == Status::Error);
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Dlq(args) => dlq::run(args),
        Command::Events(args) => events::run(args),
    }
}

fn load(dir: &Path, options: &config::LoadOptions) -> anyhow::Result<Catalogue> {
    config::load_dir_with(dir, options).with_context(|| format!("failed to read {}", dir.display()))
}

fn validate(config_dir: Option<&Path>, policy: &PolicyArgs) -> anyhow::Result<ExitCode> {
    // The servers' own parser: a file they would refuse to start with is reported here
    // with its field, like a problem of the directory.
    let (tenants, mut problems) = match (policy.load_policy(), &policy.tenants_file) {
        (Ok(tenants), Some(path)) => {
            println!("{}: {}", path.display(), tenants.summary());
            (tenants, 0)
        }
        (Ok(tenants), None) => (tenants, 0),
        (Err(error), _) => {
            println!("{error}");
            if let Some(dir) = config_dir {
                println!(
                    "note: {} is judged by the flags alone; the servers would not start with this tenants file",
                    dir.display()
                );
            }
            (TenantPolicy::default(), 1)
        }
    };
    match config_dir {
        Some(dir) => {
            let options = policy.load_options_with(&tenants);
            problems += validate_dir(dir, &options, &tenants, problems)?;
        }
        None => println!("tenants file only: {problems} problem(s)"),
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints the directory's problems and its summary line (counting `earlier` problems of the
/// tenants file too); returns how many problems the directory has.
fn validate_dir(
    config_dir: &Path,
    options: &config::LoadOptions,
    tenants: &TenantPolicy,
    earlier: usize,
) -> anyhow::Result<usize> {
    let catalogue = load(config_dir, options)?;
    for issue in catalogue.issues() {
        println!("{issue}");
    }
    // Annotations that would raise a tenant's limits (or are not numbers) are ignored by
    // the servers; say so here, where the tenant can act on it.
    let mut listeners: Vec<_> = catalogue.listeners().collect();
    listeners.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    for listener in listeners {
        let (_, warnings) = tenants
            .limits(&listener.namespace)
            .lowered_by(&listener.annotations);
        for warning in warnings {
            println!(
                "warning: EventListener {}/{}: {warning}",
                listener.namespace, listener.name
            );
        }
    }
    for namespace in tenants.paused() {
        println!("paused: namespace {namespace}: its events are stored and not dispatched");
    }
    let listeners = catalogue.listeners().count();
    let triggers: usize = catalogue.listeners().map(|l| l.triggers.len()).sum();
    println!(
        "{listeners} listener(s), {triggers} trigger(s), {} problem(s)",
        catalogue.issues().len() + earlier
    );
    Ok(catalogue.issues().len())
}

async fn render(
    catalogue: &Catalogue,
    config_dir: &Path,
    listener: &str,
    body_file: &Path,
    header_args: &[String],
    interceptors: &Interceptors,
) -> anyhow::Result<Report> {
    let Some((namespace, name)) = listener.split_once('/') else {
        bail!("--listener must be NAMESPACE/NAME, got `{listener}`");
    };
    let Some(listener) = catalogue.listener(namespace, name) else {
        bail!(
            "no valid EventListener {namespace}/{name} in {} (run `sluice validate` to see why)",
            config_dir.display()
        );
    };
    let body = Bytes::from(
        std::fs::read(body_file)
            .with_context(|| format!("failed to read {}", body_file.display()))?,
    );
    let mut request_headers = HeaderMap::new();
    let mut headers = Headers::new();
    for header in header_args {
        let Some((name, value)) = header.split_once(':') else {
            bail!("--header must be 'Name: value', got `{header}`");
        };
        let (name, value) = (name.trim(), value.trim());
        let header_name =
            HeaderName::try_from(name).with_context(|| format!("`{name}` is not a header name"))?;
        let header_value = HeaderValue::try_from(value)
            .with_context(|| format!("the value of header `{name}` is not valid"))?;
        request_headers.append(header_name, header_value);
        headers.append(name, value);
    }
    let meta = EventMeta {
        schema: SCHEMA_VERSION,
        event_id: "00000000-0000-0000-0000-000000000000".to_owned(),
        namespace: listener.namespace.clone(),
        listener: listener.name.clone(),
        received_at_ms: 0,
        idempotency_key: String::new(),
        triggers: listener.triggers.iter().map(|t| t.name.clone()).collect(),
        traceparent: None,
        request_url: format!("/hooks/{}/{}", listener.namespace, listener.name),
        headers,
    };
    let input = initial_state(body.clone(), &meta);
    if let (true, Err(error)) = (listener.payload_validation, input.body()) {
        anyhow::bail!(
            "{}: {error}; ingest refuses such a body (400) unless the listener's annotation \
             tekton.dev/payload-validation is \"false\"",
            body_file.display()
        );
    }
    let mut groups = GroupOutcomes::default();
    let event_key = idempotency::event_key(&meta.idempotency_key, &meta.event_id);
    let now = SystemTime::now();
    let mut triggers = Vec::new();
    for trigger in &listener.triggers {
        let (status, reason, resources) = match judge_trigger(trigger, &request_headers, &body, now)
        {
            TriggerVerdict::Refused(failure) => (
                Status::Error,
                Some(format!(
                    "authentication failed ({}): {failure}",
                    failure.code().as_str()
                )),
                Vec::new(),
            ),
            TriggerVerdict::Misconfigured(reason) => (
                Status::Error,
                Some(format!("cannot authenticate: {reason}")),
                Vec::new(),
            ),
            TriggerVerdict::Filtered => (
                Status::Filtered,
                Some("an interceptor's eventTypes does not include this event".to_owned()),
                Vec::new(),
            ),
            TriggerVerdict::Accepted => {
                let run_key = idempotency::run_key(&event_key, trigger);
                let plan = plan_trigger(
                    interceptors,
                    listener,
                    trigger,
                    &meta,
                    &run_key,
                    &input,
                    &mut groups,
                );
                match plan.await {
                    Ok(Plan::Create(objects)) => (Status::Created, None, objects),
                    Ok(Plan::Filtered {
                        interceptor,
                        reason,
                    }) => (
                        Status::Filtered,
                        Some(format!("stopped by {interceptor}: {reason}")),
                        Vec::new(),
                    ),
                    Err(error) => (Status::Error, Some(error.to_string()), Vec::new()),
                }
            }
        };
        triggers.push(TriggerReport {
            name: trigger.name.clone(),
            status,
            reason,
            service_account: service_account_user(trigger),
            resources,
        });
    }
    Ok(Report {
        event_listener: listener.name.clone(),
        namespace: listener.namespace.clone(),
        triggers,
    })
}

fn print_report(report: &Report, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(report)?),
        Output::Yaml => {
            for trigger in &report.triggers {
                let status = match trigger.status {
                    Status::Created => "created",
                    Status::Filtered => "filtered",
                    Status::Error => "error",
                };
                print!("# trigger {}: {status}", trigger.name);
                if let Some(reason) = &trigger.reason {
                    print!(": {}", reason.replace('\n', " "));
                }
                println!();
                for object in &trigger.resources {
                    println!("# created as {}", trigger.service_account);
                    print!("{}", serde_norway::to_string(object)?);
                    println!("---");
                }
            }
        }
    }
    Ok(())
}
