//! CEL, the Common Expression Language, as Tekton Triggers' `cel` interceptor evaluates it.
//!
//! [`Program::compile`] tokenizes and parses an expression (expanding the macros `has`,
//! `all`, `exists`, `exists_one`, `map` and `filter`), then checks that every name and
//! call resolves. [`Program::eval`] walks the tree against an [`Activation`] under a cost
//! meter and a deadline ([`Limits`]), so a hostile expression cannot stall the caller.
//!
//! Besides the standard library, the cel-go extensions Tekton enables (strings, encoders,
//! math, lists) and Tekton's own functions (`header.match`, `truncate`, `compareSecret`,
//! `parseJSON`, `parseYAML`, `parseURL`, `marshalJSON`, `first`, `last`, `translate`,
//! `decodeb64`) are available.
//!
//! Differences from Tekton, by design: JSON integers stay exact (`Int`/`Uint` rather than
//! float64), and arithmetic mixing a double with an int computes in double (so expressions
//! written for Tekton's all-double numbers keep working). Durations and timestamps are not
//! supported.

mod activation;
mod ast;
mod checker;
mod env;
mod error;
mod eval;
mod func;
mod functions;
pub mod header;
mod lexer;
mod parser;
mod program;
mod secret;
#[cfg(test)]
mod tests;
mod value;

pub use activation::{Activation, Limits};
pub use error::{CompileError, EvalError, EvalErrorKind};
pub use program::{MAX_SOURCE_BYTES, Program};
pub use secret::{SecretRef, SecretSource};
pub use value::{MapKey, Type, Value};
