//! What an evaluation carries and the functions need: the cost meter and deadline, bounds
//! on the size of built values, the regex cache, the secrets, and CEL equality.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;

use super::activation::Limits;
use super::error::{EvalError, EvalErrorKind};
use super::secret::SecretSource;
use super::value::{Value, compare_numbers, map_lookup};

/// The largest string or bytes value an expression may build.
pub(crate) const MAX_STRING_BYTES: usize = 16 << 20;
/// The most elements a list or map an expression builds may hold (16 MiB at 16 bytes each).
pub(crate) const MAX_ELEMENTS: usize = 1 << 20;
/// String work is charged one cost unit per this many bytes.
const BYTES_PER_UNIT: usize = 16;
/// How many charges pass between two looks at the clock.
const CLOCK_EVERY: u32 = 256;
/// The most compiled regular expressions one evaluation keeps.
const MAX_CACHED_REGEXES: usize = 32;
/// The largest compiled regular expression accepted.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Counts cost and watches the clock.
struct Meter {
    cost: u64,
    max_cost: u64,
    started: Instant,
    max_time: Duration,
    ticks: u32,
}

impl Meter {
    fn new(limits: Limits) -> Self {
        Self {
            cost: 0,
            max_cost: limits.max_cost,
            started: Instant::now(),
            max_time: limits.max_time,
            ticks: 0,
        }
    }

    /// Adds `units` of cost; fails once the total passes the limit or time is up.
    fn charge(&mut self, units: u64) -> Result<(), EvalError> {
        self.cost = self.cost.saturating_add(units);
        if self.cost > self.max_cost {
            return Err(EvalError {
                kind: EvalErrorKind::CostExceeded,
                message: format!("cost limit {} exceeded", self.max_cost),
            });
        }
        self.ticks += 1;
        if self.ticks >= CLOCK_EVERY || units > 1024 {
            self.ticks = 0;
            self.check_clock()?;
        }
        Ok(())
    }

    fn check_clock(&self) -> Result<(), EvalError> {
        if self.started.elapsed() > self.max_time {
            return Err(EvalError {
                kind: EvalErrorKind::Timeout,
                message: format!("time limit of {} ms exceeded", self.max_time.as_millis()),
            });
        }
        Ok(())
    }
}

/// What functions need from the evaluation: the meter, the secrets, a regex cache.
pub(crate) struct Env<'a> {
    meter: Meter,
    pub(crate) secrets: &'a dyn SecretSource,
    regexes: HashMap<String, Arc<Regex>>,
}

impl<'a> Env<'a> {
    /// A fresh environment for one evaluation within `limits`.
    pub(crate) fn new(limits: Limits, secrets: &'a dyn SecretSource) -> Self {
        Self {
            meter: Meter::new(limits),
            secrets,
            regexes: HashMap::new(),
        }
    }

    /// Charges `units` of cost.
    pub(crate) fn charge(&mut self, units: usize) -> Result<(), EvalError> {
        self.meter.charge(u64::try_from(units).unwrap_or(u64::MAX))
    }

    /// Charges for work over `bytes` bytes of string data.
    pub(crate) fn charge_bytes(&mut self, bytes: usize) -> Result<(), EvalError> {
        self.charge(1 + bytes / BYTES_PER_UNIT)
    }

    /// Fails if a string of `len` bytes would be too large to build.
    pub(crate) fn check_string_len(&self, len: usize) -> Result<(), EvalError> {
        if len > MAX_STRING_BYTES {
            return Err(EvalError::runtime(format!(
                "string of {len} bytes exceeds the limit of {MAX_STRING_BYTES} bytes"
            )));
        }
        Ok(())
    }

    /// Fails if a list or map of `len` elements would be too large to build.
    pub(crate) fn check_elements(&self, len: usize) -> Result<(), EvalError> {
        if len > MAX_ELEMENTS {
            return Err(EvalError::runtime(format!(
                "list or map of {len} elements exceeds the limit of {MAX_ELEMENTS} elements"
            )));
        }
        Ok(())
    }

    /// Compiles (or reuses) a regular expression, charging for its size.
    pub(crate) fn regex(&mut self, pattern: &str) -> Result<Arc<Regex>, EvalError> {
        if let Some(re) = self.regexes.get(pattern) {
            return Ok(re.clone());
        }
        self.charge_bytes(pattern.len().saturating_mul(BYTES_PER_UNIT))?;
        let re = regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| EvalError::runtime(format!("invalid regular expression: {e}")))?;
        let re = Arc::new(re);
        if self.regexes.len() < MAX_CACHED_REGEXES {
            self.regexes.insert(pattern.to_owned(), re.clone());
        }
        Ok(re)
    }

    /// CEL equality: numbers compare across types, containers element-wise; values of
    /// different types are unequal. Charged per element compared.
    pub(crate) fn equals(&mut self, a: &Value, b: &Value) -> Result<bool, EvalError> {
        self.charge(1)?;
        Ok(match (a, b) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::String(x), Value::String(y)) => {
                self.charge_bytes(x.len().min(y.len()))?;
                x == y
            }
            (Value::Bytes(x), Value::Bytes(y)) => {
                self.charge_bytes(x.len().min(y.len()))?;
                x == y
            }
            (Value::List(x), Value::List(y)) => {
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    if !self.equals(p, q)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Value::Map(x), Value::Map(y)) => {
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (key, p) in x.iter() {
                    match map_lookup(y, &key.to_value()) {
                        Some(q) if self.equals(p, q)? => {}
                        _ => return Ok(false),
                    }
                }
                true
            }
            (Value::Type(x), Value::Type(y)) => x == y,
            (Value::Timestamp(x), Value::Timestamp(y)) => x == y,
            (Value::Duration(x), Value::Duration(y)) => x == y,
            (x, y) if x.is_number() && y.is_number() => {
                compare_numbers(x, y) == Some(Ordering::Equal)
            }
            _ => false,
        })
    }
}
