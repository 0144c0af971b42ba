//! Counting what never reaches the collector. The SDK's batch processor drops a span when
//! its queue is full and a batch when the export fails, and says so nowhere an operator
//! looks; here both are counted in `sluice_trace_spans_dropped_total{reason}`, served on
//! every binary's `/metrics`.
//!
//! [`Bounded`] sits in front of the batch processor and keeps count of the spans handed to
//! it and not yet given to the exporter; past the processor's queue size it drops the span
//! itself, counted, so the processor's own (silent) drop never happens. [`Counted`] sits
//! behind it, around the OTLP exporter: what it is given leaves the queue, and a failed
//! export counts its spans.
//!
//! [`WhileDown`] keeps a dead collector from costing the request path: from a failed export
//! until one succeeds, new traces are not recorded (counted as `collector_down`), save one a
//! second, whose export tells when the collector is back.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    SamplingDecision, SamplingResult, ShouldSample, Span, SpanData, SpanExporter, SpanProcessor,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Why a span was not exported.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum DropReason {
    /// The queue before the exporter was full: the collector is slower than spans end.
    QueueFull,
    /// The collector did not take the batch (unreachable, refused, timed out), retries
    /// included.
    ExportFailed,
    /// Not recorded at all: the last export failed, so the collector is taken to be down.
    CollectorDown,
}

crate::label_values!(DropReason {
    QueueFull => "queue_full",
    ExportFailed => "export_failed",
    CollectorDown => "collector_down",
});

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: DropReason,
}

/// One counter for the process: the batch processor is global, as the subscriber is.
static DROPPED: LazyLock<Family<DropLabels, Counter>> = LazyLock::new(|| {
    let family = Family::<DropLabels, Counter>::default();
    for reason in [
        DropReason::QueueFull,
        DropReason::ExportFailed,
        DropReason::CollectorDown,
    ] {
        let _ = family.get_or_create(&DropLabels { reason });
    }
    family
});

/// Registers `sluice_trace_spans_dropped_total` in `registry`; zero while traces are off.
pub fn register(registry: &mut Registry) {
    registry.register(
        "sluice_trace_spans_dropped",
        "Spans never exported, by reason: the export queue was full, the collector did not \
         take the batch, or it was down when the span started",
        DROPPED.clone(),
    );
}

fn dropped(reason: DropReason, spans: usize) {
    DROPPED
        .get_or_create(&DropLabels { reason })
        .inc_by(spans as u64);
}

/// Spans handed to the batch processor and not yet taken by the exporter.
#[derive(Debug, Default, Clone)]
pub(super) struct Pending(Arc<AtomicUsize>);

impl Pending {
    /// Takes a place for one more span, unless `capacity` are already waiting.
    fn take(&self, capacity: usize) -> bool {
        if self.0.fetch_add(1, Ordering::AcqRel) >= capacity {
            self.0.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn release(&self, spans: usize) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(spans))
            });
    }
}

/// The batch processor `inner`, never given more than `capacity` spans to hold: the rest
/// are dropped here and counted.
#[derive(Debug)]
pub(super) struct Bounded<P> {
    pub inner: P,
    pub pending: Pending,
    pub capacity: usize,
}

impl<P: SpanProcessor> SpanProcessor for Bounded<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.pending.take(self.capacity) {
            self.inner.on_end(span);
        } else {
            dropped(DropReason::QueueFull, 1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The exporter `inner`, counting the spans of every batch it fails to deliver. The first
/// failure after a success is logged, and so is the first success after failures.
#[derive(Debug)]
pub(super) struct Counted<E> {
    inner: E,
    pending: Pending,
    failing: AtomicBool,
}

impl<E> Counted<E> {
    pub(super) fn new(inner: E, pending: Pending) -> Self {
        Self {
            inner,
            pending,
            failing: AtomicBool::new(false),
        }
    }
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        self.pending.release(spans);
        let result = self.inner.export(batch).await;
        COLLECTOR_DOWN.store(result.is_err(), Ordering::Relaxed);
        match &result {
            Err(error) => {
                dropped(DropReason::ExportFailed, spans);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, spans, "trace export failed: spans are dropped (counted in sluice_trace_spans_dropped_total) until the collector takes them again");
                }
            }
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("trace export works again");
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Set by a failed export, cleared by a successful one.
static COLLECTOR_DOWN: AtomicBool = AtomicBool::new(false);
/// While the collector is down, a trace is still recorded this often, so that an export
/// finds out when it is back.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// The sampler `inner`, except that while the collector is down a new trace is dropped
/// before anything is recorded (counted), save one per [`PROBE_EVERY`].
#[derive(Debug, Clone)]
pub(super) struct WhileDown {
    inner: Box<dyn ShouldSample>,
    probes: Arc<Probes>,
}

/// The probes of [`worth_a_root_span`], shared by every caller of the process.
static ROOT_PROBES: LazyLock<Probes> = LazyLock::new(|| Probes {
    started: Instant::now(),
    next_ms: AtomicU64::new(0),
});

/// Whether a span that starts a trace here (a webhook, a delivery) is worth creating: not
/// while the collector is down, save one per [`PROBE_EVERY`] so that an export finds out
/// when it is back. Checked before the span exists, it spares the request path building
/// and entering a span the sampler would drop; a span not created is counted as dropped.
pub fn worth_a_root_span() -> bool {
    if !COLLECTOR_DOWN.load(Ordering::Relaxed) || ROOT_PROBES.take() {
        return true;
    }
    dropped(DropReason::CollectorDown, 1);
    false
}

#[derive(Debug)]
struct Probes {
    started: Instant,
    /// Milliseconds after `started` when the next probe may be recorded.
    next_ms: AtomicU64,
}

impl WhileDown {
    pub(super) fn new(inner: Box<dyn ShouldSample>) -> Self {
        Self {
            inner,
            probes: Arc::new(Probes {
                started: Instant::now(),
                next_ms: AtomicU64::new(0),
            }),
        }
    }
}

impl Probes {
    /// Whether this trace is the probe of the current period (one caller wins it).
    fn take(&self) -> bool {
        let now = self.started.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now + PROBE_EVERY.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

impl ShouldSample for WhileDown {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        // Only what starts here is decided: a new trace, or one continued from another
        // process. A local child follows its parent, as a probe's children must.
        let root = parent_context
            .is_none_or(|cx| !cx.has_active_span() || cx.span().span_context().is_remote());
        // Webhook and delivery spans were let through by `worth_a_root_span` already.
        let admitted = matches!(name, "webhook" | "consume");
        if root && !admitted && COLLECTOR_DOWN.load(Ordering::Relaxed) && !self.probes.take() {
            dropped(DropReason::CollectorDown, 1);
            return SamplingResult {
                decision: SamplingDecision::Drop,
                attributes: Vec::new(),
                trace_state: TraceState::default(),
            };
        }
        self.inner
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_spans_never_pass_the_capacity() {
        let pending = Pending::default();
        assert!(pending.take(2));
        assert!(pending.take(2));
        assert!(!pending.take(2), "full");
        pending.release(1);
        assert!(pending.take(2));
        pending.release(10);
        assert!(pending.take(1), "a release never goes below zero");
    }

    #[test]
    fn one_probe_per_period() {
        let probes = Probes {
            started: Instant::now(),
            next_ms: AtomicU64::new(0),
        };
        assert!(probes.take());
        assert!(!probes.take(), "the period's probe is taken");
        probes.next_ms.store(0, Ordering::Relaxed);
        assert!(probes.take(), "the next period has its own");
    }
}
