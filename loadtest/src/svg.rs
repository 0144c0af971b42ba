//! A latency plot as a self-contained SVG, written by hand.
//!
//! The upper panel is the percentile distribution: latency (ms) against percentile on a
//! log-scaled axis (`log10(1 / (1 - p))`, so 90 %, 99 %, 99.9 % and 99.99 % are evenly
//! spaced), one line per series. The lower panel, when given, is latency over time (per
//! second of the run).

use std::fmt::Write as _;

/// One line of a plot: `(x, y)` points, y in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

const WIDTH: f64 = 960.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 220.0;
const PANEL_HEIGHT: f64 = 320.0;
const TOP: f64 = 60.0;
const GAP: f64 = 90.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
/// The percentile axis ends at 99.99 % (four nines).
const MAX_NINES: f64 = 4.0;

/// Escapes text for SVG content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Where a percentile sits on the log axis: 0 % → 0, 90 % → 1, 99 % → 2, 99.9 % → 3…
pub fn nines(percentile: f64) -> f64 {
    let rest = (1.0 - percentile / 100.0).max(1e-9);
    -rest.log10()
}

/// A round upper bound for an axis that must reach `max`.
fn nice_ceiling(max: f64) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * magnitude >= max {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn colour(index: usize) -> &'static str {
    COLOURS[index % COLOURS.len()]
}

/// The plot: `curves` as percentile distributions, `timeline` (x in seconds) below them if
/// not empty. `title` names the scenario.
pub fn latency_plot(title: &str, curves: &[Series], timeline: &[Series]) -> String {
    let panels = if timeline.iter().any(|s| !s.points.is_empty()) {
        2.0
    } else {
        1.0
    };
    let height = TOP + panels * PANEL_HEIGHT + (panels - 1.0) * GAP + 60.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );

    let clipped: Vec<Series> = curves
        .iter()
        .map(|series| Series {
            label: series.label.clone(),
            points: series
                .points
                .iter()
                .map(|&(p, y)| (nines(p), y))
                .filter(|&(x, _)| x <= MAX_NINES + 1e-9)
                .collect(),
        })
        .collect();
    let ticks: Vec<(f64, String)> = ["0%", "90%", "99%", "99.9%", "99.99%"]
        .iter()
        .enumerate()
        .map(|(i, label)| (i as f64, (*label).to_owned()))
        .collect();
    panel(
        &mut out,
        TOP,
        "latency by percentile",
        "percentile",
        (0.0, MAX_NINES),
        &ticks,
        &clipped,
    );

    if panels > 1.0 {
        let end = timeline
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .fold(1.0_f64, f64::max);
        let end = nice_ceiling(end);
        let ticks: Vec<(f64, String)> = (0..=5)
            .map(|i| {
                let x = end * f64::from(i) / 5.0;
                (x, format!("{x:.0}"))
            })
            .collect();
        panel(
            &mut out,
            TOP + PANEL_HEIGHT + GAP,
            "latency over time",
            "time (s)",
            (0.0, end),
            &ticks,
            timeline,
        );
    }
    out.push_str("</svg>\n");
    out
}

