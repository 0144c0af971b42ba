//! A trigger's interceptor chain as the dispatcher runs it once the event is durable: `cel`
//! filters and overlays, webhook interceptors, and the github interceptor's calls to
//! GitHub's API (`githubOwners`, `addChangedFiles`), in declaration order, each seeing the
//! extensions the ones before it added. The authentication the interceptors do already ran
//! at the edge and is passed over here.

mod cel;
pub mod github;
pub mod webhook;

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::{Map, Value};
use sluice_runtime::retry::FailureKind;
use sluice_runtime::telemetry::traces;
use sluice_triggers::body::{FieldTree, NotJson};
use sluice_triggers::catalogue::{Interceptor, SlackInterceptor, WebhookInterceptor};
use sluice_triggers::headers::Headers;
use tracing::Instrument;

use github::{GitHubApi, GitHubSettings};
use webhook::{WebhookCall, WebhookClient, WebhookOutcome};

/// The event as interceptors see it, and as they leave it for the bindings.
#[derive(Debug, Clone)]
pub struct EventState {
    /// The body exactly as received (or as Tekton's form conversion or a legacy webhook
    /// interceptor replaced it).
    body_bytes: Bytes,
    /// The body read as JSON, once something asks for all of it; shared by the copies each
    /// trigger's chain starts from, so that it is read once per event. Not JSON only on a
    /// listener whose payload validation is off, and then whatever reads it as JSON fails
    /// the trigger, as in Tekton.
    body: Arc<OnceLock<Result<Value, NotJson>>>,
    /// Whether bindings may read only their fields of a body nothing has read whole
    /// (see [`EventState::body_for_bindings`]).
    fields_first: bool,
    pub headers: Headers,
    pub extensions: Map<String, Value>,
}

/// Up to how many triggers of an event the bindings of each read only their fields of the
/// body: reading the fields costs about a third of reading the whole body (`cargo bench -p
/// sluice-triggers --bench bindings -- body/`), so beyond two triggers one whole read for
/// all of them costs less.
const FIELD_READS_UP_TO: usize = 2;

impl EventState {
    /// The state of an event going to `triggers` triggers.
    pub fn new(body_bytes: Bytes, headers: Headers, triggers: usize) -> Self {
        EventState {
            body_bytes,
            body: Arc::default(),
            fields_first: triggers <= FIELD_READS_UP_TO,
            headers,
            extensions: Map::new(),
        }
    }

    /// The body as it is now.
    pub fn body_bytes(&self) -> &Bytes {
        &self.body_bytes
    }

    /// The body read as JSON (an empty body is `null`, as Tekton reads it); read the first
    /// time something asks.
    pub fn body(&self) -> Result<&Value, &NotJson> {
        self.body
            .get_or_init(|| sluice_triggers::body::parse(&self.body_bytes))
            .as_ref()
    }

    /// The body as bindings that read `reads` see it: the whole body when something already
    /// read it (or they read it whole, or the event goes to many triggers), else only their
    /// fields ([`sluice_triggers::body::parse_fields`]: the same values, the same failure).
    pub fn body_for_bindings(&self, reads: &FieldTree) -> Result<Cow<'_, Value>, NotJson> {
        if self.body.get().is_some() || !self.fields_first || reads.is_whole() {
            return self.body().map(Cow::Borrowed).map_err(NotJson::clone);
        }
        sluice_triggers::body::parse_fields(&self.body_bytes, reads).map(Cow::Owned)
    }

    /// Replaces the body (a legacy webhook interceptor's answer, or Tekton's form
    /// conversion), to be read anew.
    pub fn replace_body(&mut self, body_bytes: Bytes) {
        self.body_bytes = body_bytes;
        self.body = Arc::default();
    }
}

/// What the event is to the interceptors besides its contents.
#[derive(Debug, Clone, Copy)]
pub struct EventInfo<'a> {
    pub event_id: &'a str,
    /// The request's path and query, as `requestURL` and `event_url`.
    pub request_url: &'a str,
    /// `namespaces/NS/triggers/NAME`, as Tekton names a trigger to interceptors.
    pub trigger_id: &'a str,
}

/// How the chain ended.
#[derive(Debug, Clone)]
pub enum Passage {
    /// Every interceptor let the event through.
    Continue(EventState),
    /// An interceptor stopped the trigger: its name and why.
    Stopped { interceptor: String, reason: String },
}

/// An interceptor that could not decide.
#[derive(Debug, Clone, thiserror::Error)]
#[error("interceptor {interceptor}: {message}")]
pub struct InterceptorError {
    pub interceptor: String,
    pub kind: FailureKind,
    pub message: String,
}

/// Runs interceptor chains; shared by every in-flight event of a replica and by
/// `sluice render`.
#[derive(Debug, Clone)]
pub struct Interceptors {
    client: WebhookClient,
    cel_limits: sluice_cel::Limits,
    github: GitHubApi,
}

/// Whether the dispatcher runs `interceptor`: CEL and webhook interceptors, github
/// interceptors that call GitHub's API, and the `slack` interceptor's `requestedFields`.
/// Authentication ran at the edge, before the event was accepted.
pub fn runs_at_dispatch(interceptor: &Interceptor) -> bool {
    interceptor.runs_in_dispatcher()
}

impl Interceptors {
    /// Calls GitHub's API with [`GitHubSettings::default`] and the webhook client's time
    /// limit, attempts and backoff; see [`Self::with_github`].
    pub fn new(client: WebhookClient, cel_limits: sluice_cel::Limits) -> Self {
        let webhook = client.settings();
        let github = GitHubApi::new(GitHubSettings {
            timeout: webhook.timeout,
            attempts: webhook.attempts,
            backoff: webhook.backoff,
            max_response_bytes: webhook.max_response_bytes,
            ..GitHubSettings::default()
        });
        Self {
            client,
            cel_limits,
            github,
        }
    }

