//! Arbitrary CEL expressions compiled and evaluated over arbitrary JSON, as the `cel`
//! interceptor evaluates them: the input's first line is the expression, the rest the body
//! (parsed as JSON; bytes that are not JSON stand as one string). Headers, extensions and a
//! Secret for `compareSecret` are fixed.
//!
//! Invariants: no panic; compiling and evaluating the same input twice give the same
//! answer; an evaluation ends within its limits (cost, and time with a margin for the
//! machine); an error message never holds the Secret's value unless the input does (an
//! error may quote the expression or the body); a value converts to JSON
//! (`to_json`) without panicking.

#![no_main]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sluice_cel::{Activation, Limits, Program, SecretRef, SecretSource};

/// The Secret every `compareSecret` finds: never to appear in an answer.
const SECRET: &[u8] = b"fuzz-cel-secret-5b2e";

/// Small budgets, so that a slow expression is found fast: what matters is that the
/// evaluation stops at them, not where they are.
const LIMITS: Limits = Limits {
    max_cost: 20_000,
    max_time: Duration::from_millis(20),
};

/// How long past its time limit an evaluation may run: the clock is looked at every few
/// hundred steps, and one step (a regular expression, a string operation) is bounded by the
/// cost of its input.
const GRACE: Duration = Duration::from_millis(500);

struct Secrets;

impl SecretSource for Secrets {
    fn secret(&self, _: &SecretRef) -> Option<&[u8]> {
        Some(SECRET)
    }
}

fuzz_target!(|data: &[u8]| {
    let (expression, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let expression = String::from_utf8_lossy(expression);
    let body: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()));
    let header: BTreeMap<String, Vec<String>> = [
        ("X-Github-Event".to_owned(), vec!["push".to_owned()]),
        (
            "Content-Type".to_owned(),
            vec!["application/json".to_owned()],
        ),
    ]
    .into_iter()
    .collect();
    let extensions = serde_json::json!({"short_sha": "abc1234", "n": 3})
        .as_object()
        .cloned()
        .unwrap_or_default();

    let first = Program::compile(&expression);
    let again = Program::compile(&expression);
    let program = match (&first, &again) {
        (Ok(program), Ok(_)) => program,
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "the same source fails the same way");
            return;
        }
        _ => panic!("compiling {expression:?} twice gave different answers"),
    };
    let activation = Activation {
        body: &body,
        header: &header,
        extensions: &extensions,
        request_url: "/hooks/team-a/github?x=1",
        secrets: &Secrets,
        limits: LIMITS,
    };
    let started = Instant::now();
    let result = program.eval(&activation);
    let elapsed = started.elapsed();
    assert!(
        elapsed <= LIMITS.max_time + GRACE,
        "{expression:?} ran {elapsed:?}, past its limit"
    );
    let secret = String::from_utf8_lossy(SECRET);
    match &result {
        Ok(value) => {
            let _ = value.to_json();
        }
        // An error may quote the expression or the body, so the Secret's value may appear in
        // it only when the input already held it.
        Err(error) => assert!(
            !error.message.contains(&*secret) || data.windows(SECRET.len()).any(|w| w == SECRET),
            "an error names the Secret's value: {error}"
        ),
    }
    // Deterministic: the same evaluation, the same answer (unless a limit cut it short,
    // which the clock decides).
    let second = program.eval(&activation);
    match (&result, &second) {
        (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{expression:?}"),
        (Err(a), Err(b)) if a.kind == b.kind && a.kind == sluice_cel::EvalErrorKind::Runtime => {
            assert_eq!(a, b, "{expression:?}")
        }
        _ => {}
    }
});
