//! The functions a call may name, and their declarations: each function's overloads with
//! their parameter and result types, as Tekton's CEL environment declares them (cel-go's
//! standard library, its strings, encoders, sets, lists and math extensions, and Tekton's
//! own functions). The checker resolves calls against these; what each function does lives
//! in the library.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::types::{CelType, Var, params_in};

/// A resolved function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    /// Not resolved: an operator (evaluated by the tree walk), or, in an unchecked program,
    /// a call no declaration matches (an error when evaluated).
    Unresolved,
    // Standard library.
    Size,
    ToInt,
    ToUint,
    ToDouble,
    ToString,
    ToBytes,
    ToBool,
    ToTimestamp,
    ToDuration,
    TypeOf,
    Dyn,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    GetFullYear,
    GetMonth,
    GetDayOfYear,
    GetDayOfMonth,
    GetDate,
    GetDayOfWeek,
    GetHours,
    GetMinutes,
    GetSeconds,
    GetMilliseconds,
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
    Format,
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
    Sqrt,
    BitAnd,
    BitOr,
    BitXor,
    BitNot,
    BitShiftLeft,
    BitShiftRight,
    // Sets extension.
    SetsContains,
    SetsEquivalent,
    SetsIntersects,
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

/// One overload: called as a method (`x.f(…)`, the receiver first in `params`) or not.
#[derive(Debug)]
pub(crate) struct Overload {
    pub member: bool,
    pub params: Vec<CelType>,
    pub result: CelType,
    /// The type parameters `params` and `result` name.
    pub type_params: Vec<Var>,
}

/// A function and its overloads.
#[derive(Debug)]
pub(crate) struct FunctionDecl {
    pub func: Func,
    pub overloads: Vec<Overload>,
}

/// The comparable types: what `<` and `sort` accept.
const COMPARABLE: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "duration",
    "timestamp",
    "string",
    "bytes",
];

