#!/usr/bin/env python3
"""Turns cel-spec's simple conformance files into the suite's JSON-lines cases.

Usage: convert.py CEL_SPEC_CHECKOUT COMMIT OUT_DIR

Reads tests/simple/testdata/*.textproto from the checkout and writes one
OUT_DIR/<file>.jsonl per input file: one case a line, each carrying its provenance
(repository, commit, file, section, test name), the expression, what it declares and
binds, and what it expects. Values are written in the suite's own tagged form
(see conformance.rs). Cases that need what Tekton's CEL environment lacks carry a
"skip" reason instead of being dropped, so they are counted.
"""

import json
import pathlib
import re
import sys

# ---------------------------------------------------------------------------
# A reader for the subset of the protobuf text format these files use.


class Reader:
    def __init__(self, text):
        self.text = text
        self.pos = 0

    def skip(self):
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in " \t\r\n,;":
                self.pos += 1
            elif c == "#":
                while self.pos < len(self.text) and self.text[self.pos] != "\n":
                    self.pos += 1
            else:
                return

    def peek(self):
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def message(self, close=None):
        """Fields until `close`: a list of (name, value) pairs, in order."""
        fields = []
        while True:
            c = self.peek()
            if c == "" or c == close:
                if close:
                    self.pos += 1
                return fields
            if c == "[":
                end = self.text.index("]", self.pos)
                name = self.text[self.pos : end + 1]
                self.pos = end + 1
            else:
                m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.text, self.pos)
                if not m:
                    raise ValueError(f"unexpected {self.text[self.pos:self.pos+20]!r}")
                name = m.group(0)
                self.pos = m.end()
            if self.peek() == ":":
                self.pos += 1
            if self.peek() == "[":
                self.pos += 1
                while self.peek() != "]":
                    fields.append((name, self.field_value()))
                self.pos += 1
            else:
                fields.append((name, self.field_value()))

    def field_value(self):
        c = self.peek()
        if c in "{<":
            self.pos += 1
            return self.message("}" if c == "{" else ">")
        return self.scalar()

    def scalar(self):
        c = self.peek()
        if c in "\"'":
            parts = []
            while self.peek() in ("\"", "'"):
                parts.append(self.string())
            return ("str", b"".join(parts))
        m = re.compile(r"[-+]?[A-Za-z0-9_.+-]+").match(self.text, self.pos)
        if not m:
            raise ValueError(f"bad scalar at {self.text[self.pos:self.pos+20]!r}")
        self.pos = m.end()
        return ("word", m.group(0))

    def string(self):
        quote = self.text[self.pos]
        self.pos += 1
        out = bytearray()
        while True:
            c = self.text[self.pos]
            if c == quote:
                self.pos += 1
                return bytes(out)
            if c != "\\":
                out += c.encode("utf-8")
                self.pos += 1
                continue
            e = self.text[self.pos + 1]
            self.pos += 2
            simple = {"n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11,
                      "\\": 92, "'": 39, '"': 34, "?": 63}
            if e in simple:
                out.append(simple[e])
            elif e in "01234567":
                digits = e
                while len(digits) < 3 and self.text[self.pos] in "01234567":
                    digits += self.text[self.pos]
                    self.pos += 1
                out.append(int(digits, 8))
            elif e == "x":
                m = re.compile(r"[0-9A-Fa-f]{1,2}").match(self.text, self.pos)
                out.append(int(m.group(0), 16))
                self.pos = m.end()
            elif e in "uU":
                n = 4 if e == "u" else 8
                out += chr(int(self.text[self.pos : self.pos + n], 16)).encode("utf-8")
                self.pos += n
            else:
                raise ValueError(f"unknown escape \\{e}")


def get(fields, name, default=None):
    for n, v in fields:
        if n == name:
            return v
    return default


def get_all(fields, name):
    return [v for n, v in fields if n == name]


def text(v):
    return v[1].decode("utf-8")


# ---------------------------------------------------------------------------
# Values, types and declarations in the suite's tagged JSON form.


class Unsupported(Exception):
    """The case needs something Tekton's environment does not have."""


WELL_KNOWN = "type.googleapis.com/google.protobuf."


def number(word):
    w = word[1]
    if w in ("inf", "infinity", "Infinity"):
        return "inf"
    if w in ("-inf", "-infinity", "-Infinity"):
        return "-inf"
    if w.lower() == "nan":
        return "nan"
    return w


def value(fields):
    (name, v), = fields if len(fields) == 1 else [(None, None)] if not fields else [fields[0]]
    if name is None:
        raise Unsupported("an empty value")
    if name == "int64_value":
        return {"int": v[1]}
    if name == "uint64_value":
        return {"uint": v[1]}
    if name == "double_value":
        return {"double": number(v)}
    if name == "string_value":
        return {"string": text(v)}
    if name == "bytes_value":
        return {"bytes": v[1].hex()}
    if name == "bool_value":
        return {"bool": v[1] == "true"}
    if name == "null_value":
        return {"null": True}
    if name == "list_value":
        return {"list": [value(x) for x in get_all(v, "values")]}
    if name == "map_value":
        return {"map": [[value(get(e, "key")), value(get(e, "value"))]
                        for e in get_all(v, "entries")]}
    if name == "type_value":
        return {"type": text(v)}
    if name == "enum_value":
        raise Unsupported("enum values (protobuf enums)")
    if name == "object_value":
        return object_value(v)
    raise Unsupported(f"value kind {name}")


