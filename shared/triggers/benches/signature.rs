//! The authentication step at the edge, as ingest's request path runs it: `auth::admit` on a
//! listener loaded from YAML, with the headers the provider sends. GitHub's
//! `X-Hub-Signature-256` over a 1 KiB body and over a realistic push (the fixture in
//! `benches/fixtures/`), with a valid and an invalid signature (the two should take
//! the same time: the MAC is compared in constant time); GitLab's token; Bitbucket's HMAC.
//!
//! `cargo bench -p sluice-triggers --bench signature`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;
use sluice_triggers::auth::{Admission, Refusal, admit};
use sluice_triggers::catalogue::{Catalogue, Listener};

/// A GitHub push delivery as GitHub sends it (compact JSON, about 8 KiB).
const GITHUB_PUSH: &[u8] = include_bytes!("fixtures/github-push.json");

const SECRET: &str = "bench-webhook-secret";

/// One listener per provider in `bench`, each with one trigger authenticated by the
/// provider's interceptor and the Secret it reads.
const CONFIG: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: webhook, namespace: bench}
stringData: {token: bench-webhook-secret}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: github, namespace: bench}
spec:
  triggers:
    - name: build-on-push
      interceptors:
        - ref: {name: github, kind: ClusterInterceptor}
          params:
            - {name: secretRef, value: {secretName: webhook, secretKey: token}}
            - {name: eventTypes, value: [push]}
      template: {ref: run}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: gitlab, namespace: bench}
spec:
  triggers:
    - name: build-on-push
      interceptors:
        - ref: {name: gitlab, kind: ClusterInterceptor}
          params:
            - {name: secretRef, value: {secretName: webhook, secretKey: token}}
            - {name: eventTypes, value: [Push Hook]}
      template: {ref: run}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: bitbucket, namespace: bench}
spec:
  triggers:
    - name: build-on-push
      interceptors:
        - ref: {name: bitbucket, kind: ClusterInterceptor}
          params:
            - {name: secretRef, value: {secretName: webhook, secretKey: token}}
            - {name: eventTypes, value: ["repo:push"]}
      template: {ref: run}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: run, namespace: bench}
spec:
  resourcetemplates:
    - {apiVersion: tekton.dev/v1, kind: PipelineRun, metadata: {generateName: run-}}
"#;

fn listeners() -> Catalogue {
    let catalogue = sluice_triggers::config::load_str("bench.yaml", CONFIG);
    assert!(catalogue.issues().is_empty(), "{:#?}", catalogue.issues());
    catalogue
}

fn listener(catalogue: &Catalogue, name: &str) -> Arc<Listener> {
    catalogue.listener("bench", name).unwrap().clone()
}

/// A JSON body of exactly `len` bytes.
fn body_of(len: usize) -> Vec<u8> {
    let head = br#"{"ref":"refs/heads/main","padding":""#;
    let tail = br#""}"#;
    let mut body = head.to_vec();
    body.resize(len - tail.len(), b'x');
    body.extend_from_slice(tail);
    body
}

fn hmac_sha256_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

/// The headers GitHub sends with a push delivery, signed with `secret`.
fn github_headers(secret: &str, body: &[u8]) -> HeaderMap {
    headers(&[
        ("accept", "*/*".into()),
        ("content-type", "application/json".into()),
        ("user-agent", "GitHub-Hookshot/3f5e2a1".into()),
        (
            "x-github-delivery",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
        ),
        ("x-github-event", "push".into()),
        ("x-github-hook-id", "292430182".into()),
        ("x-github-hook-installation-target-id", "79929171".into()),
        (
            "x-github-hook-installation-target-type",
            "repository".into(),
        ),
        (
            "x-hub-signature-256",
            format!("sha256={}", hmac_sha256_hex(secret, body)),
        ),
    ])
}

fn must_accept(result: Result<Admission, Refusal>) {
    assert!(matches!(result, Ok(Admission::Accepted(_))), "{result:?}");
}