/// Declarations in a compact notation: `(int, string) -> bool` for a global overload,
/// `string.(int) -> string` for a method on a string.
#[rustfmt::skip]
const DECLARATIONS: &[(&str, Func, &[&str])] = &[
    // Operators, evaluated by the tree walk; declared for the checker.
    ("_?_:_", Func::Unresolved, &["(bool, A, A) -> A"]),
    ("!_", Func::Unresolved, &["(bool) -> bool"]),
    ("-_", Func::Unresolved, &["(int) -> int", "(double) -> double"]),
    ("_==_", Func::Unresolved, &["(A, A) -> bool"]),
    ("_!=_", Func::Unresolved, &["(A, A) -> bool"]),
    ("_+_", Func::Unresolved, &[
        "(bytes, bytes) -> bytes", "(double, double) -> double",
        "(duration, duration) -> duration", "(duration, timestamp) -> timestamp",
        "(timestamp, duration) -> timestamp", "(int, int) -> int",
        "(list(A), list(A)) -> list(A)", "(string, string) -> string", "(uint, uint) -> uint",
    ]),
    ("_-_", Func::Unresolved, &[
        "(double, double) -> double", "(duration, duration) -> duration", "(int, int) -> int",
        "(timestamp, duration) -> timestamp", "(timestamp, timestamp) -> duration",
        "(uint, uint) -> uint",
    ]),
    ("_*_", Func::Unresolved, &["(double, double) -> double", "(int, int) -> int", "(uint, uint) -> uint"]),
    ("_/_", Func::Unresolved, &["(double, double) -> double", "(int, int) -> int", "(uint, uint) -> uint"]),
    ("_%_", Func::Unresolved, &["(int, int) -> int", "(uint, uint) -> uint"]),
    ("_[_]", Func::Unresolved, &["(list(A), int) -> A", "(map(A, B), A) -> B"]),
    ("@in", Func::Unresolved, &["(A, list(A)) -> bool", "(A, map(A, B)) -> bool"]),
    // Standard library.
    ("size", Func::Size, &[
        "(bytes) -> int", "bytes.() -> int", "(list(A)) -> int", "list(A).() -> int",
        "(map(A, B)) -> int", "map(A, B).() -> int", "(string) -> int", "string.() -> int",
    ]),
    ("type", Func::TypeOf, &["(A) -> type(A)"]),
    ("bool", Func::ToBool, &["(bool) -> bool", "(string) -> bool"]),
    ("bytes", Func::ToBytes, &["(bytes) -> bytes", "(string) -> bytes"]),
    ("double", Func::ToDouble, &["(double) -> double", "(int) -> double", "(string) -> double", "(uint) -> double"]),
    ("duration", Func::ToDuration, &["(duration) -> duration", "(string) -> duration"]),
    ("dyn", Func::Dyn, &["(A) -> dyn"]),
    ("int", Func::ToInt, &[
        "(int) -> int", "(double) -> int", "(duration) -> int", "(string) -> int",
        "(timestamp) -> int", "(uint) -> int",
    ]),
    ("string", Func::ToString, &[
        "(string) -> string", "(bool) -> string", "(bytes) -> string", "(double) -> string",
        "(duration) -> string", "(int) -> string", "(timestamp) -> string", "(uint) -> string",
    ]),
    ("timestamp", Func::ToTimestamp, &["(timestamp) -> timestamp", "(int) -> timestamp", "(string) -> timestamp"]),
    ("uint", Func::ToUint, &["(uint) -> uint", "(double) -> uint", "(int) -> uint", "(string) -> uint"]),
    ("contains", Func::Contains, &["string.(string) -> bool"]),
    ("endsWith", Func::EndsWith, &["string.(string) -> bool"]),
    ("startsWith", Func::StartsWith, &["string.(string) -> bool"]),
    ("matches", Func::Matches, &["(string, string) -> bool", "string.(string) -> bool"]),
    ("getFullYear", Func::GetFullYear, &["timestamp.() -> int", "timestamp.(string) -> int"]),
    ("getMonth", Func::GetMonth, &["timestamp.() -> int", "timestamp.(string) -> int"]),
    ("getDayOfYear", Func::GetDayOfYear, &["timestamp.() -> int", "timestamp.(string) -> int"]),
    ("getDayOfMonth", Func::GetDayOfMonth, &["timestamp.() -> int", "timestamp.(string) -> int"]),
    ("getDate", Func::GetDate, &["timestamp.() -> int", "timestamp.(string) -> int"]),
    ("getDayOfWeek", Func::GetDayOfWeek, &["timestamp.() -> int", "timestamp.(string) -> int"]),
    ("getHours", Func::GetHours, &["timestamp.() -> int", "timestamp.(string) -> int", "duration.() -> int"]),
    ("getMinutes", Func::GetMinutes, &["timestamp.() -> int", "timestamp.(string) -> int", "duration.() -> int"]),
    ("getSeconds", Func::GetSeconds, &["timestamp.() -> int", "timestamp.(string) -> int", "duration.() -> int"]),
    ("getMilliseconds", Func::GetMilliseconds, &["timestamp.() -> int", "timestamp.(string) -> int", "duration.() -> int"]),
    // Strings extension.
    ("charAt", Func::CharAt, &["string.(int) -> string"]),
    ("indexOf", Func::IndexOf, &["string.(string) -> int", "string.(string, int) -> int"]),
    ("lastIndexOf", Func::LastIndexOf, &["string.(string) -> int", "string.(string, int) -> int"]),
    ("lowerAscii", Func::LowerAscii, &["string.() -> string"]),
    ("upperAscii", Func::UpperAscii, &["string.() -> string"]),
    ("replace", Func::Replace, &["string.(string, string) -> string", "string.(string, string, int) -> string"]),
    ("split", Func::Split, &["string.(string) -> list(string)", "string.(string, int) -> list(string)"]),
    ("substring", Func::Substring, &["string.(int) -> string", "string.(int, int) -> string"]),
    ("trim", Func::Trim, &["string.() -> string"]),
    ("join", Func::Join, &["list(string).() -> string", "list(string).(string) -> string"]),
    ("reverse", Func::Reverse, &["string.() -> string", "list(T).() -> list(T)"]),
    ("format", Func::Format, &["string.(list(dyn)) -> string"]),
    ("strings.quote", Func::Quote, &["(string) -> string"]),
    // Encoders extension.
    ("base64.decode", Func::Base64Decode, &["(string) -> bytes"]),
    ("base64.encode", Func::Base64Encode, &["(bytes) -> string"]),
    // Math extension; `math.greatest` and `math.least` are macros for these.
    ("math.@max", Func::Greatest, &MIN_MAX),
    ("math.@min", Func::Least, &MIN_MAX),
    ("math.ceil", Func::Ceil, &["(double) -> double"]),
    ("math.floor", Func::Floor, &["(double) -> double"]),
    ("math.round", Func::Round, &["(double) -> double"]),
    ("math.trunc", Func::Trunc, &["(double) -> double"]),
    ("math.isInf", Func::IsInf, &["(double) -> bool"]),
    ("math.isNaN", Func::IsNaN, &["(double) -> bool"]),
    ("math.isFinite", Func::IsFinite, &["(double) -> bool"]),
    ("math.abs", Func::Abs, &["(double) -> double", "(int) -> int", "(uint) -> uint"]),
    ("math.sign", Func::Sign, &["(double) -> double", "(int) -> int", "(uint) -> uint"]),
    ("math.sqrt", Func::Sqrt, &["(double) -> double", "(int) -> double", "(uint) -> double"]),
    ("math.bitAnd", Func::BitAnd, &["(int, int) -> int", "(uint, uint) -> uint"]),
    ("math.bitOr", Func::BitOr, &["(int, int) -> int", "(uint, uint) -> uint"]),
    ("math.bitXor", Func::BitXor, &["(int, int) -> int", "(uint, uint) -> uint"]),
    ("math.bitNot", Func::BitNot, &["(int) -> int", "(uint) -> uint"]),
    ("math.bitShiftLeft", Func::BitShiftLeft, &["(int, int) -> int", "(uint, int) -> uint"]),
    ("math.bitShiftRight", Func::BitShiftRight, &["(int, int) -> int", "(uint, int) -> uint"]),
    // Sets extension.
    ("sets.contains", Func::SetsContains, &["(list(T), list(T)) -> bool"]),
    ("sets.equivalent", Func::SetsEquivalent, &["(list(T), list(T)) -> bool"]),
    ("sets.intersects", Func::SetsIntersects, &["(list(T), list(T)) -> bool"]),
    // Lists extension; `sortBy` is a macro.
    ("slice", Func::Slice, &["list(T).(int, int) -> list(T)"]),
    ("flatten", Func::Flatten, &["list(list(T)).() -> list(T)", "list(dyn).(int) -> list(dyn)"]),
    ("lists.range", Func::Range, &["(int) -> list(int)"]),
    ("distinct", Func::Distinct, &["list(T).() -> list(T)"]),
    // Tekton's functions (`decodeb64` is Sluice's, kept from older Tekton releases).
    ("match", Func::Match, &["map(string, dyn).(string, string) -> bool"]),
    ("canonical", Func::Canonical, &["map(string, dyn).(string) -> string"]),
    ("truncate", Func::Truncate, &["string.(int) -> string"]),
    ("compareSecret", Func::CompareSecret, &[
        "string.(string, string, string) -> bool", "string.(string, string) -> bool",
    ]),
    ("parseJSON", Func::ParseJson, &["string.() -> map(string, dyn)"]),
    ("parseYAML", Func::ParseYaml, &["string.() -> map(string, dyn)"]),
    ("parseURL", Func::ParseUrl, &["string.() -> map(string, dyn)"]),
    ("marshalJSON", Func::MarshalJson, &["map(string, dyn).() -> string", "list(dyn).() -> string"]),
    ("last", Func::Last, &["list(dyn).() -> dyn"]),
    ("first", Func::First, &["list(dyn).() -> dyn"]),
    ("translate", Func::Translate, &["string.(string, string) -> string"]),
    ("decodeb64", Func::DecodeB64, &["string.() -> string"]),
];

