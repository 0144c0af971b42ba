//! Report types shared by every subcommand: latency summaries taken from HDR histograms
//! (microseconds, 3 significant figures), the percentile curve and per-second timeline that
//! the SVG plots, and the readable table and JSON file a run ends with.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;
use crate::svg;

/// Significant figures of every latency histogram.
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// An empty latency histogram in microseconds (1 µs to 1 h; longer values are clamped).
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000_000, SIGNIFICANT_FIGURES)
        .context("failed to create a latency histogram")
}

/// A smaller histogram (2 significant figures) for one second of a timeline.
pub fn coarse_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).context("failed to create a latency histogram")
}

/// min, p50, p90, p99, p99.9, max and mean of a latency distribution, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl LatencySummary {
    pub fn from_histogram(histogram: &Histogram<u64>) -> LatencySummary {
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: histogram.len(),
            min_us: histogram.min(),
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
            mean_us: histogram.mean(),
        }
    }
}

/// One point of the percentile distribution: `percentile` (0–100) → latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub percentile: f64,
    pub latency_us: u64,
}

/// The percentile distribution, evenly spaced on the `log10(1 / (1 - p))` axis the plot
/// uses: 10 points per "nine" from 0 up to 99.999 %.
pub fn percentile_curve(histogram: &Histogram<u64>) -> Vec<CurvePoint> {
    if histogram.is_empty() {
        return Vec::new();
    }
    (0..=50)
        .map(|step| {
            let nines = f64::from(step) / 10.0;
            // Four decimals: enough for 99.999 %, and exact through JSON.
            let percentile = (1e6 * (1.0 - 10f64.powf(-nines))).round() / 1e4;
            CurvePoint {
                percentile,
                latency_us: histogram.value_at_quantile(percentile / 100.0),
            }
        })
        .collect()
}

/// One second of a run, by the requests' intended send times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Seconds since recording started.
    pub second: u32,
    /// Accepted (2xx) requests due in this second.
    pub accepted: u64,
    /// Failed requests due in this second.
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// Per-second histograms, turned into [`TimelinePoint`]s.
#[derive(Debug, Default)]
pub struct Timeline {
    seconds: Vec<(Option<Histogram<u64>>, u64)>,
}

impl Timeline {
    fn slot(&mut self, second: usize) -> &mut (Option<Histogram<u64>>, u64) {
        if self.seconds.len() <= second {
            self.seconds.resize_with(second + 1, || (None, 0));
        }
        &mut self.seconds[second]
    }

    /// Records an accepted request due in `second` that took `latency_us`.
    pub fn record(&mut self, second: usize, latency_us: u64) -> anyhow::Result<()> {
        let slot = self.slot(second);
        if slot.0.is_none() {
            slot.0 = Some(coarse_histogram()?);
        }
        if let Some(histogram) = &mut slot.0 {
            histogram.saturating_record(latency_us.max(1));
        }
        Ok(())
    }

    /// Records a failed request due in `second`.
    pub fn error(&mut self, second: usize) {
        self.slot(second).1 += 1;
    }

    /// Adds another timeline's counts to this one.
    pub fn merge(&mut self, other: Timeline) -> anyhow::Result<()> {
        for (second, (histogram, errors)) in other.seconds.into_iter().enumerate() {
            let slot = self.slot(second);
            slot.1 += errors;
            match (&mut slot.0, histogram) {
                (Some(mine), Some(theirs)) => mine
                    .add(&theirs)
                    .context("failed to merge timeline histograms")?,
                (mine @ None, theirs) => *mine = theirs,
                (Some(_), None) => {}
            }
        }
        Ok(())
    }

    pub fn points(&self) -> Vec<TimelinePoint> {
        self.seconds
            .iter()
            .enumerate()
            .map(|(second, (histogram, errors))| {
                let summary = histogram
                    .as_ref()
                    .map(LatencySummary::from_histogram)
                    .unwrap_or_default();
                TimelinePoint {
                    second: u32::try_from(second).unwrap_or(u32::MAX),
                    accepted: summary.count,
                    errors: *errors,
                    p50_us: summary.p50_us,
                    p99_us: summary.p99_us,
                    max_us: summary.max_us,
                }
            })
            .collect()
    }
}

