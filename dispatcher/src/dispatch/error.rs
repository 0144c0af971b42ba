//! Why a trigger did not create its objects, and whether another delivery may.

use std::time::Duration;

use sluice_runtime::retry::FailureKind;
use sluice_triggers::plan::PlanError;

use crate::interceptor::InterceptorError;
use crate::ledger::LedgerError;
use crate::sink::SinkError;

/// Why a trigger did not create its objects.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("{0}")]
    Interceptor(#[from] InterceptorError),
    /// Bindings, template or the rendered objects: the same every time.
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("create of object {index} failed: {source}")]
    Create {
        index: usize,
        #[source]
        source: SinkError,
    },
}

impl TriggerError {
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Create { source, .. } => source.kind,
            Self::Interceptor(error) => error.kind,
            Self::Ledger(error) => error.kind(),
            Self::Plan(_) => FailureKind::Permanent,
        }
    }

    /// The HTTP status the API answered, when the failure was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Create { source, .. } => source.status,
            _ => None,
        }
    }

    /// The delay the API asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Create { source, .. } => source.retry_after,
            _ => None,
        }
    }
}
