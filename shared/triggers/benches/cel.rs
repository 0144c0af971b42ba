//! The `cel` interceptor's work on the realistic push: the JSON parse of the body on its
//! own (what the dispatcher pays once per event before any interceptor), compiling the
//! filter (done once, at configuration load), and evaluating the compiled filter and
//! overlay per event. The same filter on a minimal body shows how much of an evaluation
//! depends on the size of the body rather than on the expression.
//!
//! `cargo bench -p sluice-triggers --bench cel`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use sluice_cel::{self as cel, Activation, Limits, Program};

fn json(c: &mut Criterion) {
    let mut group = c.benchmark_group("json");
    group.throughput(Throughput::Bytes(common::GITHUB_PUSH.len() as u64));
    group.bench_function("parse/github-push", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(common::GITHUB_PUSH)).unwrap())
    });
    group.finish();
}

fn cel(c: &mut Criterion) {
    let listener = common::listener();
    let interceptor = common::cel(common::trigger(&listener));
    let filter = interceptor.filter.as_ref().unwrap();
    let overlay = &interceptor.overlays[0].expression;
    let body = common::body();
    let small = json!({
        "ref": body["ref"],
        "after": body["after"],
        "repository": {"full_name": body["repository"]["full_name"]},
    });
    let headers = common::headers();
    let extensions = Map::new();
    let activation = |body| Activation {
        body,
        header: headers.as_map(),
        extensions: &extensions,
        request_url: "/hooks/bench/github",
        secrets: interceptor,
        limits: Limits::default(),
    };
    let full = activation(&body);
    let minimal = activation(&small);
    assert_eq!(filter.eval(&full).unwrap(), cel::Value::Bool(true));
    assert_eq!(filter.eval(&minimal).unwrap(), cel::Value::Bool(true));
    assert_eq!(overlay.eval(&full).unwrap(), cel::Value::from("e1d2c3b"));

    let mut group = c.benchmark_group("cel");
    group.bench_function("compile/filter", |b| {
        b.iter(|| Program::compile(black_box(common::FILTER)).unwrap())
    });
    group.bench_function("eval/filter/github-push", |b| {
        b.iter(|| filter.eval(black_box(&full)))
    });
    group.bench_function("eval/filter/minimal-body", |b| {
        b.iter(|| filter.eval(black_box(&minimal)))
    });
    group.bench_function("eval/overlay-truncate/github-push", |b| {
        b.iter(|| overlay.eval(black_box(&full)))
    });
    // As the interceptor runs them: the filter, then each overlay, converted to JSON.
    group.bench_function("eval/filter+overlay/github-push", |b| {
        b.iter(|| {
            let passed = filter.eval(black_box(&full)).unwrap();
            let value = overlay.eval(black_box(&full)).unwrap().to_json().unwrap();
            (passed, value)
        })
    });
    group.finish();
}

criterion_group!(benches, json, cel);
criterion_main!(benches);
