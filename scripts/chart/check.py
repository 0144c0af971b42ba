#!/usr/bin/env python3
"""Offline checks of the Helm chart charts/sluice.

Renders and lints the chart with Helm's own code (helm-python-sdk) for every values file in
charts/sluice/ci/, validates each rendered object against the Kubernetes API schemas
(kubernetes-validate) of the two newest minor versions known, and asserts what the chart
promises: the restricted Pod Security settings on every pod, RBAC no wider than
docs/kubernetes.md, grace periods above the shutdown flags, a values schema that refuses
unknown keys, and the cases in charts/sluice/tests/*.yaml.

Run through scripts/check-chart.sh, which installs the tools first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

import yaml

import helm_python as helm
from kubernetes_validate import utils as kv

sys.path.insert(0, str(Path(__file__).resolve().parent))
import unittests  # noqa: E402  (beside this file)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "sluice"
RELEASE = "sluice"
NAMESPACE = "sluice-system"

# Custom resources: kubernetes-validate has no schema for them. Skipped by apiVersion, so
# that a built-in kind at an apiVersion the API server no longer serves still fails.
CRD_API_VERSIONS = {
    "monitoring.coreos.com/v1": {"ServiceMonitor", "PrometheusRule"},
    "keda.sh/v1alpha1": {"ScaledObject"},
    "gateway.networking.k8s.io/v1": {"HTTPRoute"},
}

POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod"}

# Files other people write; the chart needs them only with monitoring turned on.
STAND_INS = {
    "files/prometheus-rules.yaml": (
        "groups:\n  - name: stand-in\n    rules:\n      - alert: StandIn\n"
        "        expr: vector(1)\n        annotations:\n"
        '          runbook_url: "__RUNBOOK_BASE__#stand-in"\n'
    ),
    "files/dashboard.json": '{"title": "Sluice", "panels": []}\n',
}


class Results:
    """Counts checks and prints one line per failure (and per pass with --verbose)."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def check(self, name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except AssertionError as error:
            self.failed += 1
            print(f"FAIL {name}: {error}")
        except Exception as error:  # a crash in a check is a failure, not an abort
            self.failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {error}")
            if self.verbose:
                traceback.print_exc()
        else:
            self.passed += 1
            if self.verbose:
                print(f"ok   {name}")


# ---------------------------------------------------------------------------------------
# rendering


