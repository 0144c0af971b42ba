//! CEL values, their types, JSON conversion, and how values compare and order.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::error::EvalError;
use super::time::{Duration, Timestamp};

/// A CEL value. Containers share their contents (`Arc`), so cloning is cheap.
///
/// The derived `PartialEq` is structural (`Int(1) != Double(1.0)`); CEL's own `==` compares
/// numbers across types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true`, `false`.
    Bool(bool),
    /// A signed 64-bit integer (`1`, `-2`, `0x1F`).
    Int(i64),
    /// An unsigned 64-bit integer (`1u`).
    Uint(u64),
    /// A 64-bit float (`1.5`, `1e3`).
    Double(f64),
    /// A UTF-8 string.
    String(Arc<str>),
    /// A byte string (`b'…'`).
    Bytes(Arc<[u8]>),
    /// A list of values of any types.
    List(Arc<[Value]>),
    /// A map, ordered by key.
    Map(Arc<BTreeMap<MapKey, Value>>),
    /// A type, as `type(x)` returns and `int`, `string`, … name.
    Type(Type),
    /// A point in time (`timestamp('2009-02-13T23:31:30Z')`).
    Timestamp(Timestamp),
    /// A span of time (`duration('1h30m')`).
    Duration(Duration),
}

/// A map key: CEL maps are keyed by bool, int, uint or string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MapKey {
    /// A bool key.
    Bool(bool),
    /// An int key; looked up by any number of equal value.
    Int(i64),
    /// A uint key; looked up by any number of equal value.
    Uint(u64),
    /// A string key, as JSON objects have.
    String(Arc<str>),
}

/// The runtime types of [`Value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// `null_type`.
    Null,
    /// `bool`.
    Bool,
    /// `int`.
    Int,
    /// `uint`.
    Uint,
    /// `double`.
    Double,
    /// `string`.
    String,
    /// `bytes`.
    Bytes,
    /// `list`.
    List,
    /// `map`.
    Map,
    /// `type`, the type of types.
    Type,
    /// `google.protobuf.Timestamp`.
    Timestamp,
    /// `google.protobuf.Duration`.
    Duration,
}

impl Type {
    /// The type's CEL name: `int`, `string`, `null_type`, …
    pub fn name(self) -> &'static str {
        match self {
            Self::Null => "null_type",
            Self::Bool => "bool",
            Self::Int => "int",
            Self::Uint => "uint",
            Self::Double => "double",
            Self::String => "string",
            Self::Bytes => "bytes",
            Self::List => "list",
            Self::Map => "map",
            Self::Type => "type",
            Self::Timestamp => "google.protobuf.Timestamp",
            Self::Duration => "google.protobuf.Duration",
        }
    }

    /// The type a bare identifier names, if it names one.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "null_type" => Self::Null,
            "bool" => Self::Bool,
            "int" => Self::Int,
            "uint" => Self::Uint,
            "double" => Self::Double,
            "string" => Self::String,
            "bytes" => Self::Bytes,
            "list" => Self::List,
            "map" => Self::Map,
            "type" => Self::Type,
            "google.protobuf.Timestamp" => Self::Timestamp,
            "google.protobuf.Duration" => Self::Duration,
            _ => return None,
        })
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for MapKey {
    /// Keys as they read in an error message: strings quoted, others bare.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Uint(u) => write!(f, "{u}u"),
            Self::String(s) => write!(f, "'{s}'"),
        }
    }
}

