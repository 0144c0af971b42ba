#!/usr/bin/env bash
# Makes the chart checks' Python tools available and prints the folder that holds them.
#
# Installs the PyPI packages helm-python-sdk (Helm v4 as a library: load, lint and render a
# chart with no helm binary and no cluster) and kubernetes-validate (the Kubernetes OpenAPI
# schemas of many versions, offline) into .tools/chart, with PyYAML and jsonschema beside
# them. Run again, it only checks that they import.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.tools/chart"
helm_sdk=0.2.2
validate=1.37.0

have() {
  PYTHONPATH="$dir" python3 -c "
import importlib.metadata as m
assert m.version('helm-python-sdk') == '$helm_sdk'
assert m.version('kubernetes-validate') == '$validate'
import yaml, jsonschema, kubernetes_validate
" 2>/dev/null
}

if have; then
  echo "$dir"
  exit 0
fi

if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "installing python3-pip to fetch the chart tools" >&2
  apt-get update -qq >&2 && apt-get install -y -qq python3-pip >&2
fi
echo "installing helm-python-sdk $helm_sdk and kubernetes-validate $validate into $dir" >&2
python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --upgrade --target "$dir" \
  "helm-python-sdk==$helm_sdk" "kubernetes-validate==$validate" pyyaml jsonschema >&2
have || { echo "chart tools install failed" >&2; exit 1; }
echo "$dir"
