"""Runs charts/sluice/tests/*.yaml: values, then assertions on the rendered objects.

A test file, in the spirit of helm-unittest:

    tests:
      - it: binds impersonation in each tenant namespace
        values: {rbac: {tenantNamespaces: [team-a, team-b]}}   # optional
        valuesFiles: [ci/production-values.yaml]               # optional, chart-relative
        asserts:
          - count: {kind: RoleBinding, name: sluice-tenant, count: 2}
          - equal: {kind: Deployment, name: sluice-ingest, path: spec.replicas, value: 2}

Every assertion but `failedTemplate` and `count` selects objects by `kind` and optionally
`name` and `namespace` (at least one must match; each is checked). Paths are dotted, with
`[0]` for an index, `[name=ingest]` for the list item whose field has that value and
`['app.kubernetes.io/name']` for a key holding dots. Assertions:

    exists, notExists                  an object is (not) rendered
    count: {count}                     how many objects match
    equal: {path, value}               the value at path
    notEqual: {path, value}
    contains / notContains: {path, value}   a list holds (or lacks) the value
    matchRegex / notMatchRegex: {path, pattern}   a string, or any item of a list of strings
    greaterThan: {path, value | valuePath}    a number, compared to a value or another path
    isNull / isNotNull: {path}
    failedTemplate: {errorPattern}     rendering fails with a matching message
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Callable

import yaml

_MISSING = object()


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


_TOKEN = re.compile(r"\.?([A-Za-z0-9_$-]+)|\[(\d+)\]|\['([^']+)'\]|\[([A-Za-z0-9_.-]+)=([^\]]*)\]")


def resolve(obj: Any, path: str) -> Any:
    """The value at `path`, or _MISSING."""
    position = 0
    current = obj
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match:
            raise ValueError(f"cannot read the path {path!r} at {path[position:]!r}")
        position = match.end()
        key, index, quoted, field, wanted = match.groups()
        if index is not None:
            if not isinstance(current, list) or int(index) >= len(current):
                return _MISSING
            current = current[int(index)]
        elif field is not None:
            if not isinstance(current, list):
                return _MISSING
            found = [i for i in current if isinstance(i, dict) and str(i.get(field)) == wanted]
            if not found:
                return _MISSING
            current = found[0]
        else:
            name = key if key is not None else quoted
            if not isinstance(current, dict) or name not in current:
                return _MISSING
            current = current[name]
    return current


def select(objects: list[dict[str, Any]], spec: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        if "kind" in spec and obj.get("kind") != spec["kind"]:
            continue
        if "name" in spec and meta.get("name") != spec["name"]:
            continue
        if "namespace" in spec and meta.get("namespace") != spec["namespace"]:
            continue
        out.append(obj)
    return out


def describe(spec: dict[str, Any]) -> str:
    return "/".join(str(spec[k]) for k in ("kind", "namespace", "name") if k in spec)


def check_assert(kind: str, spec: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    if kind == "count":
        found = len(select(objects, spec))
        assert found == spec["count"], f"{describe(spec)}: {found} objects, not {spec['count']}"
        return
    matched = select(objects, spec)
    if kind == "notExists":
        assert not matched, f"{describe(spec)} is rendered"
        return
    assert matched, f"{describe(spec)} is not rendered"
    if kind == "exists":
        return
    for obj in matched:
        value = resolve(obj, spec["path"])
        where = f"{describe(spec)} {spec['path']}"
        if kind == "isNull":
            assert value is _MISSING or value is None, f"{where} is {value!r}"
            continue
        if kind == "isNotNull":
            assert value is not _MISSING and value is not None, f"{where} is absent"
            continue
        assert value is not _MISSING, f"{where} is absent"
        if kind == "equal":
            assert value == spec["value"], f"{where} is {value!r}, not {spec['value']!r}"
        elif kind == "notEqual":
            assert value != spec["value"], f"{where} is {value!r}"
        elif kind == "contains":
            assert isinstance(value, list) and spec["value"] in value, (
                f"{where} lacks {spec['value']!r}: {value!r}"
            )
        elif kind == "notContains":
            assert isinstance(value, list) and spec["value"] not in value, (
                f"{where} holds {spec['value']!r}"
            )
        elif kind in ("matchRegex", "notMatchRegex"):
            items = value if isinstance(value, list) else [value]
            hit = any(isinstance(i, str) and re.search(spec["pattern"], i) for i in items)
            if kind == "matchRegex":
                assert hit, f"{where} does not match {spec['pattern']!r}: {value!r}"
            else:
                assert not hit, f"{where} matches {spec['pattern']!r}: {value!r}"
        elif kind == "greaterThan":
            other = spec.get("value")
            if "valuePath" in spec:
                other = resolve(obj, spec["valuePath"])
            assert value > other, f"{where} is {value!r}, not above {other!r}"
        else:
            raise AssertionError(f"unknown assertion {kind!r}")


def run(
    chart: Path,
    tests_dir: Path,
    render: Callable[[Path, dict[str, Any]], list[dict[str, Any]]],
    results: Any,
) -> None:
    files = sorted(tests_dir.glob("*.yaml"))
    assert files, f"no tests in {tests_dir}"
    for file in files:
        suite = yaml.safe_load(file.read_text()) or {}
        for case in suite.get("tests") or []:
            name = f"{file.name}: {case['it']}"

            def one(case: dict[str, Any] = case) -> None:
                values: dict[str, Any] = {}
                for extra in case.get("valuesFiles") or []:
                    values = deep_merge(values, yaml.safe_load((chart / extra).read_text()) or {})
                values = deep_merge(values, case.get("values") or {})
                asserts = case["asserts"]
                failing = [a for a in asserts if "failedTemplate" in a]
                try:
                    objects = render(chart, values)
                except Exception as error:  # noqa: BLE001 - Helm's errors are the subject
                    assert failing, f"rendering failed: {error}"
                    pattern = failing[0]["failedTemplate"].get("errorPattern", "")
                    assert re.search(pattern, str(error)), (
                        f"failed, but not with {pattern!r}: {error}"
                    )
                    return
                assert not failing, "rendered, but the test expects a failure"
                for assertion in asserts:
                    ((kind, spec),) = assertion.items()
                    check_assert(kind, spec, objects)

            results.check(name, one)
