#!/usr/bin/env bash
# Is `baton bench` the bottleneck? It and wrk load the same bare hyper server in one run,
# alternating, with the same connection count:  benchmarks/generator-vs-wrk.sh [seconds]
# Output: benchmarks/results/generator-vs-wrk-<date>.txt
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p baton --bin baton
BATON=$PWD/target/release/baton
OUT=benchmarks/results/generator-vs-wrk-$(date -u +%F).txt
PORT=18281
"$BATON" bench baseline --listen 127.0.0.1:$PORT >/dev/null & SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
sleep 0.5
exec > >(tee "$OUT") 2>&1
echo "# generator vs wrk, $(date -u '+%F %T UTC'), $(nproc) cores, commit $(git rev-parse --short HEAD)"
for connections in 32 4; do
  for round in 1 2; do
    echo "--- wrk -t1 -c$connections -d${DURATION}s (round $round)"
    wrk -t1 -c$connections -d${DURATION}s --latency http://127.0.0.1:$PORT/ | grep -E "Requests/sec|^ +(50|99)%"
    echo "--- baton bench load -c $connections -d ${DURATION}s (round $round)"
    "$BATON" bench load http://127.0.0.1:$PORT/ -c $connections -d ${DURATION}s --warmup 1s | grep -E "req/s|latency"
  done
done
echo "--- low load, latency overhead: 200 req/s open loop"
wrk -t1 -c1 -d${DURATION}s -R 200 http://127.0.0.1:$PORT/ 2>/dev/null | grep -E "Requests/sec|Latency" || echo "(this wrk has no -R; closed loop, 1 connection:)"
wrk -t1 -c1 -d${DURATION}s --latency http://127.0.0.1:$PORT/ | grep -E "Requests/sec|^ +(50|99)%"
"$BATON" bench load http://127.0.0.1:$PORT/ -c 1 -d ${DURATION}s --warmup 1s | grep -E "req/s|latency"
"$BATON" bench load http://127.0.0.1:$PORT/ --rate 200 -d ${DURATION}s --warmup 1s | grep -E "req/s|latency"
