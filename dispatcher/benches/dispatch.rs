//! One GitHub push through the dispatcher's offline path, as `plan_trigger` runs it for a
//! trigger: the body parsed into the event state, the `cel` interceptor's filter and overlay,
//! the binding's five params, the PipelineRun template, Tekton's labels and the idempotency
//! stamp. Nothing here touches the network: the trigger has no webhook interceptor, and its
//! `github` interceptor already ran at the edge.
//!
//! `cargo bench -p sluice-dispatcher --bench dispatch`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../shared/triggers/benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use sluice_dispatcher::args::InterceptorArgs;
use sluice_dispatcher::dispatch::{GroupOutcomes, initial_state, plan_trigger};
use sluice_dispatcher::interceptor::{EventState, Interceptors};
use sluice_runtime::envelope::{EventMeta, SCHEMA_VERSION};
use sluice_triggers::catalogue::{Listener, Trigger};
use sluice_triggers::idempotency;
use sluice_triggers::plan::Plan;

fn interceptors() -> Interceptors {
    InterceptorArgs {
        interceptor_timeout: Duration::from_secs(10),
        interceptor_attempts: 3,
        cel_cost_limit: 1_000_000,
        cel_time_limit: Duration::from_millis(100),
        github_api_url: sluice_dispatcher::interceptor::github::DEFAULT_API_URL.to_owned(),
    }
    .interceptors()
}

fn meta() -> EventMeta {
    EventMeta {
        schema: SCHEMA_VERSION,
        event_id: common::EVENT_ID.to_owned(),
        namespace: "bench".to_owned(),
        listener: "github".to_owned(),
        received_at_ms: 0,
        idempotency_key: "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned(),
        triggers: vec!["build-on-push".to_owned()],
        traceparent: None,
        request_url: "/hooks/bench/github".to_owned(),
        headers: common::headers(),
    }
}

/// `plan_trigger` to completion, with the event's keys computed as the dispatcher computes
/// them for each event: with only `cel` interceptors it never waits, so one poll finishes it.
fn plan(
    interceptors: &Interceptors,
    listener: &Listener,
    trigger: &Trigger,
    meta: &EventMeta,
    input: &EventState,
) -> Plan {
    let event_key = idempotency::event_key(&meta.idempotency_key, &meta.event_id);
    let run_key = idempotency::run_key(&event_key, trigger);
    plan_trigger(
        interceptors,
        listener,
        trigger,
        meta,
        &run_key,
        input,
        &mut GroupOutcomes::default(),
    )
    .now_or_never()
    .expect("no interceptor waits")
    .unwrap()
}

fn dispatch(c: &mut Criterion) {
    let interceptors = interceptors();
    let listener = common::listener();
    let trigger = common::trigger(&listener);
    let meta = meta();
    let body = Bytes::from_static(common::GITHUB_PUSH);
    let input = initial_state(body.clone(), &meta);
    match plan(&interceptors, &listener, trigger, &meta, &input) {
        Plan::Create(objects) => {
            assert_eq!(objects.len(), 1);
            assert_eq!(objects[0]["spec"]["params"][2]["value"], "e1d2c3b");
        }
        Plan::Filtered { reason, .. } => panic!("filtered: {reason}"),
    }

    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("initial_state/github-push", |b| {
        b.iter(|| initial_state(black_box(body.clone()), &meta))
    });
    group.bench_function("plan_trigger/github-push", |b| {
        b.iter(|| plan(&interceptors, &listener, trigger, &meta, black_box(&input)))
    });
    group.bench_function("event_to_runs/github-push", |b| {
        b.iter(|| {
            let input = initial_state(black_box(body.clone()), &meta);
            plan(&interceptors, &listener, trigger, &meta, &input)
        })
    });
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
