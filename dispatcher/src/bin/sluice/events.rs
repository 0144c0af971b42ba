//! `sluice events`: what happened to a webhook — by event id, by the sender's delivery id,
//! or a listener's recent events and refused deliveries — and `redeliver` to run an event
//! again through the normal path (see `sluice_runtime::event_status`).
//!
//! Exit codes: 0 done; 1 nothing matched (or the event cannot be redelivered); 2 the command
//! could not run (NATS unreachable, a JetStream error).

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use sluice_runtime::clock::now_ms;
use sluice_runtime::envelope::Envelope;
use sluice_runtime::event_status::{
    EventStatus, RefusedRecord, StatusReader, TriggerRecord, TriggerState,
};
use sluice_runtime::jetstream::EVENTS_STREAM;
use sluice_runtime::subject::event_subject;
use sluice_triggers::duration::parse_duration;

use crate::dlq::store::Store;
use crate::dlq::view::one_line;

/// `sluice events` and its flags.
#[derive(clap::Args)]
pub struct EventsArgs {
    /// NATS server, credentials and TLS; the command fails (exit 2) if NATS does not answer
    /// within 5s or refuses them.
    #[command(flatten)]
    nats: sluice_runtime::nats::NatsArgs,

    /// The dispatchers' `--consumer`: the ack floors of their common consumer and of the
    /// diverted tenants' own tell which stored events are still waiting.
    #[arg(
        long,
        env = "SLUICE_CONSUMER",
        default_value = "sluice-dispatcher",
        global = true
    )]
    consumer: String,

    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// One event by the `eventID` ingest answered: each trigger's state, attempts, reason,
    /// last error and the objects it created. Exits 1 if there is no such event.
    Get {
        event_id: String,
        /// Look only in this namespace.
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// The events of one delivery, by the sender's delivery id (`X-GitHub-Delivery`,
    /// `X-Gitlab-Event-UUID`, Bitbucket's `X-Request-UUID`, `ce-id`, `Idempotency-Key`).
    /// Exits 1 if none.
    Find {
        /// The listener, as NAMESPACE/NAME.
        #[arg(long)]
        listener: String,
        #[arg(long)]
        delivery: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// A listener's (or a namespace's) events received recently, oldest first, one line per
    /// trigger.
    List {
        #[command(flatten)]
        scope: Scope,
        /// Only events with a trigger in this state.
        #[arg(long, value_enum)]
        state: Option<TriggerState>,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// The deliveries ingest did not store, oldest first: refused (401, 404, 413, 429, 5xx),
    /// filtered at the edge or duplicates within the window (202); the last 100 per listener.
    Refused {
        #[command(flatten)]
        scope: Scope,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Publish a stored event again, as ingest stored it (same event id and delivery), for
    /// every trigger or the one named. Idempotent: a trigger that already created its
    /// objects, or was filtered, is not run again; one that was dead-lettered or gave up
    /// is. Exits 1 if the event is unknown or no longer in SLUICE_EVENTS.
    Redeliver {
        event_id: String,
        #[arg(long)]
        namespace: Option<String>,
        /// Only this trigger (it must have been selected for the event).
        #[arg(long)]
        trigger: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
    Yaml,
}

/// Which listener's (or namespace's) records, how far back, how many.
#[derive(clap::Args)]
struct Scope {
    /// The listener, as NAMESPACE/NAME.
    #[arg(
        long,
        required_unless_present = "namespace",
        conflicts_with = "namespace"
    )]
    listener: Option<String>,
    /// Every listener of this namespace (and requests for listeners it does not have).
    #[arg(long)]
    namespace: Option<String>,
    /// How far back (e.g. `30m`, `1h`, `3d`).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    since: Duration,
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

impl Scope {
    /// The namespace, and the listener's name if one is named.
    fn names(&self) -> anyhow::Result<(&str, Option<&str>)> {
        match (&self.listener, &self.namespace) {
            (Some(listener), _) => {
                let (namespace, name) = split_listener(listener)?;
                Ok((namespace, Some(name)))
            }
            (None, Some(namespace)) => Ok((namespace, None)),
            (None, None) => bail!("--listener or --namespace is required"),
        }
    }
}

/// Runs `sluice events …`.
pub fn run(args: EventsArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async {
        let store = Store::connect(&args.nats.resolve()?).await?;
        let reader = StatusReader::new(store.jetstream().clone(), args.consumer);
        match args.command {
            EventsCommand::Get {
                event_id,
                namespace,
                output,
            } => {
                let Some(event) = reader.event(namespace.as_deref(), &event_id).await? else {
                    not_recorded(&event_id);
                    return Ok(ExitCode::from(1));
                };
                print(output, &event, || event_table(&event))?;
                Ok(ExitCode::SUCCESS)
            }
            EventsCommand::Find {
                listener,
                delivery,
                output,
            } => {
                let (namespace, name) = split_listener(&listener)?;
                let events = reader.by_delivery(namespace, name, &delivery).await?;
                let not_stored = reader.not_stored(namespace, name, &delivery).await?;
                if events.is_empty() && not_stored.is_empty() {
                    eprintln!(
                        "error: nothing is known of delivery {} to {listener}: not received, \
                         no longer kept, or behind more than 10000 waiting events",
                        one_line(&delivery)
                    );
                    return Ok(ExitCode::from(1));
                }
                let found = Found {
                    items: &events,
                    not_stored: &not_stored,
                };
                print(output, &found, || {
                    let mut text = events
                        .iter()
                        .map(event_table)
                        .collect::<Vec<_>>()
                        .join("\n");
                    if !not_stored.is_empty() {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str("Not stored:\n");
                        text.push_str(&refused_table(&not_stored));
                    }
                    text
                })?;
                Ok(ExitCode::SUCCESS)
            }
            EventsCommand::List {
                scope,
                state,
                output,
            } => {
                let (namespace, name) = scope.names()?;
                let found = reader
                    .list(namespace, name, scope.since, state, scope.limit)
                    .await?;
                let items = Items {
                    items: &found.items,
                    truncated: found.truncated,
                };
                print(output, &items, || list_table(&found.items))?;
                note_truncated(found.truncated, scope.limit);
                Ok(ExitCode::SUCCESS)
            }
            EventsCommand::Refused { scope, output } => {
                let (namespace, name) = scope.names()?;
                let found = reader
                    .refused(namespace, name, scope.since, scope.limit)
                    .await?;
                let items = Items {
                    items: &found.items,
                    truncated: found.truncated,
                };
                print(output, &items, || refused_table(&found.items))?;
                note_truncated(found.truncated, scope.limit);
                Ok(ExitCode::SUCCESS)
            }
            EventsCommand::Redeliver {
                event_id,
                namespace,
                trigger,
            } => redeliver(&store, &reader, &event_id, namespace.as_deref(), trigger).await,
        }
    })
}

/// `find` as JSON and YAML show it: the delivery's events, and its deliveries ingest did not
/// store (refused, filtered, duplicates within the window).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Found<'a> {
    items: &'a [EventStatus],
    not_stored: &'a [RefusedRecord],
}

fn not_recorded(event_id: &str) {
    eprintln!(
        "error: no event {} is known: never received, no longer kept, or behind more than \
         10000 waiting events",
        one_line(event_id)
    );
}

/// A listing as JSON and YAML show it.
#[derive(Serialize)]
struct Items<'a, T> {
    items: &'a [T],
    truncated: bool,
}

