//! The JSONPath dialect, case by case: each case is a test of its own. Expected texts are what
//! Tekton's `ParseJSONPath` gives for the same body (client-go's `jsonpath` with
//! `AllowMissingKeys(false)`, then `getResults`), except where a comment says Sluice differs.

use serde_json::{Value, json};

use super::super::*;
use super::{context, extensions, headers};

/// Evaluates one expression (without `$(` `)`) against `body`.
fn eval(body: &Value, expression: &str) -> Result<String, Problem> {
    let (headers, extensions) = (headers(), extensions());
    evaluate(expression, &context(body, &headers, &extensions))
}

/// Tekton's own test body (`pkg/template/jsonpath_test.go`), plus fields for the dialect.
fn body() -> Value {
    serde_json::from_str(
        r#"{
          "a": "v\r\n烈",
          "c": {"d": "e"},
          "empty": "",
          "null": null,
          "number": 42,
          "bool": true,
          "list": [1, 2, 3, 4, 5],
          "ks": [{"k": 1}, {"k": 2}, {"k": 3}],
          "child": [{"a": "b", "w": "1"}, {"a": "c", "w": "2"}, {"a": "d", "w": "3"}],
          "items": [{"n": 1, "s": "a"}, {"n": 2.5, "s": "b"}, {"n": 3, "s": "c", "opt": false}],
          "partial": [{"a": "x"}, {"b": "y"}],
          "strings": ["x", "y", "x"],
          "flags": [{"on": true}, {"on": false}],
          "obj": {"b": 2, "a": 1},
          "labels": {"app.kubernetes.io/name": "web", "f(x)": "paren", "*": "star", "a b": "space"},
          "tree": {"a": {"name": "x"}, "b": [{"name": "y"}]},
          "ab": "ab",
          "ключ": "значение",
          "lists": [{"l": [1, 2]}, {"m": 1}],
          "big": 12345678901234567890,
          "negative": -9007199254740993,
          "i64min": -9223372036854775808,
          "whole": 3.0,
          "half": 1.5,
          "huge": 1e21,
          "tiny": 1e-7,
          "micro": 0.000001,
          "nested": {"n": 12345678901234567890, "f": 2.0, "s": "q\"uote"}
        }"#,
    )
    .expect("valid JSON")
}

/// `name: "expression" => "expected Tekton text";`
macro_rules! resolves {
    ($($name:ident: $expression:literal => $expected:expr;)*) => {
        $(
            #[test]
            fn $name() {
                assert_eq!(eval(&body(), $expression), Ok(String::from($expected)), "$({})", $expression);
            }
        )*
    };
}

/// `name: "expression" => pattern,` for expressions that fail.
macro_rules! fails {
    ($($name:ident: $expression:literal => $pattern:pat),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let got = eval(&body(), $expression);
                assert!(matches!(got, Err($pattern)), "$({}) gave {got:?}", $expression);
            }
        )*
    };
}

// Tekton relaxes the braces and the leading dot.
resolves! {
    relaxed_bare: "body.c.d" => "e";
    relaxed_leading_dot: ".body.c.d" => "e";
    relaxed_braces: "{body.c.d}" => "e";
    relaxed_braces_and_dot: "{.body.c.d}" => "e";
    empty_expression_is_empty_text: "" => "";
}

// Tekton's `TestParseJSONPath` and `TestApplyEventValuesToParams` cases.
resolves! {
    whole_object_is_compact_json_with_sorted_keys: "body.c" => r#"{"d":"e"}"#;
    string_is_json_escaped_without_quotes: "body.a" => r"v\r\n烈";
    empty_string: "body.empty" => "";
    number: "body.number" => "42";
    boolean: "body.bool" => "true";
    null: "body.null" => "null";
    array_element_object: "body.ks[1]" => r#"{"k":2}"#;
    last_element_by_open_slice: "body.ks[-1:]" => r#"{"k":3}"#;
    filter_then_field: "body.child[?(@.a == 'd')].w" => "3";
    several_results_are_a_json_array: "body.child[:2]" => r#"[{"a":"b","w":"1"},{"a":"c","w":"2"}]"#;
    strings_in_an_array_keep_quotes: "body.child[*].a" => r#"["b","c","d"]"#;
    extension_array_element: "extensions.foo.bar[1]" => "b";
    extension_string: "extensions.title" => r#"Add \"x\""#;
}