impl MapKey {
    /// The key as a value.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(i) => Value::Int(*i),
            Self::Uint(u) => Value::Uint(*u),
            Self::String(s) => Value::String(s.clone()),
        }
    }

    /// The key a value makes, if it can be one.
    pub fn from_value(value: &Value) -> Option<Self> {
        Some(match value {
            Value::Bool(b) => Self::Bool(*b),
            Value::Int(i) => Self::Int(*i),
            Value::Uint(u) => Self::Uint(*u),
            Value::String(s) => Self::String(s.clone()),
            _ => return None,
        })
    }

    /// The key as a JSON object member name.
    fn json_name(&self) -> String {
        match self {
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            Self::Uint(u) => u.to_string(),
            Self::String(s) => s.to_string(),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::String(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::String(s.into())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Self::List(items.into())
    }
}

impl From<BTreeMap<MapKey, Value>> for Value {
    fn from(map: BTreeMap<MapKey, Value>) -> Self {
        Self::Map(Arc::new(map))
    }
}

/// 2^53: doubles below this in magnitude with no fraction are written as JSON integers.
const EXACT_DOUBLE_INT: f64 = 9_007_199_254_740_992.0;

impl Value {
    /// The value's runtime type.
    pub fn type_of(&self) -> Type {
        match self {
            Self::Null => Type::Null,
            Self::Bool(_) => Type::Bool,
            Self::Int(_) => Type::Int,
            Self::Uint(_) => Type::Uint,
            Self::Double(_) => Type::Double,
            Self::String(_) => Type::String,
            Self::Bytes(_) => Type::Bytes,
            Self::List(_) => Type::List,
            Self::Map(_) => Type::Map,
            Self::Type(_) => Type::Type,
            Self::Timestamp(_) => Type::Timestamp,
            Self::Duration(_) => Type::Duration,
        }
    }

    /// The name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        self.type_of().name()
    }

    /// A JSON value as CEL sees it: integers that fit `i64` become `Int`, larger positive
    /// ones `Uint`, every other number `Double`. (Tekton reads every number as a double,
    /// which rounds integers above 2^53; these stay exact.)
    pub fn from_json(json: &serde_json::Value) -> Self {
        match json {
            serde_json::Value::Null => Self::Null,
            serde_json::Value::Bool(b) => Self::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Self::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Self::Uint(u)
                } else {
                    Self::Double(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Self::String(s.as_str().into()),
            serde_json::Value::Array(items) => {
                Self::List(items.iter().map(Self::from_json).collect())
            }
            serde_json::Value::Object(members) => Self::Map(Arc::new(
                members
                    .iter()
                    .map(|(k, v)| (MapKey::String(k.as_str().into()), Self::from_json(v)))
                    .collect(),
            )),
        }
    }

    /// The value as JSON, as protobuf's JSON mapping writes it: ints exactly, bytes as
    /// base64, map keys as strings, a type as its name. A double with no fraction below
    /// 2^53 is written as an integer, as Go's JSON encoder writes it. NaN and infinities
    /// have no JSON form and are an error.
    pub fn to_json(&self) -> Result<serde_json::Value, EvalError> {
        Ok(match self {
            Self::Null => serde_json::Value::Null,
            Self::Bool(b) => serde_json::Value::Bool(*b),
            Self::Int(i) => serde_json::Value::from(*i),
            Self::Uint(u) => serde_json::Value::from(*u),
            Self::Double(d) => {
                if !d.is_finite() {
                    return Err(EvalError::runtime(format!(
                        "cannot convert {d} to JSON: JSON has no NaN or infinity"
                    )));
                }
                if d.fract() == 0.0 && d.abs() < EXACT_DOUBLE_INT {
                    // Exact: the value is an integer below 2^53.
                    #[allow(clippy::cast_possible_truncation)]
                    serde_json::Value::from(*d as i64)
                } else {
                    serde_json::Number::from_f64(*d)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null)
                }
            }
            Self::String(s) => serde_json::Value::String(s.to_string()),
            Self::Bytes(b) => serde_json::Value::String(STANDARD.encode(b)),
            Self::List(items) => {
                serde_json::Value::Array(items.iter().map(Self::to_json).collect::<Result<_, _>>()?)
            }
            Self::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.json_name(), v.to_json()?)))
                    .collect::<Result<_, EvalError>>()?,
            ),
            Self::Type(t) => serde_json::Value::String(t.name().into()),
            Self::Timestamp(t) => serde_json::Value::String(t.to_rfc3339()),
            Self::Duration(d) => serde_json::Value::String(d.to_cel_string()),
        })
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the value is a number (int, uint or double).
    pub(crate) fn is_number(&self) -> bool {
        matches!(self, Self::Int(_) | Self::Uint(_) | Self::Double(_))
    }
}

/// How two values order.
pub(crate) enum Order {
    /// They order as given.
    Is(Ordering),
    /// Both are numbers, but one is NaN: every comparison is false.
    Unordered,
    /// Their types cannot be compared.
    Incomparable,
}