fn split_listener(listener: &str) -> anyhow::Result<(&str, &str)> {
    match listener.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
            Ok((namespace, name))
        }
        _ => bail!("--listener must be NAMESPACE/NAME, not {listener:?}"),
    }
}

fn note_truncated(truncated: bool, limit: usize) {
    if truncated {
        eprintln!(
            "note: more matched than shown (--limit {limit}); narrow --since or raise --limit"
        );
    }
}

fn print<T: Serialize>(
    output: Output,
    value: &T,
    table: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let text = match output {
        Output::Json => serde_json::to_string_pretty(value)? + "\n",
        Output::Yaml => serde_norway::to_string(value)?,
        Output::Table => table(),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    Ok(())
}

/// One event as a person reads it: who sent it, then a line per trigger.
fn event_table(event: &EventStatus) -> String {
    let record = &event.event;
    let mut text = format!(
        "Event:     {}\nListener:  {}/{}\nDelivery:  {}\nReceived:  {}\n",
        record.event_id,
        record.namespace,
        record.event_listener,
        record
            .delivery_id
            .as_deref()
            .map_or("-".to_owned(), one_line),
        record.received_at,
    );
    let rows: Vec<Vec<String>> = event
        .triggers
        .iter()
        .map(|trigger| {
            vec![
                one_line(&trigger.name),
                trigger.state.as_str().to_owned(),
                trigger.attempts.to_string(),
                detail(trigger),
            ]
        })
        .collect();
    text.push_str(&table(&["TRIGGER", "STATE", "ATTEMPTS", "DETAIL"], &rows));
    text
}

fn list_table(events: &[EventStatus]) -> String {
    let mut rows = Vec::new();
    for event in events {
        for trigger in &event.triggers {
            rows.push(vec![
                event.event.received_at.clone(),
                event.event.event_id.clone(),
                one_line(&event.event.event_listener),
                event
                    .event
                    .delivery_id
                    .as_deref()
                    .map_or("-".to_owned(), one_line),
                one_line(&trigger.name),
                trigger.state.as_str().to_owned(),
                detail(trigger),
            ]);
        }
    }
    table(
        &[
            "RECEIVED", "EVENT", "LISTENER", "DELIVERY", "TRIGGER", "STATE", "DETAIL",
        ],
        &rows,
    )
}

fn refused_table(refused: &[RefusedRecord]) -> String {
    let rows: Vec<Vec<String>> = refused
        .iter()
        .map(|record| {
            vec![
                record.at.clone(),
                one_line(&record.event_listener),
                record.status.to_string(),
                one_line(&record.code),
                record
                    .delivery_id
                    .as_deref()
                    .map_or("-".to_owned(), one_line),
                one_line(&record.message),
            ]
        })
        .collect();
    table(
        &["AT", "LISTENER", "STATUS", "CODE", "DELIVERY", "MESSAGE"],
        &rows,
    )
}

/// What a trigger's state means, in one line: its objects, who filtered it and why, or its
/// error and when it is tried next.
fn detail(trigger: &TriggerRecord) -> String {
    let objects = trigger
        .objects
        .iter()
        .map(|o| format!("{}/{}", o.kind, o.name))
        .collect::<Vec<_>>()
        .join(", ");
    let text = match trigger.state {
        TriggerState::Created => objects,
        TriggerState::Filtered => format!(
            "{}: {}",
            trigger.interceptor.as_deref().unwrap_or("interceptor"),
            trigger.reason.as_deref().unwrap_or_default()
        ),
        TriggerState::Retrying => {
            let mut text = error_text(trigger);
            if let Some(next) = &trigger.next_attempt_at {
                text.push_str(&format!("; next attempt at {next} or later"));
            }
            text
        }
        TriggerState::Error | TriggerState::DeadLettered => error_text(trigger),
        TriggerState::Duplicate | TriggerState::Pending => {
            let mut text = trigger.reason.clone().unwrap_or_default();
            if !objects.is_empty() {
                text.push_str(&format!(" ({objects})"));
            }
            text
        }
    };
    one_line(&text)
}

fn error_text(trigger: &TriggerRecord) -> String {
    match &trigger.error {
        Some(error) => match error.status {
            Some(status) => format!("{} (HTTP {status}): {}", error.kind, error.message),
            None => format!("{}: {}", error.kind, error.message),
        },
        None => trigger.reason.clone().unwrap_or_default(),
    }
}

/// Columns padded to their widest cell; the last column runs on.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (index, cell) in row.iter().enumerate() {
            if index == last {
                text.push_str(cell);
            } else {
                let pad = widths[index].saturating_sub(cell.chars().count());
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        text.push('\n');
    }
    text
}