const MIN_MAX: [&str; 15] = [
    "(double) -> double",
    "(int) -> int",
    "(uint) -> uint",
    "(double, double) -> double",
    "(int, int) -> int",
    "(uint, uint) -> uint",
    "(int, uint) -> dyn",
    "(int, double) -> dyn",
    "(double, int) -> dyn",
    "(double, uint) -> dyn",
    "(uint, int) -> dyn",
    "(uint, double) -> dyn",
    "(list(double)) -> double",
    "(list(int)) -> int",
    "(list(uint)) -> uint",
];

/// The comparison operators and `sort`, declared once per comparable type.
fn comparison_declarations() -> Vec<(&'static str, Func, Vec<String>)> {
    let mut out = Vec::new();
    for op in ["_<_", "_<=_", "_>_", "_>=_"] {
        let overloads = COMPARABLE.iter().map(|t| format!("({t}, {t}) -> bool"));
        out.push((op, Func::Unresolved, overloads.collect()));
    }
    let sorts = COMPARABLE
        .iter()
        .map(|t| format!("list({t}).() -> list({t})"));
    out.push(("sort", Func::Sort, sorts.collect()));
    out
}

/// The namespaces of extension functions: `math.abs(x)` calls the global `math.abs`.
pub(crate) const NAMESPACES: &[&str] = &["base64", "math", "strings", "lists", "sets"];

