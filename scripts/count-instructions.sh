#!/usr/bin/env bash
# Counts the instructions sluice-ingest executes per accepted webhook, under callgrind.
#
#   scripts/count-instructions.sh [INGEST_BINARY] [RUNS]
#
# Runs `sluice-loadtest ingest` at a low rate (200/s for 2 s of warm-up and 10 s measured)
# with the ingest binary under valgrind's callgrind, zeroes the counters when ingest's round
# begins and reads them when it ends. Instruction counts do not depend on what else the host
# runs, so two builds compare without the noise of a throughput run: run it once per build.
# Needs valgrind (`apt-get install valgrind`) and release builds of sluice-loadtest.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ingest=$(realpath "${1:-$root/target/release/sluice-ingest}")
runs=${2:-3}
loadtest="$root/target/release/sluice-loadtest"
rate=200
seconds=10
warmup=2
export SLUICE_NATS_SERVER=${SLUICE_NATS_SERVER:-$("$root/scripts/install-nats.sh")}

command -v callgrind_control >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
[ -x "$ingest" ] || { echo "no ingest binary at $ingest" >&2; exit 1; }
[ -x "$loadtest" ] || { echo "build it first: cargo build --release -p sluice-loadtest" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The loadtest starts `sluice-ingest` from --bin-dir: a wrapper there runs it under callgrind.
cat > "$work/sluice-ingest" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$work/callgrind.%p "$ingest" "\$@"
EOF
chmod +x "$work/sluice-ingest"

wait_for() { # wait_for FILE PATTERN
  until grep -q "$2" "$1"; do sleep 0.1; done
}

for run in $(seq 1 "$runs"); do
  log="$work/run-$run.log"
  # Two rounds, so that the counters are read while the second reference round runs.
  "$loadtest" ingest --bin-dir "$work" --rounds 2 --rate $rate --duration ${seconds}s \
    --warmup ${warmup}s --body-size 1024 --connections 16 > "$log" 2>&1 &
  loadtest_pid=$!
  wait_for "$log" '^== reference (round 1)'
  pid=$(pgrep -P $loadtest_pid -f "callgrind-out-file=$work/" | head -1)
  callgrind_control -z "$pid" > /dev/null 2>&1
  wait_for "$log" '^== ingest (round 1)'
  callgrind_control -d "$pid" > /dev/null 2>&1
  children=$(pgrep -P $loadtest_pid || true)
  kill -9 $loadtest_pid $children 2> /dev/null || true
  wait $loadtest_pid 2> /dev/null || true
  instructions=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$work/callgrind.$pid.1")
  requests=$(( (seconds + warmup) * rate ))
  answered=$(grep -A12 '^== ingest (round 1)' "$log" | grep -m1 -o 'statuses: .*' || true)
  echo "run $run: $instructions instructions for $requests requests," \
    "$(( instructions / requests )) per request ($answered)"
done
