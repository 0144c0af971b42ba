//! `sluice`: the operator's command line. `validate` checks a configuration directory;
//! `render` shows offline what a webhook would create.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Map, Value};
use sluice_dispatcher::dispatch::{render_trigger, service_account_user};
use sluice_shared::config;
use sluice_shared::event::{EventMeta, Headers, SCHEMA_VERSION};
use sluice_shared::expr::EventContext;

#[derive(Parser)]
#[command(name = "sluice", version, about = "Sluice's command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load a configuration directory and report every problem; exits 1 if there is any.
    Validate {
        #[arg(long, env = "SLUICE_CONFIG_DIR")]
        config_dir: PathBuf,
        /// Report triggers that accept any caller (no authentication interceptor) as
        /// invalid, as `sluice-ingest --require-authentication` skips them.
        #[arg(long, env = "SLUICE_REQUIRE_AUTHENTICATION")]
        require_authentication: bool,
    },
    /// Print the objects each trigger of a listener would create for a webhook body.
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
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Yaml,
    Json,
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
        Command::Validate {
            config_dir,
            require_authentication,
        } => validate(
            config_dir,
            &config::LoadOptions {
                require_authentication,
            },
        ),
        Command::Render {
            config_dir,
            listener,
            body,
            headers,
            output,
        } => render(config_dir, &listener, body, &headers, output),
    }
}

fn load(
    dir: &Path,
    options: &config::LoadOptions,
) -> anyhow::Result<sluice_shared::catalogue::Catalogue> {
    config::load_dir_with(dir, options).with_context(|| format!("failed to read {}", dir.display()))
}

fn validate(config_dir: PathBuf, options: &config::LoadOptions) -> anyhow::Result<ExitCode> {
    let catalogue = load(&config_dir, options)?;
    for issue in catalogue.issues() {
        println!("{issue}");
    }
    let listeners = catalogue.listeners().count();
    let triggers: usize = catalogue.listeners().map(|l| l.triggers.len()).sum();
    println!(
        "{listeners} listener(s), {triggers} trigger(s), {} problem(s)",
        catalogue.issues().len()
    );
    Ok(if catalogue.issues().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn render(
    config_dir: PathBuf,
    listener: &str,
    body: PathBuf,
    header_args: &[String],
    output: Output,
) -> anyhow::Result<ExitCode> {
    let catalogue = load(&config_dir, &config::LoadOptions::default())?;
    let Some((namespace, name)) = listener.split_once('/') else {
        bail!("--listener must be NAMESPACE/NAME, got `{listener}`");
    };
    let Some(listener) = catalogue.listener(namespace, name) else {
        bail!(
            "no valid EventListener {namespace}/{name} in {}",
            config_dir.display()
        );
    };
    let body_text =
        std::fs::read(&body).with_context(|| format!("failed to read {}", body.display()))?;
    let body_value: Value = serde_json::from_slice(&body_text)
        .with_context(|| format!("{} is not valid JSON", body.display()))?;
    let mut headers = Headers::new();
    for header in header_args {
        let Some((name, value)) = header.split_once(':') else {
            bail!("--header must be 'Name: value', got `{header}`");
        };
        headers.append(name.trim(), value.trim());
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
        headers,
    };
    let extensions = Map::new();
    let ctx = EventContext {
        body: &body_value,
        headers: &meta.headers,
        extensions: &extensions,
        event_id: &meta.event_id,
    };
    let mut failed = false;
    for trigger in &listener.triggers {
        let user = service_account_user(trigger);
        match render_trigger(listener, trigger, &meta, &ctx) {
            Ok(objects) => {
                for object in objects {
                    match output {
                        Output::Yaml => {
                            println!("# trigger {} (created as {user})", trigger.name);
                            print!("{}", serde_norway::to_string(&object)?);
                            println!("---");
                        }
                        Output::Json => println!("{}", serde_json::to_string_pretty(&object)?),
                    }
                }
            }
            Err(error) => {
                failed = true;
                eprintln!("trigger {}: {error}", trigger.name);
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
