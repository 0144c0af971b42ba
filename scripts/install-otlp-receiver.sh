#!/usr/bin/env bash
# Makes the tests' OTLP/HTTP trace receiver runnable and prints the command that starts it.
#
# scripts/otlp-receiver.py decodes what the binaries export with the PyPI package
# opentelemetry-proto (and protobuf); both are installed once into a virtual environment in
# .tools/otlp-receiver, beside a launcher that runs the script with it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=1.45.2
dir="$root/.tools/otlp-receiver"
launcher="$dir/otlp-receiver"

installed() {
  [ -x "$launcher" ] && [ -f "$dir/version" ] && [ "$(cat "$dir/version")" = "$version" ] &&
    "$dir/venv/bin/python" -c \
      'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>/dev/null
}

if installed; then
  echo "$launcher"
  exit 0
fi

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  echo "installing python3-venv for the OTLP receiver" >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
  else
    sudo apt-get update -qq >&2 && sudo apt-get install -y -qq python3-venv >&2
  fi
fi
echo "installing opentelemetry-proto $version into $dir" >&2
rm -rf "$dir"
mkdir -p "$dir"
python3 -m venv "$dir/venv" >&2
"$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "opentelemetry-proto==$version" >&2
cat >"$launcher" <<EOF
#!/bin/sh
exec "$dir/venv/bin/python" "$root/scripts/otlp-receiver.py" "\$@"
EOF
chmod +x "$launcher"
echo "$version" >"$dir/version"
installed || { echo "the OTLP receiver cannot import opentelemetry-proto" >&2; exit 1; }
echo "$launcher"