def render(chart: Path, values: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The objects a release of `chart` with `values` would apply, in template order."""
    with helm.Chart.load(chart) as loaded:
        manifests = loaded.render(
            values=values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    objects = []
    for template in sorted(manifests):
        if not template.endswith((".yaml", ".yml")):
            continue
        for document in yaml.safe_load_all(manifests[template]):
            if document:
                document.setdefault("metadata", {}).setdefault("namespace", None)
                objects.append(document)
    return objects


def chart_for_checks(tmp: Path) -> Path:
    """The chart, with stand-ins for the monitoring files when they are not there yet."""
    missing = [name for name in STAND_INS if not (CHART / name).is_file()]
    if not missing:
        return CHART
    copy = tmp / "sluice"
    shutil.copytree(CHART, copy)
    for name in missing:
        print(f"note: {name} is not in the chart yet; checking with a stand-in")
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_text(STAND_INS[name])
    return copy


def ci_values() -> dict[str, dict[str, Any]]:
    files = sorted((CHART / "ci").glob("*.yaml"))
    assert files, "charts/sluice/ci/ has no values files"
    return {f.name: (yaml.safe_load(f.read_text()) or {}) for f in files}


def ident(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{(ns + '/') if ns else ''}{meta.get('name')}"


# ---------------------------------------------------------------------------------------
# Kubernetes schemas


def newest_versions(count: int = 2) -> list[str]:
    minors: dict[str, str] = {}
    for version in kv.all_versions():
        minors[kv.major_minor(version)] = version
    ordered = sorted(minors, key=lambda v: tuple(int(p) for p in v.split(".")))
    return ordered[-count:]


def validate_object(obj: dict[str, Any], version: str) -> bool:
    """Validates `obj` strictly; False when it is a known custom resource without a schema."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if kind in CRD_API_VERSIONS.get(api_version, set()):
        return False
    try:
        kv.validate(obj, version, strict=True)
    except kv.SchemaNotFoundError:
        raise AssertionError(
            f"{ident(obj)}: Kubernetes {version} serves no {kind} at {api_version}"
        ) from None
    except kv.ValidationError as error:
        path = ".".join(str(p) for p in error.path)
        raise AssertionError(f"{ident(obj)} against {version}: {path}: {error.message}") from None
    return True


# ---------------------------------------------------------------------------------------
# pod security


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    kind = obj["kind"]
    if kind == "Pod":
        return obj["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def assert_restricted(obj: dict[str, Any]) -> None:
    """The restricted Pod Security Standard, plus a read-only root and resources."""
    spec = pod_spec(obj)
    where = ident(obj)
    pod_sc = spec.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(key), f"{where}: {key} is set"
    for volume in spec.get("volumes") or []:
        assert "hostPath" not in volume, f"{where}: hostPath volume {volume.get('name')}"
    assert pod_sc.get("runAsNonRoot") is True, f"{where}: pod securityContext.runAsNonRoot"
    assert pod_sc.get("runAsUser", 1) != 0, f"{where}: pod runs as UID 0"
    containers = (spec.get("initContainers") or []) + spec["containers"]
    for c in containers:
        name = f"{where} container {c['name']}"
        sc = c.get("securityContext") or {}
        assert sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation"
        assert sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem"
        assert not sc.get("privileged"), f"{name}: privileged"
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, f"{name}: runAsNonRoot"
        assert sc.get("runAsUser", pod_sc.get("runAsUser", 1)) != 0, f"{name}: runs as UID 0"
        assert (sc.get("capabilities") or {}).get("drop") == ["ALL"], f"{name}: capabilities.drop"
        assert not (sc.get("capabilities") or {}).get("add"), f"{name}: capabilities.add"
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        assert seccomp == "RuntimeDefault", f"{name}: seccompProfile {seccomp}"
        resources = c.get("resources") or {}
        assert (resources.get("requests") or {}).get("cpu"), f"{name}: no CPU request"
        assert (resources.get("requests") or {}).get("memory"), f"{name}: no memory request"
        assert (resources.get("limits") or {}).get("memory"), f"{name}: no memory limit"


def flag(args: list[str], name: str) -> str | None:
    for arg in args:
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def seconds(duration: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(ms|s|m|h)", duration)
    assert match, f"cannot read the duration {duration!r}"
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    return float(match.group(1)) * scale


def assert_sluice_pod(obj: dict[str, Any]) -> None:
    """Probes on the ops port; a grace period longer than the binary's own shutdown."""
    spec = pod_spec(obj)
    where = ident(obj)
    for c in spec["containers"]:
        command = c.get("command") or []
        if not command or not command[0].startswith("/usr/local/bin/sluice-"):
            continue
        args = c.get("args") or []
        metrics_addr = flag(args, "--metrics-addr")
        assert metrics_addr, f"{where}: no --metrics-addr"
        port = int(metrics_addr.rsplit(":", 1)[1])
        ports = {p["name"]: p["containerPort"] for p in c.get("ports") or []}
        assert ports.get("metrics") == port, f"{where}: port metrics is not --metrics-addr"
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = (c.get(probe) or {}).get("httpGet") or {}
            assert get.get("path") == path, f"{where}: {probe} is not GET {path}"
            assert get.get("port") in ("metrics", port), f"{where}: {probe} not on the ops port"
        delay = seconds(flag(args, "--shutdown-delay") or "0s")
        timeout = flag(args, "--shutdown-timeout")
        assert timeout, f"{where}: no --shutdown-timeout"
        grace = spec.get("terminationGracePeriodSeconds", 30)
        assert grace > delay + seconds(timeout), (
            f"{where}: terminationGracePeriodSeconds {grace} <= shutdown delay {delay} + "
            f"timeout {timeout}"
        )
        assert flag(args, "--nats-url"), f"{where}: no --nats-url"


# ---------------------------------------------------------------------------------------
# RBAC


def documented_rbac() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) that docs/kubernetes.md's RBAC section grants."""
    text = (ROOT / "docs" / "kubernetes.md").read_text()
    section = text.split("## RBAC", 1)[1]
    block = section.split("```yaml", 1)[1].split("```", 1)[0]
    grants = set()
    for doc in yaml.safe_load_all(block):
        for rule in (doc or {}).get("rules", []):
            grants |= expand(rule)
    assert grants, "docs/kubernetes.md has no RBAC rules"
    return grants


def expand(rule: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


READ_ONLY_CONFIG = {
    ("triggers.tekton.dev", r, v)
    for r in (
        "eventlisteners triggers triggerbindings triggertemplates "
        "clustertriggerbindings interceptors clusterinterceptors"
    ).split()
    for v in ("get", "list", "watch")
} | {("", "secrets", v) for v in ("get", "list", "watch")}


def grants_by_subject(objects: list[dict[str, Any]]) -> dict[str, set[tuple[str, str, str]]]:
    roles: dict[tuple[str, str | None, str], list[dict[str, Any]]] = {}
    for obj in objects:
        if obj["kind"] in ("Role", "ClusterRole"):
            ns = obj["metadata"]["namespace"] if obj["kind"] == "Role" else None
            roles[(obj["kind"], ns, obj["metadata"]["name"])] = obj.get("rules") or []
    grants: dict[str, set[tuple[str, str, str]]] = {}
    for obj in objects:
        if obj["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        ref = obj["roleRef"]
        ns = obj["metadata"]["namespace"] if ref["kind"] == "Role" else None
        key = (ref["kind"], ns, ref["name"])
        assert key in roles, f"{ident(obj)} refers to {ref['kind']} {ref['name']}, not in the chart"
        for subject in obj.get("subjects") or []:
            who = subject["name"]
            for rule in roles[key]:
                grants.setdefault(who, set()).update(expand(rule))
    return grants


def assert_rbac(objects: list[dict[str, Any]], values: dict[str, Any]) -> None:
    for obj in objects:
        if obj["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in obj.get("rules") or []:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert "*" not in (rule.get(field) or []), f"{ident(obj)} grants * in {field}"
            assert not rule.get("nonResourceURLs"), f"{ident(obj)} grants nonResourceURLs"
    documented = documented_rbac()
    created = set()
    for entry in values["rbac"]["createdResources"]:
        created |= expand({**entry, "verbs": ["get"]})
    allowed = documented | {("", "serviceaccounts", "impersonate")} | created
    grants = grants_by_subject(objects)
    ingest = f"{RELEASE}-ingest"
    dispatcher = f"{RELEASE}-dispatcher"
    assert set(grants) <= {ingest, dispatcher}, f"bindings to others: {set(grants)}"
    assert grants.get(ingest) == READ_ONLY_CONFIG, (
        f"ingest must read configuration only; it gets {sorted(grants.get(ingest, set()))}"
    )
    extra = grants.get(dispatcher, set()) - allowed
    assert not extra, f"dispatcher gets more than docs/kubernetes.md: {sorted(extra)}"
    missing = documented - grants.get(dispatcher, set())
    assert not missing, f"dispatcher lacks what docs/kubernetes.md grants: {sorted(missing)}"
    tenants = values["rbac"]["tenantNamespaces"]
    if tenants or values["rbac"]["clusterWideImpersonation"]:
        assert ("", "serviceaccounts", "impersonate") in grants[dispatcher], "no impersonation"


# ---------------------------------------------------------------------------------------
# the values schema


PASSTHROUGH = {"nodeAffinity", "podAffinity", "podAntiAffinity"}


def assert_schema_strict(schema: dict[str, Any], path: str = "") -> None:
    """Every object in the schema either lists its keys and refuses others, or is a map."""
    if schema.get("type") == "object":
        name = path.rsplit(".", 1)[-1]
        if "properties" in schema:
            assert schema.get("additionalProperties") is False, f"{path or '.'} accepts any key"
        elif name not in PASSTHROUGH:
            assert isinstance(schema.get("additionalProperties"), dict), (
                f"{path} is an object without listed keys or a value schema"
            )
    for key, sub in (schema.get("properties") or {}).items():
        assert_schema_strict(sub, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            assert_schema_strict(schema[key], f"{path}[]")
    for key in ("oneOf", "anyOf", "allOf"):
        for sub in schema.get(key) or []:
            assert_schema_strict(sub, path)
    for key, sub in (schema.get("definitions") or {}).items():
        assert_schema_strict(sub, f"definitions.{key}")


def assert_refused(chart: Path, values: dict[str, Any], pattern: str) -> None:
    try:
        render(chart, values)
    except helm.HelmError as error:
        assert re.search(pattern, str(error)), f"refused, but not for {pattern!r}: {error}"
    else:
        raise AssertionError(f"rendered with {values}")


# ---------------------------------------------------------------------------------------
# the binaries themselves, when they are built


def binaries() -> Path | None:
    """The folder of the built binaries: $SLUICE_BIN_DIR, else target/debug or target/release."""
    candidates = [os.environ.get("SLUICE_BIN_DIR")] + [
        str(ROOT / "target" / profile) for profile in ("debug", "release")
    ]
    for candidate in candidates:
        if candidate and all(
            (Path(candidate) / name).is_file() for name in ("sluice-ingest", "sluice-dispatcher", "sluice")
        ):
            return Path(candidate)
    return None


_FLAGS: dict[str, set[str]] = {}


def flags_of(binary: Path) -> set[str]:
    if binary.name not in _FLAGS:
        help_text = subprocess.run(
            [binary, "--help"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
        _FLAGS[binary.name] = set(re.findall(r"(?m)^\s+(?:-\w, )?(--[a-z0-9-]+)", help_text))
    return _FLAGS[binary.name]


def assert_flags_exist(objects: list[dict[str, Any]], bin_dir: Path) -> None:
    """Every flag the chart passes is one the binary it starts takes."""
    checked = 0
    for obj in objects:
        if obj["kind"] not in POD_KINDS:
            continue
        for c in pod_spec(obj)["containers"]:
            command = c.get("command") or []
            if not command or not command[0].startswith("/usr/local/bin/sluice"):
                continue
            known = flags_of(bin_dir / Path(command[0]).name)
            for arg in c.get("args") or []:
                name = arg.split("=", 1)[0]
                assert name in known, f"{ident(obj)}: {Path(command[0]).name} has no {name}"
                checked += 1
    assert checked, "no flags found"


def assert_tenants_file_valid(objects: list[dict[str, Any]], bin_dir: Path) -> None:
    """The rendered tenants file is one `sluice validate --tenants-file` accepts."""
    for obj in objects:
        if obj["kind"] != "ConfigMap" or "tenants.yaml" not in (obj.get("data") or {}):
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
            file.write(obj["data"]["tenants.yaml"])
            file.flush()
            run = subprocess.run(
                [bin_dir / "sluice", "validate", "--tenants-file", file.name],
                capture_output=True, text=True, timeout=30,
            )
        assert run.returncode == 0, f"{ident(obj)}: {run.stdout.strip()} {run.stderr.strip()}"


# ---------------------------------------------------------------------------------------
# the NATS chart's example values


def payload_bytes(text: str) -> int:
    match = re.fullmatch(r"(?:<<\s*)?([0-9]+)\s*(B|KB|MB|GB)?(?:\s*>>)?", str(text).strip())
    assert match, f"cannot read max_payload {text!r}"
    return int(match.group(1)) * {None: 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[
        match.group(2)
    ]


def assert_nats_example(chart_values: dict[str, Any]) -> None:
    """examples/nats-values.yaml gives the durability and payload size Sluice needs."""
    example = yaml.safe_load((CHART / "examples" / "nats-values.yaml").read_text())
    config = example["config"]
    assert config["cluster"]["enabled"] is True and config["cluster"]["replicas"] == 3
    js = config["jetstream"]
    assert js["enabled"] is True, "JetStream is off"
    assert js["fileStore"]["enabled"] and js["fileStore"]["pvc"]["enabled"], "no file storage PVC"
    assert not js["memoryStore"]["enabled"], "memory storage is on"
    assert js["merge"]["sync_interval"] == "always", "sync_interval is not always"
    envelope = 4096 + 2 * 32768  # docs/reliability.md: 4 KiB + 2 x --max-header-bytes
    needed = chart_values["ingest"]["maxBodyBytes"] + envelope
    payload = payload_bytes(config["merge"]["max_payload"])
    assert payload > needed, f"max_payload {payload} does not carry {needed} bytes"
    assert payload <= 64 * 1024**2, "nats-server refuses max_payload above 64 MB"
    assert example["promExporter"]["enabled"] is True, "the Prometheus exporter is off"
    assert example["promExporter"]["podMonitor"]["enabled"] is True, "the exporter is not scraped"


# ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print passing checks")
    args = parser.parse_args()
    results = Results(args.verbose)

    with tempfile.TemporaryDirectory() as tmp:
        chart = chart_for_checks(Path(tmp))
        versions = newest_versions()
        print(f"Kubernetes schemas: {', '.join(versions)}")
        bin_dir = binaries()
        if bin_dir:
            print(f"binaries: {bin_dir}")
        else:
            results.skipped += 1
            print("note: no built binaries (cargo build --bins); flags and tenants files unchecked")
        # A removed built-in apiVersion must fail, not be skipped as a custom resource.
        def removed_api_fails() -> None:
            for api_version, kind in (("policy/v1beta1", "PodDisruptionBudget"),
                                      ("autoscaling/v2beta2", "HorizontalPodAutoscaler")):
                stale = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
                try:
                    validate_object(stale, versions[-1])
                except AssertionError:
                    continue
                raise AssertionError(f"{api_version} {kind} passed validation")

        results.check("removed built-in apiVersions are refused", removed_api_fails)

        counts = {"objects": 0, "validated": 0, "skipped": 0}
        for name, values in ci_values().items():
            for version in versions:
                def lint(values: dict[str, Any] = values, version: str = version) -> None:
                    report = helm.lint(chart, values, strict=True, namespace=NAMESPACE,
                                       kube_version=f"v{version}.0")
                    problems = [m for m in report["messages"] if m["severity"] >= 2]
                    problems += [{"error": e} for e in report.get("errors") or []]
                    assert not problems, "; ".join(m["error"].strip() for m in problems)

                results.check(f"{name}: helm lint --strict --kube-version {version}", lint)

            box: dict[str, Any] = {}

            def do_render(values: dict[str, Any] = values, box: dict[str, Any] = box) -> None:
                box["objects"] = render(chart, values)
                with helm.Chart.load(chart) as loaded:
                    box["values"] = loaded.merge_values(values)

            results.check(f"{name}: renders", do_render)
            if "objects" not in box:
                continue
            objects, merged = box["objects"], box["values"]
            counts["objects"] += len(objects)

            for version in versions:
                def validate(version: str = version, objects: list = objects) -> None:
                    errors = []
                    for obj in objects:
                        try:
                            if validate_object(obj, version):
                                counts["validated"] += 1
                            else:
                                counts["skipped"] += 1
                        except AssertionError as error:
                            errors.append(str(error))
                    assert not errors, "\n  ".join([""] + errors)

                results.check(f"{name}: valid Kubernetes {version} objects", validate)

            for obj in objects:
                if obj["kind"] in POD_KINDS:
                    results.check(f"{name}: {ident(obj)} is restricted",
                                  lambda obj=obj: assert_restricted(obj))
                    results.check(f"{name}: {ident(obj)} probes and shutdown",
                                  lambda obj=obj: assert_sluice_pod(obj))
            results.check(f"{name}: RBAC as docs/kubernetes.md, no *",
                          lambda o=objects, v=merged: assert_rbac(o, v))
            if bin_dir:
                results.check(f"{name}: every flag exists in its binary",
                              lambda o=objects: assert_flags_exist(o, bin_dir))
                results.check(f"{name}: the tenants file passes sluice validate",
                              lambda o=objects: assert_tenants_file_valid(o, bin_dir))

        schema = json.loads((CHART / "values.schema.json").read_text())
        results.check("values.schema.json refuses unknown keys at every level",
                      lambda: assert_schema_strict(schema))
        for bad, pattern in (
            ({"bogus": 1}, r"bogus"),
            ({"image": {"repo": "x"}}, r"repo"),
            ({"ingest": {"autoscaling": {"enable": True}}}, r"enable"),
            ({"nats": {"embedded": {"enabled": "yes"}}}, r"enabled"),
            ({"tenants": {"namespaces": {"a": {"runsPerMinut": 1}}}}, r"runsPerMinut"),
            ({"rbac": {"tenantNamespaces": ["Team_A"]}}, r"tenantNamespaces"),
        ):
            results.check(f"values {bad} are refused",
                          lambda bad=bad, pattern=pattern: assert_refused(chart, bad, pattern))

        with helm.Chart.load(chart) as loaded:
            chart_defaults = loaded.values
        results.check("examples/nats-values.yaml: 3 servers, synced file storage, max_payload",
                      lambda: assert_nats_example(chart_defaults))

        unittests.run(chart, CHART / "tests", render, results)

    print(
        f"rendered {counts['objects']} objects from {len(ci_values())} values files; "
        f"{counts['validated']} validated, {counts['skipped']} custom resources skipped"
    )
    skipped = f", {results.skipped} skipped" if results.skipped else ""
    print(f"chart: {results.passed} passed, {results.failed} failed{skipped}")
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
