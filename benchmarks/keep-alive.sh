#!/usr/bin/env bash
# Keep-alive as caching (after FaasCache): the same skewed trace replayed on the same cluster
# at the same worker memory budget under each keep-alive policy, `ttl` (with least recently
# used eviction when memory is short: OpenWhisk's default, FaasCache's baseline), `lru` and
# `greedy-dual`; cold starts and their overhead per policy. One control plane, one wasm
# worker offering MEMORY, one gateway, started afresh for each policy.
#
#   benchmarks/keep-alive.sh [minute] [memory] [grace]   (defaults 20s, 1536Mi, 60s; POLICIES="ttl lru" to pick)
#   SIZES=100-850 benchmarks/keep-alive.sh 20s 6Gi       (functions of different sizes)
#   SIZES=100-850 PROCESS=100-3000 benchmarks/keep-alive.sh 20s 6Gi
#                                  (process functions whose starts take 100 ms to 3 s)
#
# `minute` is the real time of one trace minute (20s: three times faster than the trace), and
# `grace` the scale-to-zero grace in real time (60s: three trace minutes). The trace: 40
# functions over 10 minutes, rates log-uniform from 0.1 to 60 a minute (skewed: a few hot
# functions, many rare), executions around 10 ms of CPU (the synthetic function spins), so
# the two cores are not the bottleneck; generated with a fixed seed. Each sandbox books
# 96 MiB: 1536Mi holds 16 of the 40 functions at once. With SIZES=MIN-MAX, each function's
# allocated memory is log-uniform between MIN and MAX MiB (Azure's apps range from about 100
# MiB to over 1 GiB) and each books what the trace says it allocates (`--booking trace`).
set -euo pipefail
cd "$(dirname "$0")/.."
minute="${1:-20s}" memory="${2:-1536Mi}" grace="${3:-60s}" sizes="${SIZES:-}"
sized=() booking=(--booking fixed)
process="${PROCESS:-}" processed=()
if [ -n "$process" ]; then
  processed=(--process-dir benchmarks/keep-alive --init-ms "$process")
fi
if [ -n "$sizes" ]; then
  sized=(--min-memory-mb "${sizes%-*}" --max-memory-mb "${sizes#*-}") booking=(--booking trace)
fi
cargo build --release -q -p baton
baton=target/release/baton
dir=$(mktemp -d)
# KEEP=1 keeps the roles' logs (printed at the end).
trap 'kill $(jobs -p) 2>/dev/null || true; if [ -n "${KEEP:-}" ]; then echo "logs in $dir"; else rm -rf "$dir"; fi' EXIT
$baton bench trace generate --out "$dir/trace" --functions 40 --minutes 10 \
  --min-rate 0.1 --max-rate 60 --median-duration-ms 10 --seed 3 "${sized[@]}" >/dev/null
ready() { for _ in $(seq 6000); do [ -s "$1" ] && return; sleep 0.01; done; echo "$1 never appeared" >&2; exit 1; }
out=benchmarks/results/keep-alive${sizes:+-sizes-$sizes}${process:+-process-$process}${sizes:+-$memory}
mkdir -p "$out"
echo "# keep-alive $(date -u '+%F %T UTC'), $(nproc) cores, $(git rev-parse --short HEAD); minute=$minute memory=$memory grace=$grace sizes=${sizes:-alike} process=${process:-no}"
for policy in ${POLICIES:-ttl lru greedy-dual}; do
  run="$dir/$policy"
  mkdir -p "$run"
  port=$((20000 + RANDOM % 20000))
  BATON_LOG=${CONTROL_LOG:-warn,baton_control::cluster::model::scaling=info} $baton control --listen 127.0.0.1:$port --data-dir "$run/control" \
    --keep-alive "$policy" --placement resource-fit --scale-to-zero-grace "$grace" \
    --ready-file "$run/control.ready" >"$run/control.log" 2>&1 &
  control=$!
  ready "$run/control.ready"
  BATON_LOG=warn $baton worker --control http://127.0.0.1:$port --memory "$memory" \
    --data-dir "$run/worker" --ready-file "$run/worker.ready" >"$run/worker.log" 2>&1 &
  worker=$!
  BATON_LOG=warn $baton gateway --control http://127.0.0.1:$port --listen 127.0.0.1:0 \
    --ready-file "$run/gateway.ready" >"$run/gateway.log" 2>&1 &
  gateway_pid=$!
  ready "$run/worker.ready"
  ready "$run/gateway.ready"
  gateway=$(grep -o '"http": *"[^"]*"' "$run/gateway.ready" | grep -o 'http://[0-9.:]*')
  for _ in $(seq 600); do
    [ "$(curl -s "$gateway/system/nodes" | grep -o '"alive":true' | wc -l)" -ge 1 ] && break; sleep 0.1
  done
  echo "## $policy"
  $baton bench trace replay "$dir/trace" --target "$gateway" --minute "$minute" \
    --max-duration 1s "${booking[@]}" "${processed[@]}" --out "$out/$policy" 2>"$run/replay.err" ||
    { tail -5 "$run/replay.err" >&2; exit 1; }
  echo "evictions: $(grep -c 'keep-alive eviction' "$run/control.log" || true)"
  kill $gateway_pid $worker $control; wait $gateway_pid $worker $control 2>/dev/null || true
done
