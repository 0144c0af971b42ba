//! Injected faults: failures, latency and hangs for the next N matching requests, or for all
//! of them until cleared.
//!
//! Faults act where the real server's overload protection sits: after authentication and
//! impersonation, before authorization and storage. A faulted request changes nothing.

use std::time::Duration;

use super::request::Verb;

/// An error answer to inject, as the real server would send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 500 `InternalError`.
    InternalError,
    /// 429 `TooManyRequests` with `Retry-After` and `details.retryAfterSeconds`.
    TooManyRequests { retry_after_seconds: u32 },
    /// 503 `ServiceUnavailable`.
    ServiceUnavailable,
    /// 403 `Forbidden`, worded as RBAC words it for the request's user.
    Forbidden,
    /// 422 `Invalid` with one `FieldValueInvalid` cause on `spec`.
    Invalid,
    /// 409 `AlreadyExists` for the request's object.
    AlreadyExists,
    /// 409 `Conflict` (a lost optimistic-concurrency race).
    Conflict,
    /// 504 `Timeout`, as when the server's own request deadline passes.
    Timeout,
}

/// What a fault does to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Answer with this failure.
    Fail(Failure),
    /// Wait this long, then serve the request normally.
    Delay(Duration),
    /// Answer nothing for this long (clients time out), then 504 `Timeout`.
    Hang(Duration),
}

/// A fault and the requests it applies to. Build with [`FaultRule::fail`],
/// [`FaultRule::delay`] or [`FaultRule::hang`], narrow with [`on`](Self::on) and
/// [`resource`](Self::resource), and count with [`times`](Self::times) (default: once) or
/// [`always`](Self::always).
///
/// ```ignore
/// api.inject(
///     FaultRule::fail(Failure::TooManyRequests { retry_after_seconds: 1 })
///         .on(Verb::Create)
///         .resource("pipelineruns")
///         .times(2),
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    verb: Option<Verb>,
    resource: Option<String>,
    /// `None`: until cleared.
    remaining: Option<u32>,
    action: Action,
}

impl FaultRule {
    fn new(action: Action) -> Self {
        FaultRule {
            verb: None,
            resource: None,
            remaining: Some(1),
            action,
        }
    }

    /// Answer matching requests with `failure`.
    #[must_use]
    pub fn fail(failure: Failure) -> Self {
        Self::new(Action::Fail(failure))
    }

    /// Add `latency` before serving matching requests.
    #[must_use]
    pub fn delay(latency: Duration) -> Self {
        Self::new(Action::Delay(latency))
    }

    /// Answer nothing to matching requests for `duration`, then 504.
    #[must_use]
    pub fn hang(duration: Duration) -> Self {
        Self::new(Action::Hang(duration))
    }

    /// Only requests with this verb.
    #[must_use]
    pub fn on(mut self, verb: Verb) -> Self {
        self.verb = Some(verb);
        self
    }

    /// Only requests on this resource (plural, e.g. `pipelineruns`), in any group.
    #[must_use]
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_owned());
        self
    }

    /// Apply to the next `n` matching requests.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Apply to every matching request until the faults are cleared.
    #[must_use]
    pub fn always(mut self) -> Self {
        self.remaining = None;
        self
    }

    fn matches(&self, verb: Verb, resource: &str) -> bool {
        self.remaining != Some(0)
            && self.verb.is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| r == resource)
    }
}

/// What the faults decided for one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Total latency to add first.
    pub delay: Duration,
    /// A failure or hang instead of the normal answer.
    pub outcome: Option<Action>,
}

/// The active fault rules.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<FaultRule>,
}

impl Faults {
    pub fn inject(&mut self, rule: FaultRule) {
        self.rules.push(rule);
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// Consumes one use of every matching delay rule and of the first matching failure or
    /// hang rule, and says what to do.
    pub fn plan(&mut self, verb: Verb, resource: &str) -> Plan {
        let mut plan = Plan::default();
        for rule in &mut self.rules {
            if !rule.matches(verb, resource) {
                continue;
            }
            match &rule.action {
                Action::Delay(latency) => plan.delay += *latency,
                action if plan.outcome.is_none() => plan.outcome = Some(action.clone()),
                _ => continue,
            }
            if let Some(remaining) = &mut rule.remaining {
                *remaining -= 1;
            }
        }
        self.rules.retain(|rule| rule.remaining != Some(0));
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rules_run_out_and_standing_rules_do_not() {
        let mut faults = Faults::default();
        faults.inject(
            FaultRule::fail(Failure::InternalError)
                .on(Verb::Create)
                .times(2),
        );
        faults.inject(FaultRule::delay(Duration::from_millis(5)).always());
        let fail = Some(Action::Fail(Failure::InternalError));
        assert_eq!(faults.plan(Verb::Get, "pods").outcome, None);
        assert_eq!(faults.plan(Verb::Create, "pods").outcome, fail);
        assert_eq!(faults.plan(Verb::Create, "pods").outcome, fail);
        let third = faults.plan(Verb::Create, "pods");
        assert_eq!(third.outcome, None);
        assert_eq!(third.delay, Duration::from_millis(5));
    }

    #[test]
    fn resource_narrows_the_match() {
        let mut faults = Faults::default();
        faults.inject(FaultRule::fail(Failure::Forbidden).resource("pipelineruns"));
        assert_eq!(faults.plan(Verb::Create, "taskruns").outcome, None);
        assert!(faults.plan(Verb::Create, "pipelineruns").outcome.is_some());
    }
}
