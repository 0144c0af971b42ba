//! Binding expressions against a realistic GitHub push delivery.

use serde_json::{Value, json};

use super::*;

/// A trimmed GitHub `push` payload, parsed from its text as a delivery would be.
const PUSH: &str = r#"{
  "ref": "refs/heads/main",
  "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
  "repository": {
    "full_name": "octo/hello",
    "clone_url": "https://github.com/octo/hello.git",
    "owner": {"login": "octo", "id": 1}
  },
  "head_commit": {
    "id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
    "message": "Fix \"quoted\" bug\n\nSigned-off-by: Octo <octo@example.com>"
  },
  "commits": [
    {
      "id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
      "message": "first line\nsecond \"line\"",
      "added": ["a.txt", "b.txt"],
      "distinct": true
    }
  ],
  "labels": {"app.kubernetes.io/name": "web", "f(x)": "paren"},
  "matrix": [[1, 2], [3, 4]],
  "big": 9007199254740993,
  "min": -9223372036854775808,
  "max": 18446744073709551615,
  "ratio": 1.5,
  "whole_float": 3.0,
  "forced": false,
  "base_ref": null,
  "secret_note": "do-not-leak-this",
  "template_text": "$(body.secret_note)"
}"#;

fn push_body() -> Value {
    serde_json::from_str(PUSH).expect("valid JSON")
}