/// Publishes the stored event again (same event id, same delivery), narrowed to `trigger`.
async fn redeliver(
    store: &Store,
    reader: &StatusReader,
    event_id: &str,
    namespace: Option<&str>,
    trigger: Option<String>,
) -> anyhow::Result<ExitCode> {
    let Some(status) = reader.event(namespace, event_id).await? else {
        not_recorded(event_id);
        return Ok(ExitCode::from(1));
    };
    let record = &status.event;
    let stream = store
        .jetstream()
        .get_stream(EVENTS_STREAM)
        .await
        .with_context(|| format!("cannot look up stream {EVENTS_STREAM}"))?;
    let message = match stream.get_raw_message(record.sequence).await {
        Ok(message) => message,
        Err(error) => {
            eprintln!(
                "error: event {} is no longer in {EVENTS_STREAM} (sequence {}): {error}",
                record.event_id, record.sequence
            );
            return Ok(ExitCode::from(1));
        }
    };
    // The redelivery's trace links to the one ingest started for the event.
    let traceparent = message
        .headers
        .get("traceparent")
        .map(|value| value.as_str().to_owned());
    let mut envelope = Envelope::decode(message.payload)
        .with_context(|| format!("the stored event {} cannot be decoded", record.event_id))?;
    let meta = &mut envelope.meta;
    if meta.event_id != record.event_id {
        eprintln!(
            "error: sequence {} of {EVENTS_STREAM} holds event {}, not {}; not redelivered",
            record.sequence, meta.event_id, record.event_id
        );
        return Ok(ExitCode::from(1));
    }
    if let Some(trigger) = &trigger {
        // Only triggers whose authentication passed may run.
        if !meta.triggers.contains(trigger) {
            eprintln!(
                "error: trigger {} was not selected for event {}; it has {}",
                one_line(trigger),
                meta.event_id,
                meta.triggers.join(", ")
            );
            return Ok(ExitCode::from(1));
        }
        meta.triggers = vec![trigger.clone()];
    }
    let subject = event_subject(&meta.namespace, &meta.listener);
    // Unique per request: asking again is a new delivery, which the ledger keeps from
    // creating anything twice.
    let msg_id = format!("redeliver-{}-{}", meta.event_id, now_ms());
    let triggers = meta.triggers.join(", ");
    let ack = store
        .publish_event(subject, &msg_id, envelope.encode(), traceparent.as_deref())
        .await?;
    println!(
        "redelivered event {} of {}/{} for {triggers}: stored at sequence {}; triggers already done are not run again",
        record.event_id, record.namespace, record.event_listener, ack.sequence
    );
    Ok(ExitCode::SUCCESS)
}