// Indexes and slices, with client-go's bounds.
resolves! {
    index: "body.list[0]" => "1";
    negative_index: "body.list[-1]" => "5";
    negative_index_second_last: "body.list[-2]" => "4";
    slice: "body.list[1:3]" => "[2,3]";
    slice_from_start: "body.list[:2]" => "[1,2]";
    slice_to_end_from_negative: "body.list[-2:]" => "[4,5]";
    slice_with_step: "body.list[::2]" => "[1,3,5]";
    slice_with_start_end_step: "body.list[1:5:2]" => "[2,4]";
    slice_of_one_is_the_value_itself: "body.list[2:3]" => "3";
    empty_slice_is_an_empty_array: "body.list[2:2]" => "[]";
    star_index_is_every_element: "body.list[*]" => "[1,2,3,4,5]";
    empty_brackets_are_the_first_element: "body.list[]" => "1";
    index_of_null_selects_nothing: "body.null[0]" => "[]";
    union_of_indexes: "body.list[0,2]" => "[1,3]";
    union_with_spaces: "body.list[0, -1]" => "[1,5]";
}

// Fields: wildcards, quoted and escaped keys, recursive descent.
resolves! {
    dot_star_over_an_array: "body.list.*" => "[1,2,3,4,5]";
    dot_star_over_an_object_in_key_order: "body.obj.*" => "[1,2]";
    dot_star_over_a_string_is_its_bytes: "body.ab.*" => "[97,98]";
    escaped_dots_in_a_key: r"body.labels.app\.kubernetes\.io/name" => "web";
    quoted_key: "body.labels['f(x)']" => "paren";
    quoted_key_with_escaped_dots: r"body.labels['app\.kubernetes\.io/name']" => "web";
    parentheses_in_a_plain_key: "body.labels.f(x)" => "paren";
    escaped_star_is_a_key: r"body.labels.\*" => "star";
    escaped_space_in_a_key: r"body.labels.a\ b" => "space";
    union_of_quoted_keys: "body.obj['a','b']" => "[1,2]";
    recursive_descent: "body.tree..name" => r#"["x","y"]"#;
    unicode_field: "body.ключ" => "значение";
}

// Filters: every operator, existence, literals, paths on both sides. client-go sees JSON
// numbers as float64 and refuses to compare them with an integer literal (`== 3`); Sluice
// compares numbers by value, so `== 3` and `== 3.0` both work.
resolves! {
    filter_equal_number: "body.items[?(@.n == 3)].s" => "c";
    filter_equal_float_literal: "body.items[?(@.n == 2.5)].s" => "b";
    filter_not_equal: "body.items[?(@.s != 'b')].n" => "[1,3]";
    filter_less: "body.items[?(@.n < 2)].s" => "a";
    filter_less_equal: "body.items[?(@.n <= 2.5)].s" => r#"["a","b"]"#;
    filter_greater: "body.items[?(@.n > 2)].s" => r#"["b","c"]"#;
    filter_greater_equal: "body.items[?(@.n >= 3)].s" => "c";
    filter_strings_order_bytewise: "body.items[?(@.s >= 'b')].n" => "[2.5,3]";
    filter_double_quoted_literal: r#"body.items[?(@.s == "a")].n"# => "1";
    filter_without_spaces: "body.items[?(@.s=='c')].n" => "3";
    filter_on_the_element_itself: "body.strings[?(@ == 'x')]" => r#"["x","x"]"#;
    filter_exists: "body.items[?(@.opt)].s" => "c";
    filter_exists_keeps_false_values: "body.items[?(@.opt)].opt" => "false";
    filter_matching_nothing_is_an_empty_array: "body.items[?(@.s == 'z')]" => "[]";
    filter_path_on_the_right: "body.child[?(@.w == @.w)].a" => r#"["b","c","d"]"#;
    // client-go hands back the array itself when an index is out of range, so an existence
    // filter on `@.l[5]` keeps every element that has `l`.
    filter_exists_with_an_out_of_range_index: "body.lists[?(@.l[5])].l" => "[1,2]";
    filter_boolean_literal: "body.flags[?(@.on == false)]" => r#"{"on":false}"#;
}