fn headers() -> Headers {
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

fn extensions() -> serde_json::Map<String, Value> {
    match json!({"pr": {"number": 42, "title": "Add \"x\""}, "changed": ["a", "b"]}) {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// Resolves one param named `p` against the push event.
fn resolve_one(value: &str) -> Result<String, ExprError> {
    let body = push_body();
    let headers = headers();
    let extensions = extensions();
    let ctx = EventContext {
        body: &body,
        headers: &headers,
        extensions: &extensions,
        event_id: "4f1c2d9e-0000-4000-8000-000000000001",
    };
    let mut params = resolve_params(&[param("p", value)], &ctx)?;
    Ok(params.remove("p").expect("the param is resolved"))
}

fn param(name: &str, value: &str) -> BindingParam {
    BindingParam {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

fn problem(value: &str) -> Problem {
    match resolve_one(value) {
        Err(ExprError::Invalid { problem, .. }) => problem,
        other => panic!("expected an invalid expression for {value:?}, got {other:?}"),
    }
}

fn syntax_at(offset: usize) -> impl Fn(&Problem) -> bool {
    move |p| matches!(p, Problem::Syntax { offset: o, .. } if *o == offset)
}

#[test]
fn push_fields_resolve_to_raw_strings() {
    assert_eq!(
        resolve_one("$(body.repository.clone_url)").unwrap(),
        "https://github.com/octo/hello.git"
    );
    assert_eq!(
        resolve_one("$(body.head_commit.id)").unwrap(),
        "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
    );
    // Quotes and newlines are inserted unescaped; escaping is the renderer's job.
    assert_eq!(
        resolve_one("$(body.commits[0].message)").unwrap(),
        "first line\nsecond \"line\""
    );
}

#[test]
fn literal_text_around_expressions_is_kept() {
    assert_eq!(
        resolve_one("ref-$(body.head_commit.id)-$(header.X-GitHub-Event)").unwrap(),
        "ref-0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c-push"
    );
    assert_eq!(
        resolve_one("$(body.repository.owner.login)$(body.ref)").unwrap(),
        "octorefs/heads/main"
    );
    assert_eq!(
        resolve_one("costs $5 (or $ (six))").unwrap(),
        "costs $5 (or $ (six))"
    );
    assert_eq!(resolve_one("").unwrap(), "");
}

#[test]
fn headers_match_any_case_and_join_multiple_values() {
    assert_eq!(resolve_one("$(header.X-GitHub-Event)").unwrap(), "push");
    assert_eq!(resolve_one("$(header.x-github-event)").unwrap(), "push");
    assert_eq!(
        resolve_one("$(header.X-GITHUB-DELIVERY)").unwrap(),
        "72d3162e"
    );
    assert_eq!(
        resolve_one("$(header.accept)").unwrap(),
        "text/plain,application/json"
    );
}

#[test]
fn whole_header_is_canonical_names_to_value_lists() {
    assert_eq!(
        resolve_one("$(header)").unwrap(),
        r#"{"Accept":["text/plain","application/json"],"X-Github-Delivery":["72d3162e"],"X-Github-Event":["push"]}"#
    );
}

#[test]
fn extensions_and_context_event_id_resolve() {
    assert_eq!(resolve_one("$(extensions.pr.number)").unwrap(), "42");
    assert_eq!(resolve_one("$(extensions.pr.title)").unwrap(), "Add \"x\"");
    assert_eq!(resolve_one("$(extensions.changed[1])").unwrap(), "b");
    assert_eq!(
        resolve_one("$(extensions)").unwrap(),
        r#"{"changed":["a","b"],"pr":{"number":42,"title":"Add \"x\""}}"#
    );
    assert_eq!(
        resolve_one("$(context.eventID)").unwrap(),
        "4f1c2d9e-0000-4000-8000-000000000001"
    );
    assert!(matches!(
        problem("$(context.eventId)"),
        Problem::MissingField { ref key, .. } if key == "eventId"
    ));
}

#[test]
fn escaped_characters_belong_to_the_key() {
    assert_eq!(
        resolve_one(r"$(body.labels.app\.kubernetes\.io/name)").unwrap(),
        "web"
    );
    // Escaped parentheses neither close the expression nor need balancing.
    assert_eq!(resolve_one(r"$(body.labels.f\(x\))").unwrap(), "paren");
    // Unescaped, the dots split the key.
    assert_eq!(
        problem("$(body.labels.app.kubernetes.io/name)"),
        Problem::MissingField {
            at: "body.labels".into(),
            key: "app".into()
        }
    );
}

#[test]
fn integers_stay_exact_and_floats_round_trip() {
    assert_eq!(resolve_one("$(body.big)").unwrap(), "9007199254740993");
    assert_eq!(resolve_one("$(body.min)").unwrap(), "-9223372036854775808");
    assert_eq!(resolve_one("$(body.max)").unwrap(), "18446744073709551615");
    assert_eq!(resolve_one("$(body.ratio)").unwrap(), "1.5");
    assert_eq!(resolve_one("$(body.whole_float)").unwrap(), "3.0");
    assert_eq!(resolve_one("n=$(body.matrix[1][0])").unwrap(), "n=3");
}

#[test]
fn booleans_and_null_are_json_literals() {
    assert_eq!(resolve_one("$(body.forced)").unwrap(), "false");
    assert_eq!(resolve_one("$(body.commits[0].distinct)").unwrap(), "true");
    assert_eq!(resolve_one("$(body.base_ref)").unwrap(), "null");
}

#[test]
fn objects_and_arrays_are_compact_json() {
    assert_eq!(
        resolve_one("$(body.repository.owner)").unwrap(),
        r#"{"id":1,"login":"octo"}"#
    );
    assert_eq!(
        resolve_one("$(body.commits[0].added)").unwrap(),
        r#"["a.txt","b.txt"]"#
    );
    assert_eq!(resolve_one("$(body.matrix)").unwrap(), "[[1,2],[3,4]]");
    let whole: Value = serde_json::from_str(&resolve_one("$(body)").unwrap()).unwrap();
    assert_eq!(whole, push_body());
    assert!(!resolve_one("$(body)").unwrap().contains('\n'));
}

#[test]
fn resolved_text_is_not_expanded_again() {
    assert_eq!(
        resolve_one("$(body.template_text)").unwrap(),
        "$(body.secret_note)"
    );
}

#[test]
fn missing_field_names_param_and_expression_but_not_the_body() {
    let err = resolve_one("x-$(body.head_commit.idx)").unwrap_err();
    assert_eq!(err.param(), "p");
    assert!(matches!(
        &err,
        ExprError::Invalid { param, expression, problem: Problem::MissingField { at, key } }
            if param == "p" && expression == "body.head_commit.idx"
                && at == "body.head_commit" && key == "idx"
    ));
    let message = err.to_string();
    assert_eq!(
        message,
        "param `p`: `$(body.head_commit.idx)`: `body.head_commit` has no field `idx`"
    );

    // Type errors name types, never the values found.
    let message = resolve_one("$(body.secret_note.x)")
        .unwrap_err()
        .to_string();
    assert!(message.contains("is a string"), "{message}");
    assert!(!message.contains("do-not-leak-this"), "{message}");
}

#[test]
fn out_of_range_and_wrong_kind_lookups_fail() {
    assert_eq!(
        problem("$(body.commits[1].id)"),
        Problem::IndexOutOfRange {
            at: "body.commits".into(),
            index: 1
        }
    );
    assert_eq!(
        problem("$(body.repository[0])"),
        Problem::WrongType {
            at: "body.repository".into(),
            found: "an object",
            expected: "an array"
        }
    );
    assert_eq!(
        problem("$(body.commits.id)"),
        Problem::WrongType {
            at: "body.commits".into(),
            found: "an array",
            expected: "an object"
        }
    );
    assert_eq!(
        problem("$(header.X-Missing)"),
        Problem::MissingField {
            at: "header".into(),
            key: "X-Missing".into()
        }
    );
    assert_eq!(
        problem("$(header.X-GitHub-Event.x)"),
        Problem::WrongType {
            at: "header.X-GitHub-Event".into(),
            found: "a string",
            expected: "an object"
        }
    );
    assert!(matches!(problem("$(header[0])"), Problem::WrongType { .. }));
    assert_eq!(
        problem("$(extensions.nope)"),
        Problem::MissingField {
            at: "extensions".into(),
            key: "nope".into()
        }
    );
    assert_eq!(
        problem("$(extensions.pr.number.x)"),
        Problem::WrongType {
            at: "extensions.pr.number".into(),
            found: "a number",
            expected: "an object"
        }
    );
    assert!(matches!(
        problem("$(extensions[0])"),
        Problem::WrongType { .. }
    ));
}

#[test]
fn unclosed_expression_is_an_error_with_its_offset() {
    assert!(matches!(
        resolve_one("ref-$(body.ref"),
        Err(ExprError::Unclosed { ref param, offset: 4 }) if param == "p"
    ));
    // Parentheses inside an expression must balance.
    assert!(matches!(
        resolve_one("$(body.ref)-$(body.a(b)"),
        Err(ExprError::Unclosed { offset: 12, .. })
    ));
    // An escaped `)` does not close it.
    assert!(matches!(
        resolve_one(r"$(body.ref\)"),
        Err(ExprError::Unclosed { offset: 0, .. })
    ));
    let message = resolve_one("ref-$(body.ref").unwrap_err().to_string();
    assert_eq!(message, "param `p`: the `$(` at byte 4 is never closed");
}

#[test]
fn closing_parenthesis_is_found_by_balancing() {
    // The whole `body.a(b)` is one expression (rejected for its unescaped parenthesis),
    // rather than `body.a(b` followed by a literal `)`.
    assert!(matches!(
        resolve_one("$(body.a(b))!"),
        Err(ExprError::Invalid { ref expression, .. }) if expression == "body.a(b)"
    ));
    assert_eq!(
        split("a$(x(y)')'z)b"),
        vec![Piece::Text("a"), Piece::Expr("x(y)')'z"), Piece::Text("b")]
    );
}

#[test]
fn unknown_roots_are_errors() {
    for (value, root) in [
        ("$(tt.params.x)", "tt"),
        ("$(params.x)", "params"),
        ("$(uid)", "uid"),
        ("$(Body.ref)", "Body"),
        ("a $(bodyref) b", "bodyref"),
    ] {
        assert_eq!(problem(value), Problem::UnknownRoot(root.into()), "{value}");
    }
    assert!(syntax_at(0)(&problem("$()")));
}

#[test]
fn malformed_paths_are_syntax_errors() {
    for (value, offset) in [
        // Offsets count from the start of the expression, after `$(`.
        ("$(body..ref)", 5),
        ("$(body.)", 5),
        ("$(body.commits[x])", 13),
        ("$(body.commits[-1])", 13),
        ("$(body.commits[])", 13),
        ("$(body.commits[0)", 14),
        ("$(body.commits[0]id)", 15),
        ("$(body.head commit)", 9),
        ("$(body.a*)", 6),
    ] {
        let found = problem(value);
        assert!(syntax_at(offset)(&found), "{value}: {found:?}");
    }
    // A trailing `\` cannot come through a binding value (it would escape the `)`), but the
    // parser still rejects it.
    let found = Path::parse(r"body.a\").unwrap_err();
    assert!(syntax_at(6)(&found), "{found:?}");
    // An escaped backslash is an ordinary key character.
    assert_eq!(
        problem(r"$(body.a\\)"),
        Problem::MissingField {
            at: "body".into(),
            key: "a\\".into()
        }
    );
}

#[test]
fn later_params_with_the_same_name_win() {
    let body = push_body();
    let headers = headers();
    let extensions = extensions();
    let ctx = EventContext {
        body: &body,
        headers: &headers,
        extensions: &extensions,
        event_id: "e",
    };
    let resolved = resolve_params(
        &[
            param("revision", "$(body.ref)"),
            param("url", "$(body.repository.clone_url)"),
            param("revision", "$(body.head_commit.id)"),
        ],
        &ctx,
    )
    .unwrap();
    assert_eq!(resolved.len(), 2);
    assert_eq!(
        resolved["revision"],
        "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
    );
    assert_eq!(resolved["url"], "https://github.com/octo/hello.git");

    // An error anywhere fails the whole set, even if a later param would shadow it.
    let err = resolve_params(&[param("a", "$(body.nope)"), param("a", "fine")], &ctx).unwrap_err();
    assert_eq!(err.param(), "a");
}

#[test]
fn check_validates_syntax_without_an_event() {
    assert!(
        check(&param(
            "a",
            r"x-$(body.a[0].b\.c)-$(header.X)-$(context.eventID)"
        ))
        .is_ok()
    );
    assert!(check(&param("a", "$(body.does.not.matter)")).is_ok());
    assert!(matches!(
        check(&param("a", "$(tt.params.x)")),
        Err(ExprError::Invalid {
            problem: Problem::UnknownRoot(_),
            ..
        })
    ));
    assert!(matches!(
        check(&param("a", "$(body")),
        Err(ExprError::Unclosed { .. })
    ));
}

#[test]
fn paths_print_back_to_parseable_text() {
    let text = r"body.labels.app\.kubernetes\.io/name.f\(x\)[0][12].caf\ é";
    let path = Path::parse(text).unwrap();
    assert_eq!(path.root, Root::Body);
    assert_eq!(
        path.segments,
        vec![
            Segment::Key("labels".into()),
            Segment::Key("app.kubernetes.io/name".into()),
            Segment::Key("f(x)".into()),
            Segment::Index(0),
            Segment::Index(12),
            Segment::Key("caf é".into()),
        ]
    );
    assert_eq!(path.to_string(), text);
    assert_eq!(Path::parse(&path.to_string()).unwrap(), path);
    assert_eq!(path.prefix(1), "body.labels");
}
