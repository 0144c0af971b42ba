//! client-go's own JSONPath tests (`util/jsonpath/jsonpath_test.go` and `parser_test.go`),
//! run against the dialect of Sluice's `$(…)` expressions. Tekton resolves `$(x)` with
//! client-go's `jsonpath` package, so its tests say what a path selects and how it parses.
//!
//! How a client-go case maps onto Sluice:
//!
//! - Tekton's `$(…)` holds one path: its relaxed form (`jsonRegexp` in Tekton's
//!   `pkg/template/jsonpath.go`) is one `{…}` action with no `{` or `}` inside. A client-go
//!   template of text, several actions or `range … end` has no `$(…)` spelling, nor has an
//!   action that does not start a path (`{hello}`, `{*}`: Tekton reads `$(hello)` as
//!   `.hello`). Those cases are skipped, as are those run with `AllowMissingKeys(true)`:
//!   Tekton evaluates with `AllowMissingKeys(false)`.
//! - The test's input is the event's body, so the action `{.a}` (or `{$.a}`, `{[0]}`) is
//!   the expression `body.a` (`body[0]`); spaces around the action's text are dropped, as
//!   client-go skips them.
//! - What the path selects ([`sluice_triggers::expr::select`]) is printed as client-go's
//!   `PrintResults` prints it: one result after the other with a space between them, a
//!   string as its text, `null` for null, a number or boolean as Go prints it, an object
//!   or array as compact JSON.
//! - Inputs that are Go structs are written as the JSON they marshal to. Go prints a
//!   struct's fields in declaration order and walks them in that order, while Tekton's
//!   body is a map, whose keys client-go walks in no fixed order (its own map tests sort
//!   the output). For those cases an object compares as a value, whatever the order of its
//!   keys, and where the path walks an object's keys (`..`) the results compare as a
//!   multiset, as client-go's `testJSONPathSortOutput` compares them.
//! - An expected error is met by an error from parsing or from evaluating: Tekton's
//!   `parseJSONPath` fails the expression either way. Messages are Sluice's own.
//! - `parser_test.go` compares the parsed nodes, printed as client-go's `Node.String`
//!   prints them, in the order of its `collectNode`.
//!
//! Run with `cargo test -p sluice-triggers --test client_go_jsonpath`; add `-- --list` to
//! see every case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;

use serde_json::Value;
use sluice_triggers::expr::{EventContext, Node, Op, Path, Slice, select};
use sluice_triggers::headers::Headers;

use suite::{CLIENT_GO, Compared, Suite};

#[path = "tekton_tables/suite.rs"]
mod suite;

const JSONPATH_TEST: &str = "util/jsonpath/jsonpath_test.go";
const PARSER_TEST: &str = "util/jsonpath/parser_test.go";

const TEMPLATE: &str = "a template of text, several actions or `range`, not one path: \
                        Tekton's `$(…)` holds one `{…}` action with no `{` or `}` inside";
const NOT_A_PATH: &str = "an action that does not start a path with `.`, `[` or `$`: \
                          Tekton reads `$(x)` as the path `.x`, so no `$(…)` spells it";
const MISSING_KEYS: &str =
    "run with AllowMissingKeys(true); Tekton evaluates with AllowMissingKeys(false)";

/// `TestTypesInput`'s `types` map, as JSON.
const TYPES: &str = r#"{
  "bools": [true, false, true, false],
  "integers": [1, 2, 3, 4],
  "floats": [1.0, 2.2, 3.3, 4.0],
  "strings": ["one", "two", "three", "four"],
  "interfaces": [true, "one", 1, 1.1],
  "maps": [
    {"name": "one", "value": 1}, {"name": "two", "value": 2.02},
    {"name": "three", "value": 3.03}, {"name": "four", "value": 4.04}
  ],
  "structs": [
    {"name": "one", "value": 1, "type": "integer"},
    {"name": "two", "value": 2.002, "type": "float"},
    {"name": "three", "value": 3, "type": "integer"},
    {"name": "four", "value": 4.004, "type": "float"}
  ]
}"#;

/// `TestStructInput`'s `storeData`, a Go struct, as the JSON it marshals to.
const STORE: &str = r#"{
  "Book": [
    {"Category": "reference", "Author": "Nigel Rees", "Title": "Sayings of the Centurey", "Price": 8.95},
    {"Category": "fiction", "Author": "Evelyn Waugh", "Title": "Sword of Honour", "Price": 12.99},
    {"Category": "fiction", "Author": "Herman Melville", "Title": "Moby Dick", "Price": 8.99}
  ],
  "Bicycle": [
    {"Color": "red", "Price": 19.95, "IsNew": true},
    {"Color": "green", "Price": 20.01, "IsNew": false}
  ],
  "Name": "jsonpath",
  "Labels": {"engieer": 10, "web/html": 15, "k8s-app": 20},
  "Employees": {"jason": "manager", "dan": "clerk"}
}"#;

