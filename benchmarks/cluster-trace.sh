#!/usr/bin/env bash
# Trace replay against a cluster on loopback: one control plane, three wasm workers (one
# process) and one gateway, with `baton bench trace replay --target` at the gateway.
# Usage: benchmarks/cluster-trace.sh [minute]   (real time of one trace minute, default 60s)
set -euo pipefail
cd "$(dirname "$0")/.."
minute="${1:-60s}"
cargo build --release -p baton
baton=target/release/baton
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$((20000 + RANDOM % 20000))
BATON_LOG=warn $baton control --listen 127.0.0.1:$port --data-dir "$dir/control" \
  --scale-to-zero-grace 5m >"$dir/control.log" 2>&1 &
sleep 1
BATON_LOG=warn $baton worker --control http://127.0.0.1:$port --count 3 --data-dir "$dir/workers" \
  >"$dir/workers.log" 2>&1 &
BATON_LOG=warn $baton gateway --control http://127.0.0.1:$port --listen 127.0.0.1:0 \
  >"$dir/gateway.log" 2>&1 &
for _ in $(seq 100); do grep -q 'listening on' "$dir/gateway.log" 2>/dev/null && break; sleep 0.1; done
gateway=$(grep -o 'http://[0-9.:]*' "$dir/gateway.log" | head -1)
sleep 1
$baton bench trace replay benchmarks/traces/azure-like-30x5 --target "$gateway" \
  --minute "$minute" --max-duration 1s --out benchmarks/results/trace-replay-cluster
