//! The conformance suite: cases taken from cel-spec's conformance files and from Tekton
//! Triggers' CEL interceptor tests (`shared/cel/tests/conformance/`), each with its
//! provenance, run against this crate in Tekton's environment. Cases that need what
//! Tekton's environment lacks are counted as skipped, with the reason. The suite prints
//! its figures and fails if fewer cases pass than it has reached before.
//!
//! `CEL_CONFORMANCE_VERBOSE=1 cargo test -p sluice-cel conformance -- --nocapture` lists
//! every case that fails and the figures per file.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value as Json;

use super::activation::{Activation, Limits};
use super::checker::{Declarations, Mode};
use super::header::canonical_name;
use super::program::Program;
use super::secret::{SecretRef, SecretSource};
use super::time::{Duration, Timestamp};
use super::types::CelType;
use super::value::{MapKey, Type, Value};

/// The fewest cases that must pass: raise it when more pass, never lower it.
const RATCHET: usize = 1609;

/// Secrets by (name, key).
struct Secrets(BTreeMap<(String, String), Vec<u8>>);

impl SecretSource for Secrets {
    fn secret(&self, reference: &SecretRef) -> Option<&[u8]> {
        self.0
            .get(&(reference.name.clone(), reference.key.clone()))
            .map(Vec::as_slice)
    }
}

/// How one case went.
enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

#[derive(Default)]
struct Tally {
    passed: usize,
    applicable: usize,
    skipped: usize,
}

#[test]
fn conformance_suite_passes_at_least_as_often_as_before() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let verbose = std::env::var_os("CEL_CONFORMANCE_VERBOSE").is_some();
    let mut files: Vec<_> = ["cel-spec", "tekton"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root.join(dir)).into_iter().flatten())
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no conformance data under {}",
        root.display()
    );
    let mut per_file: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut skip_reasons: BTreeMap<String, usize> = BTreeMap::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let case: Json = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("{}: {e}: {line}", path.display());
            });
            let source = &case["source"];
            let file = format!(
                "{} {}",
                source["repository"].as_str().unwrap_or("?"),
                source["file"].as_str().unwrap_or("?")
            );
            let name = format!(
                "{file} / {} / {}",
                source["section"].as_str().unwrap_or("?"),
                source["test"].as_str().unwrap_or("?")
            );
            let tally = per_file.entry(file).or_default();
            match run(&case) {
                Outcome::Skipped(reason) => {
                    tally.skipped += 1;
                    *skip_reasons.entry(reason).or_default() += 1;
                }
                Outcome::Passed => {
                    tally.applicable += 1;
                    tally.passed += 1;
                }
                Outcome::Failed(why) => {
                    tally.applicable += 1;
                    failures.push(format!(
                        "{name}: `{}`: {why}",
                        case["expr"].as_str().unwrap_or("")
                    ));
                }
            }
        }
    }
    let total = per_file.values().fold(Tally::default(), |t, f| Tally {
        passed: t.passed + f.passed,
        applicable: t.applicable + f.applicable,
        skipped: t.skipped + f.skipped,
    });
    let mut err = std::io::stderr();
    if verbose {
        for failure in &failures {
            let _ = writeln!(err, "FAILED {failure}");
        }
        for (file, t) in &per_file {
            let _ = writeln!(
                err,
                "{file}: {} / {} / {}",
                t.passed, t.applicable, t.skipped
            );
        }
        for (reason, count) in &skip_reasons {
            let _ = writeln!(err, "skipped {count}: {reason}");
        }
    }
    let _ = writeln!(
        err,
        "cel conformance: {} passed / {} applicable / {} skipped",
        total.passed, total.applicable, total.skipped
    );
    assert!(
        total.passed >= RATCHET,
        "{} conformance cases pass, fewer than the {RATCHET} that passed before:\n{}",
        total.passed,
        failures.join("\n")
    );
}

/// Runs one case.
fn run(case: &Json) -> Outcome {
    if let Some(reason) = case["skip"].as_str() {
        return Outcome::Skipped(reason.to_owned());
    }
    if case["container"].is_string() {
        return Outcome::Skipped(
            "containers and qualified names resolved against them: Tekton's environment sets no container"
                .into(),
        );
    }
    match run_case(case) {
        Ok(()) => Outcome::Passed,
        Err(why) => Outcome::Failed(why),
    }
}

