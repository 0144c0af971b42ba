//! The function library: what each resolved function does, and dispatch.
//!
//! Each function receives its arguments with the receiver (if any) first, so `s.size()` and
//! `size(s)` reach the same code.

mod core;
mod lists;
mod math;
mod strings;
mod tekton;

use super::env::Env;
use super::error::EvalError;
use super::func::Func;
use super::value::{Value, describe};

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