def object_value(fields):
    (url, body), = fields
    url = url.strip("[]")
    if not url.startswith(WELL_KNOWN):
        raise Unsupported("protobuf messages")
    kind = url[len(WELL_KNOWN):]
    if kind == "Duration":
        return {"duration": [int(get(body, "seconds", ("word", "0"))[1]),
                             int(get(body, "nanos", ("word", "0"))[1])]}
    if kind == "Timestamp":
        return {"timestamp": [int(get(body, "seconds", ("word", "0"))[1]),
                              int(get(body, "nanos", ("word", "0"))[1])]}
    if kind in ("Int32Value", "Int64Value", "UInt32Value", "UInt64Value", "FloatValue",
                "DoubleValue", "BoolValue", "StringValue", "BytesValue"):
        raise Unsupported("protobuf wrapper types")
    raise Unsupported(f"protobuf message google.protobuf.{kind}")


PRIMITIVES = {"BOOL": "bool", "INT64": "int", "UINT64": "uint", "DOUBLE": "double",
              "STRING": "string", "BYTES": "bytes"}


def cel_type(fields):
    (name, v), = fields
    if name == "primitive":
        return PRIMITIVES[v[1]]
    if name == "dyn":
        return "dyn"
    if name == "null":
        return "null_type"
    if name == "list_type":
        return f"list({cel_type(get(v, 'elem_type'))})"
    if name == "map_type":
        return f"map({cel_type(get(v, 'key_type'))}, {cel_type(get(v, 'value_type'))})"
    if name == "type_param":
        return text(v)
    if name == "type":
        inner = cel_type(v) if v else "dyn"
        return f"type({inner})"
    if name == "well_known":
        known = {"TIMESTAMP": "google.protobuf.Timestamp",
                 "DURATION": "google.protobuf.Duration"}
        if v[1] in known:
            return known[v[1]]
        raise Unsupported("protobuf well-known types other than Timestamp and Duration")
    if name == "abstract_type":
        if text(get(v, "name")) == "optional_type":
            raise Unsupported("optional types")
        params = ", ".join(cel_type(p) for p in get_all(v, "parameter_types"))
        return f"{text(get(v, 'name'))}({params})"
    if name == "wrapper":
        raise Unsupported("protobuf wrapper types")
    if name == "message_type":
        if text(v) in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
            return text(v)
        raise Unsupported("protobuf messages")
    if name == "error":
        return "error"
    raise Unsupported(f"type kind {name}")


def declaration(fields):
    name = text(get(fields, "name"))
    ident = get(fields, "ident")
    if ident is not None:
        return {"var": name, "type": cel_type(get(ident, "type"))}
    raise Unsupported("custom function declarations")


# ---------------------------------------------------------------------------
# Whole files: which apply to Tekton's environment.

WHOLE_FILE_SKIPS = {
    "bindings_ext": "the bindings extension (cel.bind) is not in Tekton's environment",
    "block_ext": "the block extension (cel.@block) is not in Tekton's environment",
    "enums": "protobuf enums",
    "network_ext": "the network extension (ip, cidr) is not in Tekton's environment",
    "optionals": "optional types are not enabled in Tekton's environment",
    "proto2": "protobuf messages",
    "proto2_ext": "protobuf messages and extensions",
    "proto3": "protobuf messages",
    "unknowns": "unknown values (partial evaluation)",
    "wrappers": "protobuf wrapper types",
}

# Expressions that name what Tekton's environment lacks, even in files that apply.
EXPR_SKIPS = [
    (re.compile(r"TestAllTypes|NestedTestAllTypes|TestRequired|NestedMessage|NestedEnum|GlobalEnum|proto[23]\."),
     "protobuf messages"),
    (re.compile(r"(?<![A-Za-z0-9_.])(?!in\s*\{)[A-Za-z_][A-Za-z0-9_.]*\s*\{"),
     "protobuf message construction"),
    (re.compile(r"google\.protobuf\.(Int32Value|Int64Value|UInt32Value|UInt64Value|FloatValue|DoubleValue|BoolValue|StringValue|BytesValue|Any|Value|Struct|ListValue|NullValue|Field|Empty)"),
     "protobuf well-known messages"),
    (re.compile(r"\boptional\b|\.\?|\[\?|\?\.|\.or\(|orValue|hasValue|\bof\("), "optional types"),
    (re.compile(r"cel\.bind|cel\.@block|cel\.block"), "the bindings and block extensions"),
    (re.compile(r"\.transformList|\.transformMap|\.transformMapEntry|\.all\(\w+,\s*\w+,|\.exists\(\w+,\s*\w+,|\.existsOne\(\w+,\s*\w+,|\.exists_one\(\w+,\s*\w+,"),
     "two-variable comprehensions are not enabled in Tekton's environment"),
]