/// `TestJSONInput`'s `pointsJSON`.
const POINTS: &str = r#"[
  {"id": "i1", "x": 4, "y": -5},
  {"id": "i2", "x": -2, "y": -5, "z": 1},
  {"id": "i3", "x": 8, "y": 3},
  {"id": "i4", "x": -6, "y": -1},
  {"id": "i5", "x": 0, "y": 2, "z": 1},
  {"id": "i6", "x": 1, "y": 4},
  {"id": "i7", "x": null, "y": 4}
]"#;

/// `TestKubernetes`'s input.
const NODES: &str = r#"{
  "kind": "List",
  "items": [
    {
      "kind": "None",
      "metadata": {"name": "127.0.0.1", "labels": {"kubernetes.io/hostname": "127.0.0.1"}},
      "status": {
        "capacity": {"cpu": "4"},
        "ready": true,
        "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.1"}]
      }
    },
    {
      "kind": "None",
      "metadata": {"name": "127.0.0.2", "labels": {"kubernetes.io/hostname": "127.0.0.2"}},
      "status": {
        "capacity": {"cpu": "8"},
        "ready": false,
        "addresses": [
          {"type": "LegacyHostIP", "address": "127.0.0.2"},
          {"type": "another", "address": "127.0.0.3"}
        ]
      }
    }
  ],
  "users": [
    {"name": "myself", "user": {}},
    {"name": "e2e", "user": {"username": "admin", "password": "secret"}}
  ]
}"#;

/// `TestFilterPartialMatchesSometimesMissingAnnotations`'s input.
const ANNOTATIONS: &str = r#"{
  "kind": "List",
  "items": [
    {"kind": "Pod", "metadata": {"name": "pod1", "annotations": {"color": "blue"}}},
    {"kind": "Pod", "metadata": {"name": "pod2"}},
    {"kind": "Pod", "metadata": {"name": "pod3", "annotations": {"color": "green"}}},
    {"kind": "Pod", "metadata": {"name": "pod4", "annotations": {"color": "blue"}}}
  ]
}"#;

/// A pod whose containers are named `fake0`… (`TestNegativeIndex`: 4, `TestStep`: 6).
fn pod(containers: usize) -> String {
    let containers: Vec<String> = (0..containers)
        .map(|n| format!(r#"{{"image": "radial/busyboxplus:curl", "name": "fake{n}"}}"#))
        .collect();
    format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "spec": {{"containers": [{}]}}}}"#,
        containers.join(", ")
    )
}

/// How the results of a case compare with client-go's expected output.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// The same text.
    Text,
    /// The input is a Go struct: objects compare as values.
    Struct,
    /// The path walks an object's keys, whose order a map does not fix: the results compare
    /// as a multiset.
    AnyOrder,
}

/// One row of a `jsonpathTest` table.
struct Row<'a> {
    function: &'static str,
    name: &'a str,
    template: &'a str,
    input: String,
    expect: &'a str,
    error: bool,
    compare: Compare,
}

fn main() -> ExitCode {
    let mut suite = Suite::default();
    jsonpath_tests(&mut suite);
    parser_tests(&mut suite);
    suite::run(suite, "sluice-triggers (JSONPath)")
}

