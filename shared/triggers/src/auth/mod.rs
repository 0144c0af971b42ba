//! Authentication at the edge: each trigger's interceptors decide whether it accepts the
//! request, before anything is queued.
//!
//! - [`failure`]: why a credential was refused, and its stable `code`;
//! - [`request`]: header, timestamp and constant-time MAC/secret primitives;
//! - one file per interceptor: [`github`], [`gitlab`], [`bitbucket`], [`gitee`], [`slack`],
//!   and [`generic`] for the `hmac` interceptor.
//!
//! A trigger is judged on two questions: is the request authentic (every interceptor with a
//! secret verifies it), and does the trigger want it (every `eventTypes` list matches)? A
//! listener accepts the request when at least one trigger accepts it, and the event then
//! names only those triggers. A trigger without an authentication interceptor accepts any
//! caller, as in Tekton Triggers (unless the platform requires authentication, in which case
//! the configuration loader has already skipped it).
//!
//! When no trigger accepts, the answer is, in this order of precedence:
//! 1. a trigger that is misconfigured (its secret is unavailable) and wants this event type
//!    could have accepted it: `500 listener_misconfigured`;
//! 2. a trigger found the request authentic but wants other event types: `202`, filtered;
//! 3. a trigger refused a credential: `401` with the first refusing trigger's code (in
//!    declaration order);
//! 4. only misconfigured triggers (for other event types), or every declared trigger was
//!    invalid: `500 listener_misconfigured`;
//! 5. the listener declares no trigger: `202`, filtered.

mod bitbucket;
mod failure;
mod generic;
mod gitee;
mod github;
mod gitlab;
mod request;
mod slack;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::SystemTime;

use crate::catalogue::{Interceptor, InterceptorKind, Listener, Trigger};
use http::HeaderMap;

pub use failure::{AuthFailure, Credential, FailureCode, Problem};
pub use github::verify_github_signature;

use request::{Request, wants_event};

/// What the listener's triggers made of a request that passed authentication.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// These triggers accept the request: queue it for them.
    Accepted(Vec<String>),
    /// Authentic, but no trigger wants this event type (or the listener has no triggers).
    Filtered,
}

/// Why the listener refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A credential is missing or wrong: `401`.
    Unauthorized(AuthFailure),
    /// The listener cannot authenticate the request: `500`. The sender learns only that; the
    /// cause is for the logs.
    Misconfigured(Misconfiguration),
}

impl Refusal {
    /// The `code` of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(failure) => failure.code().as_str(),
            Self::Misconfigured(_) => "listener_misconfigured",
        }
    }
}

/// Which trigger cannot judge requests, and why (naming Secrets and keys, never values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misconfiguration {
    /// `None` when the listener has no valid trigger at all.
    pub trigger: Option<String>,
    pub reason: String,
}

