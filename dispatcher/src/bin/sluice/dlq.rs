//! `sluice dlq`: list, show, replay and purge dead letters (see `sluice_runtime::dlq`).
//!
//! Exit codes: 0 done; 1 a dead letter was not found or could not be replayed; 2 the command
//! could not run (NATS unreachable, a JetStream error, a refused `purge --all`).

pub(crate) mod store;
pub(crate) mod view;

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::{Subcommand, ValueEnum};
use sluice_runtime::dlq::{DLQ_STREAM, DeadLetter};
use sluice_runtime::envelope::Envelope;
use sluice_runtime::jetstream::EVENTS_STREAM;
use sluice_runtime::subject::event_subject;

use self::store::{Filter, Store, Stored};
use self::view::{BodyStyle, Details, Row, describe, error_chain, one_line};

/// `sluice dlq` and its flags.
#[derive(clap::Args)]
pub struct DlqArgs {
    /// NATS server, credentials and TLS; the command fails (exit 2) if NATS does not answer
    /// within 5s or refuses them.
    #[command(flatten)]
    nats: sluice_runtime::nats::NatsArgs,

    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List dead letters, oldest first: ID, when it failed, listener, trigger (`*`: the whole
    /// event), failure kind, deliveries, event ID and reason.
    List {
        #[arg(long, value_enum, default_value_t = ListOutput::Table)]
        output: ListOutput,
        /// Only dead letters of listeners in this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// Only dead letters of listeners with this name.
        #[arg(long)]
        listener: Option<String>,
    },
    /// Show one dead letter with its original event decoded: metadata, request headers
    /// (credentials are never stored) and body. Exits 1 if there is no such dead letter.
    Show {
        /// The dead letter's ID, from `sluice dlq list`.
        id: u64,
        #[arg(long, value_enum, default_value_t = ShowOutput::Yaml)]
        output: ShowOutput,
    },
    /// Put dead letters back through the normal path: each event is published again to
    /// SLUICE_EVENTS for the failed trigger only (every trigger of the event when the whole
    /// event failed), and the dead letter is deleted once JetStream has stored the event.
    ///
    /// Replaying is safe to repeat: the dispatcher records each (idempotency key, trigger)
    /// it has created runs for, so replaying an event twice, or replaying one whose runs
    /// were in fact created, never creates them twice. A dead letter whose stored event
    /// cannot be decoded is left in place; the command then exits 1.
    Replay(Selection),
    /// Delete dead letters for good, printing each one deleted. `--all` without
    /// `--namespace` or `--listener` deletes every dead letter and needs `--yes`.
    Purge {
        #[command(flatten)]
        selection: Selection,
        /// Confirm `--all` without a filter.
        #[arg(long)]
        yes: bool,
    },
}

/// One dead letter by ID, or all of them (optionally of one namespace or listener).
#[derive(clap::Args)]
struct Selection {
    /// The dead letter's ID, from `sluice dlq list`.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<u64>,
    /// Every dead letter, or every one matching --namespace and --listener.
    #[arg(long)]
    all: bool,
    /// With --all: only dead letters of listeners in this namespace.
    #[arg(long, requires = "all")]
    namespace: Option<String>,
    /// With --all: only dead letters of listeners with this name.
    #[arg(long, requires = "all")]
    listener: Option<String>,
}

impl Selection {
    fn filter(&self) -> Filter {
        Filter {
            namespace: self.namespace.clone(),
            listener: self.listener.clone(),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ListOutput {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ShowOutput {
    Yaml,
    Json,
}

/// Runs `sluice dlq …`.
pub fn run(args: DlqArgs) -> anyhow::Result<ExitCode> {
    if let DlqCommand::Purge { selection, yes } = &args.command
        && selection.all
        && selection.filter().is_empty()
        && !yes
    {
        bail!(
            "`purge --all` without --namespace or --listener deletes every dead letter; add --yes to do that"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async {
        let store = Store::connect(&args.nats.resolve()?).await?;
        match args.command {
            DlqCommand::List {
                output,
                namespace,
                listener,
            } => {
                list(
                    &store,
                    &Filter {
                        namespace,
                        listener,
                    },
                    output,
                )
                .await
            }
            DlqCommand::Show { id, output } => show(&store, id, output).await,
            DlqCommand::Replay(selection) => replay(&store, &selection).await,
            DlqCommand::Purge { selection, .. } => purge(&store, &selection).await,
        }
    })
}

/// What a missing ID prints; exit 1.
fn not_found(id: u64) -> ExitCode {
    eprintln!("error: no dead letter {id}");
    ExitCode::from(1)
}

fn warn_not_a_dead_letter(stored: &Stored, error: &dyn std::error::Error) {
    eprintln!(
        "warning: message {} of {DLQ_STREAM} is skipped: {} (`sluice dlq purge {}` deletes it)",
        stored.id,
        one_line(&error.to_string()),
        stored.id
    );
}

async fn list(store: &Store, filter: &Filter, output: ListOutput) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    for stored in store.list(filter).await? {
        match &stored.letter {
            Ok(letter) => rows.push(Row::new(stored.id, letter)),
            Err(error) => warn_not_a_dead_letter(&stored, error),
        }
    }
    match output {
        ListOutput::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        ListOutput::Table => {
            if !rows.is_empty() {
                print!("{}", view::table(&rows));
            }
            println!("{} dead letter(s)", rows.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(store: &Store, id: u64, output: ShowOutput) -> anyhow::Result<ExitCode> {
    let Some(stored) = store.get(id).await? else {
        return Ok(not_found(id));
    };
    let letter = match &stored.letter {
        Ok(letter) => letter,
        Err(error) => {
            eprintln!(
                "error: message {id} of {DLQ_STREAM} is not a dead letter: {}",
                one_line(&error.to_string())
            );
            return Ok(ExitCode::from(1));
        }
    };
    match output {
        ShowOutput::Json => {
            let details = Details::new(id, letter, BodyStyle::Value);
            println!("{}", serde_json::to_string_pretty(&details)?);
        }
        ShowOutput::Yaml => {
            let details = Details::new(id, letter, BodyStyle::PrettyText);
            print!("{}", serde_norway::to_string(&details)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Everything a replay publishes.
#[derive(Debug)]
struct Replay {
    subject: String,
    /// `replay-<dead letter ID>-<hex SHA-256 of the idempotency key>`: unique per dead
    /// letter, and stable, so JetStream drops a second publish of the same replay within
    /// its duplicate window.
    msg_id: String,
    payload: Bytes,
    event_id: String,
}

impl Replay {
    /// The event of dead letter `id`, narrowed to the failed trigger; or why it cannot be
    /// replayed.
    fn prepare(id: u64, letter: &DeadLetter) -> Result<Replay, String> {
        let mut envelope = Envelope::decode(letter.event.clone()).map_err(|error| {
            format!(
                "its stored event cannot be decoded ({})",
                error_chain(&error)
            )
        })?;
        let meta = &mut envelope.meta;
        if meta.namespace != letter.namespace || meta.listener != letter.listener {
            return Err(format!(
                "its stored event belongs to {}/{}",
                meta.namespace, meta.listener
            ));
        }
        if let Some(trigger) = &letter.trigger {
            // Only triggers whose authentication passed may run; a dead letter cannot add one.
            if !meta.triggers.contains(trigger) {
                return Err(format!(
                    "its stored event was not accepted for trigger {trigger}"
                ));
            }
            meta.triggers = vec![trigger.clone()];
        }
        Ok(Replay {
            subject: event_subject(&meta.namespace, &meta.listener),
            msg_id: format!(
                "replay-{id}-{}",
                sluice_triggers::idempotency::event_key(&meta.idempotency_key, &meta.event_id)
            ),
            event_id: meta.event_id.clone(),
            payload: envelope.encode(),
        })
    }
}

async fn replay(store: &Store, selection: &Selection) -> anyhow::Result<ExitCode> {
    let targets = match selection.id {
        Some(id) => match store.get(id).await? {
            Some(stored) => vec![stored],
            None => return Ok(not_found(id)),
        },
        None => store.list(&selection.filter()).await?,
    };
    let (mut replayed, mut refused) = (0_usize, 0_usize);
    for stored in targets {
        let id = stored.id;
        let letter = match &stored.letter {
            Ok(letter) => letter,
            Err(error) => {
                eprintln!(
                    "error: cannot replay {id}: it is not a dead letter: {}",
                    one_line(&error.to_string())
                );
                refused += 1;
                continue;
            }
        };
        let replay = match Replay::prepare(id, letter) {
            Ok(replay) => replay,
            Err(why) => {
                eprintln!(
                    "error: cannot replay {id} ({}): {}; it stays in {DLQ_STREAM}",
                    describe(letter),
                    one_line(&why)
                );
                refused += 1;
                continue;
            }
        };
        let ack = store
            .publish_event(
                replay.subject,
                &replay.msg_id,
                replay.payload,
                stored.traceparent.as_deref(),
            )
            .await
            .with_context(|| format!("cannot replay {id} ({})", describe(letter)))?;
        if !store.delete(id).await.with_context(|| {
            format!(
                "replayed {id} as event {} (stored as {EVENTS_STREAM} message {}), but it is still in {DLQ_STREAM}; replaying it again is safe",
                one_line(&replay.event_id),
                ack.sequence
            )
        })? {
            eprintln!("warning: dead letter {id} was deleted meanwhile");
        }
        let again = if ack.duplicate {
            " (it was already stored by an earlier replay)"
        } else {
            ""
        };
        println!(
            "replayed {id} ({}) as event {}{again}",
            describe(letter),
            one_line(&replay.event_id)
        );
        replayed += 1;
    }
    if selection.id.is_none() {
        println!("{replayed} dead letter(s) replayed, {refused} left in place");
    }
    Ok(if refused > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn purge(store: &Store, selection: &Selection) -> anyhow::Result<ExitCode> {
    let targets = match selection.id {
        Some(id) => match store.get(id).await? {
            Some(stored) => vec![stored],
            None => return Ok(not_found(id)),
        },
        None => store.list(&selection.filter()).await?,
    };
    let mut purged = 0_usize;
    for stored in targets {
        let id = stored.id;
        if !store.delete(id).await? {
            if selection.id.is_some() {
                return Ok(not_found(id));
            }
            continue;
        }
        let what = match &stored.letter {
            Ok(letter) => match &letter.event_id {
                Some(event_id) => format!("{}, event {}", describe(letter), one_line(event_id)),
                None => describe(letter),
            },
            Err(_) => "not a dead letter".to_owned(),
        };
        println!("purged {id} ({what})");
        purged += 1;
    }
    if selection.id.is_none() {
        println!("{purged} dead letter(s) purged");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use sluice_runtime::dlq::FailureKind;
    use sluice_runtime::envelope::{EventMeta, SCHEMA_VERSION};
    use sluice_triggers::headers::Headers;

    use super::*;

    fn envelope(triggers: &[&str]) -> Envelope {
        Envelope {
            meta: EventMeta {
                schema: SCHEMA_VERSION,
                event_id: "e-1".into(),
                namespace: "team-a".into(),
                listener: "github".into(),
                received_at_ms: 1,
                idempotency_key: "team-a/github/d-1".into(),
                triggers: triggers.iter().map(|t| t.to_string()).collect(),
                traceparent: None,
                request_url: String::new(),
                headers: Headers::new(),
            },
            body: Bytes::from_static(b" {\"a\": 1.50}\n"),
        }
    }

    fn letter(trigger: Option<&str>, event: Bytes) -> DeadLetter {
        DeadLetter {
            namespace: "team-a".into(),
            listener: "github".into(),
            trigger: trigger.map(str::to_owned),
            event_id: Some("e-1".into()),
            reason: "r".into(),
            kind: FailureKind::Permanent,
            attempts: 1,
            failed_at_ms: 0,
            event,
        }
    }

    #[test]
    fn a_replay_runs_only_the_failed_trigger_with_the_same_body() {
        let stored = envelope(&["build", "lint"]).encode();
        let replay = Replay::prepare(12, &letter(Some("lint"), stored)).unwrap();
        assert_eq!(replay.subject, "sluice.events.team-a.github");
        assert_eq!(
            replay.msg_id,
            format!(
                "replay-12-{}",
                sluice_triggers::idempotency::message_id("team-a/github/d-1")
            )
        );
        let back = Envelope::decode(replay.payload).unwrap();
        assert_eq!(back.meta.triggers, ["lint"]);
        assert_eq!(back.body, envelope(&[]).body);
        assert_eq!(replay.event_id, "e-1");
    }

    #[test]
    fn a_whole_event_replays_every_trigger() {
        let stored = envelope(&["build", "lint"]).encode();
        let replay = Replay::prepare(3, &letter(None, stored.clone())).unwrap();
        assert_eq!(replay.payload, stored);
    }

    #[test]
    fn a_replay_never_widens_or_moves_the_event() {
        let stored = envelope(&["build"]).encode();
        let error = Replay::prepare(1, &letter(Some("deploy"), stored.clone())).unwrap_err();
        assert!(error.contains("not accepted for trigger deploy"), "{error}");
        let mut elsewhere = letter(None, stored);
        elsewhere.listener = "gitlab".into();
        assert!(Replay::prepare(1, &elsewhere).is_err());
        let error = Replay::prepare(1, &letter(None, Bytes::from_static(b"garbage"))).unwrap_err();
        assert!(error.contains("cannot be decoded"), "{error}");
    }
}
