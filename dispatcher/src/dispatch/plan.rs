//! What a trigger makes of an event, as the dispatcher and `sluice render` both run it: the
//! interceptors the edge left (`cel`, webhooks; a trigger group's once per event), then
//! `sluice_triggers::plan` for the bindings, the template and the objects' names.

use std::collections::HashMap;

use bytes::Bytes;
use sluice_runtime::envelope::EventMeta;
use sluice_triggers::body::form_as_json;
use sluice_triggers::catalogue::{Interceptor, Listener, Trigger, WebhookProtocol};
use sluice_triggers::expr::{EventContext, trigger_body_reads};
use sluice_triggers::plan::{self, Plan, PlanError};

use super::TriggerError;
use crate::interceptor::{
    EventInfo, EventState, InterceptorError, Interceptors, Passage, runs_at_dispatch,
};

/// The outcome of each trigger group's interceptors for one event: they run once, whatever
/// the number of triggers the group selected.
#[derive(Debug, Default)]
pub struct GroupOutcomes(HashMap<String, Result<Passage, InterceptorError>>);

/// What `trigger` makes of an event: its interceptors that run after the edge (a trigger
/// group's once per event, through `groups`), then bindings and template, the objects named
/// from `run_key` (`sluice_triggers::idempotency::run_key`).
pub async fn plan_trigger(
    interceptors: &Interceptors,
    listener: &Listener,
    trigger: &Trigger,
    meta: &EventMeta,
    run_key: &str,
    input: &EventState,
    groups: &mut GroupOutcomes,
) -> Result<Plan, TriggerError> {
    let trigger_id = format!("namespaces/{}/triggers/{}", trigger.namespace, trigger.name);
    let event = EventInfo {
        event_id: &meta.event_id,
        request_url: &meta.request_url,
        trigger_id: &trigger_id,
    };
    let render = |state: &EventState| render(listener, trigger, meta, run_key, state);
    let (group_interceptors, own) = match &trigger.group {
        Some(group) => trigger
            .interceptors
            .split_at(group.interceptors.min(trigger.interceptors.len())),
        None => (&[][..], &trigger.interceptors[..]),
    };
    // A group's interceptors come first, and are run once for all its triggers: the form
    // is converted (or not) by what begins the chain they share.
    let chain = if group_interceptors.is_empty() {
        own
    } else {
        group_interceptors
    };
    let form = form_converted(chain, input);
    if trigger.group.is_none() && !own.iter().any(runs_at_dispatch) {
        // Nothing else can change the event: the bindings read it as it arrived, uncopied.
        return render(form.as_ref().unwrap_or(input));
    }
    let input = form.unwrap_or_else(|| input.clone());
    let after_group = match &trigger.group {
        Some(group) if !group_interceptors.is_empty() => {
            if !groups.0.contains_key(&group.name) {
                let outcome = interceptors
                    .run(group_interceptors, input.clone(), event)
                    .await;
                groups.0.insert(group.name.clone(), outcome);
            }
            match groups.0.get(&group.name) {
                Some(outcome) => outcome.clone()?,
                None => Passage::Continue(input),
            }
        }
        _ => Passage::Continue(input),
    };
    let state = match proceed(after_group) {
        Ok(state) => state,
        Err(filtered) => return Ok(filtered),
    };
    let state = match proceed(interceptors.run(own, state, event).await?) {
        Ok(state) => state,
        Err(filtered) => return Ok(filtered),
    };
    render(&state)
}

/// The objects `trigger` creates from the event as `state` holds it.
fn render(
    listener: &Listener,
    trigger: &Trigger,
    meta: &EventMeta,
    run_key: &str,
    state: &EventState,
) -> Result<Plan, TriggerError> {
    let body = state
        .body_for_bindings(trigger_body_reads(trigger))
        .map_err(PlanError::Body)?;
    let ctx = EventContext {
        body: &body,
        headers: &state.headers,
        extensions: &state.extensions,
        event_id: &meta.event_id,
    };
    Ok(Plan::Create(plan::render(
        listener, trigger, run_key, &ctx,
    )?))
}

/// The state to go on with, or the plan of a trigger an interceptor stopped.
fn proceed(passage: Passage) -> Result<EventState, Plan> {
    match passage {
        Passage::Continue(state) => Ok(state),
        Passage::Stopped {
            interceptor,
            reason,
        } => Err(Plan::Filtered {
            interceptor,
            reason,
        }),
    }
}

/// Tekton's conversion of a form-encoded body before a trigger's interceptors run (see
/// [`sluice_triggers::body::form_as_json`]): only for a trigger with interceptors (the edge's
/// count: Tekton runs them all in one chain), and not when the first is a legacy `webhook`,
/// which is sent the body as it came. `None`: the event stays as it is.
fn form_converted(chain: &[Interceptor], input: &EventState) -> Option<EventState> {
    match chain.first() {
        None => return None,
        Some(Interceptor::Webhook(webhook)) if webhook.protocol == WebhookProtocol::Legacy => {
            return None;
        }
        Some(_) => {}
    }
    let json = form_as_json(&input.headers, input.body_bytes())?;
    let mut converted = input.clone();
    converted.replace_body(Bytes::from(json));
    Some(converted)
}

/// The event's state before any interceptor: the body as received, to be read as JSON
/// where something reads it (an empty body is `null`, as Tekton reads it). A body that is not
/// JSON, which only a listener with payload validation off accepts, goes on as it is.
pub fn initial_state(body: Bytes, meta: &EventMeta) -> EventState {
    EventState::new(body, meta.headers.clone(), meta.triggers.len())
}
