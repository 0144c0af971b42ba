//! Binding resolution as Tekton's `applyEventValuesToParams` does it: finding expressions in
//! a value, replacing them, defaults, errors. The JSONPath dialect itself is in `jsonpath`.

use serde_json::{Value, json};

use super::*;

mod jsonpath;

/// A trimmed GitHub `push` payload, parsed from its text as a delivery would be.
const PUSH: &str = r#"{
  "ref": "refs/heads/main",
  "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
  "repository": {"full_name": "octo/hello", "clone_url": "https://github.com/octo/hello.git"},
  "head_commit": {"message": "Fix \"quoted\" bug\n\nSigned-off-by: Octo <octo@example.com>"},
  "a": "val1",
  "b": "val2",
  "points_at_b": "$(body.b)",
  "secret_note": "do-not-leak-this"
}"#;

fn push_body() -> Value {
    serde_json::from_str(PUSH).expect("valid JSON")
}

pub(super) fn headers() -> Headers {
    [
        ("x-github-event", "push"),
        ("X-GitHub-Delivery", "72d3162e"),
        ("Accept", "text/plain"),
        ("accept", "application/json"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}

pub(super) fn extensions() -> serde_json::Map<String, Value> {
    match json!({"foo": {"bar": ["a", "b", "c"]}, "title": "Add \"x\""}) {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

pub(super) fn context<'a>(
    body: &'a Value,
    headers: &'a Headers,
    extensions: &'a serde_json::Map<String, Value>,
) -> EventContext<'a> {
    EventContext {
        body,
        headers,
        extensions,
        event_id: "4f1c2d9e-0000-4000-8000-000000000001",
    }
}

fn param(name: &str, value: &str) -> BindingParam {
    BindingParam {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

fn declared(name: &str, default: Option<&str>) -> ParamSpec {
    ParamSpec {
        name: name.to_owned(),
        description: None,
        default: default.map(str::to_owned),
    }
}

/// Resolves the params against the push event with the template's `declared` params.
fn resolve(
    params: &[BindingParam],
    declared: &[ParamSpec],
) -> Result<BTreeMap<String, String>, ExprError> {
    let (body, headers, extensions) = (push_body(), headers(), extensions());
    resolve_params(params, declared, &context(&body, &headers, &extensions))
}

/// Resolves one param named `p` (no template params) against the push event.
fn resolve_one(value: &str) -> Result<String, ExprError> {
    let mut params = resolve(&[param("p", value)], &[])?;
    Ok(params.remove("p").expect("the param is resolved"))
}

fn problem(value: &str) -> Problem {
    match resolve_one(value) {
        Err(ExprError::Invalid { problem, .. }) => problem,
        other => panic!("expected an invalid expression for {value:?}, got {other:?}"),
    }
}

#[test]
fn strings_are_inserted_json_escaped_without_quotes() {
    assert_eq!(
        resolve_one("$(body.repository.clone_url)").unwrap(),
        "https://github.com/octo/hello.git"
    );
    assert_eq!(
        resolve_one("$(body.head_commit.message)").unwrap(),
        r#"Fix \"quoted\" bug\n\nSigned-off-by: Octo <octo@example.com>"#
    );
}

#[test]
fn literal_text_around_expressions_is_kept() {
    // Tekton's "param contains multiple JSONPath expressions" and "static values" cases.
    assert_eq!(resolve_one("$(body.a): $(body.b)").unwrap(), "val1: val2");
    assert_eq!(
        resolve_one("body.a is: $(body.a)").unwrap(),
        "body.a is: val1"
    );
    assert_eq!(
        resolve_one("ref-$(body.after)-$(header.X-GitHub-Event)").unwrap(),
        "ref-0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c-push"
    );
    assert_eq!(
        resolve_one("costs $5 (or $ (six))").unwrap(),
        "costs $5 (or $ (six))"
    );
    assert_eq!(resolve_one("").unwrap(), "");
}

#[test]
fn header_names_match_in_any_case_and_values_join_with_commas() {
    let (body, extensions) = (Value::Null, serde_json::Map::new());
    let headers: Headers = [("Header-One", "val1"), ("Header-One", "val2")]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let ctx = context(&body, &headers, &extensions);
    let resolved = resolve_params(
        &[
            param("lower", "$(header.header-one)"),
            param("exact", "$(header.Header-One)"),
            param("all", "$(header)"),
        ],
        &[],
        &ctx,
    )
    .unwrap();
    assert_eq!(resolved["lower"], "val1,val2");
    assert_eq!(resolved["exact"], "val1,val2");
    assert_eq!(resolved["all"], r#"{"Header-One":"val1,val2"}"#);
}

#[test]
fn nested_expressions_resolve_the_innermost_and_keep_the_outer_text() {
    assert_eq!(resolve_one("$($(body.a))").unwrap(), "$(val1)");
    assert_eq!(resolve_one("$($($(body.a)))").unwrap(), "$($(val1))");
    assert_eq!(
        resolve_one("($(body.a))-and-$(body.b)").unwrap(),
        "(val1)-and-val2"
    );
}

#[test]
fn an_unclosed_expression_is_literal_text() {
    assert_eq!(resolve_one("ref-$(body.ref").unwrap(), "ref-$(body.ref");
    assert_eq!(
        resolve_one("$(body.a)-$(not-this").unwrap(),
        "val1-$(not-this"
    );
    assert_eq!(resolve_one("asd)$(asd").unwrap(), "asd)$(asd");
    // The first unbalanced `)` ends the expression; the rest is text.
    assert_eq!(resolve_one("$())))").unwrap(), ")))");
}

#[test]
fn expressions_replace_every_occurrence_in_order_as_tekton_does() {
    assert_eq!(resolve_one("$(body.a)/$(body.a)").unwrap(), "val1/val1");
    // Text from the event is never expanded again, whatever comes after it: its `$(` is
    // written `$$(` so that neither Sluice nor Tekton Pipelines reads it as a variable.
    assert_eq!(
        resolve_one("$(body.points_at_b) then $(body.b)").unwrap(),
        "$$(body.b) then val2"
    );
    assert_eq!(
        resolve_one("$(body.b) then $(body.points_at_b)").unwrap(),
        "val2 then $$(body.b)"
    );
    assert_eq!(resolve_one("$(body.points_at_b)").unwrap(), "$$(body.b)");
}

#[test]
fn context_event_id_and_extensions_resolve() {
    assert_eq!(
        resolve_one("$(context.eventID)").unwrap(),
        "4f1c2d9e-0000-4000-8000-000000000001"
    );
    assert_eq!(resolve_one("$(extensions.foo.bar[1])").unwrap(), "b");
}

#[test]
fn defaults_are_seeded_and_binding_values_override_them() {
    let resolved = resolve(
        &[param("p1", "val1"), param("p2", "$(body.a)")],
        &[
            declared("p2", Some("defaultVal")),
            declared("p3", Some("three")),
            declared("p4", None),
        ],
    )
    .unwrap();
    assert_eq!(resolved["p1"], "val1");
    assert_eq!(
        resolved["p2"], "val1",
        "a binding value wins over the default"
    );
    assert_eq!(
        resolved["p3"], "three",
        "an unbound param takes its default"
    );
    assert!(
        !resolved.contains_key("p4"),
        "no value and no default: absent"
    );
}

#[test]
fn a_failing_expression_falls_back_to_the_params_default() {
    let defaults = [declared("p", Some("main"))];
    let resolved = resolve(&[param("p", "$(body.missing)")], &defaults).unwrap();
    assert_eq!(resolved["p"], "main");
    // The default stands in for the failing expression only; the rest of the value stays.
    let resolved = resolve(&[param("p", "ref-$(body.missing)-$(body.a)")], &defaults).unwrap();
    assert_eq!(resolved["p"], "ref-main-val1");
    // Tekton falls back on any failure, malformed expressions included.
    let resolved = resolve(&[param("p", "$(body.a[)")], &defaults).unwrap();
    assert_eq!(resolved["p"], "main");
}

#[test]
fn a_failing_expression_without_a_default_is_an_error() {
    // Another param's default does not help.
    let err = resolve(
        &[param("p", "x-$(body.missing)")],
        &[declared("p", None), declared("q", Some("d"))],
    )
    .unwrap_err();
    assert_eq!(err.param(), "p");
    assert_eq!(
        err.to_string(),
        "param `p`: `$(body.missing)`: `body` has no field `missing`"
    );
}

#[test]
fn errors_name_param_and_expression_but_not_the_body() {
    let message = resolve_one("$(body.secret_note[0])")
        .unwrap_err()
        .to_string();
    assert!(message.contains("is a string"), "{message}");
    assert!(!message.contains("do-not-leak-this"), "{message}");
    let message = resolve_one("$(body.secret_note.x)")
        .unwrap_err()
        .to_string();
    assert!(!message.contains("do-not-leak-this"), "{message}");
}

#[test]
fn unknown_roots_are_errors() {
    for (value, root) in [
        ("$(tt.params.x)", "tt"),
        ("$(params.x)", "params"),
        ("$(uid)", "uid"),
        ("$(bodyref)", "bodyref"),
    ] {
        assert_eq!(problem(value), Problem::UnknownRoot(root.into()), "{value}");
    }
}

#[test]
fn later_params_with_the_same_name_win() {
    let resolved = resolve(
        &[
            param("revision", "$(body.ref)"),
            param("url", "$(body.repository.clone_url)"),
            param("revision", "$(body.after)"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(resolved.len(), 2);
    assert_eq!(
        resolved["revision"],
        "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
    );
    // An error anywhere fails the whole set, even if a later param would shadow it.
    let err = resolve(&[param("a", "$(body.nope)"), param("a", "fine")], &[]).unwrap_err();
    assert_eq!(err.param(), "a");
}

#[test]
fn big_integers_resolve_exactly() {
    let body = json!({"u": 12345678901234567890_u64, "i": -9007199254740993_i64});
    let (headers, extensions) = (Headers::new(), serde_json::Map::new());
    let resolved = resolve_params(
        &[param("u", "$(body.u)"), param("i", "n=$(body.i)")],
        &[],
        &context(&body, &headers, &extensions),
    )
    .unwrap();
    assert_eq!(resolved["u"], "12345678901234567890");
    assert_eq!(resolved["i"], "n=-9007199254740993");
}

#[test]
fn check_parses_expressions_without_an_event() {
    for ok in [
        r"x-$(body.a[0].b\.c)-$(header.X)-$(context.eventID)",
        "$(body.does.not.matter)",
        "$({.body.items[?(@.a == 'd')].w})",
        "$(body.list[-2:])",
        "$(extensions.x.*)",
        "$()",
        "unclosed $(body",
        "$($(body.a))",
        "no expression",
    ] {
        assert!(check(&param("a", ok)).is_ok(), "{ok}");
    }
    for (bad, expected) in [
        ("$(tt.params.x)", "unknown root"),
        ("$(body.a[x])", "not an index"),
        ("$(body.a b)", "unexpected word"),
        ("$({body.a)", "braces"),
        ("$(body.items[?(@.n => 1)])", "unknown operator"),
    ] {
        let err = check(&param("a", bad)).expect_err(bad);
        assert!(err.to_string().contains(expected), "{bad}: {err}");
    }
}

#[test]
fn expressions_are_found_as_tekton_finds_them() {
    let found = |value| {
        expressions(value)
            .into_iter()
            .map(|f| (f.original, f.expression))
            .collect::<Vec<_>>()
    };
    // Tekton's `TestFindTektonExpressions` cases.
    assert_eq!(found("$(body.blah)"), [("$(body.blah)", "body.blah")]);
    assert_eq!(
        found("$(body.blah)-$(header.*)"),
        [("$(body.blah)", "body.blah"), ("$(header.*)", "header.*")]
    );
    assert_eq!(
        found("start:$(body.[?(@.a == 'd')])-$(body.another-one)"),
        [
            ("$(body.[?(@.a == 'd')])", "body.[?(@.a == 'd')]"),
            ("$(body.another-one)", "body.another-one")
        ]
    );
    assert_eq!(found("$(this)-$(not-this"), [("$(this)", "this")]);
    assert_eq!(found("$body.)"), []);
    assert_eq!(
        found("($(body.blah))-and-$(body.foo)"),
        [("$(body.blah)", "body.blah"), ("$(body.foo)", "body.foo")]
    );
    assert_eq!(found("asd)$(asd"), []);
    assert_eq!(found("onlystatic"), []);
    assert_eq!(found(""), []);
    assert_eq!(found("$())))"), [("$()", "")]);
    assert_eq!(found("$($())"), [("$()", "")]);
    assert_eq!(found("$($($(blahblah)))"), [("$(blahblah)", "blahblah")]);
}

/// Tekton's `TestTriggerBinding_Validate` values, refused and admitted.
#[test]
fn nesting_is_a_dollar_paren_opened_before_the_last_one_closed() {
    for nested in [
        "$($(body.param1))",
        "$(body.test-$(body.param1))",
        "$($($(body.param1)))",
        "$(body.a$(",
    ] {
        assert!(nests(nested), "{nested}");
    }
    for flat in [
        "$(body.input1)-$(body.input2)",
        "$(body.(a)(b))",
        "$(body.[?(@.a == 'd')])",
        "static",
        "$(body.unclosed",
        "$(body.a) $(",
        "",
    ] {
        assert!(!nests(flat), "{flat}");
    }
}

/// `body.a.b` is selected without the parser; every expression, shortcut or not, gives
/// what the full evaluation gives, value or error.
#[test]
fn plain_body_fields_select_what_the_full_evaluation_selects() {
    let body = json!({
        "after": "0d1a26e",
        "repository": {"full_name": "octo/hello", "owner": {"id": 7}, "topics": ["a", "b"]},
        "head_commit": {"message": "Fix \"quoted\" bug\n", "id-2": null, "0": "zero", "a_b": true},
        "commits": [{"id": "c1"}, {"id": "c2"}],
        "empty": {},
        "dotted.key": "x",
        "weird key": 1,
    });
    let headers = headers();
    let extensions = extensions();
    let ctx = context(&body, &headers, &extensions);
    let shortcut = [
        "body",
        "body.after",
        "body.repository",
        "body.repository.full_name",
        "body.repository.owner.id",
        "body.repository.topics",
        "body.head_commit.message",
        "body.head_commit.id-2",
        "body.head_commit.0",
        "body.head_commit.a_b",
        "body.commits",
        "body.empty",
    ];
    let full = [
        "body.missing",
        "body.repository.missing.deeper",
        "body.after.length",
        "body.commits.id",
        "body.commits[0].id",
        "body.commits[*].id",
        "body.repository.topics.0",
        "body.head_commit.id-2.x",
        "body.dotted\\.key",
        "body.",
        "body..after",
        ".body.after",
        "{body.after}",
        "body.*",
        "body.weird key",
        "bodyx.after",
        "header.X-GitHub-Delivery",
        "extensions.foo.bar",
        "context.eventID",
        "",
    ];
    let cases = shortcut.iter().map(|e| (e, true));
    for (expression, shortcut) in cases.chain(full.iter().map(|e| (e, false))) {
        assert_eq!(
            body_field(expression, &body).is_some(),
            shortcut,
            "{expression}: shortcut expected: {shortcut}"
        );
        assert_eq!(
            evaluate(expression, &ctx),
            evaluate_path(expression, &ctx),
            "{expression}"
        );
    }
    assert_eq!(
        evaluate("body.head_commit.message", &ctx).unwrap(),
        r#"Fix \"quoted\" bug\n"#
    );
    assert_eq!(evaluate("body.repository.owner.id", &ctx).unwrap(), "7");
    assert!(matches!(
        evaluate("body.repository.missing", &ctx),
        Err(Problem::MissingField { ref key, .. }) if key == "missing"
    ));
}