/// CPU time used during a run, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    /// The server under test (when it is a process this tool started).
    pub server_seconds: Option<f64>,
    pub server_us_per_request: Option<f64>,
    /// This process: the generator (and whatever else runs in-process).
    pub generator_seconds: f64,
    pub generator_us_per_request: f64,
    /// nats-server (when this tool started it).
    #[serde(default)]
    pub nats_seconds: Option<f64>,
    #[serde(default)]
    pub nats_us_per_request: Option<f64>,
}

/// Everything one generator run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// What was measured (`reference`, `ingest`, `run`…).
    pub label: String,
    /// The URL base requests were sent to.
    pub target: String,
    pub scenario: Scenario,
    /// Offered rate, requests per second.
    pub rate: f64,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub connections: usize,
    /// Bytes per body (GitHub, GitLab).
    pub body_bytes: (usize, usize),
    /// Requests the schedule called for, warm-up included.
    pub intended: u64,
    /// Requests sent (the rest were due too late, after the run's deadline).
    pub sent: u64,
    pub not_sent: u64,
    /// 2xx answers to recorded requests.
    pub accepted: u64,
    /// Recorded requests that failed: non-2xx, connection error or timeout.
    pub errors: u64,
    /// Warm-up requests that failed.
    pub warmup_errors: u64,
    /// Answers by status code, warm-up included (`202`, `503`…).
    pub statuses: BTreeMap<String, u64>,
    /// Failures by kind (`status 503`, `timeout`, `connection`…), warm-up included.
    pub error_kinds: BTreeMap<String, u64>,
    /// One message per failure kind, to tell what went wrong.
    pub error_examples: BTreeMap<String, String>,
    /// From the first recorded request's intended send time to the last recorded answer.
    pub measured_secs: f64,
    /// `accepted / measured_secs`.
    pub throughput: f64,
    /// From the intended send time to the full answer: what a sender experiences.
    pub latency: LatencySummary,
    /// From the actual send to the full answer: the server's (and network's) share.
    pub service_time: LatencySummary,
    /// From the intended to the actual send: queueing in the generator (all connections
    /// busy) plus timer slack. Large values mean the server, not the generator, fell behind
    /// only if the generator's CPU is not saturated.
    pub send_lag: LatencySummary,
    pub curve: Vec<CurvePoint>,
    pub timeline: Vec<TimelinePoint>,
    pub cpu: CpuUse,
}

/// Microseconds as milliseconds with three decimals.
pub fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// A row of the latency table.
pub fn latency_row(name: &str, summary: &LatencySummary) -> String {
    format!(
        "{name:<22}{:>9}{:>9}{:>9}{:>9}{:>9}{:>10}{:>9}",
        ms(summary.min_us),
        ms(summary.p50_us),
        ms(summary.p90_us),
        ms(summary.p99_us),
        ms(summary.p999_us),
        ms(summary.max_us),
        format!("{:.3}", summary.mean_us / 1000.0),
    )
}

/// The latency table's header.
pub fn latency_header() -> String {
    format!(
        "{:<22}{:>9}{:>9}{:>9}{:>9}{:>9}{:>10}{:>9}",
        "(ms)", "min", "p50", "p90", "p99", "p99.9", "max", "mean"
    )
}

impl RunReport {
    /// Whether anything failed, warm-up included.
    pub fn failed(&self) -> bool {
        self.errors > 0 || self.warmup_errors > 0
    }

    /// The title line: what, where, which scenario.
    pub fn title(&self) -> String {
        format!(
            "{}: {:.0}/s for {:.0} s, {}, {} B bodies",
            self.label,
            self.rate,
            self.duration_secs,
            self.scenario.describe(),
            self.body_bytes.0.max(self.body_bytes.1),
        )
    }

