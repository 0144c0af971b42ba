//! The function library: the table the checker resolves calls against, and dispatch.
//!
//! Each function receives its arguments with the receiver (if any) first, so `s.size()` and
//! `size(s)` reach the same code.

mod core;
mod lists;
mod math;
mod strings;
mod tekton;

use super::error::EvalError;
use super::eval::Env;
use super::value::{Value, describe};

/// A resolved function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
    /// Not yet resolved by the checker.
    Unresolved,
    // Standard library.
    Size,
    ToInt,
    ToUint,
    ToDouble,
    ToString,
    ToBytes,
    ToBool,
    TypeOf,
    Dyn,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    // Strings extension.
    CharAt,
    IndexOf,
    LastIndexOf,
    LowerAscii,
    UpperAscii,
    Replace,
    Split,
    Substring,
    Trim,
    Join,
    Reverse,
    Quote,
    // Encoders extension.
    Base64Encode,
    Base64Decode,
    // Math extension.
    Greatest,
    Least,
    Ceil,
    Floor,
    Round,
    Trunc,
    Abs,
    Sign,
    IsNaN,
    IsInf,
    IsFinite,
    // Lists extension.
    Range,
    Slice,
    Flatten,
    Distinct,
    Sort,
    // Tekton.
    Match,
    Canonical,
    Truncate,
    CompareSecret,
    ParseJson,
    ParseYaml,
    ParseUrl,
    MarshalJson,
    First,
    Last,
    Translate,
    DecodeB64,
}

/// How a function may be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `f(x, …)` only.
    Global,
    /// `x.f(…)` only.
    Method,
    /// Either; the global form takes the receiver as its first argument.
    Both,
}

/// One entry of the function table. Arities count arguments without the receiver.
struct Signature {
    name: &'static str,
    func: Func,
    style: Style,
    min: usize,
    max: usize,
}

const VARIADIC: usize = usize::MAX;

const fn sig(name: &'static str, func: Func, style: Style, min: usize, max: usize) -> Signature {
    Signature {
        name,
        func,
        style,
        min,
        max,
    }
}

use Style::{Both, Global, Method};

#[rustfmt::skip]
const SIGNATURES: &[Signature] = &[
    sig("size", Func::Size, Both, 0, 0),
    sig("int", Func::ToInt, Global, 1, 1),
    sig("uint", Func::ToUint, Global, 1, 1),
    sig("double", Func::ToDouble, Global, 1, 1),
    sig("string", Func::ToString, Global, 1, 1),
    sig("bytes", Func::ToBytes, Global, 1, 1),
    sig("bool", Func::ToBool, Global, 1, 1),
    sig("type", Func::TypeOf, Global, 1, 1),
    sig("dyn", Func::Dyn, Global, 1, 1),
    sig("contains", Func::Contains, Method, 1, 1),
    sig("startsWith", Func::StartsWith, Method, 1, 1),
    sig("endsWith", Func::EndsWith, Method, 1, 1),
    sig("matches", Func::Matches, Both, 1, 1),
    sig("charAt", Func::CharAt, Method, 1, 1),
    sig("indexOf", Func::IndexOf, Method, 1, 2),
    sig("lastIndexOf", Func::LastIndexOf, Method, 1, 2),
    sig("lowerAscii", Func::LowerAscii, Method, 0, 0),
    sig("upperAscii", Func::UpperAscii, Method, 0, 0),
    sig("replace", Func::Replace, Method, 2, 3),
    sig("split", Func::Split, Method, 1, 2),
    sig("substring", Func::Substring, Method, 1, 2),
    sig("trim", Func::Trim, Method, 0, 0),
    sig("join", Func::Join, Method, 0, 1),
    sig("reverse", Func::Reverse, Method, 0, 0),
    sig("quote", Func::Quote, Method, 0, 0),
    sig("strings.quote", Func::Quote, Global, 1, 1),
    sig("base64.encode", Func::Base64Encode, Global, 1, 1),
    sig("base64.decode", Func::Base64Decode, Global, 1, 1),
    sig("math.greatest", Func::Greatest, Global, 1, VARIADIC),
    sig("math.least", Func::Least, Global, 1, VARIADIC),
    sig("math.ceil", Func::Ceil, Global, 1, 1),
    sig("math.floor", Func::Floor, Global, 1, 1),
    sig("math.round", Func::Round, Global, 1, 1),
    sig("math.trunc", Func::Trunc, Global, 1, 1),
    sig("math.abs", Func::Abs, Global, 1, 1),
    sig("math.sign", Func::Sign, Global, 1, 1),
    sig("math.isNaN", Func::IsNaN, Global, 1, 1),
    sig("math.isInf", Func::IsInf, Global, 1, 1),
    sig("math.isFinite", Func::IsFinite, Global, 1, 1),
    sig("lists.range", Func::Range, Global, 1, 1),
    sig("slice", Func::Slice, Method, 2, 2),
    sig("flatten", Func::Flatten, Method, 0, 1),
    sig("distinct", Func::Distinct, Method, 0, 0),
    sig("sort", Func::Sort, Method, 0, 0),
    sig("match", Func::Match, Method, 2, 2),
    sig("canonical", Func::Canonical, Method, 1, 1),
    sig("truncate", Func::Truncate, Method, 1, 1),
    sig("compareSecret", Func::CompareSecret, Method, 2, 3),
    sig("parseJSON", Func::ParseJson, Method, 0, 0),
    sig("parseYAML", Func::ParseYaml, Method, 0, 0),
    sig("parseURL", Func::ParseUrl, Method, 0, 0),
    sig("marshalJSON", Func::MarshalJson, Method, 0, 0),
    sig("first", Func::First, Method, 0, 0),
    sig("last", Func::Last, Method, 0, 0),
    sig("translate", Func::Translate, Method, 2, 2),
    sig("decodeb64", Func::DecodeB64, Method, 0, 0),
];

