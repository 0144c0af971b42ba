//! `pkg/template/jsonpath_test.go`: one expression's value (`parseJSONPath`), the spellings
//! of a path (`tektonJSONPathExpression`, `relaxedJSONPathExpression`) and which parts of a
//! binding value are expressions (`findTektonExpressions`).
//!
//! - `parseJSONPath(data, "$(x)")` is [`sluice_triggers::expr::evaluate`] of `x`, with the
//!   table's `{"body": …}` as the event's body.
//! - The spelling helpers return the client-go template a relaxed path stands for; in Sluice
//!   two spellings of one path parse to the same [`Path`], and a spelling Tekton refuses
//!   does not parse.
//! - `findTektonExpressions` is observed through a binding: the param's value is resolved
//!   with a template default `D` and compared with the table's input in which each original
//!   the table lists is replaced by the value of the expression it lists (Sluice's own
//!   evaluation of it, or `D` where it fails, as Tekton falls back to the default for each
//!   failing expression). A different split gives a different value.

use sluice_triggers::expr::Path;

use crate::common::{Event, body, inner, param, spec};
use crate::suite::{Compared, Suite};

const FILE: &str = "pkg/template/jsonpath_test.go";

const OBJECTS: &str = r#"{"a":"v\r\n烈","c":{"d":"e"},"empty": "","null": null, "number": 42}"#;
const ARRAYS: &str = r#"[{"a": "b"}, {"c": "d"}, {"e": "f"}]"#;

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);

    let object_body = format!(r#"{{"body":{OBJECTS}}}"#);
    let array_body = format!(r#"{{"body":{ARRAYS}}}"#);
    let parse_json_path: Vec<(&str, String, &str, &str)> = vec![
        ("objects", object_body.clone(), "$(body)", OBJECTS),
        ("array of objects", array_body.clone(), "$(body)", ARRAYS),
        (
            "array of values",
            r#"{"body": ["a", "b", "c"]}"#.into(),
            "$(body)",
            r#"["a", "b", "c"]"#,
        ),
        ("string values", object_body.clone(), "$(body.a)", "v\\r\\n烈"),
        ("empty string", object_body.clone(), "$(body.empty)", ""),
        ("numbers", object_body.clone(), "$(body.number)", "42"),
        (
            "booleans",
            r#"{"body": {"bool": true}}"#.into(),
            "$(body.bool)",
            "true",
        ),
        ("null values", object_body.clone(), "$(body.null)", "null"),
        (
            "multiple results",
            array_body.clone(),
            "$(body[:2])",
            r#"[{"a": "b"}, {"c": "d"}]"#,
        ),
        (
            "multiple results with empty string",
            r#"{"body":["", "some", "thing"]}"#.into(),
            "$(body[:2])",
            r#"["", "some"]"#,
        ),
        (
            "multiple results newlines/special chars",
            r#"{"body":["", "v\r\n烈", "thing"]}"#.into(),
            "$(body[:2])",
            r#"["", "v\r\n烈"]"#,
        ),
        (
            "multiple results with null",
            r#"{"body":["", null, "thing"]}"#.into(),
            "$(body[:2])",
            r#"["", null]"#,
        ),
        (
            "Array filters",
            r#"{"body":{"child":[{"a": "b", "w": "1"}, {"a": "c", "w": "2"}, {"a": "d", "w": "3"}]}}"#
                .into(),
            "$(body.child[?(@.a == 'd')].w)",
            "3",
        ),
    ];
    for (name, input, expression, want) in parse_json_path {
        file.case("TestParseJSONPath", name, move || {
            let data = body(Some(&input));
            let event = Event::new(data["body"].clone());
            // The table compares with the spaces of `want` removed.
            let want = format!("ok: {}", want.replace(' ', ""));
            Compared::new(
                format!("{expression} on {input}"),
                want,
                event.evaluate(inner(expression)),
            )
        });
    }

    let data = r#"{"body": {"key": "val"}}"#;
    for expression in [
        "$({.hello)",
        "$(+12.3.0)",
        "$([1)",
        "$(body.missing)",
        "$(body.key[0])",
    ] {
        file.case("TestParseJSONPath_Error", expression, move || {
            let event = Event::new(body(Some(data))["body"].clone());
            Compared::error_expected(
                format!("{expression} on {data}"),
                event.evaluate(inner(expression)),
            )
        });
    }
    file.skip(
        "TestParseJSONPath_Error",
        &["$(body", "body)", "body"],
        "checks that the Go helper is handed a `$(…)`-wrapped text; a binding never hands it \
         anything else, as text without a closed `$(…)` is no expression (TestFindTektonExpressions)",
    );

    for (expression, want) in [
        ("$(metadata.name)", "{.metadata.name}"),
        ("$(.metadata.name)", "{.metadata.name}"),
        ("$({.metadata.name})", "{.metadata.name}"),
    ] {
        file.case("TestTektonJSONPathExpression", expression, move || {
            same_path(expression, inner(expression), want)
        });
    }
    file.case("TestTektonJSONPathExpression", "$()", || {
        empty_expression("$()")
    });
    file.skip(
        "TestTektonJSONPathExpression_Error",
        &["{.metadata.name}", "\"\""],
        "checks that the Go helper is handed a `$(…)`-wrapped text; text without a closed \
         `$(…)` is never an expression in a binding (TestFindTektonExpressions)",
    );
    for expression in [
        "$({asd)",
        "$({)",
        "$({foo.bar)",
        "$(foo.bar})",
        "$({foo.bar}})",
        "$({{foo.bar)",
    ] {
        file.case(
            "TestTektonJSONPathExpression_Error",
            expression,
            move || refused_path(expression, inner(expression)),
        );
    }

    for (expression, want) in [
        ("metadata.name", "{.metadata.name}"),
        (".metadata.name", "{.metadata.name}"),
        ("{.metadata.name}", "{.metadata.name}"),
    ] {
        file.case("TestRelaxedJSONPathExpression", expression, move || {
            same_path(expression, expression, want)
        });
    }
    file.case("TestRelaxedJSONPathExpression", "\"\"", || {
        empty_expression("")
    });
    for expression in ["{foo.bar", "foo.bar}", "{foo.bar}}", "{{foo.bar}"] {
        file.case(
            "TestRelaxedJSONPathExpression_Error",
            expression,
            move || refused_path(expression, expression),
        );
    }

    let find: Vec<(&str, &[&str], &[&str])> = vec![
        ("$(body.blah)", &["$(body.blah)"], &["$(body.blah)"]),
        (
            "$(body.blah)-$(header.*)",
            &["$(body.blah)", "$(header.*)"],
            &["$(body.blah)", "$(header.*)"],
        ),
        (
            "start:$(body.blah)//middle//$(header.one)-end",
            &["$(body.blah)", "$(header.One)"],
            &["$(body.blah)", "$(header.one)"],
        ),
        (
            "start:$(body.blah)//middle//$(header.One)-end",
            &["$(body.blah)", "$(header.One)"],
            &["$(body.blah)", "$(header.One)"],
        ),
        (
            "start:$(body.blah)//middle//$(header.ONE-TWO)-end",
            &["$(body.blah)", "$(header.One-Two)"],
            &["$(body.blah)", "$(header.ONE-TWO)"],
        ),
        (
            "start:$(body.[?(@.a == 'd')])-$(body.another-one)",
            &["$(body.[?(@.a == 'd')])", "$(body.another-one)"],
            &["$(body.[?(@.a == 'd')])", "$(body.another-one)"],
        ),
        ("$(this)-$(not-this", &["$(this)"], &["$(this)"]),
        ("$body.)", &[], &[]),
        (
            "($(body.blah))-and-$(body.foo)",
            &["$(body.blah)", "$(body.foo)"],
            &["$(body.blah)", "$(body.foo)"],
        ),
        (
            "(staticvalue)$(body.blah)",
            &["$(body.blah)"],
            &["$(body.blah)"],
        ),
        ("asd)$(asd", &[], &[]),
        ("onlystatic", &[], &[]),
        ("", &[], &[]),
        ("$())))", &["$()"], &["$()"]),
        ("$($())", &["$()"], &["$()"]),
        ("$($($(blahblah)))", &["$(blahblah)"], &["$(blahblah)"]),
    ];
    for (input, want, original) in find {
        let name = if input.is_empty() { "\"\"" } else { input };
        file.case("TestFindTektonExpressions", name, move || {
            found_expressions(input, want, original)
        });
    }
}

/// Tekton turns `written` into the template `want`: in Sluice both parse to one path.
fn same_path(input: &str, written: &str, want: &str) -> Compared {
    let sluice = match (Path::parse(written), Path::parse(want)) {
        (Ok(path), Ok(canonical)) if path == canonical => want.to_owned(),
        (Ok(path), _) => format!("another path: {path:?}"),
        (Err(problem), _) => format!("error: {problem}"),
    };
    Compared::new(input, want, sluice)
}

/// Tekton refuses the spelling `written`: Sluice does not parse it.
fn refused_path(input: &str, written: &str) -> Compared {
    let sluice = match Path::parse(written) {
        Ok(path) => format!("parsed: {path:?}"),
        Err(problem) => format!("error: {problem}"),
    };
    Compared::error_expected(input, sluice)
}

/// The empty path is Tekton's empty template, which finds nothing: the empty text.
fn empty_expression(input: &str) -> Compared {
    let event = Event::new(serde_json::json!({"key": "val"}));
    Compared::new(input, "ok: ", event.evaluate(""))
}

/// See the module documentation.
fn found_expressions(input: &str, want: &[&str], original: &[&str]) -> Compared {
    const DEFAULT: &str = "D";
    let event = Event::new(serde_json::json!({"blah": "B", "foo": "F", "another-one": "A"}))
        .with_headers(&[("One", "H1"), ("One-Two", "H12")]);
    let mut expected = input.to_owned();
    for (found, written) in want.iter().zip(original) {
        let value = match event.evaluate(inner(found)).strip_prefix("ok: ") {
            Some(text) => text.to_owned(),
            None => DEFAULT.to_owned(),
        };
        expected = expected.replace(written, &value);
    }
    let sluice = event.resolve(&[param("p", input)], &[spec("p", Some(DEFAULT))]);
    let expected = crate::common::expected(&[("p", &expected)]);
    Compared::new(
        format!(
            "binding p: {input:?} (template default {DEFAULT:?}); tables: {want:?} from {original:?}"
        ),
        expected,
        sluice,
    )
}