    /// A readable summary for stdout.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== {} ({})", self.title(), self.target);
        let _ = writeln!(
            out,
            "   {} connections, {:.0} s warm-up not recorded",
            self.connections, self.warmup_secs
        );
        let _ = writeln!(
            out,
            "   requests: intended {}  sent {}  not sent {}  accepted {}  errors {} (+{} in warm-up)",
            self.intended, self.sent, self.not_sent, self.accepted, self.errors, self.warmup_errors
        );
        let _ = writeln!(
            out,
            "   throughput: {:.1} accepted/s over {:.2} s (offered {:.1}/s)",
            self.throughput, self.measured_secs, self.rate
        );
        let _ = writeln!(out, "   {}", latency_header());
        let _ = writeln!(out, "   {}", latency_row("latency", &self.latency));
        let _ = writeln!(
            out,
            "   {}",
            latency_row("service time", &self.service_time)
        );
        let _ = writeln!(out, "   {}", latency_row("send lag", &self.send_lag));
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(code, count)| format!("{code} × {count}"))
            .collect();
        let _ = writeln!(out, "   statuses: {}", statuses.join(", "));
        if let (Some(server), Some(per)) = (self.cpu.server_seconds, self.cpu.server_us_per_request)
        {
            let _ = writeln!(
                out,
                "   server CPU: {server:.2} s ({per:.1} µs/request); generator CPU: {:.2} s ({:.1} µs/request)",
                self.cpu.generator_seconds, self.cpu.generator_us_per_request
            );
        } else {
            let _ = writeln!(
                out,
                "   generator CPU: {:.2} s ({:.1} µs/request)",
                self.cpu.generator_seconds, self.cpu.generator_us_per_request
            );
        }
        if let (Some(nats), Some(per)) = (self.cpu.nats_seconds, self.cpu.nats_us_per_request) {
            let _ = writeln!(out, "   nats-server CPU: {nats:.2} s ({per:.1} µs/request)");
        }
        for (kind, count) in &self.error_kinds {
            let example = self
                .error_examples
                .get(kind)
                .map(String::as_str)
                .unwrap_or("");
            let _ = writeln!(out, "   error {kind} × {count}: {example}");
        }
        out
    }

    /// The percentile curve and per-second p99 as plot series.
    pub fn series(&self, name: &str) -> (svg::Series, Vec<svg::Series>) {
        let curve = svg::Series {
            label: name.to_owned(),
            points: self
                .curve
                .iter()
                .map(|p| (p.percentile, p.latency_us as f64 / 1000.0))
                .collect(),
        };
        let timeline = vec![
            svg::Series {
                label: format!("{name} p99"),
                points: self
                    .timeline
                    .iter()
                    .map(|p| (f64::from(p.second), p.p99_us as f64 / 1000.0))
                    .collect(),
            },
            svg::Series {
                label: format!("{name} p50"),
                points: self
                    .timeline
                    .iter()
                    .map(|p| (f64::from(p.second), p.p50_us as f64 / 1000.0))
                    .collect(),
            },
        ];
        (curve, timeline)
    }

    /// The latency plot of this run.
    pub fn svg(&self) -> String {
        let (curve, timeline) = self.series(&self.label);
        svg::latency_plot(&self.title(), &[curve], &timeline)
    }
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("failed to encode the report")?;
    std::fs::write(path, text + "\n")
        .with_context(|| format!("failed to write the JSON report to {}", path.display()))
}

/// Writes `text` to `path` (the SVG plot).
pub fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("failed to write {}", path.display()))
}