# Cases where cel-go departs from the spec (cel-go leaves them out of its own conformance
# run). Tekton evaluates with cel-go, so where Sluice follows cel-go the case expects what
# cel-go does; where Sluice keeps to the spec instead, the case says so.
CEL_GO_DEPARTURES = {
    ("timestamps", "duration_converters", "get_milliseconds"): (
        {"value": {"int": "123321"}},
        "cel-go gives a duration's whole length in milliseconds, not the milliseconds part"),
    ("string_ext", "value_errors", "indexof_out_of_range"): (
        {"value": {"bool": True}},
        "cel-go finds nothing (-1) past the end instead of failing"),
    ("string_ext", "value_errors", "lastindexof_out_of_range"): (
        {"value": {"bool": True}},
        "cel-go finds nothing (-1) past the end instead of failing"),
}
SPEC_KEPT = {
    ("fields", "qualified_identifier_resolution", "map_key_float"):
        "cel-go accepts double map keys; Sluice refuses them as the spec does",
    ("fields", "qualified_identifier_resolution", "map_key_null"):
        "cel-go accepts null map keys; Sluice refuses them as the spec does",
    ("fields", "qualified_identifier_resolution", "map_value_repeat_key"):
        "cel-go keeps the last of repeated map keys; Sluice refuses them as the spec does",
    ("fields", "qualified_identifier_resolution", "map_value_repeat_key_heterogeneous"):
        "cel-go keeps both 0 and 0u as keys; Sluice refuses them as the spec does",
}


STRING_LITERAL = re.compile(
    r"'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"", re.S)


def without_strings(expr):
    """The expression with its string literals emptied, so that their text is not read as code."""
    return STRING_LITERAL.sub("''", expr)


def convert_case(file_name, commit, section, test):
    case = {
        "source": {
            "repository": "google/cel-spec",
            "commit": commit,
            "file": f"tests/simple/testdata/{file_name}.textproto",
            "section": text(get(section, "name")),
            "test": text(get(test, "name")),
        },
        "expr": text(get(test, "expr")),
    }
    for flag in ("disable_check", "check_only", "disable_macros"):
        v = get(test, flag)
        if v is not None and v[1] == "true":
            case[flag] = True
    container = get(test, "container")
    if container is not None and text(container):
        case["container"] = text(container)
    try:
        if file_name in WHOLE_FILE_SKIPS:
            raise Unsupported(WHOLE_FILE_SKIPS[file_name])
        code = without_strings(case["expr"])
        for pattern, reason in EXPR_SKIPS:
            if pattern.search(code):
                raise Unsupported(reason)
        if get(test, "locale") is not None:
            raise Unsupported("locales")
        if "container" in case:
            raise Unsupported("containers: Tekton's environment sets none")
        decls = [declaration(d) for d in get_all(test, "type_env")]
        if decls:
            case["declarations"] = decls
        bindings = {}
        for b in get_all(test, "bindings"):
            expr_value = get(b, "value")
            inner = get(expr_value, "value")
            if inner is None:
                raise Unsupported("bindings to errors or unknowns")
            bindings[text(get(b, "key"))] = value(inner)
        if bindings:
            case["bindings"] = bindings
        if get(test, "value") is not None:
            case["expect"] = {"value": value(get(test, "value"))}
        elif get(test, "typed_result") is not None:
            typed = get(test, "typed_result")
            expect = {"type": cel_type(get(typed, "deduced_type"))}
            if get(typed, "result") is not None:
                expect["value"] = value(get(typed, "result"))
            case["expect"] = expect
        elif get(test, "eval_error") is not None:
            messages = [text(get(e, "message")) for e in get_all(get(test, "eval_error"), "errors")]
            case["expect"] = {"error": "; ".join(messages)}
        elif get(test, "any_eval_errors") is not None:
            case["expect"] = {"error": "any"}
        elif get(test, "unknown") is not None or get(test, "any_unknowns") is not None:
            raise Unsupported("unknown values (partial evaluation)")
        else:
            case["expect"] = {"value": {"bool": True}}
        key = (file_name, case["source"]["section"], case["source"]["test"])
        if key in CEL_GO_DEPARTURES:
            case["spec_expect"] = case["expect"]
            case["expect"], case["note"] = CEL_GO_DEPARTURES[key]
        if key in SPEC_KEPT:
            case["note"] = SPEC_KEPT[key]
    except Unsupported as why:
        case["skip"] = str(why)
    return case


def main():
    checkout, commit, out_dir = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(pathlib.Path(checkout, "tests/simple/testdata").glob("*.textproto")):
        file_name = path.stem
        doc = Reader(path.read_text(encoding="utf-8")).message()
        lines = []
        for section in get_all(doc, "section"):
            for test in get_all(section, "test"):
                lines.append(json.dumps(convert_case(file_name, commit, section, test),
                                        ensure_ascii=False, sort_keys=True))
        if lines:
            (out_dir / f"{file_name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