/// The declared functions, by name.
pub(crate) fn declarations() -> &'static HashMap<&'static str, FunctionDecl> {
    static TABLE: OnceLock<HashMap<&'static str, FunctionDecl>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = HashMap::new();
        let comparisons = comparison_declarations();
        let all = DECLARATIONS
            .iter()
            .map(|(name, func, sigs)| {
                (
                    *name,
                    *func,
                    sigs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
                )
            })
            .chain(comparisons);
        for (name, func, sigs) in all {
            let overloads = sigs.iter().filter_map(|s| parse_overload(s)).collect();
            table.insert(name, FunctionDecl { func, overloads });
        }
        table
    })
}

/// Parses `(a, b) -> r` or `recv.(a) -> r`.
fn parse_overload(text: &str) -> Option<Overload> {
    let (args, result) = text.split_once("->")?;
    let args = args.trim();
    let (receiver, list) = if let Some(rest) = args.strip_prefix('(') {
        (None, rest)
    } else {
        let (receiver, rest) = args.split_once(".(")?;
        (Some(receiver), rest)
    };
    let list = list.strip_suffix(')')?;
    let mut params = Vec::new();
    if let Some(receiver) = receiver {
        params.push(CelType::parse(receiver)?);
    }
    if !list.trim().is_empty() {
        for part in split_params(list) {
            params.push(CelType::parse(part)?);
        }
    }
    let result = CelType::parse(result)?;
    let mut type_params = Vec::new();
    for p in params.iter().chain(std::iter::once(&result)) {
        params_in(p, &mut type_params);
    }
    Some(Overload {
        member: receiver.is_some(),
        params,
        result,
        type_params,
    })
}

fn split_params(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Why a call does not resolve by name and shape.
pub(crate) enum ResolveError {
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

/// Finds the function a call names, by its name, whether it is a method call and its
/// number of arguments (without the receiver).
pub(crate) fn resolve(name: &str, method: bool, argc: usize) -> Result<Func, ResolveError> {
    let Some(decl) = declarations().get(name) else {
        return Err(ResolveError::Unknown);
    };
    if decl.func == Func::Unresolved {
        return Err(ResolveError::Unknown);
    }
    let total = argc + usize::from(method);
    let mut same_style = decl.overloads.iter().filter(|o| o.member == method);
    if same_style.clone().any(|o| o.params.len() == total) {
        return Ok(decl.func);
    }
    if same_style.next().is_none() {
        return Err(ResolveError::WrongStyle { method });
    }
    let same_style: Vec<&Overload> = decl
        .overloads
        .iter()
        .filter(|o| o.member == method)
        .collect();
    let mut counts: Vec<usize> = same_style
        .iter()
        .map(|o| o.params.len() - usize::from(method))
        .collect();
    counts.sort_unstable();
    counts.dedup();
    let expected = match counts.as_slice() {
        [one] => one.to_string(),
        [first, .., last] if last - first + 1 == counts.len() => format!("{first} to {last}"),
        many => many
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" or "),
    };
    Err(ResolveError::Arity {
        expected,
        got: argc,
    })
}
