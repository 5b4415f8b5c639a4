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
# Each role writes its ready file (its addresses, as JSON) once it serves.
ready() { for _ in $(seq 6000); do [ -s "$1" ] && return; sleep 0.01; done; echo "$1 never appeared" >&2; exit 1; }
BATON_LOG=warn $baton control --listen 127.0.0.1:$port --data-dir "$dir/control" \
  --scale-to-zero-grace 5m --ready-file "$dir/control.ready" >"$dir/control.log" 2>&1 &
ready "$dir/control.ready"
BATON_LOG=warn $baton worker --control http://127.0.0.1:$port --count 3 --data-dir "$dir/workers" \
  --ready-file "$dir/workers.ready" >"$dir/workers.log" 2>&1 &
BATON_LOG=warn $baton gateway --control http://127.0.0.1:$port --listen 127.0.0.1:0 \
  --ready-file "$dir/gateway.ready" >"$dir/gateway.log" 2>&1 &
ready "$dir/workers.ready"
ready "$dir/gateway.ready"
gateway=$(grep -o '"http": *"[^"]*"' "$dir/gateway.ready" | grep -o 'http://[0-9.:]*')
# Until the control plane counts all three workers alive.
for _ in $(seq 600); do
  [ "$(curl -s "$gateway/system/nodes" | grep -o '"alive":true' | wc -l)" -ge 3 ] && break; sleep 0.1
done
$baton bench trace replay benchmarks/traces/azure-like-30x5 --target "$gateway" \
  --minute "$minute" --max-duration 1s --out benchmarks/results/trace-replay-cluster
