//! CEL, the Common Expression Language, as Tekton Triggers' `cel` interceptor evaluates it.
//!
//! Placeholder API: compiled programs are not available in this build.

use std::fmt;
use std::time::Duration;

use crate::event::Headers;
use crate::secret::SecretValue;

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Program {
    source: String,
}

/// A `compareSecret` call whose key, name and namespace are literals.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretRef {
    pub key: String,
    pub name: String,
    pub namespace: Option<String>,
}

/// Looks up a Secret's key for `compareSecret`.
pub trait SecretSource {
    fn secret(&self, reference: &SecretRef) -> Option<SecretValue>;
}

/// What an expression evaluates against.
pub struct Activation<'a> {
    pub body: &'a serde_json::Value,
    pub header: &'a Headers,
    pub extensions: &'a serde_json::Map<String, serde_json::Value>,
    pub request_url: &'a str,
    pub secrets: &'a dyn SecretSource,
    pub limits: Limits,
}

/// Bounds on one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_cost: u64,
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

/// A CEL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
}

impl Value {
    pub fn to_json(&self) -> Result<serde_json::Value, EvalError> {
        Ok(match self {
            Self::Null => serde_json::Value::Null,
            Self::Bool(b) => serde_json::Value::Bool(*b),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CompileError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalErrorKind {
    Runtime,
    CostExceeded,
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    pub kind: EvalErrorKind,
    pub message: String,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EvalError {}

impl Program {
    pub fn compile(source: &str) -> Result<Self, CompileError> {
        let _ = source;
        Err(CompileError {
            message: "CEL is not available in this build".into(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn secret_refs(&self) -> Vec<SecretRef> {
        Vec::new()
    }

    pub fn eval(&self, activation: &Activation<'_>) -> Result<Value, EvalError> {
        let _ = activation;
        Err(EvalError {
            kind: EvalErrorKind::Runtime,
            message: "CEL is not available in this build".into(),
        })
    }
}