/// The namespaces of extension functions: `math.abs(x)` calls the global `math.abs`.
pub(super) const NAMESPACES: &[&str] = &["base64", "math", "strings", "lists"];

/// Why a call does not resolve.
pub(super) enum ResolveError {
    Unknown,
    /// The name exists, but not called this way (`x.int()`, `contains(a, b)`).
    WrongStyle {
        method: bool,
    },
    Arity {
        expected: String,
        got: usize,
    },
}

/// Finds the function a call names.
pub(super) fn resolve(name: &str, method: bool, argc: usize) -> Result<Func, ResolveError> {
    let mut found = false;
    let mut arity = None;
    for s in SIGNATURES.iter().filter(|s| s.name == name) {
        found = true;
        let style_ok = match s.style {
            Global => !method,
            Method => method,
            Both => true,
        };
        if !style_ok {
            continue;
        }
        // The global form of a `Both` function takes the receiver as an argument.
        let (min, max) = if s.style == Both && !method {
            (s.min + 1, s.max.saturating_add(1))
        } else {
            (s.min, s.max)
        };
        if (min..=max).contains(&argc) {
            return Ok(s.func);
        }
        let expected = if max == VARIADIC {
            format!("at least {min}")
        } else if min == max {
            min.to_string()
        } else {
            format!("{min} to {max}")
        };
        arity = Some(ResolveError::Arity {
            expected,
            got: argc,
        });
    }
    match arity {
        Some(error) => Err(error),
        None if found => Err(ResolveError::WrongStyle { method }),
        None => Err(ResolveError::Unknown),
    }
}

/// A call being evaluated: its name and shape (for error messages) and its arguments,
/// receiver first.
pub(super) struct Call<'a> {
    pub name: &'a str,
    pub method: bool,
    pub args: &'a [Value],
}