impl fmt::Display for Misconfiguration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.trigger {
            Some(trigger) => write!(f, "trigger `{trigger}`: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// Runs every trigger's authentication interceptors against the request, at the server's
/// current time. A misconfigured listener's cause is logged here, once per request.
pub fn admit(listener: &Listener, headers: &HeaderMap, body: &[u8]) -> Result<Admission, Refusal> {
    let admission = admit_at(listener, headers, body, SystemTime::now());
    if let Err(Refusal::Misconfigured(misconfiguration)) = &admission {
        tracing::warn!(
            namespace = %listener.namespace,
            listener = %listener.name,
            cause = %misconfiguration,
            "listener misconfigured: webhook refused with 500 until the configuration is fixed"
        );
    }
    admission
}

/// [`admit`] with the clock passed in, for timestamp windows.
pub fn admit_at(
    listener: &Listener,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<Admission, Refusal> {
    let request = Request { headers, body, now };
    let mut accepted = Vec::new();
    let mut filtered = false;
    let mut first_failure = None;
    let mut misconfigured_wanted = None;
    let mut misconfigured_other = None;
    for trigger in &listener.triggers {
        match judge(trigger, &request) {
            Verdict::Accept => accepted.push(trigger.name.clone()),
            Verdict::Filter => filtered = true,
            Verdict::Refuse(failure) => {
                first_failure.get_or_insert(failure);
            }
            Verdict::Misconfigured { reason, wanted } => {
                let slot = if wanted {
                    &mut misconfigured_wanted
                } else {
                    &mut misconfigured_other
                };
                slot.get_or_insert_with(|| Misconfiguration {
                    trigger: Some(trigger.name.clone()),
                    reason: reason.to_owned(),
                });
            }
        }
    }
    if !accepted.is_empty() {
        return Ok(Admission::Accepted(accepted));
    }
    if let Some(misconfiguration) = misconfigured_wanted {
        return Err(Refusal::Misconfigured(misconfiguration));
    }
    if filtered {
        return Ok(Admission::Filtered);
    }
    if let Some(failure) = first_failure {
        return Err(Refusal::Unauthorized(failure));
    }
    if let Some(misconfiguration) = misconfigured_other {
        return Err(Refusal::Misconfigured(misconfiguration));
    }
    if listener.triggers.is_empty() && listener.skipped_triggers > 0 {
        return Err(Refusal::Misconfigured(Misconfiguration {
            trigger: None,
            reason: format!(
                "none of its {} declared trigger(s) is valid (see the configuration issues)",
                listener.skipped_triggers
            ),
        }));
    }
    Ok(Admission::Filtered)
}

/// One trigger's verdict on a request, for tools that show each trigger's decision
/// (`sluice render`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerVerdict {
    /// Authentic and wanted: the trigger runs.
    Accepted,
    /// Authentic, but an interceptor's `eventTypes` does not include this event.
    Filtered,
    /// A credential is missing or wrong.
    Refused(AuthFailure),
    /// An interceptor's secret is unavailable; why, naming Secrets and keys only.
    Misconfigured(String),
}

/// Judges the request for one trigger, at `now`.
pub fn judge_trigger(
    trigger: &Trigger,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> TriggerVerdict {
    let request = Request { headers, body, now };
    match judge(trigger, &request) {
        Verdict::Accept => TriggerVerdict::Accepted,
        Verdict::Filter => TriggerVerdict::Filtered,
        Verdict::Refuse(failure) => TriggerVerdict::Refused(failure),
        Verdict::Misconfigured { reason, .. } => TriggerVerdict::Misconfigured(reason.to_owned()),
    }
}

/// One trigger's judgement of the request.
enum Verdict<'t> {
    Accept,
    /// Authentic, but another event type.
    Filter,
    Refuse(AuthFailure),
    /// Not refused by any check that could run, but an interceptor's secret is unavailable.
    /// `wanted`: the trigger's event types match, so it could have accepted the request.
    Misconfigured {
        reason: &'t str,
        wanted: bool,
    },
}

/// Whether one interceptor finds the request authentic.
enum Authenticity<'t> {
    /// Verified, or nothing to verify (no secret configured).
    Passed,
    Failed(AuthFailure),
    /// Cannot tell: the secret is unavailable.
    Unknown(&'t str),
}

impl From<Result<(), AuthFailure>> for Authenticity<'_> {
    fn from(result: Result<(), AuthFailure>) -> Self {
        match result {
            Ok(()) => Self::Passed,
            Err(failure) => Self::Failed(failure),
        }
    }
}

/// Every interceptor of the trigger, in declaration order. A failed credential refuses the
/// request whatever its event type; a request refused by no check but judged by a
/// misconfigured interceptor cannot be accepted.
fn judge<'t>(trigger: &'t Trigger, request: &Request<'_>) -> Verdict<'t> {
    let mut wanted = true;
    let mut unknown = None;
    for interceptor in &trigger.interceptors {
        let (authenticity, wants) = check(interceptor, request);
        wanted &= wants;
        match authenticity {
            Authenticity::Passed => {}
            Authenticity::Failed(failure) => return Verdict::Refuse(failure),
            Authenticity::Unknown(reason) => {
                unknown.get_or_insert(reason);
            }
        }
    }
    match unknown {
        Some(reason) => Verdict::Misconfigured { reason, wanted },
        None if wanted => Verdict::Accept,
        None => Verdict::Filter,
    }
}

/// One interceptor: is the request authentic, and is its event type wanted?
fn check<'t>(interceptor: &'t Interceptor, request: &Request<'_>) -> (Authenticity<'t>, bool) {
    match interceptor {
        Interceptor::GitHub(github) => (
            github::verify(github, request).into(),
            wants_event(request, github::EVENT, &github.event_types),
        ),
        Interceptor::GitLab(gitlab) => (
            gitlab::verify(gitlab, request).into(),
            wants_event(request, gitlab::EVENT, &gitlab.event_types),
        ),
        Interceptor::Bitbucket(bitbucket) => (
            bitbucket::verify(bitbucket, request).into(),
            wants_event(request, bitbucket::EVENT, &bitbucket.event_types),
        ),
        Interceptor::Gitee(gitee) => (
            gitee::verify(gitee, request).into(),
            wants_event(request, gitee::EVENT, &gitee.event_types),
        ),
        Interceptor::Slack(slack) => (slack::verify(slack, request).into(), true),
        Interceptor::Hmac(hmac) => (generic::verify(hmac, request).into(), true),
        Interceptor::Misconfigured(misconfigured) => {
            let wanted = match event_header(misconfigured.kind) {
                Some(header) => wants_event(request, header, &misconfigured.event_types),
                None => true,
            };
            (Authenticity::Unknown(&misconfigured.reason), wanted)
        }
        // The dispatcher runs these once the event is durable.
        Interceptor::Cel(_) | Interceptor::Webhook(_) => (Authenticity::Passed, true),
    }
}

