#!/usr/bin/env bash
# Checks the Helm chart charts/sluice offline: the generated README is current, then
# scripts/chart/check.py renders, lints and validates the chart for every charts/sluice/ci
# values file and runs the cases in charts/sluice/tests. Exits non-zero on any failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools=$("$root/scripts/install-chart-tools.sh")
export PYTHONPATH="$tools${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

status=0
echo "==> charts/sluice/README.md is generated from values.yaml"
python3 "$root/scripts/chart/readme.py" --check || status=1
echo "==> render, lint, validate and test charts/sluice"
python3 "$root/scripts/chart/check.py" "$@" || status=1
exit "$status"
