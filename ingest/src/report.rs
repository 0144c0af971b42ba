//! What the log says of each webhook ingest does not store: a line per refused or filtered
//! webhook at INFO (a refusal of ours, a 5xx, at WARN), with the fields an operator looks a
//! delivery up by, and a budget so that a flood cannot drown the log: past
//! [`LINES_PER_SECOND`] a second, lines are counted instead of written, and the next line
//! written says how many were held back (`suppressed`).

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ConnectInfo;
use http::request::Parts;
use sluice_triggers::auth::{event_type, filtering_triggers};
use sluice_triggers::catalogue::Listener;
use sluice_triggers::idempotency::delivery_id;

use sluice_runtime::clock::now_ms;
use sluice_runtime::event_status::{RefusedRecord, rfc3339};

use crate::error::IngestError;

/// Lines a second about refused and filtered webhooks, all listeners together.
pub const LINES_PER_SECOND: u32 = 20;

/// The process's budget of lines about webhooks it does not store.
static BUDGET: LogBudget = LogBudget::new(LINES_PER_SECOND);

/// At most `per_second` lines in each second of the clock; what is held back is counted.
pub struct LogBudget {
    per_second: u32,
    state: Mutex<BudgetState>,
}

struct BudgetState {
    second: u64,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    pub const fn new(per_second: u32) -> Self {
        Self {
            per_second,
            state: Mutex::new(BudgetState {
                second: 0,
                used: 0,
                suppressed: 0,
            }),
        }
    }

    /// `Some(n)` when a line may be written now, `n` being the lines held back since the
    /// last one written; `None` when this one is held back (and counted).
    pub fn admit(&self, now: SystemTime) -> Option<u64> {
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.second != second {
            state.second = second;
            state.used = 0;
        }
        if state.used < self.per_second {
            state.used += 1;
            Some(std::mem::take(&mut state.suppressed))
        } else {
            state.suppressed += 1;
            None
        }
    }
}

/// Where the request came from: the connection's peer, when the server recorded it.
fn source(request: &Parts) -> String {
    request
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |peer| peer.0.to_string())
}

/// A refused webhook: its status and code, the listener (when the path named one), the
/// sender's delivery id and where it came from. The reason is written only once a listener
/// was found: before that it would quote the path.
pub fn refused(request: &Parts, listener: Option<&Listener>, error: &IngestError) {
    let Some(suppressed) = BUDGET.admit(SystemTime::now()) else {
        return;
    };
    let (namespace, name) = listener.map_or(("", ""), |l| (l.namespace.as_str(), l.name.as_str()));
    let status = error.status().as_u16();
    let delivery = delivery_id(&request.headers).unwrap_or("");
    let source = source(request);
    // Without a listener the reason would quote the path, which is the sender's text (some
    // put tokens in webhook URLs): the code says enough.
    let reason = match listener {
        Some(_) => error.to_string(),
        None => String::new(),
    };
    if error.status().is_server_error() {
        tracing::warn!(
            status,
            code = error.code(),
            namespace,
            listener = name,
            delivery_id = delivery,
            source,
            suppressed,
            reason,
            "webhook not stored"
        );
    } else {
        tracing::info!(
            status,
            code = error.code(),
            namespace,
            listener = name,
            delivery_id = delivery,
            source,
            suppressed,
            reason,
            "webhook refused"
        );
    }
}

/// A webhook no trigger wanted: which triggers' `eventTypes` left its event type out.
pub fn filtered(request: &Parts, listener: &Listener, body: &[u8]) {
    let now = SystemTime::now();
    let Some(suppressed) = BUDGET.admit(now) else {
        return;
    };
    let triggers = filtering_triggers(listener, &request.headers, body, now).join(", ");
    tracing::info!(
        status = 202,
        namespace = %listener.namespace,
        listener = %listener.name,
        delivery_id = delivery_id(&request.headers).unwrap_or(""),
        source = source(request),
        event_type = event_type(&request.headers).unwrap_or(""),
        triggers,
        suppressed,
        "webhook filtered: its event type is not in these triggers' eventTypes; nothing stored"
    );
}

/// A filtered webhook as `sluice events list --state refused` shows it: `202`, nothing
/// stored, and which triggers' `eventTypes` left its event type out.
pub fn filtered_record(request: &Parts, listener: &Listener, body: &[u8]) -> RefusedRecord {
    let triggers = filtering_triggers(listener, &request.headers, body, SystemTime::now());
    RefusedRecord {
        namespace: listener.namespace.clone(),
        event_listener: listener.name.clone(),
        status: 202,
        code: "filtered".to_owned(),
        message: format!(
            "event type {:?} is not in the eventTypes of triggers {}; nothing stored",
            event_type(&request.headers).unwrap_or(""),
            triggers.join(", ")
        ),
        delivery_id: delivery_id(&request.headers).map(str::to_owned),
        at: rfc3339(now_ms()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn past_the_budget_lines_are_counted_and_the_next_one_says_how_many() {
        let budget = LogBudget::new(3);
        let second = UNIX_EPOCH + Duration::from_secs(1_000);
        let admitted: Vec<Option<u64>> = (0..5).map(|_| budget.admit(second)).collect();
        assert_eq!(admitted, [Some(0), Some(0), Some(0), None, None]);
        let next = second + Duration::from_secs(1);
        assert_eq!(budget.admit(next), Some(2), "two lines were held back");
        assert_eq!(budget.admit(next), Some(0));
    }
}
