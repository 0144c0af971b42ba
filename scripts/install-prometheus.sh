#!/usr/bin/env bash
# Makes Prometheus and promtool available and prints the folder that holds both.
#
# Unpacks Debian's `prometheus` package into .tools/prometheus (no service is installed or
# started): the alert rules are checked and unit-tested with its promtool, and the dashboard
# test scrapes a real run with its server.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.tools/prometheus"
bin="$dir/usr/bin"

if [ -x "$bin/promtool" ] && [ -x "$bin/prometheus" ]; then
  echo "$bin"
  exit 0
fi

echo "installing Debian's prometheus package into $dir" >&2
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
if ! (cd "$download" && apt-get download prometheus >&2 2>/dev/null); then
  apt-get update -qq >&2
  (cd "$download" && apt-get download prometheus >&2)
fi
mkdir -p "$dir"
dpkg-deb -x "$download"/prometheus_*.deb "$dir"
"$bin/promtool" --version >&2
echo "$bin"