/// min, median and max of some values (e.g. a ratio across rounds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let Some((&min, &max)) = sorted.first().zip(sorted.last()) else {
            return Spread::default();
        };
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Spread { min, median, max }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scenario::ProviderMix;

    fn filled(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut histogram = histogram().unwrap();
        for value in values {
            histogram.record(value).unwrap();
        }
        histogram
    }

    pub(crate) fn sample_report() -> RunReport {
        let histogram = filled(1..=10_000);
        let mut timeline = Timeline::default();
        timeline.record(0, 500).unwrap();
        timeline.record(2, 900).unwrap();
        timeline.error(2);
        RunReport {
            label: "reference".into(),
            target: "http://127.0.0.1:1".into(),
            scenario: Scenario {
                tenants: 2,
                listeners: 1,
                provider: ProviderMix::Github,
            },
            rate: 1000.0,
            duration_secs: 10.0,
            warmup_secs: 1.0,
            connections: 8,
            body_bytes: (1024, 1024),
            intended: 11_000,
            sent: 11_000,
            not_sent: 0,
            accepted: 10_000,
            errors: 0,
            warmup_errors: 0,
            statuses: BTreeMap::from([("202".to_owned(), 11_000)]),
            error_kinds: BTreeMap::new(),
            error_examples: BTreeMap::new(),
            measured_secs: 10.0,
            throughput: 1000.0,
            latency: LatencySummary::from_histogram(&histogram),
            service_time: LatencySummary::from_histogram(&histogram),
            send_lag: LatencySummary::default(),
            curve: percentile_curve(&histogram),
            timeline: timeline.points(),
            cpu: CpuUse::default(),
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram_within_its_precision() {
        let summary = LatencySummary::from_histogram(&filled(1..=10_000));
        assert_eq!(summary.count, 10_000);
        assert_eq!(summary.min_us, 1);
        let close = |value: u64, expected: u64| value.abs_diff(expected) <= expected / 500 + 1;
        assert!(close(summary.p50_us, 5_000), "{summary:?}");
        assert!(close(summary.p90_us, 9_000), "{summary:?}");
        assert!(close(summary.p99_us, 9_900), "{summary:?}");
        assert!(close(summary.p999_us, 9_990), "{summary:?}");
        assert!(close(summary.max_us, 10_000), "{summary:?}");
        assert!((summary.mean_us - 5_000.5).abs() < 10.0, "{summary:?}");
        assert_eq!(
            LatencySummary::from_histogram(&histogram().unwrap()),
            LatencySummary::default()
        );
    }

    #[test]
    fn the_curve_rises_from_the_minimum_to_five_nines() {
        let curve = percentile_curve(&filled(1..=100_000));
        assert_eq!(curve.len(), 51);
        assert_eq!(curve[0].percentile, 0.0);
        assert!((curve[20].percentile - 99.0).abs() < 1e-9);
        assert!((curve[50].percentile - 99.999).abs() < 1e-9);
        assert!(curve.windows(2).all(|w| w[0].latency_us <= w[1].latency_us));
    }

    #[test]
    fn timelines_count_per_second_and_merge() {
        let mut one = Timeline::default();
        one.record(1, 1000).unwrap();
        one.error(3);
        let mut two = Timeline::default();
        two.record(1, 3000).unwrap();
        two.record(0, 10).unwrap();
        one.merge(two).unwrap();
        let points = one.points();
        assert_eq!(points.len(), 4);
        assert_eq!(points[1].accepted, 2);
        assert!(points[1].max_us >= 2990, "{points:?}");
        assert_eq!(points[2].accepted, 0);
        assert_eq!(points[3].errors, 1);
    }

    #[test]
    fn reports_survive_a_json_round_trip() {
        let report = sample_report();
        let text = serde_json::to_string(&report).unwrap();
        let back: RunReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["scenario"]["provider"], "github");
        assert!(value["latency"]["p99_us"].as_u64().unwrap() > 9_800);
    }

    #[test]
    fn the_table_names_every_figure() {
        let table = sample_report().table();
        for word in [
            "reference",
            "throughput: 1000.0",
            "p99.9",
            "latency",
            "send lag",
            "202 × 11000",
        ] {
            assert!(table.contains(word), "{word} missing from\n{table}");
        }
    }

    #[test]
    fn spreads_take_the_median() {
        assert_eq!(
            Spread::of(&[3.0, 1.0, 2.0]),
            Spread {
                min: 1.0,
                median: 2.0,
                max: 3.0
            }
        );
        assert_eq!(Spread::of(&[1.0, 4.0]).median, 2.5);
        assert_eq!(Spread::of(&[]), Spread::default());
    }
}
