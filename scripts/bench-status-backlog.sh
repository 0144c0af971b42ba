#!/usr/bin/env bash
# What a `sluice events` query costs with N events waiting in one tenant's backlog: starts
# nats-server, sluice-ingest and sluice-dispatcher (directory sink) on examples/config, runs
# one event, kills the dispatcher, posts N signed pushes, then times `get` of a recorded
# event and of the first and last waiting ones, `find` of the last delivery and a listing of
# 100 pending events, three times each. Binaries from BIN (default target/release).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
n=${N:-10000}
bin=${BIN:-target/release}
secret=demo-webhook-secret   # stringData.token in examples/config/secret.yaml
nats_port=${BENCH_NATS_PORT:-24222}
http_port=${BENCH_HTTP_PORT:-28080}
work=$(mktemp -d)
nats_server=$(scripts/install-nats.sh)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

printf 'max_payload: 8MB\n' >"$work/nats.conf"
"$nats_server" -c "$work/nats.conf" -a 127.0.0.1 -p "$nats_port" -js -sd "$work/js" \
  >"$work/nats.log" 2>&1 &
pids+=($!)
export SLUICE_NATS_URL="nats://127.0.0.1:$nats_port" SLUICE_CONFIG_DIR="$root/examples/config"
"$bin/sluice-ingest" --listen "127.0.0.1:$http_port" --metrics-addr 127.0.0.1:0 \
  >"$work/ingest.log" 2>&1 &
pids+=($!)
mkdir "$work/runs"
"$bin/sluice-dispatcher" --sink-dir "$work/runs" --metrics-addr 127.0.0.1:0 \
  >"$work/dispatcher.log" 2>&1 &
dispatcher=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

# Posts pushes with delivery ids PREFIX-0 … PREFIX-(COUNT-1); prints the first and last
# event ids.
post() {
  python3 - "$secret" "$http_port" "$1" "$2" <<'PY'
import hashlib, hmac, http.client, json, sys
secret, port, prefix, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
body = open("examples/push.json", "rb").read()
signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
connection = http.client.HTTPConnection("127.0.0.1", port)
for i in range(count):
    connection.request("POST", "/hooks/team-a/github", body, {
        "Content-Type": "application/json", "X-GitHub-Event": "push",
        "X-GitHub-Delivery": f"{prefix}-{i}", "X-Hub-Signature-256": signature})
    response = connection.getresponse()
    answer = json.loads(response.read())
    assert response.status == 202, answer
    if i in (0, count - 1):
        print(answer["eventID"])
PY
}

recorded=$(post done 1 | head -1)
sleep 3
kill -9 "$dispatcher"
wait "$dispatcher" 2>/dev/null || true
mapfile -t waiting < <(post waiting "$n")

timed() {
  local start end
  start=$(date +%s%N)
  "$bin/sluice" events "$@" >/dev/null
  end=$(date +%s%N)
  printf '%5d ms  sluice events %s\n' $(((end - start) / 1000000)) "$*"
}
echo "== $n events waiting in team-a's backlog"
for _ in 1 2 3; do
  timed get "$recorded"
  timed get "${waiting[0]}"
  timed get "${waiting[-1]}"
  timed find --listener team-a/github --delivery "waiting-$((n - 1))"
  timed list --listener team-a/github --state pending --limit 100
done
"$bin/sluice" events get "${waiting[-1]}"