fn jsonpath_tests(suite: &mut Suite) {
    let mut rows = Vec::new();
    let mut missing_keys = Vec::new();
    let mut add = |function,
                   rows_of: Vec<(&'static str, &'static str, String, &'static str, bool)>,
                   compare| {
        for (name, template, input, expect, error) in rows_of {
            rows.push(Row {
                function,
                name,
                template,
                input,
                expect,
                error,
                compare,
            });
        }
    };

    let types = || TYPES.to_owned();
    add(
        "TestTypesInput",
        vec![
            (
                "boolSlice",
                "{ .bools }",
                types(),
                "[true,false,true,false]",
                false,
            ),
            ("boolSliceIndex", "{ .bools[0] }", types(), "true", false),
            ("boolSliceIndex", "{ .bools[-1] }", types(), "false", false),
            (
                "boolSubSlice",
                "{ .bools[0:2] }",
                types(),
                "true false",
                false,
            ),
            (
                "boolSubSliceFirst2",
                "{ .bools[:2] }",
                types(),
                "true false",
                false,
            ),
            (
                "boolSubSliceStep2",
                "{ .bools[:4:2] }",
                types(),
                "true true",
                false,
            ),
            ("integerSlice", "{ .integers }", types(), "[1,2,3,4]", false),
            ("integerSliceIndex", "{ .integers[0] }", types(), "1", false),
            (
                "integerSliceIndexReverse",
                "{ .integers[-2] }",
                types(),
                "3",
                false,
            ),
            (
                "integerSubSliceFirst2",
                "{ .integers[0:2] }",
                types(),
                "1 2",
                false,
            ),
            (
                "integerSubSliceFirst2Alt",
                "{ .integers[:2] }",
                types(),
                "1 2",
                false,
            ),
            (
                "integerSubSliceStep2",
                "{ .integers[:4:2] }",
                types(),
                "1 3",
                false,
            ),
            ("floatSlice", "{ .floats }", types(), "[1,2.2,3.3,4]", false),
            ("floatSliceIndex", "{ .floats[0] }", types(), "1", false),
            (
                "floatSliceIndexReverse",
                "{ .floats[-2] }",
                types(),
                "3.3",
                false,
            ),
            (
                "floatSubSliceFirst2",
                "{ .floats[0:2] }",
                types(),
                "1 2.2",
                false,
            ),
            (
                "floatSubSliceFirst2Alt",
                "{ .floats[:2] }",
                types(),
                "1 2.2",
                false,
            ),
            (
                "floatSubSliceStep2",
                "{ .floats[:4:2] }",
                types(),
                "1 3.3",
                false,
            ),
            (
                "stringSlice",
                "{ .strings }",
                types(),
                r#"["one","two","three","four"]"#,
                false,
            ),
            ("stringSliceIndex", "{ .strings[0] }", types(), "one", false),
            (
                "stringSliceIndexReverse",
                "{ .strings[-2] }",
                types(),
                "three",
                false,
            ),
            (
                "stringSubSliceFirst2",
                "{ .strings[0:2] }",
                types(),
                "one two",
                false,
            ),
            (
                "stringSubSliceFirst2Alt",
                "{ .strings[:2] }",
                types(),
                "one two",
                false,
            ),
            (
                "stringSubSliceStep2",
                "{ .strings[:4:2] }",
                types(),
                "one three",
                false,
            ),
            (
                "interfaceSlice",
                "{ .interfaces }",
                types(),
                r#"[true,"one",1,1.1]"#,
                false,
            ),
            (
                "interfaceSliceIndex",
                "{ .interfaces[0] }",
                types(),
                "true",
                false,
            ),
            (
                "interfaceSliceIndexReverse",
                "{ .interfaces[-2] }",
                types(),
                "1",
                false,
            ),
            (
                "interfaceSubSliceFirst2",
                "{ .interfaces[0:2] }",
                types(),
                "true one",
                false,
            ),
            (
                "interfaceSubSliceFirst2Alt",
                "{ .interfaces[:2] }",
                types(),
                "true one",
                false,
            ),
            (
                "interfaceSubSliceStep2",
                "{ .interfaces[:4:2] }",
                types(),
                "true 1",
                false,
            ),
            (
                "mapSlice",
                "{ .maps }",
                types(),
                r#"[{"name":"one","value":1},{"name":"two","value":2.02},{"name":"three","value":3.03},{"name":"four","value":4.04}]"#,
                false,
            ),
            (
                "mapSliceIndex",
                "{ .maps[0] }",
                types(),
                r#"{"name":"one","value":1}"#,
                false,
            ),
            (
                "mapSliceIndexReverse",
                "{ .maps[-2] }",
                types(),
                r#"{"name":"three","value":3.03}"#,
                false,
            ),
            (
                "mapSubSliceFirst2",
                "{ .maps[0:2] }",
                types(),
                r#"{"name":"one","value":1} {"name":"two","value":2.02}"#,
                false,
            ),
            (
                "mapSubSliceFirst2Alt",
                "{ .maps[:2] }",
                types(),
                r#"{"name":"one","value":1} {"name":"two","value":2.02}"#,
                false,
            ),
            (
                "mapSubSliceStepOdd",
                "{ .maps[::2] }",
                types(),
                r#"{"name":"one","value":1} {"name":"three","value":3.03}"#,
                false,
            ),
            (
                "mapSubSliceStepEven",
                "{ .maps[1::2] }",
                types(),
                r#"{"name":"two","value":2.02} {"name":"four","value":4.04}"#,
                false,
            ),
        ],
        Compare::Text,
    );
    add(
        "TestTypesInput",
        vec![
            (
                "structSlice",
                "{ .structs }",
                types(),
                r#"[{"name":"one","value":1,"type":"integer"},{"name":"two","value":2.002,"type":"float"},{"name":"three","value":3,"type":"integer"},{"name":"four","value":4.004,"type":"float"}]"#,
                false,
            ),
            (
                "structSliceIndex",
                "{ .structs[0] }",
                types(),
                r#"{"name":"one","value":1,"type":"integer"}"#,
                false,
            ),
            (
                "structSliceIndexReverse",
                "{ .structs[-2] }",
                types(),
                r#"{"name":"three","value":3,"type":"integer"}"#,
                false,
            ),
            (
                "structSubSliceFirst2",
                "{ .structs[0:2] }",
                types(),
                r#"{"name":"one","value":1,"type":"integer"} {"name":"two","value":2.002,"type":"float"}"#,
                false,
            ),
            (
                "structSubSliceFirst2Alt",
                "{ .structs[:2] }",
                types(),
                r#"{"name":"one","value":1,"type":"integer"} {"name":"two","value":2.002,"type":"float"}"#,
                false,
            ),
            (
                "structSubSliceStepOdd",
                "{ .structs[::2] }",
                types(),
                r#"{"name":"one","value":1,"type":"integer"} {"name":"three","value":3,"type":"integer"}"#,
                false,
            ),
            (
                "structSubSliceStepEven",
                "{ .structs[1::2] }",
                types(),
                r#"{"name":"two","value":2.002,"type":"float"} {"name":"four","value":4.004,"type":"float"}"#,
                false,
            ),
        ],
        Compare::Struct,
    );

    let store = || STORE.to_owned();
    add(
        "TestStructInput",
        vec![
            (
                "plain",
                "hello jsonpath",
                "null".into(),
                "hello jsonpath",
                false,
            ),
            ("recursive", "{..}", "[1, 2, 3]".into(), "[1,2,3]", false),
            ("filter", "{[?(@<5)]}", "[2, 6, 3, 7]".into(), "2 3", false),
            ("quote", r#"{"{"}"#, "null".into(), "{", false),
            (
                "union",
                "{[1,3,4]}",
                "[0, 1, 2, 3, 4]".into(),
                "1 3 4",
                false,
            ),
            (
                "array",
                "{[0:2]}",
                r#"["Monday", "Tudesday"]"#.into(),
                "Monday Tudesday",
                false,
            ),
            (
                "variable",
                "hello {.Name}",
                store(),
                "hello jsonpath",
                false,
            ),
            ("dict/", "{$.Labels.web/html}", store(), "15", false),
            ("dict/", "{$.Employees.jason}", store(), "manager", false),
            ("dict/", "{$.Employees.dan}", store(), "clerk", false),
            ("dict-", "{.Labels.k8s-app}", store(), "20", false),
            ("nest", "{.Bicycle[*].Color}", store(), "red green", false),
            (
                "allarray",
                "{.Book[*].Author}",
                store(),
                "Nigel Rees Evelyn Waugh Herman Melville",
                false,
            ),
            (
                "allfields",
                r#"{range .Bicycle[*]}{ "{" }{ @.* }{ "} " }{end}"#,
                store(),
                "{red 19.95 true} {green 20.01 false} ",
                false,
            ),
        ],
        Compare::Struct,
    );
    add(
        "TestStructInput",
        vec![
            (
                "recurfields",
                "{..Price}",
                store(),
                "8.95 12.99 8.99 19.95 20.01",
                false,
            ),
            (
                "recurdotfields",
                "{...Price}",
                store(),
                "8.95 12.99 8.99 19.95 20.01",
                false,
            ),
        ],
        Compare::AnyOrder,
    );
    add(
        "TestStructInput",
        vec![
            (
                "superrecurfields",
                "{............................................................Price}",
                store(),
                "",
                true,
            ),
            (
                "allstructsSlice",
                "{.Bicycle}",
                store(),
                r#"[{"Color":"red","Price":19.95,"IsNew":true},{"Color":"green","Price":20.01,"IsNew":false}]"#,
                false,
            ),
            (
                "allstructs",
                r#"{range .Bicycle[*]}{ @ }{ " " }{end}"#,
                store(),
                r#"{"Color":"red","Price":19.95,"IsNew":true} {"Color":"green","Price":20.01,"IsNew":false} "#,
                false,
            ),
            (
                "lastarray",
                "{.Book[-1:]}",
                store(),
                r#"{"Category":"fiction","Author":"Herman Melville","Title":"Moby Dick","Price":8.99}"#,
                false,
            ),
            (
                "recurarray",
                "{..Book[2]}",
                store(),
                r#"{"Category":"fiction","Author":"Herman Melville","Title":"Moby Dick","Price":8.99}"#,
                false,
            ),
            (
                "bool",
                "{.Bicycle[?(@.IsNew==true)]}",
                store(),
                r#"{"Color":"red","Price":19.95,"IsNew":true}"#,
                false,
            ),
        ],
        Compare::Struct,
    );
    missing_keys.push(("TestStructInput", "nonexistent field"));
    missing_keys.push(("TestStructInput", "nonexistent field 2"));
    // testFailJSONPath: an error is expected (its message is client-go's).
    add(
        "TestStructInput",
        vec![
            (
                "invalid identifier",
                "{hello}",
                store(),
                "unrecognized identifier hello",
                true,
            ),
            (
                "nonexistent field",
                "{.hello}",
                store(),
                "hello is not found",
                true,
            ),
            (
                "invalid array",
                "{.Labels[0]}",
                store(),
                "map[string]int is not array or slice",
                true,
            ),
            (
                "invalid filter operator",
                "{.Book[?(@.Price<>10)]}",
                store(),
                "unrecognized filter operator <>",
                true,
            ),
            (
                "redundant end",
                "{range .Labels.*}{@}{end}{end}",
                store(),
                "not in range, nothing to end",
                true,
            ),
        ],
        Compare::Struct,
    );

    let points = || POINTS.to_owned();
    add(
        "TestJSONInput",
        vec![
            ("exists filter", "{[?(@.z)].id}", points(), "i2 i5", false),
            ("bracket key", "{[0]['id']}", points(), "i1", false),
            ("nil value", "{[-1]['x']}", points(), "null", false),
        ],
        Compare::Text,
    );

    let nodes = || NODES.to_owned();
    add(
        "TestKubernetes",
        vec![
            (
                "range item",
                "{range .items[*]}{.metadata.name}, {end}{.kind}",
                nodes(),
                "127.0.0.1, 127.0.0.2, List",
                false,
            ),
            (
                "range item with quote",
                r#"{range .items[*]}{.metadata.name}{"\t"}{end}"#,
                nodes(),
                "127.0.0.1\t127.0.0.2\t",
                false,
            ),
            (
                "range addresss",
                "{.items[*].status.addresses[*].address}",
                nodes(),
                "127.0.0.1 127.0.0.2 127.0.0.3",
                false,
            ),
            (
                "double range",
                "{range .items[*]}{range .status.addresses[*]}{.address}, {end}{end}",
                nodes(),
                "127.0.0.1, 127.0.0.2, 127.0.0.3, ",
                false,
            ),
            (
                "item name",
                "{.items[*].metadata.name}",
                nodes(),
                "127.0.0.1 127.0.0.2",
                false,
            ),
            (
                "union nodes capacity",
                "{.items[*]['metadata.name', 'status.capacity']}",
                nodes(),
                r#"127.0.0.1 127.0.0.2 {"cpu":"4"} {"cpu":"8"}"#,
                false,
            ),
            (
                "range nodes capacity",
                "{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}",
                nodes(),
                r#"[127.0.0.1, {"cpu":"4"}] [127.0.0.2, {"cpu":"8"}] "#,
                false,
            ),
            (
                "user password",
                r#"{.users[?(@.name=="e2e")].user.password}"#,
                nodes(),
                "secret",
                false,
            ),
            (
                "hostname",
                r"{.items[0].metadata.labels.kubernetes\.io/hostname}",
                nodes(),
                "127.0.0.1",
                false,
            ),
            (
                "hostname filter",
                r#"{.items[?(@.metadata.labels.kubernetes\.io/hostname=="127.0.0.1")].kind}"#,
                nodes(),
                "None",
                false,
            ),
            (
                "bool item",
                "{.items[?(@..ready==true)].metadata.name}",
                nodes(),
                "127.0.0.1",
                false,
            ),
        ],
        Compare::Text,
    );
    // testJSONPathSortOutput: client-go sorts the output, as map keys come in any order.
    add(
        "TestKubernetes",
        vec![(
            "recursive name",
            "{..name}",
            nodes(),
            "127.0.0.1 127.0.0.2 myself e2e",
            false,
        )],
        Compare::AnyOrder,
    );

    missing_keys.push(("TestEmptyRange", "empty range"));
    missing_keys.push(("TestEmptyRange", "empty nested range"));
    add(
        "TestNestedRanges",
        vec![
            (
                "nested range with a trailing newline",
                r#"{range .items[*]}{.metadata.name}{":"}{range @.spec.containers[*]}{.name}{","}{end}{"+"}{end}"#,
                "{}".into(),
                "pod1:foo,bar,+pod2:baz,+",
                false,
            ),
            (
                "nested range with a trailing character within another nested range with a trailing newline",
                r##"{range .items[*]}{.metadata.name}{"~"}{range @.spec.containers[*]}{.name}{":"}{range @.another[*]}{.name}{","}{end}{"+"}{end}{"#"}{end}"##,
                "{}".into(),
                "pod1~foo:value1,value2,+bar:value1,value2,+#pod2~baz:value1,value2,+#",
                false,
            ),
            (
                "two nested ranges at the same level with a trailing newline",
                r#"{range .items[*]}{.metadata.name}{"\t"}{range @.spec.containers[*]}{.name}{" "}{end}{"\t"}{range @.spec.containers[*]}{.name}{" "}{end}{"\n"}{end}"#,
                "{}".into(),
                "pod1\tfoo bar \tfoo bar \npod2\tbaz \tbaz \n",
                false,
            ),
        ],
        Compare::Text,
    );

    missing_keys.push((
        "TestFilterPartialMatchesSometimesMissingAnnotations",
        "filter, should only match a subset, some items don't have annotations, tolerate missing items",
    ));
    add(
        "TestFilterPartialMatchesSometimesMissingAnnotations",
        vec![(
            "filter, should only match a subset, some items don't have annotations, error on missing items",
            r#"{.items[?(@.metadata.annotations.color=="blue")].metadata.name}"#,
            ANNOTATIONS.to_owned(),
            "",
            true,
        )],
        Compare::Text,
    );

    let four = || pod(4);
    add(
        "TestNegativeIndex",
        vec![
            (
                "test containers[0], it equals containers[0]",
                "{.spec.containers[0].name}",
                four(),
                "fake0",
                false,
            ),
            (
                "test containers[0:0], it equals the empty set",
                "{.spec.containers[0:0].name}",
                four(),
                "",
                false,
            ),
            (
                "test containers[0:-1], it equals containers[0:3]",
                "{.spec.containers[0:-1].name}",
                four(),
                "fake0 fake1 fake2",
                false,
            ),
            (
                "test containers[-1:0], expect error",
                "{.spec.containers[-1:0].name}",
                four(),
                "",
                true,
            ),
            (
                "test containers[-1], it equals containers[3]",
                "{.spec.containers[-1].name}",
                four(),
                "fake3",
                false,
            ),
            (
                "test containers[-1:], it equals containers[3:]",
                "{.spec.containers[-1:].name}",
                four(),
                "fake3",
                false,
            ),
            (
                "test containers[-2], it equals containers[2]",
                "{.spec.containers[-2].name}",
                four(),
                "fake2",
                false,
            ),
            (
                "test containers[-2:], it equals containers[2:]",
                "{.spec.containers[-2:].name}",
                four(),
                "fake2 fake3",
                false,
            ),
            (
                "test containers[-3], it equals containers[1]",
                "{.spec.containers[-3].name}",
                four(),
                "fake1",
                false,
            ),
            (
                "test containers[-4], it equals containers[0]",
                "{.spec.containers[-4].name}",
                four(),
                "fake0",
                false,
            ),
            (
                "test containers[-4:], it equals containers[0:]",
                "{.spec.containers[-4:].name}",
                four(),
                "fake0 fake1 fake2 fake3",
                false,
            ),
            (
                "test containers[-5], expect a error cause it out of bounds",
                "{.spec.containers[-5].name}",
                four(),
                "",
                true,
            ),
            (
                "test containers[5:5], expect empty set",
                "{.spec.containers[5:5].name}",
                four(),
                "",
                false,
            ),
            (
                "test containers[-5:-5], expect empty set",
                "{.spec.containers[-5:-5].name}",
                four(),
                "",
                false,
            ),
            (
                "test containers[3:1], expect a error cause start index is greater than end index",
                "{.spec.containers[3:1].name}",
                four(),
                "",
                true,
            ),
            (
                "test containers[-1:-2], it equals containers[3:2], expect a error cause start index is greater than end index",
                "{.spec.containers[-1:-2].name}",
                four(),
                "",
                true,
            ),
        ],
        Compare::Text,
    );

    missing_keys.push((
        "TestRunningPodsJSONPathOutput",
        "range over pods without selecting the last one",
    ));

    let six = || pod(6);
    let all = "fake0 fake1 fake2 fake3 fake4 fake5";
    add(
        "TestStep",
        vec![
            (
                "test containers[0:], it equals containers[0:6:1]",
                "{.spec.containers[0:].name}",
                six(),
                all,
                false,
            ),
            (
                "test containers[0:6:], it equals containers[0:6:1]",
                "{.spec.containers[0:6:].name}",
                six(),
                all,
                false,
            ),
            (
                "test containers[0:6:1]",
                "{.spec.containers[0:6:1].name}",
                six(),
                all,
                false,
            ),
            (
                "test containers[0:6:0], it errors",
                "{.spec.containers[0:6:0].name}",
                six(),
                "",
                true,
            ),
            (
                "test containers[0:6:-1], it errors",
                "{.spec.containers[0:6:-1].name}",
                six(),
                "",
                true,
            ),
            (
                "test containers[1:4:2]",
                "{.spec.containers[1:4:2].name}",
                six(),
                "fake1 fake3",
                false,
            ),
            (
                "test containers[1:4:3]",
                "{.spec.containers[1:4:3].name}",
                six(),
                "fake1",
                false,
            ),
            (
                "test containers[1:4:4]",
                "{.spec.containers[1:4:4].name}",
                six(),
                "fake1",
                false,
            ),
            (
                "test containers[0:6:2]",
                "{.spec.containers[0:6:2].name}",
                six(),
                "fake0 fake2 fake4",
                false,
            ),
            (
                "test containers[0:6:3]",
                "{.spec.containers[0:6:3].name}",
                six(),
                "fake0 fake3",
                false,
            ),
            (
                "test containers[0:6:5]",
                "{.spec.containers[0:6:5].name}",
                six(),
                "fake0 fake5",
                false,
            ),
            (
                "test containers[0:6:6]",
                "{.spec.containers[0:6:6].name}",
                six(),
                "fake0",
                false,
            ),
        ],
        Compare::Text,
    );

    let mut file = suite.file_of(CLIENT_GO, JSONPATH_TEST);
    for row in rows {
        match expression(row.template) {
            Err(reason) => file.skip(row.function, &[row.name], reason),
            Ok(expression) => file.case(row.function, row.name, move || judge(&row, &expression)),
        }
    }
    for (function, name) in missing_keys {
        file.skip(function, &[name], MISSING_KEYS);
    }
}

/// The `$(…)` expression a client-go template stands for, or why none does.
fn expression(template: &str) -> Result<String, &'static str> {
    let inner = template
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .filter(|t| !t.contains(['{', '}']))
        .ok_or(TEMPLATE)?
        .trim();
    if let Some(rest) = inner.strip_prefix('$') {
        Ok(format!("body{rest}"))
    } else if inner.starts_with(['.', '[']) {
        Ok(format!("body{inner}"))
    } else {
        Err(NOT_A_PATH)
    }
}

fn judge(row: &Row<'_>, expression: &str) -> Compared {
    let body: Value = serde_json::from_str(&row.input).expect("the table's input is JSON");
    let (headers, extensions) = (Headers::new(), serde_json::Map::new());
    let ctx = EventContext {
        body: &body,
        headers: &headers,
        extensions: &extensions,
        event_id: "",
    };
    let input = format!("`{}` as $({expression})", row.template);
    let sluice = match select(expression, &ctx) {
        Ok(found) => printed(&found.unwrap_or_default()),
        Err(problem) => format!("error: {problem}"),
    };
    if row.error {
        return Compared::error_expected(input, sluice);
    }
    let same = sluice == row.expect
        || match row.compare {
            Compare::Text => false,
            Compare::Struct => as_values(&sluice) == as_values(row.expect),
            Compare::AnyOrder => {
                let sorted = |text: &str| {
                    let mut fields: Vec<&str> = text.split_whitespace().collect();
                    fields.sort_unstable();
                    fields.into_iter().map(str::to_owned).collect::<Vec<_>>()
                };
                sorted(&sluice) == sorted(row.expect)
            }
        };
    Compared::judged(input, row.expect, sluice, same)
}

/// client-go's `PrintResults` for one action's results.
fn printed(results: &[Value]) -> String {
    let texts: Vec<String> = results
        .iter()
        .map(|value| match value {
            Value::String(text) => text.clone(),
            other => json(other),
        })
        .collect();
    texts.join(" ")
}

/// Compact JSON with numbers as Go prints a float64 (`1` for 1.0).
fn json(value: &Value) -> String {
    match value {
        Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() => format!("{float}"),
            _ => number.to_string(),
        },
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(json).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(members) => {
            let members: Vec<String> = members
                .iter()
                .map(|(key, value)| format!("{}:{}", Value::from(key.as_str()), json(value)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        other => other.to_string(),
    }
}

/// A printed output read back as the JSON values it is made of, when it is made of them.
fn as_values(text: &str) -> Option<Vec<Value>> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .ok()
}

fn parser_tests(suite: &mut Suite) {
    let list = "NodeList";
    let array = |params: &str| format!("NodeArray: [{params}]");
    let field = |name: &str| format!("NodeField: {name}");
    let filter = |op: &str| format!("NodeFilter: NodeList {op} NodeList");
    let text = |text: &str| format!("NodeText: {text}");
    let os_image = |op: &str, value: &str| {
        vec![
            list.to_owned(),
            filter(op),
            list.to_owned(),
            field("status"),
            field("nodeInfo"),
            field("osImage"),
            list.to_owned(),
            text(value),
        ]
    };
    let parsed: Vec<(&str, &str, Vec<String>)> = vec![
        ("plain", "hello jsonpath", vec![text("hello jsonpath")]),
        ("variable", "hello {.jsonpath}", vec![]),
        ("arrayfiled", "hello {['jsonpath']}", vec![]),
        ("quote", r#"{"{"}"#, vec![]),
        (
            "array",
            "{[1:3]}",
            vec![
                list.into(),
                array("{1 true false} {3 true false} {0 false false}"),
            ],
        ),
        (
            "allarray",
            "{.book[*].author}",
            vec![
                list.into(),
                field("book"),
                array("{0 false false} {0 false false} {0 false false}"),
                field("author"),
            ],
        ),
        (
            "wildcard",
            "{.bicycle.*}",
            vec![list.into(), field("bicycle"), "NodeWildcard".into()],
        ),
        (
            "filter",
            "{[?(@.price<3)]}",
            vec![
                list.into(),
                filter("<"),
                list.into(),
                field("price"),
                list.into(),
                "NodeInt: 3".into(),
            ],
        ),
        (
            "recursive",
            "{..}",
            vec![list.into(), "NodeRecursive".into()],
        ),
        (
            "recurField",
            "{..price}",
            vec![list.into(), "NodeRecursive".into(), field("price")],
        ),
        (
            "arraydict",
            "{['book.price']}",
            vec![list.into(), field("book"), field("price")],
        ),
        (
            "union",
            "{['bicycle.price', 3, 'book.price']}",
            vec![
                list.into(),
                "NodeUnion".into(),
                list.into(),
                field("bicycle"),
                field("price"),
                list.into(),
                array("{3 true false} {4 true true} {0 false false}"),
                list.into(),
                field("book"),
                field("price"),
            ],
        ),
        ("range", "{range .items}{.name},{end}", vec![]),
        ("malformat input", r"{\\\}", vec![]),
        (
            "paired parentheses in quotes",
            r#"{[?(@.status.nodeInfo.osImage == "()")]}"#,
            os_image("==", "()"),
        ),
        (
            "paired parentheses in double quotes and with double quotes escape",
            r#"{[?(@.status.nodeInfo.osImage == "(\"\")")]}"#,
            os_image("==", r#"("")"#),
        ),
        (
            "unregular parentheses in double quotes",
            r#"{[?(@.test == "())(")]}"#,
            vec![
                list.into(),
                filter("=="),
                list.into(),
                field("test"),
                list.into(),
                text("())("),
            ],
        ),
        (
            "plain text in single quotes",
            "{[?(@.status.nodeInfo.osImage == 'Linux')]}",
            os_image("==", "Linux"),
        ),
        (
            "test filter suffix",
            r#"{[?(@.status.nodeInfo.osImage == "{[()]}")]}"#,
            os_image("==", "{[()]}"),
        ),
        (
            "double inside single",
            r#"{[?(@.status.nodeInfo.osImage == "''")]}"#,
            os_image("==", "''"),
        ),
        (
            "single inside double",
            r#"{[?(@.status.nodeInfo.osImage == '""')]}"#,
            os_image("==", r#""""#),
        ),
        (
            "single containing escaped single",
            r"{[?(@.status.nodeInfo.osImage == '\\\'')]}",
            os_image("==", r"\'"),
        ),
        (
            "negative index slice, equals a[len-5] to a[len-1]",
            "{[-5:]}",
            vec![
                list.into(),
                array("{-5 true false} {0 false false} {0 false false}"),
            ],
        ),
        (
            "negative index slice, equals a[len-1]",
            "{[-1]}",
            vec![
                list.into(),
                array("{-1 true false} {0 true true} {0 false false}"),
            ],
        ),
        (
            "negative index slice, equals a[1] to a[len-1]",
            "{[1:-1]}",
            vec![
                list.into(),
                array("{1 true false} {-1 true false} {0 false false}"),
            ],
        ),
    ];
    let mut file = suite.file_of(CLIENT_GO, PARSER_TEST);
    for (name, template, nodes) in parsed {
        match expression(template) {
            Err(reason) => file.skip("TestParser", &[name], reason),
            Ok(expression) => file.case("TestParser", name, move || {
                let sluice = match Path::parse(&expression) {
                    // The first node is the `body` the expression starts with.
                    Ok(path) => {
                        let mut out = vec![list.to_owned()];
                        collect(path.nodes().get(1..).unwrap_or_default(), &mut out);
                        out.join(", ")
                    }
                    Err(problem) => format!("error: {problem}"),
                };
                Compared::new(
                    format!("`{template}` as $({expression})"),
                    nodes.join(", "),
                    sluice,
                )
            }),
        }
    }

    let failing = [
        ("unclosed action", "{.hello"),
        ("unrecognized character", "{*}"),
        ("invalid number", "{+12.3.0}"),
        ("unterminated array", "{[1}"),
        ("unterminated filter", "{[?(.price]}"),
        ("invalid multiple recursive descent", "{........}"),
    ];
    for (name, template) in failing {
        match expression(template) {
            Err(reason) => file.skip("TestFailParser", &[name], reason),
            Ok(expression) => file.case("TestFailParser", name, move || {
                let sluice = match Path::parse(&expression) {
                    Ok(path) => format!("parsed: {path:?}"),
                    Err(problem) => format!("error: {problem}"),
                };
                Compared::error_expected(format!("`{template}` as $({expression})"), sluice)
            }),
        }
    }
}

/// client-go's `collectNode` over the nodes of one list, each printed as its `String()`.
fn collect(nodes: &[Node], out: &mut Vec<String>) {
    for node in nodes {
        match node {
            Node::Field(name) => out.push(format!("NodeField: {name}")),
            Node::Wildcard => out.push("NodeWildcard".to_owned()),
            Node::Recursive => out.push("NodeRecursive".to_owned()),
            Node::Index(slice) => out.push(format!("NodeArray: [{}]", params(slice))),
            Node::Union(alternatives) => {
                out.push("NodeUnion".to_owned());
                for alternative in alternatives {
                    out.push("NodeList".to_owned());
                    collect(alternative, out);
                }
            }
            Node::Filter(filter) => {
                let operator = match &filter.op {
                    None => "exists",
                    Some((op, _)) => match op {
                        Op::Eq => "==",
                        Op::Ne => "!=",
                        Op::Lt => "<",
                        Op::Le => "<=",
                        Op::Gt => ">",
                        Op::Ge => ">=",
                    },
                };
                out.push(format!("NodeFilter: NodeList {operator} NodeList"));
                out.push("NodeList".to_owned());
                collect(&filter.left, out);
                out.push("NodeList".to_owned());
                if let Some((_, right)) = &filter.op {
                    collect(right, out);
                }
            }
            Node::Text(text) => out.push(format!("NodeText: {text}")),
            Node::Int(int) => out.push(format!("NodeInt: {int}")),
            Node::Float(float) => out.push(format!("NodeFloat: {float:.6}")),
            Node::Bool(bool) => out.push(format!("NodeBool: {bool}")),
        }
    }
}

/// An `ArrayNode`'s three `ParamsEntry` as Go's `%v` prints them.
fn params(slice: &Slice) -> String {
    let step = match slice.step {
        None => "{0 false false}".to_owned(),
        Some(step) => format!("{{{step} true false}}"),
    };
    let bound =
        |b: &sluice_triggers::expr::Bound| format!("{{{} {} {}}}", b.value, b.known, b.derived);
    format!("{} {} {step}", bound(&slice.start), bound(&slice.end))
}