/// The event type the request names, as a log line shows it: the value of the first of the
/// providers' event headers that is present, when it is printable ASCII of at most 64 bytes.
pub fn event_type(headers: &HeaderMap) -> Option<&str> {
    [github::EVENT, gitlab::EVENT, bitbucket::EVENT, gitee::EVENT]
        .into_iter()
        .find_map(|name| headers.get(name))
        .map(|value| value.as_bytes().trim_ascii())
        .filter(|value| {
            value.len() <= 64 && value.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
        })
        .and_then(|value| std::str::from_utf8(value).ok())
}

/// The listener's triggers that an interceptor's `eventTypes` filters this request out of,
/// for the log line of a filtered webhook.
pub fn filtering_triggers<'l>(
    listener: &'l Listener,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Vec<&'l str> {
    let request = Request { headers, body, now };
    listener
        .triggers
        .iter()
        .filter(|trigger| matches!(judge(trigger, &request), Verdict::Filter))
        .map(|trigger| trigger.name.as_str())
        .collect()
}

/// The header a provider names its event type in.
fn event_header(kind: InterceptorKind) -> Option<&'static str> {
    match kind {
        InterceptorKind::GitHub => Some(github::EVENT),
        InterceptorKind::GitLab => Some(gitlab::EVENT),
        InterceptorKind::Bitbucket => Some(bitbucket::EVENT),
        InterceptorKind::Gitee => Some(gitee::EVENT),
        InterceptorKind::Slack | InterceptorKind::Hmac => None,
    }
}

/// Whether a trigger of the listener authenticates with the `github` interceptor and the
/// request is form-encoded (`Content-Type: application/x-www-form-urlencoded`, which GitHub
/// sends when a webhook is set so): Tekton's github interceptor refuses such a request, and
/// the body is not the JSON the triggers read.
pub fn refuses_form_encoding(listener: &Listener, headers: &HeaderMap) -> bool {
    let form_encoded = headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == b"application/x-www-form-urlencoded");
    form_encoded
        && listener
            .triggers
            .iter()
            .flat_map(|trigger| &trigger.interceptors)
            .any(|interceptor| matches!(interceptor, Interceptor::GitHub(_)))
}

/// Whether `name` (lower case) carries a credential of one of the listener's interceptors
/// that the envelope's fixed list does not know: the hmac interceptors' signature headers.
/// Such headers never enter the queue.
pub fn is_credential_header(listener: &Listener, name: &str) -> bool {
    listener
        .triggers
        .iter()
        .flat_map(|trigger| &trigger.interceptors)
        .any(|interceptor| matches!(interceptor, Interceptor::Hmac(hmac) if hmac.header == name))
}
