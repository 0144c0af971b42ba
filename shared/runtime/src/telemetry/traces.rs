//! OpenTelemetry traces, exported over OTLP/HTTP with protobuf when the standard `OTEL_*`
//! variables name a collector, and off (a `tracing` target no layer listens to) otherwise.
//!
//! Only spans created with [`TARGET`] are exported: the few the binaries open on purpose
//! (a webhook, a delivery, an interceptor call, a create), never the debug spans of logging.
//! Spans end on the request's path; exporting happens on the SDK's batch thread, so a slow
//! or dead collector costs the request nothing: what cannot be sent is dropped and counted
//! ([`super::export`]).
//!
//! Across processes the context travels as a W3C `traceparent`: [`traceparent`] writes the
//! current one, [`remote`] reads one back (anything malformed is ignored).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use super::export::{Bounded, Counted, Pending, WhileDown};
use super::http::CollectorClient;

/// The `tracing` target of the spans that are exported.
pub const TARGET: &str = "sluice::trace";

/// The NATS header of a stored event that carries the context of the span that stored it:
/// ingest's webhook span, continued by the dispatcher's consumer span.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The NATS header of an event replayed from the dead-letter stream that carries the
/// context of the span that dead-lettered it: linked, not continued, by the replay's
/// consumer span.
pub const REPLAYED_HEADER: &str = "Sluice-Replayed-Traceparent";

/// The one protocol spoken to collectors.
const PROTOCOL: &str = "http/protobuf";
/// The SDK's defaults, used where the variables do not say otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_QUEUE: usize = 2048;
/// How long a stopping binary waits for its last spans to be sent.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

static ENABLED: AtomicBool = AtomicBool::new(false);
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported: an endpoint is configured and the exporter was built.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether to create a span that starts a trace here (a webhook, a delivery): traces are on
/// and the collector is not known to be down (see [`super::export::worth_a_root_span`]).
pub fn worth_a_root_span() -> bool {
    enabled() && super::export::worth_a_root_span()
}

/// What the environment asks for, read once at start.
#[derive(Debug, Default)]
pub(super) struct Settings {
    /// The collector, as given (the exporter appends `/v1/traces` to the generic variable).
    endpoint: Option<(&'static str, String)>,
    /// Lines to log once logging is set up.
    pub notes: Vec<Note>,
}

/// Something about the settings worth a log line.
#[derive(Debug)]
pub(super) enum Note {
    Warn(String),
    Error(String),
    Info(String),
}

impl Settings {
    pub(super) fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let mut settings = Settings::default();
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return settings;
        }
        match var("OTEL_TRACES_EXPORTER").map(|v| v.trim().to_ascii_lowercase()) {
            Some(exporter) if exporter == "none" => return settings,
            Some(exporter) if exporter != "otlp" => settings.notes.push(Note::Warn(format!(
                "OTEL_TRACES_EXPORTER={exporter} is not supported: traces are exported with otlp"
            ))),
            _ => {}
        }
        settings.endpoint = [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ]
        .into_iter()
        .find_map(|name| var(name).map(|value| (name, value.trim().to_owned())));
        if settings.endpoint.is_none() {
            return settings;
        }
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(protocol) = var(name) {
                if protocol.trim() != PROTOCOL {
                    settings.notes.push(Note::Warn(format!(
                        "{name}={} is not supported: traces are sent as {PROTOCOL}",
                        protocol.trim()
                    )));
                }
                break;
            }
        }
        settings
    }

    /// The timeout of one export request, in milliseconds as the variables give it.
    fn timeout() -> Duration {
        [
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ]
        .into_iter()
        .find_map(|name| std::env::var(name).ok())
        .and_then(|ms| ms.trim().parse().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
    }

    fn queue_size() -> usize {
        std::env::var("OTEL_BSP_MAX_QUEUE_SIZE")
            .ok()
            .and_then(|size| size.trim().parse().ok())
            .filter(|&size| size > 0)
            .unwrap_or(DEFAULT_QUEUE)
    }
}

/// The layer that exports [`TARGET`]'s spans, or `None` when no collector is configured or
/// the exporter cannot be built (noted in `settings`).
pub(super) fn layer<S>(
    settings: &mut Settings,
    service: &'static str,
) -> Option<impl Layer<S> + Send + Sync + 'static>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let (variable, endpoint) = settings.endpoint.clone()?;
    let provider = match provider(&endpoint, service) {
        Ok(provider) => provider,
        Err(error) => {
            settings.notes.push(Note::Error(format!(
                "traces are off: the exporter to {variable}={} cannot be set up: {error}",
                without_userinfo(&endpoint)
            )));
            return None;
        }
    };
    settings.notes.push(Note::Info(format!(
        "exporting traces to {variable}={} ({PROTOCOL})",
        without_userinfo(&endpoint)
    )));
    let tracer = provider.tracer("sluice");
    let _ = PROVIDER.set(provider);
    ENABLED.store(true, Ordering::Relaxed);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false)
        // Decided once per callsite, not at every span and event: every other callsite
        // stays off for this layer at no cost per call.
        .with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target(TARGET, tracing::level_filters::LevelFilter::TRACE),
        );
    Some(layer)
}

