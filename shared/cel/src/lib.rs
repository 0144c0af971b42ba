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

mod ast;
mod checker;
mod error;
mod eval;
mod functions;
pub mod header;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;
mod value;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use error::{CompileError, EvalError, EvalErrorKind};
pub use value::{MapKey, Type, Value};

/// The longest source accepted.
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;

/// A compiled expression. Cheap to clone and shareable between threads.
#[derive(Debug, Clone)]
pub struct Program {
    inner: Arc<Compiled>,
}

#[derive(Debug)]
struct Compiled {
    source: String,
    expr: ast::Expr,
    secret_refs: Vec<SecretRef>,
}

/// A `compareSecret` call whose key, name and namespace are literals.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretRef {
    /// The key within the Secret's data.
    pub key: String,
    /// The Secret's name.
    pub name: String,
    /// The Secret's namespace; `None` means the trigger's own.
    pub namespace: Option<String>,
}

/// Looks up a Secret's key for `compareSecret`.
pub trait SecretSource {
    /// The value of the Secret's key, or `None` if the Secret or key does not exist. The
    /// bytes are only compared, in constant time; never logged or returned.
    fn secret(&self, reference: &SecretRef) -> Option<&[u8]>;
}

/// What an expression evaluates against.
pub struct Activation<'a> {
    /// The request body, `body`.
    pub body: &'a serde_json::Value,
    /// The request headers, `header`: a map from canonical name (see [`header`]) to the
    /// list of values.
    pub header: &'a BTreeMap<String, Vec<String>>,
    /// Earlier interceptors' extensions, `extensions`.
    pub extensions: &'a serde_json::Map<String, serde_json::Value>,
    /// The request URL, `requestURL`.
    pub request_url: &'a str,
    /// Where `compareSecret` finds Secrets.
    pub secrets: &'a dyn SecretSource,
    /// Bounds on the evaluation.
    pub limits: Limits,
}

/// Bounds on one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most cost units (about one per node evaluated, plus one per element or per 16
    /// bytes of string processed) an evaluation may spend.
    pub max_cost: u64,
    /// The longest an evaluation may run.
    pub max_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_cost: 1_000_000,
            max_time: Duration::from_millis(100),
        }
    }
}

impl Program {
    /// Parses and checks an expression: unknown names and functions, wrong numbers of
    /// arguments, sources over [`MAX_SOURCE_BYTES`] and nesting past the recursion limit
    /// are errors.
    pub fn compile(source: &str) -> Result<Self, CompileError> {
        if source.len() > MAX_SOURCE_BYTES {
            return Err(CompileError {
                message: format!(
                    "expression of {} bytes is longer than the limit of {MAX_SOURCE_BYTES} bytes",
                    source.len()
                ),
            });
        }
        let mut expr = parser::parse(source)?;
        checker::check(&mut expr, source)?;
        let secret_refs = checker::secret_refs(&expr);
        Ok(Self {
            inner: Arc::new(Compiled {
                source: source.to_owned(),
                expr,
                secret_refs,
            }),
        })
    }

    /// The source the program was compiled from.
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// The Secrets the program's `compareSecret` calls name with literal arguments, sorted
    /// and without duplicates.
    pub fn secret_refs(&self) -> Vec<SecretRef> {
        self.inner.secret_refs.clone()
    }

    /// Evaluates the program against an activation, within its limits.
    pub fn eval(&self, activation: &Activation<'_>) -> Result<Value, EvalError> {
        eval::evaluate(&self.inner.expr, activation)
    }
}
