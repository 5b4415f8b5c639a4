#!/usr/bin/env bash
# Single-node benchmarks (issue: single-node platform). Every figure in BENCHMARKS.md's
# "Single node" section comes from one run of this script:
#
#   benchmarks/single-node.sh [seconds-per-load-run]      (default 10)
#
# It builds the release binary, starts `baton up` with the examples and the bare hyper
# baseline (`baton bench baseline`) on loopback, and loads both with wrk, alternating, so
# Baton's figures stand beside the baseline's from the same run on the same machine.
# Output: benchmarks/results/single-node-<date>.txt (and the terminal).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
cargo build --release -q -p baton --bin baton
cargo build --release -q -p baton-runtime --example cold_start --example wasm_floor
BATON=$PWD/target/release/baton
WORK=$(mktemp -d)
OUT=benchmarks/results/single-node-$(date -u +%F).txt
PORT=18181 BASE_PORT=18182 PY_PORT=18183 FLOOR_PORT=18184
TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
AUTH="authorization: Bearer $TOKEN"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
exec > >(tee "$OUT") 2>&1

now_ns() { date +%s%N; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
start_node() { # data-dir examples
  rm -f "$WORK/up.ready"
  BATON_TOKEN=$TOKEN BATON_LISTEN=127.0.0.1:$PORT BATON_DATA_DIR=$1 BATON_EXAMPLES=$2 BATON_LOG=warn \
    BATON_READY_FILE="$WORK/up.ready" "$BATON" up >"$WORK/up.log" 2>&1 &
  NODE=$!; PIDS+=("$NODE")
  until [ -s "$WORK/up.ready" ]; do kill -0 "$NODE" || { cat "$WORK/up.log"; exit 1; }; sleep 0.01; done
}
stop_node() { kill "$NODE"; wait "$NODE" 2>/dev/null || true; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { # label url connections [server pid: also report its CPU time per request]
  echo "--- $1: wrk -t1 -c$3 -d${DURATION}s --latency $2"
  local before out
  [ -n "${4:-}" ] && before=$(cpu_ticks "$4")
  out=$(wrk -t1 -c"$3" -d"${DURATION}s" --latency "$2")
  echo "$out" | grep -E "Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors"
  if [ -n "${4:-}" ]; then
    echo "$out" | awk -v ticks=$(( $(cpu_ticks "$4") - before )) -v hz="$(getconf CLK_TCK)" -v d="$DURATION" \
      '/Requests\/sec/ { printf "    server CPU: %.2f cores, %.1f us per request\n", ticks / hz / d, ticks / hz / ($2 * d) * 1e6 }'
  fi
}

echo "# baton single-node benchmarks, $(date -u '+%F %T UTC'), $(nproc) cores, $(uname -r)"
echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

echo; echo "## 1. Warm hello: gateway vs bare hyper baseline (same wrk, same run, alternating)"
echo "# and the wasm floor: bare hyper running hello in a fresh instance per request, no gateway"
start_node "$WORK/data" true
"$BATON" bench baseline --listen 127.0.0.1:$BASE_PORT >/dev/null & BASE=$!; PIDS+=($BASE)
"$PWD/target/release/examples/wasm_floor" 127.0.0.1:$FLOOR_PORT >/dev/null & FLOOR=$!; PIDS+=($FLOOR)
sleep 0.5
curl -sf "http://127.0.0.1:$PORT/function/hello" >/dev/null
curl -sf "http://127.0.0.1:$FLOOR_PORT/" >/dev/null
for round in 1 2; do
  load "baseline round $round" "http://127.0.0.1:$BASE_PORT/" 32 "$BASE"
  load "wasm floor round $round" "http://127.0.0.1:$FLOOR_PORT/" 32 "$FLOOR"
  load "baton hello round $round" "http://127.0.0.1:$PORT/function/hello" 32 "$NODE"
done

echo; echo "## 2. Wasm cold instance (instantiate from a prepared, cached component to response)"
"$PWD/target/release/examples/cold_start" 20000

echo; echo "## 3. Process functions"
mkdir -p "$WORK/py"
cp examples/python-http/server.py "$WORK/py/"
(cd "$WORK/py" && PORT=$PY_PORT exec python3 server.py >/dev/null 2>&1) & PIDS+=($!)
sleep 1
curl -sf "http://127.0.0.1:$PORT/function/python-http" >/dev/null
load "python http-mode, direct" "http://127.0.0.1:$PY_PORT/" 8
load "python http-mode, through baton" "http://127.0.0.1:$PORT/function/python-http" 8
load "python classic-mode (a process per request), through baton" "http://127.0.0.1:$PORT/function/python-classic" 1

echo; echo "## 4. Memory"
sleep 2
echo "idle baton up with the examples (python-http process not counted): RSS $(rss_kib "$NODE") KiB"
IDLE=$(rss_kib "$NODE")
curl -sf -X POST -H "$AUTH" -H 'content-type: application/wasm' --data-binary @target/guests/wasm32-wasip2/release/misbehave.wasm \
  "http://127.0.0.1:$PORT/system/functions?service=sleeper&max_inflight=100" >/dev/null
wrk -t1 -c200 -d4s --timeout 10s "http://127.0.0.1:$PORT/function/sleeper/sleep?ms=3000" >/dev/null &
WRK=$!
sleep 2.5
LOADED=$(rss_kib "$NODE")
wait $WRK || true
echo "RSS with 200 wasm instances alive at once (each sleeping in the guest): $LOADED KiB; per instance $(( (LOADED - IDLE) / 200 )) KiB (includes the gateway's per-connection buffers)"

echo; echo "## 5. Deploy to first response, and restart to first response"
stop_node
start_node "$WORK/data2" false
T0=$(now_ns)
curl -sf -X POST -H "$AUTH" -H 'content-type: application/wasm' --data-binary @target/guests/wasm32-wasip2/release/json_transform.wasm \
  "http://127.0.0.1:$PORT/system/functions?service=jt" >/dev/null
curl -sf -d '{"a":"b"}' "http://127.0.0.1:$PORT/function/jt" >/dev/null
T1=$(now_ns)
echo "deploy json-transform ($(stat -c %s target/guests/wasm32-wasip2/release/json_transform.wasm) bytes, compiled) to first response: $(( (T1 - T0) / 1000000 )) ms"
stop_node
T0=$(now_ns)
start_node "$WORK/data2" false
curl -sf -d '{"a":"b"}' "http://127.0.0.1:$PORT/function/jt" >/dev/null
T1=$(now_ns)
echo "restart (compiled code from the cache) to first response: $(( (T1 - T0) / 1000000 )) ms (process start included)"
stop_node
rm -rf "$WORK/data2/compiled"
T0=$(now_ns)
start_node "$WORK/data2" false
curl -sf -d '{"a":"b"}' "http://127.0.0.1:$PORT/function/jt" >/dev/null
T1=$(now_ns)
echo "restart with the compile cache deleted, to first response: $(( (T1 - T0) / 1000000 )) ms"
echo; echo "# written to $OUT"
