//! Logging and traces. Logs: text for people, JSON for log pipelines; level from
//! `RUST_LOG`. Traces: OpenTelemetry over OTLP/HTTP when the standard `OTEL_*` variables name
//! a collector ([`traces`]), with what could not be sent counted ([`export`]).

pub mod export;
mod http;
mod lines;
pub mod traces;

pub use lines::flush as flush_logs;

use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// How log lines reach stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogWrites {
    /// Handed to a writer thread, which writes a line at once after a quiet spell and, while
    /// lines keep coming, what queued every 5 ms in one write: no task waits on a write per
    /// line.
    Batched,
    /// Each line written where it is logged, before the logging call returns.
    Direct,
}

/// Installs the global subscriber: logs on stderr, as `writes` says (call [`flush_logs`]
/// before the process exits), `RUST_LOG` overriding the default `info`
/// level; and traces exported as `service` (unless `OTEL_SERVICE_NAME` names it) when the
/// environment names a collector. Must be called inside the Tokio runtime.
pub fn init(format: LogFormat, writes: LogWrites, service: &'static str) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // The spans made for export are not logging's: log lines read as they did without.
    if let Ok(directive) = format!("{}=off", traces::TARGET).parse() {
        filter = filter.add_directive(directive);
    }
    let writer = match writes {
        LogWrites::Batched => BoxMakeWriter::new(lines::Lines::get()),
        LogWrites::Direct => BoxMakeWriter::new(std::io::stderr),
    };
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let logs = match format {
        LogFormat::Text => logs.boxed(),
        LogFormat::Json => logs.json().flatten_event(true).boxed(),
    };
    let mut settings = traces::Settings::from_env();
    let traces = traces::layer(&mut settings, service);
    // A second initialisation (tests) keeps the first subscriber.
    let installed = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces)
        .try_init()
        .is_ok();
    if !installed {
        return;
    }
    // What was logged before a panic is written before its message.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        lines::flush();
        previous(info);
    }));
    for note in settings.notes {
        match note {
            traces::Note::Info(message) => tracing::info!("{message}"),
            traces::Note::Warn(message) => tracing::warn!("{message}"),
            traces::Note::Error(message) => tracing::error!("{message}"),
        }
    }
}
