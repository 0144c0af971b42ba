//! The open-loop schedule: request `i` is due at `start + i / rate`, whatever happened to the
//! requests before it.
//!
//! Latency is measured from that intended time, not from when a connection was free to send,
//! so when the server falls behind and every connection is busy, the wait shows up in the
//! latency instead of silently lowering the offered rate (no coordinated omission).
//! The first `warmup × rate` requests are sent but not recorded.

use std::time::Duration;

use anyhow::bail;

/// When each request of a run is due.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
    warmup: u64,
    total: u64,
}

impl Schedule {
    /// `rate` requests per second for `warmup` (not recorded) and then `duration`.
    pub fn new(rate: f64, warmup: Duration, duration: Duration) -> anyhow::Result<Schedule> {
        if !rate.is_finite() || rate <= 0.0 {
            bail!("the rate must be a positive number of requests per second, not {rate}");
        }
        if duration.is_zero() {
            bail!("the duration must be longer than zero");
        }
        let count = |span: Duration| (rate * span.as_secs_f64()).round() as u64;
        let warmup = count(warmup);
        let total = warmup + count(duration).max(1);
        Ok(Schedule {
            rate,
            warmup,
            total,
        })
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// When request `index` is due, after the start.
    pub fn offset(&self, index: u64) -> Duration {
        Duration::from_secs_f64(index as f64 / self.rate)
    }

    /// Requests in the whole run, warm-up included.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Requests that are recorded.
    pub fn measured_count(&self) -> u64 {
        self.total - self.warmup
    }

    pub fn is_measured(&self, index: u64) -> bool {
        index >= self.warmup
    }

    /// When recording starts, after the start.
    pub fn measure_start(&self) -> Duration {
        self.offset(self.warmup)
    }

    /// How long the recorded part is meant to last.
    pub fn measured_span(&self) -> Duration {
        Duration::from_secs_f64(self.measured_count() as f64 / self.rate)
    }

    /// When the last request is due, after the start.
    pub fn end(&self) -> Duration {
        self.offset(self.total)
    }
}

/// clap's parser for durations: `30` (seconds), `500ms`, `30s`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|error| format!("`{text}`: {error}"));
    }
    sluice_triggers::duration::parse_duration(text)
}

/// clap's parser for rates: a positive number of requests per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        Ok(_) => Err("must be a positive number of requests per second".to_owned()),
        Err(error) => Err(format!("`{text}`: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_due_at_start_plus_index_over_rate() {
        let schedule =
            Schedule::new(1000.0, Duration::from_secs(2), Duration::from_secs(10)).unwrap();
        assert_eq!(schedule.offset(0), Duration::ZERO);
        assert_eq!(schedule.offset(1), Duration::from_millis(1));
        assert_eq!(schedule.offset(1000), Duration::from_secs(1));
        assert_eq!(schedule.total(), 12_000);
        assert_eq!(schedule.measured_count(), 10_000);
        assert!(!schedule.is_measured(1_999));
        assert!(schedule.is_measured(2_000));
        assert_eq!(schedule.measure_start(), Duration::from_secs(2));
        assert_eq!(schedule.measured_span(), Duration::from_secs(10));
        assert_eq!(schedule.end(), Duration::from_secs(12));
    }

    #[test]
    fn fractional_rates_keep_their_spacing() {
        let schedule = Schedule::new(3.0, Duration::ZERO, Duration::from_secs(1)).unwrap();
        assert_eq!(schedule.total(), 3);
        let third = schedule.offset(1).as_nanos();
        assert!((333_333_332..=333_333_334).contains(&third), "{third}");
        let high = Schedule::new(15_000.0, Duration::ZERO, Duration::from_secs(60)).unwrap();
        assert_eq!(high.total(), 900_000);
        assert_eq!(high.offset(899_999 + 1), Duration::from_secs(60));
    }

    #[test]
    fn nonsense_is_refused() {
        assert!(Schedule::new(0.0, Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(Schedule::new(f64::NAN, Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(Schedule::new(10.0, Duration::ZERO, Duration::ZERO).is_err());
        assert!(parse_rate("-3").is_err());
        assert_eq!(parse_rate("2500"), Ok(2500.0));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("ten").is_err());
    }
}
