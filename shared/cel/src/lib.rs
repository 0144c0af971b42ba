//! CEL, the Common Expression Language, as Tekton Triggers' `cel` interceptor evaluates it.
//!
//! [`Program::compile`] tokenizes and parses an expression (expanding the macros `has`,
//! `all`, `exists`, `exists_one`, `map`, `filter`, `sortBy`, `math.greatest` and
//! `math.least`), then type-checks it as cel-go checks it in Tekton's environment: every
//! name must resolve and every call must have an overload for the types the checker can
//! see. [`Program::eval`] walks the tree against an [`Activation`] under a cost meter and a
//! deadline ([`Limits`]), so a hostile expression cannot stall the caller.
//!
//! Besides the standard library (timestamps and durations included), the cel-go
//! extensions Tekton enables (strings, encoders, sets, lists, math) and Tekton's own
//! functions (`header.match`, `truncate`, `compareSecret`, `parseJSON`, `parseYAML`,
//! `parseURL`, `marshalJSON`, `first`, `last`, `translate`, and the older `decodeb64`) are
//! available. The conformance suite (`conformance`, data in `tests/conformance/`) measures
//! all this against cel-spec's and Tekton's test data.
//!
//! Differences from Tekton, by design: JSON integers stay exact (`Int`/`Uint` rather than
//! float64), and arithmetic on values the checker cannot see (`dyn`) that mixes a double
//! with an int computes in double (so expressions written for Tekton's all-double numbers
//! keep working). The rest follows cel-go; `docs/tekton.md` lists every difference.

// The public face: compile a program, evaluate it against an activation; the values,
// timestamps and durations it yields.
mod activation;
mod error;
pub mod header;
mod program;
mod secret;
mod time;
mod value;

// Compiling: source to tokens to a tree, checked against the declared functions' types.
mod ast;
mod checker;
mod func;
mod lexer;
mod parser;
mod types;

// Evaluating: the tree walk, what it carries, and the function library.
mod env;
mod eval;
mod library;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;

pub use activation::{Activation, Limits};
pub use error::{CompileError, EvalError, EvalErrorKind};
pub use program::{MAX_SOURCE_BYTES, Program};
pub use secret::{SecretRef, SecretSource};
pub use time::{Duration, Timestamp};
pub use value::{MapKey, Type, Value};