fn must_refuse(result: Result<Admission, Refusal>, code: &str) {
    assert!(matches!(&result, Err(r) if r.code() == code), "{result:?}");
}

/// Checks that `valid` is admitted and `invalid` refused with `refusal`, then measures both
/// as `<id>/valid` and `<id>/invalid`: equal times show the comparison is constant-time.
fn valid_and_invalid(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    listener: &Listener,
    (valid, invalid): (&HeaderMap, &HeaderMap),
    body: &[u8],
    refusal: &str,
) {
    must_accept(admit(listener, valid, body));
    must_refuse(admit(listener, invalid, body), refusal);
    group.bench_function(format!("{id}/valid"), |b| {
        b.iter(|| admit(listener, black_box(valid), black_box(body)))
    });
    group.bench_function(format!("{id}/invalid"), |b| {
        b.iter(|| admit(listener, black_box(invalid), black_box(body)))
    });
}

fn github(c: &mut Criterion) {
    let catalogue = listeners();
    let listener = listener(&catalogue, "github");
    let one_kib = body_of(1024);
    let mut group = c.benchmark_group("signature/github");
    for (size, body) in [("1KiB", &one_kib[..]), ("push-8KiB", GITHUB_PUSH)] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        let valid = github_headers(SECRET, body);
        // Same length and form, another secret: the whole MAC is computed and compared.
        let invalid = github_headers("another-secret", body);
        valid_and_invalid(
            &mut group,
            size,
            &listener,
            (&valid, &invalid),
            body,
            "signature_invalid",
        );
    }
    group.finish();
}

fn gitlab(c: &mut Criterion) {
    let catalogue = listeners();
    let listener = listener(&catalogue, "gitlab");
    let body = GITHUB_PUSH;
    let with_token = |token: &str| {
        headers(&[
            ("content-type", "application/json".into()),
            ("user-agent", "GitLab/18.5.0".into()),
            ("x-gitlab-event", "Push Hook".into()),
            (
                "x-gitlab-event-uuid",
                "1d1a4e3b-0b4a-4a7e-9b8e-2f0c3c6d9e10".into(),
            ),
            ("x-gitlab-instance", "https://gitlab.example.com".into()),
            ("x-gitlab-token", token.into()),
        ])
    };
    let valid = with_token(SECRET);
    let invalid = with_token("bench-webhook-secreT");
    let mut group = c.benchmark_group("signature/gitlab");
    valid_and_invalid(
        &mut group,
        "token",
        &listener,
        (&valid, &invalid),
        body,
        "token_invalid",
    );
    group.finish();
}

fn bitbucket(c: &mut Criterion) {
    let catalogue = listeners();
    let listener = listener(&catalogue, "bitbucket");
    let body = GITHUB_PUSH;
    let signed = |secret: &str| {
        headers(&[
            ("content-type", "application/json".into()),
            ("user-agent", "Bitbucket-Webhooks/2.0".into()),
            ("x-event-key", "repo:push".into()),
            (
                "x-hook-uuid",
                "{0f3c8a52-6d7e-4c1b-9a2f-5e8d7c6b5a49}".into(),
            ),
            (
                "x-request-uuid",
                "8b0e5c4d-3a2f-4e1d-9c8b-7a6f5e4d3c2b".into(),
            ),
            (
                "x-hub-signature",
                format!("sha256={}", hmac_sha256_hex(secret, body)),
            ),
        ])
    };
    let valid = signed(SECRET);
    let invalid = signed("another-secret");
    let mut group = c.benchmark_group("signature/bitbucket");
    group.throughput(Throughput::Bytes(body.len() as u64));
    valid_and_invalid(
        &mut group,
        "push-8KiB",
        &listener,
        (&valid, &invalid),
        body,
        "signature_invalid",
    );
    group.finish();
}

criterion_group!(benches, github, gitlab, bitbucket);
criterion_main!(benches);
