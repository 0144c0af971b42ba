#!/usr/bin/env bash
# The demo: NATS JetStream, sluice-ingest and sluice-dispatcher on the examples/ config,
# one signed GitHub push webhook, and the PipelineRun it created (written by the directory
# sink, so no cluster is needed). Everything it starts is stopped when it exits.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work="$root/.demo"
nats_port=${DEMO_NATS_PORT:-14222}
http_port=${DEMO_HTTP_PORT:-18080}
secret=demo-webhook-secret   # stringData.token in examples/config/secret.yaml

nats_server=$(scripts/install-nats.sh)
echo "==> building sluice"
cargo build --quiet --bin sluice-ingest --bin sluice-dispatcher --bin sluice

rm -rf "$work"
mkdir -p "$work/runs" "$work/nats"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "==> starting nats-server (JetStream) on 127.0.0.1:$nats_port"
# max_payload: room for ingest's default 4 MiB body and its envelope (the server's own
# default, 1 MiB, would cut ingest's body limit; see docs/reliability.md).
printf 'max_payload: 8MB\n' >"$work/nats.conf"
"$nats_server" -c "$work/nats.conf" -a 127.0.0.1 -p "$nats_port" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
pids+=($!)

export SLUICE_NATS_URL="nats://127.0.0.1:$nats_port"
export SLUICE_CONFIG_DIR="$root/examples/config"

echo "==> starting sluice-ingest on 127.0.0.1:$http_port"
target/debug/sluice-ingest --listen "127.0.0.1:$http_port" --metrics-addr 127.0.0.1:0 \
  >"$work/ingest.log" 2>&1 &
pids+=($!)

echo "==> starting sluice-dispatcher (directory sink: $work/runs)"
target/debug/sluice-dispatcher --sink-dir "$work/runs" --metrics-addr 127.0.0.1:0 \
  >"$work/dispatcher.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$http_port/readyz" >/dev/null || {
  echo "sluice-ingest did not become ready; see $work/ingest.log" >&2
  exit 1
}

signature=$(python3 -c 'import hashlib, hmac, sys
print("sha256=" + hmac.new(sys.argv[1].encode(), open(sys.argv[2], "rb").read(), hashlib.sha256).hexdigest())' \
  "$secret" examples/push.json)

delivery=$(python3 -c 'import uuid; print(uuid.uuid4())')

echo "==> sluice render: what this push would create, offline (the servers' own code)"
target/debug/sluice render --config-dir examples/config --listener team-a/github \
  --body examples/push.json --header 'X-GitHub-Event: push' \
  --header "X-GitHub-Delivery: $delivery" \
  --header "X-Hub-Signature-256: $signature" >"$work/render.yaml"
head -n 20 "$work/render.yaml"
echo "    ... (all of it in ${work#"$root"/}/render.yaml)"

echo "==> POST /hooks/team-a/github (a signed GitHub push)"
curl -sS -X POST "http://127.0.0.1:$http_port/hooks/team-a/github" \
  -H 'Content-Type: application/json' \
  -H 'X-GitHub-Event: push' \
  -H "X-GitHub-Delivery: $delivery" \
  -H "X-Hub-Signature-256: $signature" \
  --data-binary @examples/push.json \
  -w '\n<== HTTP %{http_code}\n'

echo "==> the same push with a wrong signature"
curl -sS -X POST "http://127.0.0.1:$http_port/hooks/team-a/github" \
  -H 'X-GitHub-Event: push' -H 'X-Hub-Signature-256: sha256=00' \
  --data-binary @examples/push.json -w '\n<== HTTP %{http_code}\n'

for _ in $(seq 1 100); do
  run=$(find "$work/runs" -name 'pipelinerun-*.yaml' 2>/dev/null | head -n 1)
  [ -n "$run" ] && break
  sleep 0.1
done
if [ -z "${run:-}" ]; then
  echo "no PipelineRun was created; see $work/dispatcher.log" >&2
  exit 1
fi
echo "==> created ${run#"$root"/}"
cat "$run"