/// Orders numbers (across types), strings, bytes and bools.
pub(crate) fn order(a: &Value, b: &Value) -> Order {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Order::Is(x.cmp(y)),
        (Value::Bytes(x), Value::Bytes(y)) => Order::Is(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Order::Is(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) => Order::Is(x.cmp(y)),
        (Value::Duration(x), Value::Duration(y)) => Order::Is(x.cmp(y)),
        (x, y) if x.is_number() && y.is_number() => {
            compare_numbers(x, y).map_or(Order::Unordered, Order::Is)
        }
        _ => Order::Incomparable,
    }
}

/// A number as a double (rounding large integers).
#[allow(clippy::cast_precision_loss)]
pub(crate) fn as_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Int(i) => Some(*i as f64),
        Value::Uint(u) => Some(*u as f64),
        Value::Double(d) => Some(*d),
        _ => None,
    }
}

/// Orders two numbers of any numeric types as cel-go does: ints and uints exactly, a
/// double against an int or uint in double precision once the double is known to be
/// within their range. `None` when either is NaN or either is not a number.
pub(crate) fn compare_numbers(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Uint(x), Value::Uint(y)) => Some(x.cmp(y)),
        (Value::Double(x), Value::Double(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Uint(y)) => Some(cmp_int_uint(*x, *y)),
        (Value::Uint(x), Value::Int(y)) => Some(cmp_int_uint(*y, *x).reverse()),
        (Value::Int(x), Value::Double(y)) => cmp_double_int(*y, *x).map(Ordering::reverse),
        (Value::Double(x), Value::Int(y)) => cmp_double_int(*x, *y),
        (Value::Uint(x), Value::Double(y)) => cmp_double_uint(*y, *x).map(Ordering::reverse),
        (Value::Double(x), Value::Uint(y)) => cmp_double_uint(*x, *y),
        _ => None,
    }
}

fn cmp_int_uint(x: i64, y: u64) -> Ordering {
    u64::try_from(x).map_or(Ordering::Less, |x| x.cmp(&y))
}

/// 2^63 as a double.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

#[allow(clippy::cast_precision_loss)]
fn cmp_double_int(x: f64, y: i64) -> Option<Ordering> {
    if x.is_nan() {
        return None;
    }
    if x < -TWO_63 {
        return Some(Ordering::Less);
    }
    if x > TWO_63 {
        return Some(Ordering::Greater);
    }
    x.partial_cmp(&(y as f64))
}

#[allow(clippy::cast_precision_loss)]
fn cmp_double_uint(x: f64, y: u64) -> Option<Ordering> {
    if x.is_nan() {
        return None;
    }
    if x < 0.0 {
        return Some(Ordering::Less);
    }
    if x > 2.0 * TWO_63 {
        return Some(Ordering::Greater);
    }
    x.partial_cmp(&(y as f64))
}

/// Looks a value up as a map key, matching numeric keys across int, uint and double.
pub(crate) fn map_lookup<'m>(map: &'m BTreeMap<MapKey, Value>, key: &Value) -> Option<&'m Value> {
    match key {
        Value::Bool(_) | Value::String(_) => map.get(&MapKey::from_value(key)?),
        Value::Int(i) => map
            .get(&MapKey::Int(*i))
            .or_else(|| map.get(&MapKey::Uint(u64::try_from(*i).ok()?))),
        Value::Uint(u) => map
            .get(&MapKey::Uint(*u))
            .or_else(|| map.get(&MapKey::Int(i64::try_from(*u).ok()?))),
        Value::Double(d) => {
            if d.fract() != 0.0 || !d.is_finite() {
                return None;
            }
            if *d >= 0.0 && *d < 2.0 * TWO_63 {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let u = *d as u64;
                map_lookup(map, &Value::Uint(u))
            } else if *d < 0.0 && *d >= -TWO_63 {
                #[allow(clippy::cast_possible_truncation)]
                let i = *d as i64;
                map_lookup(map, &Value::Int(i))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Describes a value briefly for an error message, without dumping large content.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Uint(u) => format!("{u}u"),
        Value::Double(d) => d.to_string(),
        Value::String(s) if s.chars().count() <= 40 => format!("'{s}'"),
        Value::String(_) => "string".into(),
        other => other.type_name().into(),
    }
}
