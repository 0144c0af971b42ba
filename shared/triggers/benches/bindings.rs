//! Binding resolution: a typical GitHub push binding (`$(body.after)`,
//! `$(body.repository.clone_url)`, `$(header.X-GitHub-Event)`, `$(body.head_commit.message)`,
//! `$(extensions.short_sha)`) resolved against the parsed realistic push, as the dispatcher
//! does once per trigger and event; and the body read for them, whole or only the fields
//! the bindings read.
//!
//! `cargo bench -p sluice-triggers --bench bindings`

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sluice_triggers::body::{parse, parse_fields};
use sluice_triggers::expr::{evaluate, resolve_params, trigger_body_reads};

fn bindings(c: &mut Criterion) {
    let listener = common::listener();
    let trigger = common::trigger(&listener);
    let event = common::Event::new();
    let ctx = event.ctx();
    let params = resolve_params(&trigger.params, &trigger.template.params, &ctx).unwrap();
    assert_eq!(params["short-sha"], "e1d2c3b");
    assert_eq!(params["event"], "push");

    let mut group = c.benchmark_group("bindings");
    group.bench_function("resolve/github-push/5-params", |b| {
        b.iter(|| resolve_params(&trigger.params, &trigger.template.params, black_box(&ctx)))
    });
    // One expression at a time, to see what each kind of root costs.
    for (name, expression) in [
        ("body.after", "body.after"),
        ("body.repository.clone_url", "body.repository.clone_url"),
        ("body.head_commit.message", "body.head_commit.message"),
        ("header.X-GitHub-Event", "header.X-GitHub-Event"),
        ("extensions.short_sha", "extensions.short_sha"),
    ] {
        group.bench_function(format!("evaluate/{name}"), |b| {
            b.iter(|| evaluate(black_box(expression), &ctx))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("body");
    let reads = trigger_body_reads(trigger);
    assert!(!reads.is_whole());
    let fields = parse_fields(common::GITHUB_PUSH, reads).unwrap();
    assert_eq!(
        fields["repository"]["clone_url"],
        event.body["repository"]["clone_url"]
    );
    group.bench_function("parse/github-push", |b| {
        b.iter(|| parse(black_box(common::GITHUB_PUSH)))
    });
    group.bench_function("parse_fields/github-push/bindings", |b| {
        b.iter(|| parse_fields(black_box(common::GITHUB_PUSH), reads))
    });
    group.finish();
}

criterion_group!(benches, bindings);
criterion_main!(benches);
