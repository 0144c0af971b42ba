//! How dead letters are shown: the `list` table and JSON rows, the `show` document, the
//! one-line descriptions of `replay` and `purge`, and RFC 3339 timestamps.

use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;
use sluice_runtime::dlq::DeadLetter;
use sluice_runtime::envelope::Envelope;
use sluice_triggers::headers::Headers;

/// Longest reason the table shows, in characters.
const TABLE_REASON_CHARS: usize = 80;

/// One row of `sluice dlq list`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub id: u64,
    pub failed_at: String,
    pub namespace: String,
    pub listener: String,
    /// `null`: the whole event failed.
    pub trigger: Option<String>,
    pub kind: &'static str,
    pub attempts: u64,
    pub event_id: Option<String>,
    pub reason: String,
}

impl Row {
    /// The row of dead letter `id`.
    pub fn new(id: u64, letter: &DeadLetter) -> Row {
        Row {
            id,
            failed_at: rfc3339(letter.failed_at_ms, false),
            namespace: letter.namespace.clone(),
            listener: letter.listener.clone(),
            trigger: letter.trigger.clone(),
            kind: letter.kind.as_str(),
            attempts: letter.attempts,
            event_id: letter.event_id.clone(),
            reason: letter.reason.clone(),
        }
    }
}

/// The rows as an aligned table with a heading, reasons cut to one short line.
pub fn table(rows: &[Row]) -> String {
    const HEADINGS: [&str; 8] = [
        "ID",
        "FAILED AT",
        "LISTENER",
        "TRIGGER",
        "KIND",
        "ATTEMPTS",
        "EVENT ID",
        "REASON",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|row| {
            [
                row.id.to_string(),
                row.failed_at.clone(),
                one_line(&format!("{}/{}", row.namespace, row.listener)),
                row.trigger
                    .as_deref()
                    .map_or_else(|| "*".to_owned(), one_line),
                row.kind.to_owned(),
                row.attempts.to_string(),
                row.event_id
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), one_line),
                truncate(&one_line(&row.reason), TABLE_REASON_CHARS),
            ]
        })
        .collect();
    let mut widths = HEADINGS.map(|heading| heading.chars().count());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let headings = HEADINGS.map(str::to_owned);
    for row in std::iter::once(&headings).chain(&cells) {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
            if column > 0 {
                line.push_str("  ");
            }
            // Writing to a String cannot fail.
            let _ = write!(line, "{cell:<width$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `sluice dlq show`: the dead letter and its event, decoded.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Details {
    pub id: u64,
    pub subject: String,
    pub namespace: String,
    pub listener: String,
    /// `null`: the whole event failed, and a replay runs all its triggers.
    pub trigger: Option<String>,
    pub kind: &'static str,
    pub attempts: u64,
    pub event_id: Option<String>,
    pub failed_at: String,
    pub reason: String,
    /// The stored event, when it decodes.
    pub event: Option<EventDetails>,
    /// Why the stored event does not decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_error: Option<String>,
    /// The stored bytes as text, when they do not decode as an event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// The original event of a dead letter.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetails {
    pub event_id: String,
    pub namespace: String,
    pub listener: String,
    pub received_at: String,
    pub idempotency_key: String,
    /// The triggers the event was accepted for.
    pub triggers: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The request headers, credentials excluded.
    pub headers: Headers,
    /// `json` or `text`.
    pub body_format: &'static str,
    pub body: Value,
}

/// How `show` renders a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStyle {
    /// A JSON body as a JSON value (for `--output json`).
    Value,
    /// A JSON body as pretty-printed JSON text (for `--output yaml`).
    PrettyText,
}

impl Details {
    /// Dead letter `id` with its stored event decoded when it can be.
    pub fn new(id: u64, letter: &DeadLetter, style: BodyStyle) -> Details {
        let (event, event_error, payload) = match Envelope::decode(letter.event.clone()) {
            Ok(envelope) => (Some(EventDetails::new(envelope, style)), None, None),
            Err(error) => (
                None,
                Some(error_chain(&error)),
                Some(String::from_utf8_lossy(&letter.event).into_owned()),
            ),
        };
        Details {
            id,
            subject: letter.subject(),
            namespace: letter.namespace.clone(),
            listener: letter.listener.clone(),
            trigger: letter.trigger.clone(),
            kind: letter.kind.as_str(),
            attempts: letter.attempts,
            event_id: letter.event_id.clone(),
            failed_at: rfc3339(letter.failed_at_ms, true),
            reason: letter.reason.clone(),
            event,
            event_error,
            payload,
        }
    }
}