fn provider(endpoint: &str, service: &'static str) -> Result<SdkTracerProvider, String> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "no Tokio runtime to send requests on".to_owned())?;
    let timeout = Settings::timeout();
    let tls = endpoint.starts_with("https:");
    let client = CollectorClient::new(runtime, timeout, tls)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(timeout)
        .with_http_client(client)
        .build()
        .map_err(|error| error.to_string())?;
    let capacity = Settings::queue_size();
    let pending = Pending::default();
    let batches = BatchSpanProcessor::builder(Counted::new(exporter, pending.clone()))
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(capacity)
                .build(),
        )
        .build();
    // The sampler the variables choose (`OTEL_TRACES_SAMPLER`), held back while the
    // collector is down.
    let sampler = WhileDown::new(opentelemetry_sdk::trace::Config::default().sampler);
    Ok(SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(Bounded {
            inner: batches,
            pending,
            capacity,
        })
        .with_resource(resource(service))
        .build())
}

/// The SDK's resource (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME`), named `service`
/// unless either names it.
fn resource(service: &'static str) -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|name| !name.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .is_ok_and(|attributes| attributes.contains("service.name="));
    let builder = Resource::builder();
    if named {
        builder.build()
    } else {
        builder.with_service_name(service).build()
    }
}

/// `endpoint` as it can be logged: a password in its authority (`user:password@host`)
/// is left out.
fn without_userinfo(endpoint: &str) -> String {
    let authority_start = endpoint.find("://").map_or(0, |i| i + 3);
    let authority_end = endpoint[authority_start..]
        .find('/')
        .map_or(endpoint.len(), |i| authority_start + i);
    match endpoint[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}…@{}",
            &endpoint[..authority_start],
            &endpoint[authority_start + at + 1..]
        ),
        None => endpoint.to_owned(),
    }
}

/// Sends the spans still queued, waiting a few seconds at most; for the end of `main`.
pub async fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        // The batch thread sends on this runtime: wait for it from outside the runtime.
        let provider = provider.clone();
        let _ =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT))
                .await;
    }
}

/// The W3C `traceparent` of the innermost exported span the caller is in, or `None` when
/// traces are off or it is in none.
pub fn traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    context_traceparent(&Context::current())
}

/// The W3C `traceparent` of `span`, or `None` when traces are off or it is not exported.
pub fn span_traceparent(span: &tracing::Span) -> Option<String> {
    if !enabled() || span.is_disabled() {
        return None;
    }
    context_traceparent(&span.context())
}

fn context_traceparent(cx: &Context) -> Option<String> {
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::with_capacity(2);
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    carrier.remove("traceparent")
}

/// The span context a W3C `traceparent` names; `None` when it is malformed.
pub fn remote(traceparent: &str) -> Option<SpanContext> {
    struct One<'a>(&'a str);
    impl Extractor for One<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            (key == "traceparent").then_some(self.0)
        }
        fn keys(&self) -> Vec<&str> {
            vec!["traceparent"]
        }
    }
    let cx = TraceContextPropagator::new().extract(&One(traceparent));
    let span = cx.span().span_context().clone();
    span.is_valid().then_some(span)
}

/// Makes `span` a child of the span `traceparent` names, when it is well-formed. Call it
/// before the span is first entered.
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    if let Some(remote) = traceparent.and_then(remote) {
        let _ = span.set_parent(Context::new().with_remote_span_context(remote));
    }
}

/// Links `span` to the span `traceparent` names, when it is well-formed, saying `why`
/// (`sluice.link`): a related span that is not its parent.
pub fn add_link(span: &tracing::Span, traceparent: Option<&str>, why: &'static str) {
    if span.is_disabled() {
        return;
    }
    if let Some(remote) = traceparent.and_then(remote) {
        span.add_link_with_attributes(remote, vec![KeyValue::new("sluice.link", why)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "garbage",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "zz-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c0000-b7ad6b7169203331-01",
            "00-é-ü-01",
        ] {
            assert!(remote(bad).is_none(), "{bad:?}");
        }
        let good = remote("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        assert_eq!(
            good.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert!(good.is_sampled());
    }

    #[test]
    fn credentials_in_an_endpoint_are_not_logged() {
        assert_eq!(
            without_userinfo("https://user:secret@collector:4318/v1/traces"),
            "https://…@collector:4318/v1/traces"
        );
        assert_eq!(
            without_userinfo("http://collector:4318"),
            "http://collector:4318"
        );
        assert_eq!(without_userinfo("collector@x"), "…@x");
        assert_eq!(without_userinfo("http://c/p@q"), "http://c/p@q");
    }

    #[test]
    fn no_endpoint_means_off() {
        let settings = Settings::from_lookup(|_| None);
        assert!(settings.endpoint.is_none());
        assert!(settings.notes.is_empty());
        let disabled = Settings::from_lookup(|name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:4318".into()),
            "OTEL_SDK_DISABLED" => Some("true".into()),
            _ => None,
        });
        assert!(disabled.endpoint.is_none());
        let none = Settings::from_lookup(|name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:4318".into()),
            "OTEL_TRACES_EXPORTER" => Some("none".into()),
            _ => None,
        });
        assert!(none.endpoint.is_none());
    }

    #[test]
    fn the_traces_endpoint_wins_and_other_protocols_are_named() {
        let settings = Settings::from_lookup(|name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318".into()),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => Some("http://traces:4318/v1/traces".into()),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("grpc".into()),
            _ => None,
        });
        assert_eq!(
            settings.endpoint,
            Some((
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://traces:4318/v1/traces".to_owned()
            ))
        );
        let [Note::Warn(warning)] = &settings.notes[..] else {
            panic!("{:?}", settings.notes);
        };
        assert!(
            warning.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc"),
            "{warning}"
        );
        let fine = Settings::from_lookup(|name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318".into()),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("http/protobuf".into()),
            _ => None,
        });
        assert!(fine.notes.is_empty());
    }
}