/// One panel at `top`: frame, grid, axes labels, lines, legend.
fn panel(
    out: &mut String,
    top: f64,
    heading: &str,
    x_label: &str,
    (x_min, x_max): (f64, f64),
    x_ticks: &[(f64, String)],
    series: &[Series],
) {
    let plot_width = WIDTH - LEFT - RIGHT;
    let bottom = top + PANEL_HEIGHT;
    let y_max = nice_ceiling(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let x_of = |x: f64| LEFT + (x - x_min) / (x_max - x_min).max(1e-9) * plot_width;
    let y_of = |y: f64| bottom - (y / y_max).clamp(0.0, 1.0) * PANEL_HEIGHT;

    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}" font-size="13" font-weight="bold">{}</text>"#,
        top - 8.0,
        escape(heading)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top}" width="{plot_width}" height="{PANEL_HEIGHT}" fill="none" stroke="#444"/>"##
    );
    for (x, label) in x_ticks {
        let px = x_of(*x);
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{bottom}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"#,
            bottom + 16.0,
            escape(label)
        );
    }
    for i in 0..=5 {
        let y = y_max * f64::from(i) / 5.0;
        let py = y_of(y);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{}" y2="{py:.1}" stroke="#ddd"/>"##,
            LEFT + plot_width
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            py + 4.0,
            trim_number(y)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + plot_width / 2.0,
        bottom + 36.0,
        escape(x_label)
    );
    let _ = writeln!(
        out,
        r#"<text x="20" y="{:.1}" text-anchor="middle" transform="rotate(-90 20 {:.1})">latency (ms)</text>"#,
        top + PANEL_HEIGHT / 2.0,
        top + PANEL_HEIGHT / 2.0
    );
    for (index, line) in series.iter().enumerate() {
        let points: Vec<String> = line
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", x_of(x), y_of(y)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            colour(index),
            points.join(" "),
            escape(&line.label)
        );
        let legend_y = top + 14.0 + index as f64 * 18.0;
        let legend_x = LEFT + plot_width + 14.0;
        let _ = writeln!(
            out,
            r#"<line x1="{legend_x}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="{}" stroke-width="3"/>"#,
            legend_x + 20.0,
            colour(index)
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}">{}</text>"#,
            legend_x + 26.0,
            legend_y + 4.0,
            escape(&line.label)
        );
    }
}

fn trim_number(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Checks that every element is closed in order and that the document is one `<svg>`.
    pub(crate) fn assert_well_formed(svg: &str) {
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').expect("unclosed tag") + open;
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "`<` inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap_or_default();
                stack.push(name.to_owned());
            }
            // Text between tags must not hold a raw `&` that is not an entity.
            let text_end = rest[close..].find('<').map_or(rest.len(), |i| i + close);
            let text = &rest[close + 1..text_end.max(close + 1)];
            for (at, _) in text.match_indices('&') {
                let entity = &text[at..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                        .iter()
                        .any(|e| entity.starts_with(e)),
                    "raw & in {text}"
                );
            }
            rest = &rest[close + 1..];
        }
        assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    }

    fn curve(label: &str, scale: f64) -> Series {
        Series {
            label: label.to_owned(),
            points: [0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999]
                .iter()
                .map(|&p| (p, scale * (1.0 + nines(p))))
                .collect(),
        }
    }

    #[test]
    fn the_plot_is_well_formed_and_holds_every_series() {
        let timeline = vec![Series {
            label: "p99 over time".into(),
            points: (0..30).map(|s| (f64::from(s), 2.0)).collect(),
        }];
        let svg = latency_plot(
            "ingest vs reference <1 KiB> & friends",
            &[curve("reference", 1.0), curve("ingest", 1.5)],
            &timeline,
        );
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 3);
        for text in [
            "reference",
            "ingest",
            "p99 over time",
            "percentile",
            "latency (ms)",
            "time (s)",
            "99.99%",
            "&lt;1 KiB&gt; &amp; friends",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
    }

    #[test]
    fn points_beyond_four_nines_are_left_out_and_the_axis_is_logarithmic() {
        assert_eq!(nines(0.0), 0.0);
        assert!((nines(90.0) - 1.0).abs() < 1e-9);
        assert!((nines(99.99) - 4.0).abs() < 1e-6);
        let svg = latency_plot("t", &[curve("a", 1.0)], &[]);
        assert_well_formed(&svg);
        let line = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        let points = line
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split(' ').count(), 6);
        assert!(!svg.contains("latency over time"));
    }

    #[test]
    fn axes_get_round_bounds() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(0.7), 1.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(trim_number(2.500), "2.5");
        assert_eq!(trim_number(10.0), "10");
    }
}