impl EventDetails {
    fn new(envelope: Envelope, style: BodyStyle) -> EventDetails {
        let meta = envelope.meta;
        // Ingest never stores credential headers; rebuilding the map drops them anyway,
        // whatever wrote the event.
        let headers: Headers = meta
            .headers
            .iter()
            .flat_map(|(name, values)| values.iter().map(|v| (name.to_owned(), v.clone())))
            .collect();
        let (body_format, body) = match serde_json::from_slice::<Value>(&envelope.body) {
            Ok(value) => match style {
                BodyStyle::Value => ("json", value),
                BodyStyle::PrettyText => (
                    "json",
                    Value::String(
                        serde_json::to_string_pretty(&value)
                            .unwrap_or_else(|_| String::from_utf8_lossy(&envelope.body).into()),
                    ),
                ),
            },
            Err(_) => (
                "text",
                Value::String(String::from_utf8_lossy(&envelope.body).into_owned()),
            ),
        };
        EventDetails {
            event_id: meta.event_id,
            namespace: meta.namespace,
            listener: meta.listener,
            received_at: rfc3339(meta.received_at_ms, true),
            idempotency_key: meta.idempotency_key,
            triggers: meta.triggers,
            request_url: meta.request_url,
            traceparent: meta.traceparent,
            headers,
            body_format,
            body,
        }
    }
}

/// `team-a/github, trigger build` or `team-a/github, whole event`, for one-line messages.
pub fn describe(letter: &DeadLetter) -> String {
    let target = match &letter.trigger {
        Some(trigger) => format!("trigger {trigger}"),
        None => "whole event".to_owned(),
    };
    one_line(&format!(
        "{}/{}, {target}",
        letter.namespace, letter.listener
    ))
}

/// `text` safe to print on one terminal line: control characters (line breaks, escape
/// sequences) and bidirectional overrides become spaces.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// An error and its causes, `: `-separated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// At most `max` characters of `text`, with `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Milliseconds since the Unix epoch as RFC 3339 in UTC: `2025-11-24T16:00:00Z`, or with
/// `millis` `2025-11-24T16:00:00.000Z`.
pub fn rfc3339(epoch_ms: u64, millis: bool) -> String {
    let seconds = epoch_ms / 1000;
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60,
    );
    let mut text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    if millis {
        let _ = write!(text, ".{:03}", epoch_ms % 1000);
    }
    text.push('Z');
    text
}

/// The proleptic Gregorian date `days` days after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days): an era is 400 years, 146 097 days, and years
/// are counted from March so that the leap day ends them.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sluice_runtime::dlq::FailureKind;

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0, false), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(0, true), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_764_000_000_000, false), "2025-11-24T16:00:00Z");
        assert_eq!(rfc3339(951_782_400_000, false), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(951_868_799_999, true), "2000-02-29T23:59:59.999Z");
        assert_eq!(rfc3339(4_107_456_000_000, false), "2100-02-28T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_400_000, false), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199_000, false), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_799_000, false), "9999-12-31T23:59:59Z");
        // Absurd values still print a date rather than panic.
        assert!(rfc3339(u64::MAX, true).ends_with('Z'));
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_previous_one() {
        let mut previous = civil_from_days(0);
        for days in 1..146_097 * 2 {
            let (year, month, day) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let next_day = (year, month, day) == (py, pm, pd + 1);
            let next_month = (year, month, day) == (py, pm + 1, 1);
            let next_year = (year, month, day) == (py + 1, 1, 1) && (pm, pd) == (12, 31);
            assert!(
                next_day || next_month || next_year,
                "{previous:?} -> {year}-{month}-{day}"
            );
            previous = (year, month, day);
        }
    }

    #[test]
    fn one_line_text_cannot_break_lines_or_drive_the_terminal() {
        assert_eq!(one_line("a\nb\r\tc\u{1b}[31m\u{202e}d"), "a b  c [31m d");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("ééé", 2), "é…");
    }

    fn letter(trigger: Option<&str>, reason: &str) -> DeadLetter {
        DeadLetter {
            namespace: "team-a".into(),
            listener: "github".into(),
            trigger: trigger.map(str::to_owned),
            event_id: None,
            reason: reason.into(),
            kind: FailureKind::Transient,
            attempts: 5,
            failed_at_ms: 1_764_000_000_000,
            event: Bytes::from_static(b"not an event"),
        }
    }

    #[test]
    fn the_table_aligns_columns_and_marks_whole_events() {
        let rows = [
            Row::new(3, &letter(Some("build"), "short")),
            Row::new(12, &letter(None, &"x".repeat(200))),
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ID  FAILED AT             LISTENER       TRIGGER  KIND       ATTEMPTS  EVENT ID  REASON"
        );
        assert_eq!(
            lines[1],
            "3   2025-11-24T16:00:00Z  team-a/github  build    transient  5         -         short"
        );
        assert!(lines[2].starts_with("12  2025-11-24T16:00:00Z  team-a/github  *        "));
        assert!(lines[2].ends_with(&format!("{}…", "x".repeat(79))));
    }

    #[test]
    fn an_undecodable_event_is_shown_as_text_with_the_reason() {
        let details = Details::new(7, &letter(None, "r"), BodyStyle::Value);
        assert!(details.event.is_none());
        assert_eq!(details.payload.as_deref(), Some("not an event"));
        assert_eq!(
            details.event_error.as_deref(),
            Some("the message has no metadata line")
        );
        assert_eq!(describe(&letter(None, "r")), "team-a/github, whole event");
        assert_eq!(
            describe(&letter(Some("build"), "r")),
            "team-a/github, trigger build"
        );
    }
}
