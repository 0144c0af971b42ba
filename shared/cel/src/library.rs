//! The function library: what each resolved function does, and the dispatch from a
//! resolved [`Func`] to its code.
//!
//! Each function receives its arguments with the receiver (if any) first, so `s.size()` and
//! `size(s)` reach the same code. The standard library and the cel-go extensions Tekton
//! enables live in `core`, `strings` (with the encoders), `math` and `lists`; Tekton's own
//! functions live in `tekton`.

mod call;

// The standard library and cel-go's extensions.
mod core;
mod lists;
mod math;
mod strings;

// Tekton Triggers' own functions.
mod tekton;

pub(crate) use call::Call;

use crate::env::Env;
use crate::error::EvalError;
use crate::func::Func;
use crate::value::Value;

/// Calls a resolved function.
pub(crate) fn call(func: Func, call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
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
        Func::First => tekton::first_or_last(call, true),
        Func::Last => tekton::first_or_last(call, false),
        Func::Translate => tekton::translate(call, env),
        Func::DecodeB64 => tekton::decode_b64(call, env),
    }
}