// Headers, extensions and context.
resolves! {
    header_any_case: "header.x-github-event" => "push";
    header_canonical_case: "header.X-Github-Event" => "push";
    header_values_join_with_commas: "header.ACCEPT" => "text/plain,application/json";
    whole_header_maps_names_to_joined_values: "header" =>
        r#"{"Accept":"text/plain,application/json","X-Github-Delivery":"72d3162e","X-Github-Event":"push"}"#;
    header_star_is_every_value: "header.*" => r#"["text/plain,application/json","72d3162e","push"]"#;
    whole_extensions: "extensions" => r#"{"foo":{"bar":["a","b","c"]},"title":"Add \"x\""}"#;
    context_event_id: "context.eventID" => "4f1c2d9e-0000-4000-8000-000000000001";
    context_go_field_name: "context.EventID" => "4f1c2d9e-0000-4000-8000-000000000001";
    whole_context: "context" => r#"{"eventID":"4f1c2d9e-0000-4000-8000-000000000001"}"#;
    go_field_name_of_the_body: "Body.c.d" => "e";
}

// Numbers: integers stay exact (Tekton's float64 would not); floats are written as Go does.
resolves! {
    integer_above_u63_is_exact: "body.big" => "12345678901234567890";
    negative_integer_below_minus_2_53_is_exact: "body.negative" => "-9007199254740993";
    most_negative_i64_is_exact: "body.i64min" => "-9223372036854775808";
    integers_inside_objects_are_exact: "body.nested" => r#"{"f":2,"n":12345678901234567890,"s":"q\"uote"}"#;
    whole_float_is_written_without_fraction: "body.whole" => "3";
    float: "body.half" => "1.5";
    large_float_in_exponent_form: "body.huge" => "1e+21";
    small_float_in_exponent_form: "body.tiny" => "1e-7";
    float_at_the_exponent_threshold: "body.micro" => "0.000001";
}

fails! {
    missing_field: "body.missing" => Problem::MissingField { .. },
    missing_nested_field: "body.c.x" => Problem::MissingField { .. },
    field_of_an_array: "body.list.x" => Problem::MissingField { .. },
    field_of_null: "body.null.x" => Problem::MissingField { .. },
    empty_field_name: "body.[0]" => Problem::MissingField { .. },
    index_of_a_string: "body.a[0]" => Problem::WrongType { expected: "an array", .. },
    index_of_an_object: "body.c[0]" => Problem::WrongType { .. },
    star_index_of_an_object: "body.c[*]" => Problem::WrongType { .. },
    index_out_of_range: "body.list[5]" => Problem::IndexOutOfRange { index: 5, len: 5, .. },
    negative_index_out_of_range: "body.list[-6]" => Problem::IndexOutOfRange { index: -6, .. },
    slices_are_not_clamped: "body.list[0:10]" => Problem::IndexOutOfRange { .. },
    slice_start_after_end: "body.list[3:1]" => Problem::StartAfterEnd { .. },
    filter_of_an_object: "body.c[?(@.d)]" => Problem::WrongType { .. },
    filter_missing_field_in_a_comparison: "body.partial[?(@.a == 'x')]" => Problem::MissingField { .. },
    filter_comparing_string_and_number: "body.items[?(@.s == 1)]" => Problem::Comparison { .. },
    filter_ordering_booleans: "body.flags[?(@.on < true)]" => Problem::Comparison { .. },
    filter_comparing_objects: "body.ks[?(@ == 1)]" => Problem::Comparison { .. },
    unknown_root: "tt.params.x" => Problem::UnknownRoot(_),
    unknown_root_is_case_sensitive: "BODY.a" => Problem::UnknownRoot(_),
    missing_header: "header.X-Missing" => Problem::MissingField { .. },
    header_value_is_a_string: "header.x-github-event.x" => Problem::MissingField { .. },
    missing_extension: "extensions.nope" => Problem::MissingField { .. },
    context_field_is_case_sensitive: "context.eventId" => Problem::MissingField { .. },
}

