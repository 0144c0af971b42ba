//! Why an expression does not compile, and why an evaluation failed.

use std::fmt;

/// Why an expression does not compile. The message names the problem and where it is
/// (`unexpected token ')' at column 14`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// The problem and its position.
    pub message: String,
}

impl CompileError {
    /// An error at byte `offset` of `source`, located by line (if the source has several)
    /// and column (in characters, from 1).
    pub(crate) fn at(source: &str, offset: usize, problem: impl Into<String>) -> Self {
        let offset = offset.min(source.len());
        let before = source.get(..offset).unwrap_or(source);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
        let line = before.matches('\n').count() + 1;
        let problem = problem.into();
        let message = if source.contains('\n') {
            format!("{problem} at line {line}, column {column}")
        } else {
            format!("{problem} at column {column}")
        };
        Self { message }
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CompileError {}

/// What kind of failure ended an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalErrorKind {
    /// The expression failed: a missing key, a type mismatch, overflow, …
    Runtime,
    /// The evaluation spent more than [`Limits::max_cost`](crate::Limits::max_cost).
    CostExceeded,
    /// The evaluation ran longer than [`Limits::max_time`](crate::Limits::max_time).
    Timeout,
}

/// Why an evaluation failed. The message names the problem (`no such key: 'action'`) and
/// never includes the body or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// What kind of failure.
    pub kind: EvalErrorKind,
    /// The problem.
    pub message: String,
}

impl EvalError {
    /// A runtime error.
    pub(crate) fn runtime(message: impl Into<String>) -> Self {
        Self {
            kind: EvalErrorKind::Runtime,
            message: message.into(),
        }
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EvalError {}
