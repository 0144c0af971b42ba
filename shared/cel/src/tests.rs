//! The crate end to end: compiling, evaluating against an activation, and the limits that
//! keep hostile expressions and bodies in check.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

/// Secrets keyed by (name, key).
#[derive(Default)]
struct Secrets(BTreeMap<(String, String), Vec<u8>>);

impl SecretSource for Secrets {
    fn secret(&self, reference: &SecretRef) -> Option<&[u8]> {
        self.0
            .get(&(reference.name.clone(), reference.key.clone()))
            .map(Vec::as_slice)
    }
}

struct Fixture {
    body: serde_json::Value,
    headers: BTreeMap<String, Vec<String>>,
    extensions: serde_json::Map<String, serde_json::Value>,
    url: String,
    secrets: Secrets,
    limits: Limits,
}

impl Fixture {
    fn new(body: serde_json::Value) -> Self {
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in [
            ("X-GitHub-Event", "pull_request"),
            ("Content-Type", "application/json"),
            ("X-Multi", "first"),
            ("X-Multi", "second"),
        ] {
            headers
                .entry(header::canonical_name(name))
                .or_default()
                .push(value.to_owned());
        }
        let mut secrets = Secrets::default();
        secrets.0.insert(
            ("github-secret".into(), "token".into()),
            b"s3cret-token".to_vec(),
        );
        let extensions = json!({"short_sha": "abc1234"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        Self {
            body,
            headers,
            extensions,
            url: "https://hooks.example.com:8443/listener/path?foo=bar&foo=baz&x=1#top".into(),
            secrets,
            limits: Limits::default(),
        }
    }

    /// The error an expression fails with; a value is reported by type only (it may be huge).
    fn eval_err(&self, source: &str) -> EvalError {
        match self.eval(source) {
            Ok(value) => panic!("{source}: expected an error, got a {}", value.type_name()),
            Err(e) => e,
        }
    }

    fn eval(&self, source: &str) -> Result<Value, EvalError> {
        let program = Program::compile(source).unwrap_or_else(|e| panic!("{source}: {e}"));
        program.eval(&Activation {
            body: &self.body,
            header: &self.headers,
            extensions: &self.extensions,
            request_url: &self.url,
            secrets: &self.secrets,
            limits: self.limits,
        })
    }
}

fn github_body() -> serde_json::Value {
    json!({
        "action": "opened",
        "ref": "refs/heads/main",
        "count": 5,
        "ratio": 0.75,
        "id": 9007199254740993u64,
        "huge": 18446744073709551615u64,
        "pull_request": {"head": {"sha": "0123456789abcdef0123456789abcdef01234567"}},
        "items": ["a", "b", "c"],
        "empty": [],
        "test": "{\"a\": \"b\", \"n\": [1, 2]}",
        "value": "s3cret-token",
        "x": "Hello World-42",
        "labels": {"bug": true, "size": 3, "names": ["x", "y"]},
        "nothing": null,
    })
}

fn eval(source: &str) -> Value {
    Fixture::new(github_body())
        .eval(source)
        .unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn eval_err(source: &str) -> EvalError {
    Fixture::new(github_body()).eval_err(source)
}

fn compile_err(source: &str) -> String {
    match Program::compile(source) {
        Ok(_) => panic!("{source}: expected a compile error"),
        Err(e) => e.to_string(),
    }
}

fn assert_true(source: &str) {
    assert_eq!(eval(source), Value::Bool(true), "{source}");
}

fn string(s: &str) -> Value {
    Value::from(s)
}

// Tekton's documented examples.

#[test]
fn github_event_filter() {
    let source = "header.match('X-GitHub-Event', 'pull_request') && body.action in ['opened', 'synchronize']";
    assert_eq!(eval(source), Value::Bool(true));
    let mut fixture = Fixture::new(github_body());
    fixture.body["action"] = json!("closed");
    assert_eq!(fixture.eval(source).unwrap(), Value::Bool(false));
    assert_eq!(
        eval("header.match('x-github-event', 'push')"),
        Value::Bool(false)
    );
    // Go's `Header.Get` answers "" for an absent header.
    assert_eq!(eval("header.match('X-Absent', '')"), Value::Bool(true));
}

#[test]
fn header_access() {
    assert_eq!(eval("header['X-Github-Event'][0]"), string("pull_request"));
    assert_eq!(eval("header.canonical('x-multi')"), string("first"));
    assert_eq!(eval("header.canonical('X-Absent')"), string(""));
    assert_eq!(eval("size(header['X-Multi'])"), Value::Int(2));
    assert_true("'Content-Type' in header");
    assert_true("!has(header.Authorization)");
}

#[test]
fn truncate_split_and_friends() {
    assert_eq!(
        eval("body.pull_request.head.sha.truncate(7)"),
        string("0123456")
    );
    assert_eq!(eval("'abc'.truncate(10)"), string("abc"));
    assert_eq!(eval("'héllo'.truncate(3)"), string("hé"));
    assert_eq!(eval("'héllo'.truncate(2)"), string("h\u{fffd}"));
    assert!(compile_err("'héllo'.truncate(2u)").contains("no matching overload"));
    assert_eq!(eval("body.ref.split('/')[2]"), string("main"));
    assert_eq!(eval_err("'abc'.truncate(-1)").kind, EvalErrorKind::Runtime);
}

#[test]
fn parse_url() {
    assert_eq!(
        eval("requestURL.parseURL().query['foo']"),
        string("bar,baz")
    );
    assert_eq!(
        eval("requestURL.parseURL().queryStrings['foo'][0]"),
        string("bar")
    );
    assert_eq!(
        eval("requestURL.parseURL().queryStrings['foo'][1]"),
        string("baz")
    );
    assert_eq!(
        eval("requestURL.parseURL().host"),
        string("hooks.example.com:8443")
    );
    assert_eq!(eval("requestURL.parseURL().scheme"), string("https"));
    assert_eq!(eval("requestURL.parseURL().path"), string("/listener/path"));
    assert_eq!(
        eval("requestURL.parseURL().rawQuery"),
        string("foo=bar&foo=baz&x=1")
    );
    assert_eq!(eval("requestURL.parseURL().fragment"), string("top"));
    assert_true("!has(requestURL.parseURL().auth)");
    assert_eq!(
        eval("'https://me@h/p'.parseURL().auth.password"),
        string("")
    );
    assert_eq!(
        eval("'https://me:pw@h/p'.parseURL().auth.password"),
        string("pw")
    );
    assert!(
        eval_err("'http://h:x/'.parseURL()")
            .message
            .contains("invalid port")
    );
}

#[test]
fn parse_json_and_yaml() {
    assert_eq!(eval("body.test.parseJSON().a"), string("b"));
    assert_eq!(eval("body.test.parseJSON().n[1]"), Value::Int(2));
    assert_eq!(
        eval("'eyJhIjoiYiJ9'.decodeb64().parseJSON().a"),
        string("b")
    );
    assert_eq!(eval("'a: 1\\nb: [x, y]'.parseYAML().b[1]"), string("y"));
    assert_eq!(eval("'a: 1'.parseYAML().a"), Value::Int(1));
    assert!(
        eval_err("'[1, 2]'.parseJSON()")
            .message
            .contains("into a map")
    );
    assert_eq!(eval("''.parseYAML()"), eval("{}"));
    let error = eval_err("'{oops'.parseJSON()");
    assert!(
        error.message.starts_with("parseJSON: invalid JSON"),
        "{error}"
    );
}

#[test]
fn compare_secret() {
    assert_true("body.value.compareSecret('token', 'github-secret')");
    assert_eq!(
        eval("'wrong'.compareSecret('token', 'github-secret')"),
        Value::Bool(false)
    );
    let error = eval_err("body.value.compareSecret('token', 'other-secret', 'ns')");
    assert_eq!(error.kind, EvalErrorKind::Runtime);
    assert!(error.message.contains("'other-secret'"), "{error}");
    assert!(error.message.contains("'token'"), "{error}");
    assert!(error.message.contains("'ns'"), "{error}");
    assert!(!error.message.contains("s3cret"), "{error}");
}

#[test]
fn secret_refs_are_collected_sorted_and_deduplicated() {
    let program = Program::compile(
        "body.a.compareSecret('k2', 'b') || body.a.compareSecret('k1', 'b') \
         || body.a.compareSecret('k1', 'b') || body.a.compareSecret('k', 'a', 'ns') \
         || body.a.compareSecret(body.key, 'dynamic')",
    )
    .unwrap();
    let refs = program.secret_refs();
    let names: Vec<_> = refs
        .iter()
        .map(|r| (r.key.as_str(), r.name.as_str(), r.namespace.as_deref()))
        .collect();
    assert_eq!(
        names,
        [("k", "a", Some("ns")), ("k1", "b", None), ("k2", "b", None)]
    );
}

#[test]
fn first_last_translate_marshal() {
    assert_eq!(eval("body.items.first()"), string("a"));
    assert_eq!(eval("body.items.last()"), string("c"));
    assert_eq!(eval("body.empty.first()"), Value::Null);
    assert_eq!(eval("body.empty.last()"), Value::Null);
    assert_eq!(
        eval("body.x.translate('[^a-z]', '-')"),
        string("-ello--orld---")
    );
    assert_eq!(
        eval("'user@example.com'.translate('^(\\\\w+)@(.*)$', '$2/${1}')"),
        string("example.com/user")
    );
    assert_eq!(
        eval("body.labels.marshalJSON()"),
        string(r#"{"bug":true,"names":["x","y"],"size":3}"#)
    );
    assert_eq!(
        eval("[1, 'a', null, 2.5].marshalJSON()"),
        string(r#"[1,"a",null,2.5]"#)
    );
}

#[test]
fn encoders_and_math() {
    assert_eq!(eval("base64.encode(b'hi')"), string("aGk="));
    assert_eq!(
        eval("base64.decode('aGk=')"),
        Value::Bytes(b"hi".as_slice().into())
    );
    assert_eq!(
        eval("base64.decode('aGk')"),
        Value::Bytes(b"hi".as_slice().into())
    );
    assert_eq!(eval("math.greatest(1, 5, 3)"), Value::Int(5));
    assert_eq!(eval("math.greatest([1, 5.5, 3u])"), Value::Double(5.5));
    assert_eq!(eval("math.least(4, -2, 3)"), Value::Int(-2));
    assert_eq!(eval("math.greatest(7)"), Value::Int(7));
    assert_eq!(eval("math.ceil(1.2)"), Value::Double(2.0));
    assert_eq!(eval("math.floor(-1.2)"), Value::Double(-2.0));
    assert_eq!(eval("math.round(2.5)"), Value::Double(3.0));
    assert_eq!(eval("math.trunc(-2.7)"), Value::Double(-2.0));
    assert_eq!(eval("math.abs(-3)"), Value::Int(3));
    assert_eq!(eval("math.sign(-3.5)"), Value::Double(-1.0));
    assert_true("math.isNaN(0.0 / 0.0) && math.isInf(1.0 / 0.0) && math.isFinite(1.0)");
    assert!(
        eval_err("math.abs(-9223372036854775808)")
            .message
            .contains("overflow")
    );
    assert!(compile_err("math.greatest([])").contains("invalid single argument"));
    assert!(compile_err("math.greatest()").contains("at least one"));
}

#[test]
fn big_integers_stay_exact() {
    let value = eval("body.id");
    assert_eq!(value, Value::Int(9_007_199_254_740_993));
    assert_eq!(value.to_json().unwrap(), json!(9007199254740993u64));
    assert_eq!(eval("body.huge"), Value::Uint(u64::MAX));
    assert_eq!(eval("body.huge").to_json().unwrap(), json!(u64::MAX));
    assert_true("body.id == 9007199254740993");
    assert_true("body.id != 9007199254740992");
    assert_eq!(
        eval("{'id': body.id}").to_json().unwrap(),
        json!({"id": 9007199254740993u64})
    );
}

// Errors.

#[test]
fn runtime_errors_name_the_problem() {
    let error = eval_err("body.missing == 'x'");
    assert_eq!(error.kind, EvalErrorKind::Runtime);
    assert_eq!(error.message, "no such key: 'missing'");
    assert_eq!(
        eval_err("body.labels['nope']").message,
        "no such key: 'nope'"
    );
    assert_eq!(
        compile_err("size(1)"),
        "found no matching overload for 'size' applied to '(int)' at column 1"
    );
    assert_eq!(
        eval_err("size(dyn(1))").message,
        "no such overload: size(int)"
    );
    assert_eq!(
        eval_err("body.count.truncate(1)").message,
        "no such overload: int.truncate(int)"
    );
    assert_eq!(
        compile_err("'a' + 1"),
        "found no matching overload for '_+_' applied to '(string, int)' at column 5"
    );
    assert_eq!(
        eval_err("dyn('a') + 1").message,
        "no such overload: string + int"
    );
    assert!(
        eval_err("body.items[3]")
            .message
            .contains("index out of range")
    );
    assert!(
        eval_err("body.items[-1]")
            .message
            .contains("index out of range")
    );
    assert!(
        eval_err("body.action.foo")
            .message
            .contains("does not support field selection")
    );
    assert!(eval_err("body.nothing.foo").message.contains("null_type"));
    assert_eq!(
        eval_err("9223372036854775807 + 1").message,
        "integer overflow"
    );
    assert_eq!(
        eval_err("-9223372036854775808 - 1").message,
        "integer overflow"
    );
    assert_eq!(
        eval_err("2 * 4611686018427387904").message,
        "integer overflow"
    );
    assert_eq!(eval_err("0u - 1u").message, "unsigned integer overflow");
    assert_eq!(eval_err("1 / 0").message, "division by zero");
    assert_eq!(eval_err("1 % 0").message, "modulus by zero");
    assert_eq!(
        eval_err("-9223372036854775808 / -1").message,
        "integer overflow"
    );
    assert!(
        eval_err("{'a': 1, 'a': 2}")
            .message
            .contains("repeated key")
    );
    assert!(
        eval_err("'a'.matches('(')")
            .message
            .contains("invalid regular expression")
    );
    assert!(eval_err("int('x')").message.contains("cannot convert"));
    assert!(eval_err("int(1e19)").message.contains("out of range"));
}

#[test]
fn errors_do_not_dump_the_body() {
    let mut fixture = Fixture::new(github_body());
    fixture.body["blob"] = json!("A".repeat(10_000));
    let error = fixture.eval("body.blob.foo").unwrap_err();
    assert!(error.message.len() < 200, "{}", error.message);
    let error = fixture.eval("int(body.blob)").unwrap_err();
    assert!(error.message.len() < 200, "{}", error.message);
}

#[test]
fn compile_errors_have_positions() {
    assert_eq!(
        compile_err("body.a == (1 + )"),
        "unexpected token ')' at column 16"
    );
    assert_eq!(
        compile_err("body.a &&"),
        "unexpected token end of input at column 10"
    );
    assert_eq!(
        compile_err("foo.bar"),
        "undeclared reference to 'foo' at column 1"
    );
    assert_eq!(
        compile_err("body.a.nope()"),
        "unknown function 'nope' at column 8"
    );
    assert_eq!(
        compile_err("size(body, 1)"),
        "wrong number of arguments to 'size': expected 1, got 2 at column 1"
    );
    assert_eq!(
        compile_err("body.a.truncate()"),
        "wrong number of arguments to 'truncate': expected 1, got 0 at column 8"
    );
    assert!(compile_err("body.x.int()").contains("not a method"));
    assert!(compile_err("contains(body.a, 'x')").contains("is a method"));
    assert!(compile_err("math").contains("namespace"));
    assert!(compile_err("math.nope(1)").contains("unknown function 'math.nope'"));
    assert!(compile_err("'abc").contains("unterminated string"));
    assert!(compile_err("1 +\n  @").contains("at line 2, column 3"));
    assert!(compile_err("has(body)").contains("has()"));
    assert!(compile_err("[1].all(1, true)").contains("variable name"));
    assert!(compile_err("[1].all(x)").contains("macro 'all'"));
    assert!(compile_err("9223372036854775808").contains("out of range"));
    assert!(compile_err("'\\q'").contains("invalid escape"));
    assert!(compile_err("if").contains("reserved"));
    assert!(compile_err("x.map(v, v)").contains("undeclared reference to 'x'"));
}

#[test]
fn variables_in_scope_compile() {
    for source in [
        "body",
        "header",
        "extensions",
        "requestURL",
        "[1].map(x, x + 1)",
        "{'a': 1}.all(k, k == 'a')",
        "[1].map(math, math + 1)",
        "int",
        "body.package",
    ] {
        assert!(Program::compile(source).is_ok(), "{source}");
    }
}

// Language.

#[test]
fn literals() {
    assert_eq!(eval("0x1F"), Value::Int(31));
    assert_eq!(eval("0x1Fu"), Value::Uint(31));
    assert_eq!(eval("42u"), Value::Uint(42));
    assert_eq!(eval("-9223372036854775808"), Value::Int(i64::MIN));
    assert_eq!(eval("18446744073709551615u"), Value::Uint(u64::MAX));
    assert_eq!(eval("1.5e3"), Value::Double(1500.0));
    assert_eq!(eval(".5"), Value::Double(0.5));
    assert_eq!(eval("1e-2"), Value::Double(0.01));
    assert_eq!(eval(r#""a\tb\n\\\"'""#), string("a\tb\n\\\"'"));
    assert_eq!(eval(r"'\x41\u00e9\U0001F600\101'"), string("Aé😀A"));
    assert_eq!(
        eval(r"b'\xff\000'"),
        Value::Bytes([0xff, 0].as_slice().into())
    );
    assert_eq!(eval("'''a\n'b'''"), string("a\n'b"));
    assert_eq!(eval(r#""""x"y""""#), string("x\"y"));
    assert_eq!(eval(r"r'\d+\n'"), string("\\d+\\n"));
    assert_eq!(eval(r"R'\''"), string("\\'"));
    assert_eq!(eval("b'abc'"), Value::Bytes(b"abc".as_slice().into()));
    assert_eq!(eval("true"), Value::Bool(true));
    assert_eq!(eval("null"), Value::Null);
    assert_eq!(eval("[]"), Value::from(Vec::new()));
    assert_eq!(
        eval("[1, 2,]"),
        Value::from(vec![Value::Int(1), Value::Int(2)])
    );
    assert_eq!(eval("{}.size()"), Value::Int(0));
    assert_eq!(eval("{1: 'a', true: 'b', 'k': 'c'}[1]"), string("a"));
    assert_eq!(eval("// comment\n  1 // another\n"), Value::Int(1));
}

#[test]
fn operator_precedence() {
    assert_eq!(eval("1 + 2 * 3"), Value::Int(7));
    assert_eq!(eval("(1 + 2) * 3"), Value::Int(9));
    assert_eq!(eval("10 - 4 - 3"), Value::Int(3));
    assert_eq!(eval("7 % 4 * 2"), Value::Int(6));
    assert_eq!(eval("-2 * 3"), Value::Int(-6));
    assert_eq!(eval("--2"), Value::Int(2));
    assert_eq!(eval("!!true"), Value::Bool(true));
    assert_true("1 < 2 == true");
    assert_true("false || true && true");
    assert_true("!false && 1 + 1 == 2");
    assert_eq!(eval("true ? 1 : 2"), Value::Int(1));
    assert_eq!(eval("false ? 1 : true ? 2 : 3"), Value::Int(2));
    assert_eq!(eval("1 in [1, 2] ? 'yes' : 'no'"), string("yes"));
    assert_eq!(eval("-body.count"), Value::Int(-5));
    assert_eq!(eval("7 / 2"), Value::Int(3));
    assert_eq!(eval("-7 / 2"), Value::Int(-3));
    assert_eq!(eval("-7 % 3"), Value::Int(-1));
    assert_eq!(eval("7.0 / 2.0"), Value::Double(3.5));
}

#[test]
fn logic_is_commutative_over_errors() {
    assert_eq!(eval("false && body.missing"), Value::Bool(false));
    assert_eq!(eval("body.missing && false"), Value::Bool(false));
    assert_eq!(eval("true || body.missing"), Value::Bool(true));
    assert_eq!(eval("body.missing || true"), Value::Bool(true));
    assert_eq!(
        eval_err("body.missing && true").message,
        "no such key: 'missing'"
    );
    assert_eq!(
        eval_err("true && body.missing").message,
        "no such key: 'missing'"
    );
    assert!(compile_err("1 && true").contains("expected type 'bool' but found 'int'"));
    assert!(
        eval_err("dyn(1) && true")
            .message
            .contains("no such overload")
    );
    assert_eq!(eval("[1, 'a'].exists(x, x > 0)"), Value::Bool(true));
    assert!(
        eval_err("[1, 'a'].all(x, x > 0)")
            .message
            .contains("no such overload")
    );
    assert_eq!(eval("['a', 1].all(x, x < 0)"), Value::Bool(false));
}

#[test]
fn strings_and_lists_concatenate() {
    assert_eq!(eval("'foo' + 'bar'"), string("foobar"));
    assert_eq!(eval("b'a' + b'b'"), Value::Bytes(b"ab".as_slice().into()));
    assert_eq!(eval("[1] + [2, 3]"), eval("[1, 2, 3]"));
    assert_eq!(eval("size('héllo')"), Value::Int(5));
    assert_eq!(eval("b'h\\xc3\\xa9'.size()"), Value::Int(3));
}

#[test]
fn numbers_compare_across_types() {
    assert_true("body.count == 5");
    assert_true("body.count == 5.0");
    assert_true("body.count == 5u");
    assert_true("body.ratio > 0.5");
    assert_true("body.ratio < 1");
    // Statically, cel-go refuses to compare or mix numbers of different types (Tekton does
    // not enable cross-type comparisons); values it cannot see (`dyn`) compare by value.
    assert!(compile_err("1 < 1.5").contains("no matching overload"));
    assert!(compile_err("1.0 == 1u").contains("no matching overload"));
    assert!(compile_err("1 != 'a'").contains("no matching overload"));
    assert_true("dyn(1) < 1.5 && dyn(2u) > 1 && dyn(-1) < 0u && dyn(1.0) == 1u");
    assert_true("[1, 2.0, 3u] == [1.0, 2, 3]");
    assert_true("{'a': dyn(1)} == {'a': dyn(1.0)}");
    assert_true("dyn(2.0) in [1, 2]");
    assert_true("{1: 'x'}[dyn(1u)] == 'x'");
    assert_true("{1: 'x'}[dyn(1.0)] == 'x'");
    assert_true("dyn(1) != 'a'");
    assert_true("null == null && body.nothing == null");
    assert_true("0.0 / 0.0 != 0.0 / 0.0");
    // As in cel-go, NaN cannot be ordered, and ints compare with doubles in double.
    assert!(eval_err("0.0 / 0.0 < 1.0").message.contains("NaN"));
    assert_true("!(dyn(9223372036854775807) < 9223372036854775808.0)");
    assert_true("dyn(9223372036854775807) < 9223372036854775809000.0");
    assert_true("'a' < 'b' && b'a' < b'b' && false < true");
    assert!(compile_err("'a' < 1").contains("no matching overload"));
    assert!(
        eval_err("dyn('a') < 1")
            .message
            .contains("no such overload")
    );
    // Mixed double/int arithmetic computes in double.
    assert_eq!(eval("body.count * 1.5"), Value::Double(7.5));
    assert_eq!(eval("body.count + 1"), Value::Int(6));
    assert!(compile_err("1 + 1u").contains("no matching overload"));
    assert!(eval_err("dyn(1) + 1u").message.contains("no such overload"));
}

#[test]
fn has_and_macros() {
    assert_true("has(body.action)");
    assert_true("!has(body.missing)");
    assert_true("has(body.pull_request.head.sha)");
    assert!(
        eval_err("has(body.action.x)")
            .message
            .contains("field selection")
    );
    assert_true("[1, 2, 3].all(x, x > 0)");
    assert_true("![1, 2, 3].all(x, x > 1)");
    assert_true("[1, 2, 3].exists(x, x == 2)");
    assert_true("![].exists(x, true)");
    assert_true("[1, 2, 3].exists_one(x, x > 2)");
    assert_true("![1, 2, 3].exists_one(x, x > 1)");
    assert_eq!(eval("[1, 2, 3].map(x, x * 2)"), eval("[2, 4, 6]"));
    assert_eq!(eval("[1, 2, 3].map(x, x > 1, x * 10)"), eval("[20, 30]"));
    assert_eq!(eval("[1, 2, 3].filter(x, x % 2 == 1)"), eval("[1, 3]"));
    assert_eq!(
        eval("body.labels.filter(k, k != 'bug')"),
        eval("['names', 'size']")
    );
    assert_true("body.labels.exists(k, k == 'size')");
    assert_true("body.labels.all(k, body.labels[k] != null)");
    assert_eq!(
        eval("[[1, 2], [3]].map(l, l.map(x, x + 1))"),
        eval("[[2, 3], [4]]")
    );
    assert_true("[1, 2].all(x, [3, 4].all(y, y > x))");
    assert!(compile_err("1.all(x, true)").contains("cannot be range of a comprehension"));
    assert!(
        eval_err("dyn(1).all(x, true)")
            .message
            .contains("range over")
    );
    assert!(compile_err("[1].filter(x, 1)").contains("no matching overload"));
    assert!(
        eval_err("[1].filter(x, dyn(1))")
            .message
            .contains("not bool")
    );
}

#[test]
fn conversions() {
    assert_eq!(eval("int('42')"), Value::Int(42));
    assert_eq!(eval("int(-3.9)"), Value::Int(-3));
    assert_eq!(eval("int(7u)"), Value::Int(7));
    assert_eq!(eval("uint(7)"), Value::Uint(7));
    assert_eq!(eval("double(3)"), Value::Double(3.0));
    assert_eq!(eval("double('2.5')"), Value::Double(2.5));
    assert_eq!(eval("string(42)"), string("42"));
    assert_eq!(eval("string(1.5)"), string("1.5"));
    assert_eq!(eval("string(1e6)"), string("1e+06"));
    assert_eq!(eval("string(123456.0)"), string("123456"));
    assert_eq!(eval("string(0.0001)"), string("0.0001"));
    assert_eq!(eval("string(0.00001)"), string("1e-05"));
    assert_eq!(eval("string(b'hi')"), string("hi"));
    assert_eq!(eval("string(true)"), string("true"));
    assert_eq!(eval("bytes('hi')"), Value::Bytes(b"hi".as_slice().into()));
    assert_eq!(eval("bool('true')"), Value::Bool(true));
    assert_eq!(eval("type(1)"), Value::Type(Type::Int));
    assert_true("type(1) == int && type('a') == string && type(body) == map");
    assert_true("type(body.items) == list && type(null) == null_type && type(int) == type");
    assert_eq!(eval("dyn(1)"), Value::Int(1));
    assert!(eval_err("uint(-1)").message.contains("out of range"));
    assert!(eval_err("string(b'\\xff')").message.contains("UTF-8"));
}

#[test]
fn string_functions() {
    assert_true("'hello'.contains('ell') && 'hello'.startsWith('he') && 'hello'.endsWith('lo')");
    assert_true("'hello'.matches('^h.*o$') && matches('abc', 'b')");
    assert_true("!'hello'.matches('^x')");
    assert_eq!(eval("'héllo'.charAt(1)"), string("é"));
    assert_eq!(eval("'abc'.charAt(3)"), string(""));
    assert!(eval_err("'abc'.charAt(4)").message.contains("out of range"));
    assert_eq!(eval("'héllo héllo'.indexOf('llo')"), Value::Int(2));
    assert_eq!(eval("'héllo héllo'.indexOf('llo', 3)"), Value::Int(8));
    assert_eq!(eval("'abc'.indexOf('x')"), Value::Int(-1));
    assert_eq!(eval("'abc'.indexOf('')"), Value::Int(0));
    assert_eq!(eval("'héllo héllo'.lastIndexOf('llo')"), Value::Int(8));
    assert_eq!(eval("'héllo héllo'.lastIndexOf('llo', 7)"), Value::Int(2));
    assert_eq!(eval("'HeLLo'.lowerAscii()"), string("hello"));
    assert_eq!(eval("'HeLLo'.upperAscii()"), string("HELLO"));
    assert_eq!(eval("'a-b-c'.replace('-', '+')"), string("a+b+c"));
    assert_eq!(eval("'a-b-c'.replace('-', '+', 1)"), string("a+b-c"));
    assert_eq!(eval("'a,b,c'.split(',', 2)"), eval("['a', 'b,c']"));
    assert_eq!(eval("'a,b,c'.split(',', 0)"), eval("[]"));
    assert_eq!(eval("'abc'.split('')"), eval("['a', 'b', 'c']"));
    assert_eq!(eval("'héllo'.substring(1, 3)"), string("él"));
    assert_eq!(eval("'héllo'.substring(2)"), string("llo"));
    assert!(
        eval_err("'abc'.substring(2, 1)")
            .message
            .contains("invalid range")
    );
    assert_eq!(eval("'  padded \\t'.trim()"), string("padded"));
    assert_eq!(eval("['a', 'b'].join('-')"), string("a-b"));
    assert_eq!(eval("['a', 'b'].join()"), string("ab"));
    assert!(eval_err("['a', 1].join()").message.contains("only strings"));
    assert_eq!(eval("'héllo'.reverse()"), string("olléh"));
    assert_eq!(eval("strings.quote('a\"b\\n')"), string("\"a\\\"b\\n\""));
}

#[test]
fn list_functions() {
    assert_eq!(eval("lists.range(3)"), eval("[0, 1, 2]"));
    assert_eq!(eval("[1, 2, 3, 4].slice(1, 3)"), eval("[2, 3]"));
    assert!(eval_err("[1].slice(0, 2)").message.contains("out of range"));
    assert_eq!(eval("[1, [2, [3]]].flatten()"), eval("[1, 2, [3]]"));
    assert_eq!(eval("[1, [2, [3]]].flatten(2)"), eval("[1, 2, 3]"));
    assert_eq!(
        eval("[1, 2, 1.0, 'a', 'a'].distinct()"),
        eval("[1, 2, 'a']")
    );
    assert_eq!(eval("[1, 2, 3].reverse()"), eval("[3, 2, 1]"));
    assert_eq!(eval("[3, 1, 2].sort()"), eval("[1, 2, 3]"));
    assert_eq!(eval("['b', 'c', 'a'].sort()"), eval("['a', 'b', 'c']"));
    // As in cel-go, the elements must be of one type.
    assert!(
        eval_err("[3, 1.5, 2u].sort()")
            .message
            .contains("same type")
    );
    assert!(eval_err("[1, 'a'].sort()").message.contains("same type"));
}

#[test]
fn extensions_and_request_url() {
    assert_eq!(eval("extensions.short_sha"), string("abc1234"));
    assert_true("requestURL.startsWith('https://')");
}

#[test]
fn json_round_trip() {
    let body = github_body();
    assert_eq!(eval("body").to_json().unwrap(), body);
    assert_eq!(eval("b'hi'").to_json().unwrap(), json!("aGk="));
    assert_eq!(
        eval("{1: 'a', true: 'b'}").to_json().unwrap(),
        json!({"1": "a", "true": "b"})
    );
    assert_eq!(eval("2.0").to_json().unwrap(), json!(2));
    assert_eq!(eval("2.5").to_json().unwrap(), json!(2.5));
    assert!(eval("0.0 / 0.0").to_json().is_err());
    assert!(eval("[1.0 / 0.0]").to_json().is_err());
    assert_eq!(
        Value::from_json(&json!({"a": [1, -2, 1.5, 18446744073709551615u64]})),
        eval("{'a': [1, -2, 1.5, 18446744073709551615u]}")
    );
}

#[test]
fn programs_are_shareable() {
    fn assert_traits<T: fmt::Debug + Clone + Send + Sync>() {}
    assert_traits::<Program>();
    let program = Program::compile("body.count + 1").unwrap();
    assert_eq!(program.source(), "body.count + 1");
    let copy = program.clone();
    let handle = std::thread::spawn(move || copy.source().len());
    assert_eq!(handle.join().unwrap(), 14);
}

// Limits.

const NESTED_MAPS: &str = "[1,2,3,4,5,6,7,8,9,10].map(a, [1,2,3,4,5,6,7,8,9,10].map(b, \
    [1,2,3,4,5,6,7,8,9,10].map(c, [1,2,3,4,5,6,7,8,9,10].map(d, \
    [1,2,3,4,5,6,7,8,9,10].map(e, [1,2,3,4,5,6,7,8,9,10].map(f, f))))))";

#[test]
fn cost_limit_stops_nested_comprehensions() {
    let mut fixture = Fixture::new(github_body());
    // The default cost limit, and time enough that only the cost can stop it, however busy
    // the machine running the test.
    fixture.limits.max_time = Duration::from_secs(30);
    let started = Instant::now();
    let error = fixture.eval_err(NESTED_MAPS);
    assert_eq!(error.kind, EvalErrorKind::CostExceeded, "{error}");
    assert_eq!(error.message, "cost limit 1000000 exceeded");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn cost_limit_is_configurable() {
    let mut fixture = Fixture::new(github_body());
    fixture.limits.max_cost = 10;
    let error = fixture.eval("[1, 2, 3, 4, 5].map(x, x + 1)").unwrap_err();
    assert_eq!(error.kind, EvalErrorKind::CostExceeded);
    assert!(fixture.eval("1 + 1").is_ok());
}

/// Fields of the body are read without converting the rest of it; the answers, errors and
/// costs are those of the general path.
#[test]
fn selecting_from_the_body_behaves_like_the_converted_body() {
    // `body.pull_request.head.sha`: four nodes, four units.
    let mut fixture = Fixture::new(github_body());
    fixture.limits.max_cost = 4;
    assert_eq!(
        fixture.eval("body.pull_request.head.sha").unwrap(),
        string("0123456789abcdef0123456789abcdef01234567")
    );
    fixture.limits.max_cost = 3;
    let error = fixture.eval("body.pull_request.head.sha").unwrap_err();
    assert_eq!(error.kind, EvalErrorKind::CostExceeded);

    let Value::Map(body) = eval("body") else {
        panic!("the body is a map")
    };
    assert_eq!(
        Some(eval("body.labels")),
        body.get(&MapKey::String("labels".into())).cloned()
    );
    assert_eq!(eval("body.id"), Value::Int(9007199254740993));
    assert_eq!(eval("body.huge"), Value::Uint(u64::MAX));
    assert_true("has(body.nothing) && body.nothing == null");
    assert_true("!has(body.pull_request.base)");
    assert_eq!(
        eval_err("body.pull_request.base.sha").message,
        "no such key: 'base'"
    );
    assert!(
        eval_err("has(body.ref.x)")
            .message
            .contains("field selection")
    );
    // A comprehension variable named `body` hides the body.
    assert_true("[{'ref': 'x'}].all(body, body.ref == 'x')");
}

#[test]
fn cost_errors_are_not_absorbed_by_logic() {
    let mut fixture = Fixture::new(github_body());
    fixture.limits.max_cost = 50;
    let error = fixture
        .eval("lists.range(100).map(x, x).size() > 0 || true")
        .unwrap_err();
    assert_eq!(error.kind, EvalErrorKind::CostExceeded);
}

#[test]
fn time_limit_stops_evaluation() {
    let mut fixture = Fixture::new(github_body());
    fixture.limits = Limits {
        max_cost: u64::MAX,
        max_time: Duration::from_millis(20),
    };
    let started = Instant::now();
    let error = fixture.eval(NESTED_MAPS).unwrap_err();
    assert_eq!(error.kind, EvalErrorKind::Timeout, "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn built_values_are_bounded() {
    let mut fixture = Fixture::new(github_body());
    fixture.limits = Limits {
        max_cost: u64::MAX,
        max_time: Duration::from_secs(30),
    };
    // Each map doubles the string: 2^25 bytes is past the 16 MiB bound.
    let mut source = String::from("['aa']");
    for _ in 0..30 {
        source.push_str(".map(s, s + s)");
    }
    let error = fixture.eval_err(&source);
    assert_eq!(error.kind, EvalErrorKind::Runtime);
    assert!(error.message.contains("exceeds the limit"), "{error}");

    let error = fixture.eval_err("lists.range(2000000)");
    assert!(error.message.contains("exceeds the limit"), "{error}");
    let error = fixture
        .eval_err("'aaaaaaaaaa'.replace('a', 'aaaaaaaa').replace('a', 'aaaaaaaa').replace('a', 'aaaaaaaa').replace('a', 'aaaaaaaa').replace('a', 'aaaaaaaa').replace('a', 'aaaaaaaa').replace('a', 'aaaaaaaa')");
    assert!(error.message.contains("exceeds the limit"), "{error}");
    // Under the default limits the same doubling runs out of cost first.
    assert_eq!(
        Fixture::new(github_body()).eval_err(&source).kind,
        EvalErrorKind::CostExceeded
    );
}

#[test]
fn deep_nesting_is_a_compile_error() {
    let parens = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(compile_err(&parens).contains("nested too deeply"));
    let lists = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(compile_err(&lists).contains("nested too deeply"));
    let nots = format!("{}true", "!".repeat(10_000));
    assert!(compile_err(&nots).contains("nested too deeply"));
    let sums = vec!["1"; 10_000].join(" + ");
    assert!(compile_err(&sums).contains("nested too deeply"));
    let selects = format!("body{}", ".a".repeat(10_000));
    assert!(compile_err(&selects).contains("nested too deeply"));
    let calls = format!("body{}", ".size()".repeat(5_000));
    assert!(compile_err(&calls).contains("nested too deeply"));
    // Long `&&`/`||` chains are balanced, so they stay well within the limit.
    let ors = vec!["body.count == 1"; 3_000].join(" || ");
    assert_eq!(eval(&ors), Value::Bool(false));
    // Nesting just inside the limits evaluates without trouble.
    let parens = format!("{}1{}", "(".repeat(90), ")".repeat(90));
    assert_eq!(eval(&parens), Value::Int(1));
    let sums = vec!["1"; 150].join(" + ");
    assert_eq!(eval(&sums), Value::Int(150));
}

#[test]
fn long_sources_are_rejected() {
    let source = format!("'{}'", "a".repeat(MAX_SOURCE_BYTES));
    assert!(compile_err(&source).contains("longer than the limit"));
}

#[test]
fn hostile_inputs_do_not_panic() {
    for source in [
        "'\\u",
        "'\\U0011FFFF'",
        "b'\\u00e9'",
        "0x",
        "1e",
        "1.",
        "'é",
        "{",
        "{1:",
        "[1,",
        "a.",
        "body[",
        "?",
        "1 ? 2",
        "\u{0}",
        "r",
        "rb'x",
        "'''",
        "body.",
        ".5.5",
        "18446744073709551616u",
    ] {
        let _ = Program::compile(source);
    }
    for source in [
        "'abc'.substring(-1)",
        "'abc'.indexOf('a', 10)",
        "'abc'.lastIndexOf('a', -1)",
        "'é'.charAt(1)",
        "lists.range(-1)",
        "[1].flatten(-1)",
        "'abc'.split('b', -5)",
        "'abc'.replace('', 'x', -1)",
        "'%zz'.parseURL()",
        "':'.parseURL()",
        "'x'.decodeb64()",
        "dyn(b'\\xff').parseJSON()",
        "int(0.0 / 0.0)",
        "uint(1e30)",
        "math.abs(-9223372036854775808)",
        "[].sort()",
        "[0.0 / 0.0, 1.0, 0.0 / 0.0].sort()",
    ] {
        let _ = Fixture::new(github_body()).eval(source);
    }
}

#[test]
fn the_deepest_accepted_expressions_evaluate_on_a_small_stack() {
    // Tokio's worker threads have 2 MiB stacks; so do test threads, but be explicit.
    let run = || {
        let fixture = Fixture::new(github_body());
        // A select chain as tall as the tree may be.
        let selects = format!("body{}", ".a".repeat(parser::MAX_HEIGHT - 1));
        assert_eq!(fixture.eval_err(&selects).message, "no such key: 'a'");
        // Macros nested as deep as the parser allows.
        let mut nested = String::from("x0");
        for i in 1..(parser::MAX_NESTING - 1) {
            nested = format!("[1].map(x{i}, {nested})");
        }
        nested = nested.replacen("[1].map(x1, x0)", "[1].map(x0, x0)", 1);
        assert!(fixture.eval(&nested).is_ok(), "nested macros");
        // A tall arithmetic chain.
        let sums = vec!["1"; parser::MAX_HEIGHT / 2 + 50].join(" + ");
        assert!(fixture.eval(&sums).is_ok());
        // Deeply nested parsed JSON compared and converted (an object, as parseJSON wants).
        let json = format!("{{\"a\": {}1{}}}", "[".repeat(100), "]".repeat(100));
        let source = format!("'{json}'.parseJSON() == '{json}'.parseJSON()");
        assert_eq!(fixture.eval(&source).unwrap(), Value::Bool(true));
        let value = fixture.eval(&format!("'{json}'.parseJSON()")).unwrap();
        assert!(value.to_json().is_ok());
    };
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn literal_format_calls_are_checked_when_compiled() {
    assert_eq!(eval("'%s is %d'.format(['x', 3])"), string("x is 3"));
    assert_eq!(eval("'%.2f'.format([dyn(body.count)])"), string("5.00"));
    assert!(compile_err("'%d'.format(['a'])").contains("decimal clause"));
    assert!(compile_err("'%s %s'.format([1])").contains("index 1 out of range"));
    assert!(compile_err("'%s'.format([1, 2])").contains("too many arguments"));
    assert!(compile_err("'%q'.format([1])").contains("unrecognized formatting clause"));
    // A format that is not a literal is checked when evaluated.
    assert!(
        eval_err("('%' + 'q').format([1])")
            .message
            .contains("unrecognized formatting clause")
    );
}

#[test]
fn timestamps_and_durations() {
    assert_true("timestamp('2009-02-13T23:31:30Z') + duration('1h') > timestamp(1234567890)");
    assert_eq!(
        eval("string(timestamp('2009-02-13T23:31:30Z') - timestamp(0))"),
        string("1234567890s")
    );
    assert_eq!(
        eval("timestamp('2009-02-13T23:31:30Z').getHours('Asia/Kolkata')"),
        Value::Int(5)
    );
    assert_eq!(
        eval("timestamp('2009-02-14T00:31:30+01:00').getHours()"),
        Value::Int(0)
    );
    assert_true("type(duration('1s')) == google.protobuf.Duration");
    assert!(
        eval_err("timestamp('2009-02-13T23:31:30Z').getHours('Mars/Olympus')")
            .message
            .contains("unknown time zone")
    );
    assert!(
        eval_err("timestamp(253402300800)")
            .message
            .contains("range")
    );
    assert!(compile_err("duration(1)").contains("no matching overload"));
    assert_eq!(
        eval("{'at': timestamp(0)}").to_json().unwrap(),
        json!({"at": "1970-01-01T00:00:00Z"})
    );
}

#[test]
fn large_expressions_compile_quickly() {
    // Each comparison and `in` unifies type parameters; checking must not grow with the
    // square of the expression.
    let ors = vec!["body.a in ['x', 'y'] || body.b == 1"; 1_500].join(" || ");
    let list = format!(
        "[{}].size() > 0",
        (0..6_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for source in [ors, list] {
        assert!(source.len() < MAX_SOURCE_BYTES);
        let started = Instant::now();
        Program::compile(&source).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
