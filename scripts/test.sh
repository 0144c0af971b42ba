#!/usr/bin/env bash
# Runs the whole test suite: unit tests, and integration tests against a real nats-server
# and promtool (installed here if missing) and the Kubernetes API test double.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
SLUICE_NATS_SERVER=$(scripts/install-nats.sh)
export SLUICE_NATS_SERVER
# `promtool check metrics` judges what /metrics serves.
SLUICE_PROMTOOL=$(scripts/install-prometheus.sh)/promtool
export SLUICE_PROMTOOL
# The integration tests start the binaries as users do, so build them first.
cargo build --locked --bins
cargo test --locked --workspace "$@"