// Malformed expressions; offsets count from the start of the expression.
fails! {
    unclosed_brace: "{.hello" => Problem::Syntax { offset: 0, .. },
    stray_closing_brace: "body.a}" => Problem::Syntax { .. },
    doubled_braces: "{{body.a}}" => Problem::Syntax { .. },
    unterminated_bracket: "body.list[1" => Problem::Syntax { offset: 9, .. },
    bracket_text_is_not_an_index: "body.list[x]" => Problem::Syntax { offset: 9, .. },
    plus_sign_in_an_index: "body.list[+1]" => Problem::Syntax { .. },
    zero_step: "body.list[::0]" => Problem::Syntax { .. },
    unknown_filter_operator: "body.items[?(@.n = 1)]" => Problem::Syntax { offset: 10, .. },
    unterminated_filter: "body.items[?(@.n == 1]" => Problem::Syntax { .. },
    unterminated_quote: "body.items[?(@.s == 'a)]" => Problem::Syntax { .. },
    bad_escape_in_a_quote: r"body.items[?(@.s == '\q')]" => Problem::Syntax { .. },
    word_without_a_dot: "body.a b" => Problem::Syntax { offset: 7, .. },
    trailing_backslash: r"body.a\" => Problem::Syntax { .. },
    double_recursive_descent: "body....a" => Problem::Syntax { .. },
    comma_outside_brackets: "body.a,b" => Problem::Syntax { .. },
    number_with_two_points: "body.items[?(@.n == 1.2.3)]" => Problem::Syntax { .. },
}

#[test]
fn quoted_keys_do_not_protect_dots() {
    // client-go parses `['a.b']` as `.a.b`: two fields.
    assert_eq!(
        eval(&body(), "body.labels['app.kubernetes.io/name']"),
        Err(Problem::MissingField {
            at: "body.labels".into(),
            key: "app".into()
        })
    );
}

#[test]
fn an_array_body_can_be_sliced() {
    let arrays = json!([{"a": "b"}, {"c": "d"}, {"e": "f"}]);
    assert_eq!(
        eval(&arrays, "body[:2]").unwrap(),
        r#"[{"a":"b"},{"c":"d"}]"#
    );
    let strings = json!(["", "v\r\n烈", null, "thing"]);
    assert_eq!(eval(&strings, "body[:2]").unwrap(), r#"["","v\r\n烈"]"#);
    assert_eq!(eval(&strings, "body[1:3]").unwrap(), r#"["v\r\n烈",null]"#);
}

#[test]
fn strings_escape_quotes_backslashes_and_control_characters() {
    let body = json!({"s": "q\"b\\s/\u{1}\u{8}\t\u{7f}é😀\u{2028}"});
    assert_eq!(
        eval(&body, "body.s").unwrap(),
        "q\\\"b\\\\s/\\u0001\\u0008\\t\u{7f}é😀\u{2028}"
    );
}

#[test]
fn errors_name_the_value_by_the_expression_not_by_its_content() {
    let message = eval(&body(), "body.a[0]").unwrap_err().to_string();
    assert_eq!(message, "`body.a` is a string, not an array");
    let message = eval(&body(), "body.list[9]").unwrap_err().to_string();
    assert_eq!(message, "`body.list` has no index 9 (length 5)");
    let message = eval(&body(), "body.c.x").unwrap_err().to_string();
    assert_eq!(message, "`body.c` has no field `x`");
    assert!(!message.contains("\"e\""));
}

#[test]
fn paths_parse_into_client_go_nodes() {
    let path = Path::parse(r"{.body.a\.b[1:-1:2]['k'][?(@.x != 'y')].*..z}").unwrap();
    assert_eq!(path.root(), Some(Root::Body));
    let filter = Filter {
        left: vec![Node::Field("x".into())],
        op: Some((Op::Ne, vec![Node::Text("y".into())])),
    };
    let bound = |value, known| Bound {
        value,
        known,
        derived: false,
    };
    assert_eq!(
        path.nodes(),
        &[
            Node::Field("body".into()),
            Node::Field("a.b".into()),
            Node::Index(Slice {
                start: bound(1, true),
                end: bound(-1, true),
                step: Some(2),
            }),
            Node::Field("k".into()),
            Node::Filter(Box::new(filter)),
            Node::Wildcard,
            Node::Recursive,
            Node::Field("z".into()),
        ]
    );
    assert_eq!(path.prefix(2), r"body.a\.b");
    assert_eq!(
        path.to_string(),
        r"body.a\.b[1:-1:2]['k'][?(@.x != 'y')].*..z"
    );
}
