//! Template rendering: the trigger's PipelineRun (labels, annotations, four params, two
//! workspaces) rendered with the params the binding resolves from the realistic push.
//!
//! `cargo bench -p sluice-triggers --bench template`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sluice_triggers::expr::resolve_params;
use sluice_triggers::template::{render, uid_for};

fn template(c: &mut Criterion) {
    let listener = common::listener();
    let trigger = common::trigger(&listener);
    let event = common::Event::new();
    let ctx = event.ctx();
    let params = resolve_params(&trigger.params, &trigger.template.params, &ctx).unwrap();
    let uid = uid_for("bench-run-key");
    let rendered = render(&trigger.template, &params, &uid).unwrap();
    assert_eq!(
        rendered[0]["metadata"]["generateName"].as_str(),
        Some("build-e1d2c3b-")
    );

    let mut group = c.benchmark_group("template");
    group.bench_function("render/pipelinerun", |b| {
        b.iter(|| render(&trigger.template, black_box(&params), black_box(&uid)))
    });
    group.bench_function("uid_for", |b| {
        b.iter(|| uid_for(black_box("bench-run-key")))
    });
    group.finish();
}

criterion_group!(benches, template);
criterion_main!(benches);
