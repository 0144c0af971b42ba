#!/usr/bin/env bash
# Runs the whole test suite: unit tests, and integration tests against a real nats-server,
# promtool and an OTLP trace receiver (installed here if missing) and the Kubernetes API test
# double.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
SLUICE_NATS_SERVER=$(scripts/install-nats.sh)
export SLUICE_NATS_SERVER
# `promtool check metrics` judges what /metrics serves; a real Prometheus scrapes a run for
# the dashboard's test.
prometheus_bin=$(scripts/install-prometheus.sh)
SLUICE_PROMTOOL=$prometheus_bin/promtool
SLUICE_PROMETHEUS=$prometheus_bin/prometheus
export SLUICE_PROMTOOL SLUICE_PROMETHEUS
# The trace tests export to a real OTLP/HTTP receiver (scripts/otlp-receiver.py).
SLUICE_OTLP_RECEIVER=$(scripts/install-otlp-receiver.sh)
export SLUICE_OTLP_RECEIVER
# The integration tests start the binaries as users do, so build them first.
cargo build --locked --bins
cargo test --locked --workspace "$@"
