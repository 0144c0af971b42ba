//! Timestamps and durations in the standard library: `timestamp()`, `duration()` and the
//! getters (`getFullYear`, …, `getMilliseconds`), in the timestamp's own offset or in a
//! time zone given by name (`'Europe/Paris'`) or offset (`'+05:30'`).

use crate::env::Env;
use crate::error::EvalError;
use crate::time::{Civil, Duration, Timestamp, zone_offset};
use crate::value::Value;

use super::call::Call;

/// The cost of looking a time zone up in the bundled database and reading its rules.
const ZONE_LOOKUP_COST: usize = 64;

/// `timestamp(x)`: from RFC 3339 text or from seconds since the epoch.
pub(super) fn to_timestamp(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    match call.arg(0)? {
        t @ Value::Timestamp(_) => Ok(t.clone()),
        Value::String(s) => {
            env.charge_bytes(s.len())?;
            Timestamp::parse(s)
                .map(Value::Timestamp)
                .map_err(|e| call.error(e))
        }
        Value::Int(seconds) => Timestamp::from_unix(*seconds, 0)
            .map(Value::Timestamp)
            .ok_or_else(|| call.error("timestamp out of range")),
        _ => Err(call.no_overload()),
    }
}

/// `duration(x)`: from Go's duration text (`1h30m`).
pub(super) fn to_duration(call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    match call.arg(0)? {
        d @ Value::Duration(_) => Ok(d.clone()),
        Value::String(s) => {
            env.charge_bytes(s.len())?;
            Duration::parse(s)
                .map(Value::Duration)
                .map_err(|e| call.error(e))
        }
        _ => Err(call.no_overload()),
    }
}

/// What a getter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    FullYear,
    /// 0 to 11.
    Month,
    /// 0 to 365.
    DayOfYear,
    /// 0 to 30.
    DayOfMonth,
    /// 1 to 31.
    Date,
    /// 0 (Sunday) to 6.
    DayOfWeek,
    Hours,
    Minutes,
    Seconds,
    Milliseconds,
}

/// `t.getX([zone])` and `d.getX()`.
pub(super) fn get(call: &Call<'_>, env: &mut Env<'_>, part: Part) -> Result<Value, EvalError> {
    env.charge(1)?;
    match call.arg(0)? {
        Value::Timestamp(t) => {
            let civil = match call.args.get(1) {
                None => t.own_civil(),
                Some(Value::String(zone)) => {
                    env.charge(ZONE_LOOKUP_COST)?;
                    let offset = zone_offset(zone, *t).map_err(|e| call.error(e))?;
                    t.civil(offset)
                }
                Some(_) => return Err(call.no_overload()),
            };
            Ok(Value::Int(civil_part(&civil, part)))
        }
        Value::Duration(d) if call.args.len() == 1 => {
            let nanos = d.as_nanos();
            let value = match part {
                Part::Hours => nanos / 3_600_000_000_000,
                Part::Minutes => nanos / 60_000_000_000,
                Part::Seconds => nanos / 1_000_000_000,
                Part::Milliseconds => nanos / 1_000_000,
                _ => return Err(call.no_overload()),
            };
            Ok(Value::Int(value))
        }
        _ => Err(call.no_overload()),
    }
}

fn civil_part(c: &Civil, part: Part) -> i64 {
    match part {
        Part::FullYear => c.year,
        Part::Month => c.month - 1,
        Part::DayOfYear => c.day_of_year,
        Part::DayOfMonth => c.day - 1,
        Part::Date => c.day,
        Part::DayOfWeek => c.weekday,
        Part::Hours => c.hour,
        Part::Minutes => c.minute,
        Part::Seconds => c.second,
        Part::Milliseconds => c.nanos / 1_000_000,
    }
}