fn run_case(case: &Json) -> Result<(), String> {
    let source = case["expr"].as_str().ok_or("no expression")?;
    let mut declarations = Declarations::tekton().clone();
    for d in case["declarations"].as_array().into_iter().flatten() {
        let name = d["var"].as_str().ok_or("declaration without a name")?;
        let t = d["type"].as_str().ok_or("declaration without a type")?;
        let t = CelType::parse(t).ok_or_else(|| format!("unknown type {t}"))?;
        declarations.declare(name, t);
    }
    let mut variables = HashMap::new();
    if let Some(bindings) = case["bindings"].as_object() {
        for (name, value) in bindings {
            variables.insert(name.clone(), expected_value(value)?);
        }
    }
    let mode = if case["disable_check"] == true {
        Mode::Unchecked
    } else {
        Mode::Checked
    };
    let expect = &case["expect"];
    let program = match Program::compile_with(source, &declarations, mode) {
        Ok(p) => p,
        Err(e) if expect["compile_error"].is_string() => {
            let _ = e;
            return Ok(());
        }
        Err(e) => return Err(format!("does not compile: {e}")),
    };
    if expect["compile_error"].is_string() {
        return Err("compiles, but should not".into());
    }
    if let Some(t) = expect["type"].as_str() {
        let found = program.result_type().to_string();
        if found != t {
            return Err(format!("type {found}, expected {t}"));
        }
        if case["check_only"] == true || expect.get("value").is_none() {
            return Ok(());
        }
    }
    let body = case
        .get("body")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    let mut header: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, values) in case["header"].as_object().into_iter().flatten() {
        let values = values.as_array().into_iter().flatten();
        header
            .entry(canonical_name(name))
            .or_default()
            .extend(values.filter_map(|v| v.as_str().map(str::to_owned)));
    }
    let extensions = case["extensions"].as_object().cloned().unwrap_or_default();
    let mut secrets = BTreeMap::new();
    for (name, keys) in case["secrets"].as_object().into_iter().flatten() {
        for (key, value) in keys.as_object().into_iter().flatten() {
            let value = value.as_str().unwrap_or_default().as_bytes().to_vec();
            secrets.insert((name.clone(), key.clone()), value);
        }
    }
    let secrets = Secrets(secrets);
    let activation = Activation {
        body: &body,
        header: &header,
        extensions: &extensions,
        request_url: case["request_url"].as_str().unwrap_or(""),
        secrets: &secrets,
        limits: Limits::default(),
    };
    let result = program.eval_with(&activation, &variables);
    match (result, expect) {
        (Err(_), e) if e["error"].is_string() => Ok(()),
        (Ok(v), e) if e["error"].is_string() => Err(format!(
            "evaluates to {v:?}, expected an error ({})",
            e["error"].as_str().unwrap_or("")
        )),
        (Err(e), _) => Err(format!("fails: {e}")),
        (Ok(v), e) if e.get("json").is_some() => {
            let json = v.to_json().map_err(|e| format!("no JSON form: {e}"))?;
            if json == e["json"] {
                Ok(())
            } else {
                Err(format!("evaluates to {json}, expected {}", e["json"]))
            }
        }
        (Ok(v), e) => {
            let want = expected_value(&e["value"])?;
            if same(&v, &want) {
                Ok(())
            } else {
                Err(format!("evaluates to {v:?}, expected {want:?}"))
            }
        }
    }
}

/// A value in the suite's tagged form: `{"int": "1"}`, `{"list": [...]}`, …
fn expected_value(json: &Json) -> Result<Value, String> {
    let (tag, v) = json
        .as_object()
        .and_then(|o| o.iter().next())
        .ok_or_else(|| format!("not a tagged value: {json}"))?;
    let text = || v.as_str().ok_or_else(|| format!("not text: {json}"));
    Ok(match tag.as_str() {
        "null" => Value::Null,
        "bool" => Value::Bool(v.as_bool().ok_or("bool")?),
        "int" => Value::Int(text()?.parse().map_err(|e| format!("{e}"))?),
        "uint" => Value::Uint(text()?.parse().map_err(|e| format!("{e}"))?),
        "double" => Value::Double(match text()? {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            "nan" => f64::NAN,
            d => d.parse().map_err(|e| format!("{e}"))?,
        }),
        "string" => Value::from(text()?),
        "bytes" => {
            let hex = text()?;
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|e| format!("{e}"))?;
            Value::Bytes(bytes.into())
        }
        "list" => Value::from(
            v.as_array()
                .ok_or("list")?
                .iter()
                .map(expected_value)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        "map" => {
            let mut map = BTreeMap::new();
            for entry in v.as_array().ok_or("map")? {
                let key = expected_value(&entry[0])?;
                let key = MapKey::from_value(&key).ok_or("map key")?;
                map.insert(key, expected_value(&entry[1])?);
            }
            Value::Map(Arc::new(map))
        }
        "type" => Value::Type(Type::from_name(text()?).ok_or_else(|| format!("type {v}"))?),
        "timestamp" | "duration" => {
            let seconds = v[0].as_i64().ok_or("seconds")?;
            let nanos = v[1].as_i64().ok_or("nanos")?;
            if tag == "duration" {
                Value::Duration(Duration::from_nanos(
                    seconds
                        .checked_mul(1_000_000_000)
                        .and_then(|s| s.checked_add(nanos))
                        .ok_or("duration out of range")?,
                ))
            } else {
                let nanos = u32::try_from(nanos).map_err(|e| format!("{e}"))?;
                Value::Timestamp(Timestamp::from_unix(seconds, nanos).ok_or("timestamp")?)
            }
        }
        other => return Err(format!("unknown value kind {other}")),
    })
}

/// Whether two values are the same, kinds included (`1` is not `1u`), as the conformance
/// files compare them.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| same(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
