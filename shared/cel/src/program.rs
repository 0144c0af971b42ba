//! A compiled expression: compile once (parse, then check), evaluate many times.

use std::sync::Arc;

use super::activation::Activation;
use super::ast::Expr;
use super::error::{CompileError, EvalError};
use super::secret::SecretRef;
use super::value::Value;
use super::{checker, eval, parser};

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
    expr: Expr,
    secret_refs: Vec<SecretRef>,
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