    /// Calls GitHub's API with `github`.
    pub fn with_github(mut self, github: GitHubApi) -> Self {
        self.github = github;
        self
    }

    /// Runs `interceptors` in order on `state`.
    pub async fn run(
        &self,
        interceptors: &[Interceptor],
        mut state: EventState,
        event: EventInfo<'_>,
    ) -> Result<Passage, InterceptorError> {
        for interceptor in interceptors {
            // Authentication ran at the edge, before the event was accepted: no span.
            let span = if runs_at_dispatch(interceptor) && traces::enabled() {
                crate::trace::interceptor(&name(interceptor), event)
            } else {
                tracing::Span::none()
            };
            let step = self
                .step(interceptor, &mut state, event)
                .instrument(span.clone())
                .await;
            crate::trace::intercepted(&span, &step);
            if let Some(reason) = step? {
                return Ok(Passage::Stopped {
                    interceptor: name(interceptor),
                    reason,
                });
            }
        }
        Ok(Passage::Continue(state))
    }

    /// Runs one interceptor on `state`; `Some`: why it stopped the trigger.
    async fn step(
        &self,
        interceptor: &Interceptor,
        state: &mut EventState,
        event: EventInfo<'_>,
    ) -> Result<Option<String>, InterceptorError> {
        match interceptor {
            Interceptor::Cel(interceptor) => cel::run(interceptor, self.cel_limits, state, event),
            Interceptor::Webhook(webhook) => self.webhook(webhook, state, event).await,
            Interceptor::Slack(SlackInterceptor {
                requested_fields: Some(fields),
                ..
            }) => Ok(slack_fields(fields, state)),
            Interceptor::GitHub(github_interceptor) if github_interceptor.calls_github() => {
                github::run(&self.github, github_interceptor, state).await
            }
            // Authentication ran at the edge, before the event was accepted.
            _ => Ok(None),
        }
    }

    async fn webhook(
        &self,
        interceptor: &WebhookInterceptor,
        state: &mut EventState,
        event: EventInfo<'_>,
    ) -> Result<Option<String>, InterceptorError> {
        let call = WebhookCall {
            body: &state.body_bytes,
            headers: &state.headers,
            extensions: &state.extensions,
            event_url: event.request_url,
            event_id: event.event_id,
            trigger_id: event.trigger_id,
        };
        let outcome = self
            .client
            .call(interceptor, &call)
            .await
            .map_err(|error| InterceptorError {
                interceptor: interceptor.name.clone(),
                kind: error.kind,
                message: error.message,
            })?;
        match outcome {
            WebhookOutcome::Stop { message } => Ok(Some(message)),
            WebhookOutcome::Continue {
                extensions,
                replaced,
            } => {
                // Later interceptors win, key by key.
                state.extensions.extend(extensions);
                if let Some((body_bytes, headers)) = replaced {
                    // As in Tekton, any body goes on; one that is not JSON fails the
                    // trigger where it is read as JSON.
                    state.replace_body(body_bytes);
                    state.headers = headers;
                }
                Ok(None)
            }
        }
    }
}

/// The `slack` interceptor's `requestedFields` into the extensions (its signature was
/// verified at the edge; the header itself never enters the queue). `Some`: why it stopped
/// the trigger, as Tekton's stops it.
fn slack_fields(fields: &[String], state: &mut EventState) -> Option<String> {
    match sluice_triggers::body::requested_fields(fields, &state.headers, &state.body_bytes) {
        Ok(extensions) => {
            state.extensions.extend(extensions);
            None
        }
        Err(error) => Some(error.to_string()),
    }
}

/// How messages name an interceptor.
fn name(interceptor: &Interceptor) -> String {
    match (interceptor, interceptor.kind()) {
        (Interceptor::Webhook(webhook), _) => webhook.name.clone(),
        (Interceptor::Cel(_), _) => "cel".to_owned(),
        (_, Some(kind)) => kind.to_string(),
        (_, None) => "interceptor".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use sluice_triggers::body::FieldTree;

    use super::*;

    fn reads(paths: &[&[&str]]) -> FieldTree {
        let mut reads = FieldTree::default();
        for path in paths {
            reads.insert(path.iter().copied());
        }
        reads
    }

    const BODY: &[u8] = br#"{"after":"abc","repository":{"name":"r","private":false}}"#;

    #[test]
    fn each_triggers_copy_shares_one_whole_read_of_the_body() {
        let state = EventState::new(Bytes::from_static(BODY), Headers::new(), 5);
        let copy = state.clone();
        let whole = copy.body().unwrap();
        assert!(std::ptr::eq(whole, state.body().unwrap()));
        let bound = state.body_for_bindings(&reads(&[&["after"]])).unwrap();
        assert!(matches!(bound, Cow::Borrowed(value) if std::ptr::eq(value, whole)));
    }

    #[test]
    fn bindings_of_a_lone_trigger_read_their_fields_until_something_reads_it_whole() {
        let mut state = EventState::new(Bytes::from_static(BODY), Headers::new(), 1);
        let fields = state.body_for_bindings(&reads(&[&["after"]])).unwrap();
        assert_eq!(*fields, serde_json::json!({"after": "abc"}));
        let whole = state.body().unwrap().clone();
        assert_eq!(whole["repository"]["name"], "r");
        assert_eq!(
            *state.body_for_bindings(&reads(&[&["after"]])).unwrap(),
            whole
        );

        state.replace_body(Bytes::from_static(b"{\"after\":"));
        let error = state.body_for_bindings(&reads(&[&["after"]])).unwrap_err();
        assert_eq!(Err(&error), state.body());
    }
}
