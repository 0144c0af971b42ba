//! A compiled expression: compile once (parse, then check), evaluate many times.

use std::sync::Arc;

use super::activation::Activation;
use super::ast::Expr;
use super::checker::{Declarations, Mode};
use super::error::{CompileError, EvalError};
use super::secret::SecretRef;
use super::types::CelType;
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
    /// The type the checker inferred for the whole expression.
    #[cfg_attr(not(test), allow(dead_code))]
    result_type: CelType,
    secret_refs: Vec<SecretRef>,
}

impl Program {
    /// Parses and checks an expression against Tekton's environment (`body`, `header` and
    /// `extensions` of type `map(string, dyn)`, `requestURL` a string), as Tekton's `cel`
    /// interceptor does: unknown names and functions, calls with no overload for the
    /// argument types the checker can see (`'a' + 1`, `1.0 < 2`), sources over
    /// [`MAX_SOURCE_BYTES`] and nesting past the recursion limit are errors.
    pub fn compile(source: &str) -> Result<Self, CompileError> {
        Self::compile_with(source, Declarations::tekton(), Mode::Checked)
    }

    /// Compiles against other declarations, checked or not.
    pub(crate) fn compile_with(
        source: &str,
        declarations: &Declarations,
        mode: Mode,
    ) -> Result<Self, CompileError> {
        if source.len() > MAX_SOURCE_BYTES {
            return Err(CompileError {
                message: format!(
                    "expression of {} bytes is longer than the limit of {MAX_SOURCE_BYTES} bytes",
                    source.len()
                ),
            });
        }
        let mut expr = parser::parse(source)?;
        let result_type = checker::check(&mut expr, source, declarations, mode)?;
        let secret_refs = checker::secret_refs(&expr);
        Ok(Self {
            inner: Arc::new(Compiled {
                source: source.to_owned(),
                expr,
                result_type,
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
        eval::evaluate(&self.inner.expr, activation, None)
    }

    /// Evaluates with variables besides the activation's.
    #[cfg(test)]
    pub(crate) fn eval_with(
        &self,
        activation: &Activation<'_>,
        variables: &std::collections::HashMap<String, Value>,
    ) -> Result<Value, EvalError> {
        eval::evaluate(&self.inner.expr, activation, Some(variables))
    }

    /// The type the checker inferred for the whole expression (`dyn` where it cannot tell).
    #[cfg(test)]
    pub(crate) fn result_type(&self) -> &CelType {
        &self.inner.result_type
    }
}
