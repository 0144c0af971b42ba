//! The function library: what each resolved function does, and the dispatch from a
//! resolved [`Func`] to its code.
//!
//! Each function receives its arguments with the receiver (if any) first, so `s.size()` and
//! `size(s)` reach the same code. The standard library and the cel-go extensions Tekton
//! enables live in `core`, `time`, `strings` (with the encoders) and `format`, `math`,
//! `sets` and `lists`; Tekton's own functions live in `tekton`.

mod call;

// The standard library and cel-go's extensions.
mod core;
mod format;
mod lists;
mod math;
mod sets;
mod strings;
mod time;

// Tekton Triggers' own functions.
mod tekton;

pub(crate) use call::Call;
pub(crate) use format::parse_clause as parse_format_clause;
pub(crate) use lists::sort_order;

use crate::env::Env;
use crate::error::EvalError;
use crate::func::Func;
use crate::value::Value;

use math::Bits;
use time::Part;

/// Calls a resolved function.
pub(crate) fn call(func: Func, call: &Call<'_>, env: &mut Env<'_>) -> Result<Value, EvalError> {
    match func {
        Func::Unresolved => Err(call.no_overload()),
        Func::Size => core::size(call, env),
        Func::ToInt => core::to_int(call),
        Func::ToUint => core::to_uint(call),
        Func::ToDouble => core::to_double(call),
        Func::ToString => core::to_string(call, env),
        Func::ToBytes => core::to_bytes(call),
        Func::ToBool => core::to_bool(call),
        Func::ToTimestamp => time::to_timestamp(call, env),
        Func::ToDuration => time::to_duration(call, env),
        Func::TypeOf => Ok(Value::Type(call.arg(0)?.type_of())),
        Func::Dyn => Ok(call.arg(0)?.clone()),
        Func::Contains => core::contains(call, env),
        Func::StartsWith => core::starts_with(call, env),
        Func::EndsWith => core::ends_with(call, env),
        Func::Matches => core::matches(call, env),
        Func::GetFullYear => time::get(call, env, Part::FullYear),
        Func::GetMonth => time::get(call, env, Part::Month),
        Func::GetDayOfYear => time::get(call, env, Part::DayOfYear),
        Func::GetDayOfMonth => time::get(call, env, Part::DayOfMonth),
        Func::GetDate => time::get(call, env, Part::Date),
        Func::GetDayOfWeek => time::get(call, env, Part::DayOfWeek),
        Func::GetHours => time::get(call, env, Part::Hours),
        Func::GetMinutes => time::get(call, env, Part::Minutes),
        Func::GetSeconds => time::get(call, env, Part::Seconds),
        Func::GetMilliseconds => time::get(call, env, Part::Milliseconds),
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
        Func::Format => format::format(call, env),
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
        Func::Sqrt => math::sqrt(call),
        Func::BitAnd => math::bits(call, Bits::And),
        Func::BitOr => math::bits(call, Bits::Or),
        Func::BitXor => math::bits(call, Bits::Xor),
        Func::BitNot => math::bits(call, Bits::Not),
        Func::BitShiftLeft => math::bits(call, Bits::ShiftLeft),
        Func::BitShiftRight => math::bits(call, Bits::ShiftRight),
        Func::SetsContains => sets::contains(call, env),
        Func::SetsEquivalent => sets::equivalent(call, env),
        Func::SetsIntersects => sets::intersects(call, env),
        Func::Range => lists::range(call, env),
        Func::Slice => lists::slice(call, env),
        Func::Flatten => lists::flatten(call, env),
        Func::Distinct => lists::distinct(call, env),
        Func::Sort => lists::sort(call, env),
        Func::Match => tekton::header_match(call, env),
        Func::Canonical => tekton::canonical(call, env),
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
