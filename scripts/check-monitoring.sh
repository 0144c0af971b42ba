#!/usr/bin/env bash
# Checks the chart's alert rules: promtool's syntax check, promtool's unit tests
# (charts/sluice/tests/rules/*.yaml), and that every alert has a severity, a summary, a
# description, a runbook link whose section exists in docs/operations.md, one unit test in
# which it fires and one in which it stays silent.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
rules="$root/charts/sluice/files/prometheus-rules.yaml"
tests=("$root"/charts/sluice/tests/rules/*.yaml)
runbooks="$root/docs/operations.md"

promtool="$("$root/scripts/install-prometheus.sh")/promtool"

echo "==> promtool check rules"
"$promtool" check rules "$rules"
echo "==> promtool test rules"
"$promtool" test rules "${tests[@]}"

# The structure check reads YAML; PyYAML from PyPI into .tools when python3 lacks it.
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  if ! python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import yaml' "$root/.tools/pyyaml" >/dev/null 2>&1; then
    echo "installing PyYAML into $root/.tools/pyyaml" >&2
    python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
      --target "$root/.tools/pyyaml" PyYAML >&2
  fi
  export PYTHONPATH="$root/.tools/pyyaml${PYTHONPATH:+:$PYTHONPATH}"
fi

echo "==> alerts: labels, annotations, runbooks, tests"
python3 - "$rules" "$runbooks" "${tests[@]}" <<'PY'
import re
import sys

import yaml

rules_path, runbooks_path, *test_paths = sys.argv[1:]
problems = []

alerts = [
    rule
    for group in yaml.safe_load(open(rules_path))["groups"]
    for rule in group["rules"]
    if "alert" in rule
]
names = [alert["alert"] for alert in alerts]
for name in sorted({n for n in names if names.count(n) > 1}):
    problems.append(f"{name}: defined more than once")

try:
    headings = set(re.findall(r"^### (\S+)\s*$", open(runbooks_path).read(), re.M))
except FileNotFoundError:
    headings = set()
    problems.append(f"{runbooks_path}: missing")

fires, silent = set(), set()
for path in test_paths:
    for case in yaml.safe_load(open(path)).get("tests", []):
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])

for alert in alerts:
    name = alert["alert"]
    labels = alert.get("labels") or {}
    annotations = alert.get("annotations") or {}
    if labels.get("severity") not in ("critical", "warning", "info"):
        problems.append(f"{name}: severity must be critical, warning or info")
    for key in ("summary", "description"):
        if not annotations.get(key):
            problems.append(f"{name}: no {key} annotation")
    want = f"__RUNBOOK_BASE__#{name.lower()}"
    if annotations.get("runbook_url") != want:
        problems.append(f"{name}: runbook_url must be {want!r}")
    if name not in headings:
        problems.append(f"{name}: no '### {name}' runbook section in docs/operations.md")
    if name not in fires:
        problems.append(f"{name}: no unit test in which it fires")
    if name not in silent:
        problems.append(f"{name}: no unit test in which it stays silent")

for problem in problems:
    print(problem, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"{len(alerts)} alerts: each has a severity, a summary, a description, a runbook "
      f"section, and unit tests in which it fires and stays silent")
PY