impl Call<'_> {
    /// `no such overload: size(int)` or `no such overload: int.truncate(string)`.
    pub(super) fn no_overload(&self) -> EvalError {
        let types = |values: &[Value]| {
            values
                .iter()
                .map(Value::type_name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let message = match (self.method, self.args.split_first()) {
            (true, Some((receiver, rest))) => format!(
                "no such overload: {}.{}({})",
                receiver.type_name(),
                self.name,
                types(rest)
            ),
            _ => format!("no such overload: {}({})", self.name, types(self.args)),
        };
        EvalError::runtime(message)
    }

    /// An error naming the function.
    pub(super) fn error(&self, problem: impl std::fmt::Display) -> EvalError {
        EvalError::runtime(format!("{}: {problem}", self.name))
    }

    fn arg(&self, index: usize) -> Result<&Value, EvalError> {
        self.args.get(index).ok_or_else(|| self.no_overload())
    }

    /// The argument at `index` as a string.
    pub(super) fn str(&self, index: usize) -> Result<&str, EvalError> {
        match self.arg(index)? {
            Value::String(s) => Ok(s),
            _ => Err(self.no_overload()),
        }
    }

    /// The argument at `index` as an int (a uint that fits is accepted).
    pub(super) fn int(&self, index: usize) -> Result<i64, EvalError> {
        match self.arg(index)? {
            Value::Int(i) => Ok(*i),
            Value::Uint(u) => {
                i64::try_from(*u).map_err(|_| self.error(format!("{u} is out of range")))
            }
            _ => Err(self.no_overload()),
        }
    }

    /// The argument at `index` as a list.
    pub(super) fn list(&self, index: usize) -> Result<&[Value], EvalError> {
        match self.arg(index)? {
            Value::List(items) => Ok(items),
            _ => Err(self.no_overload()),
        }
    }

    /// An error for an index or count outside the allowed range.
    pub(super) fn out_of_range(&self, what: &str, value: i64) -> EvalError {
        self.error(format!("{what} {value} is out of range"))
    }
}

/// Calls a resolved function.
pub(super) fn call(func: Func, call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    match func {
        Func::Unresolved => Err(EvalError::runtime(format!(
            "function '{}' was not resolved",
            call.name
        ))),
        Func::Size => core::size(call, env),
        Func::ToInt => core::to_int(call),
        Func::ToUint => core::to_uint(call),
        Func::ToDouble => core::to_double(call),
        Func::ToString => core::to_string(call, env),
        Func::ToBytes => core::to_bytes(call),
        Func::ToBool => core::to_bool(call),
        Func::TypeOf => Ok(Value::Type(call.arg(0)?.type_of())),
        Func::Dyn => Ok(call.arg(0)?.clone()),
        Func::Contains => core::contains(call, env),
        Func::StartsWith => core::starts_with(call, env),
        Func::EndsWith => core::ends_with(call, env),
        Func::Matches => core::matches(call, env),
        Func::CharAt => strings::char_at(call, env),
        Func::IndexOf => strings::index_of(call, env, false),
        Func::LastIndexOf => strings::index_of(call, env, true),
        Func::LowerAscii => strings::map_ascii(call, env, false),
        Func::UpperAscii => strings::map_ascii(call, env, true),
        Func::Replace => strings::replace(call, env),
        Func::Split => strings::split(call, env),
        Func::Substring => strings::substring(call, env),
        Func::Trim => strings::trim(call, env),
        Func::Join => strings::join(call, env),
        Func::Reverse => match call.arg(0)? {
            Value::List(_) => lists::reverse(call, env),
            _ => strings::reverse(call, env),
        },
        Func::Quote => strings::quote(call, env),
        Func::Base64Encode => strings::base64_encode(call, env),
        Func::Base64Decode => strings::base64_decode(call, env),
        Func::Greatest => math::extreme(call, env, true),
        Func::Least => math::extreme(call, env, false),
        Func::Ceil => math::rounding(call, f64::ceil),
        Func::Floor => math::rounding(call, f64::floor),
        Func::Round => math::rounding(call, f64::round),
        Func::Trunc => math::rounding(call, f64::trunc),
        Func::Abs => math::abs(call),
        Func::Sign => math::sign(call),
        Func::IsNaN => math::classify(call, f64::is_nan),
        Func::IsInf => math::classify(call, f64::is_infinite),
        Func::IsFinite => math::classify(call, f64::is_finite),
        Func::Range => lists::range(call, env),
        Func::Slice => lists::slice(call, env),
        Func::Flatten => lists::flatten(call, env),
        Func::Distinct => lists::distinct(call, env),
        Func::Sort => lists::sort(call, env),
        Func::Match => tekton::header_match(call),
        Func::Canonical => tekton::canonical(call),
        Func::Truncate => tekton::truncate(call, env),
        Func::CompareSecret => tekton::compare_secret(call, env),
        Func::ParseJson => tekton::parse_json(call, env),
        Func::ParseYaml => tekton::parse_yaml(call, env),
        Func::ParseUrl => tekton::parse_url(call, env),
        Func::MarshalJson => tekton::marshal_json(call, env),
        Func::First => lists::first_or_last(call, true),
        Func::Last => lists::first_or_last(call, false),
        Func::Translate => tekton::translate(call, env),
        Func::DecodeB64 => tekton::decode_b64(call, env),
    }
}

/// An error for a value that cannot be converted.
pub(super) fn conversion_error(value: &Value, target: &str) -> EvalError {
    EvalError::runtime(format!("cannot convert {} to {target}", describe(value)))
}
