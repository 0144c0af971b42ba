//! What an expression evaluates against, and the bounds on one evaluation.

use std::collections::BTreeMap;
use std::time::Duration;

use super::secret::SecretSource;

/// What an expression evaluates against.
pub struct Activation<'a> {
    /// The request body, `body`.
    pub body: &'a serde_json::Value,
    /// The request headers, `header`: a map from canonical name (see [`header`](crate::header)) to the
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
