//! The functions a call may name: the table the checker resolves calls against (name,
//! method or global, number of arguments). What each function does lives in the library.

/// A resolved function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
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
pub(crate) const NAMESPACES: &[&str] = &["base64", "math", "strings", "lists"];

/// Why a call does not resolve.
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

/// Finds the function a call names.
pub(crate) fn resolve(name: &str, method: bool, argc: usize) -> Result<Func, ResolveError> {
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
