#!/usr/bin/env bash
# Durable asynchronous calls (issue "Fit the ecosystem", item 6):
#
#   benchmarks/async-durable.sh [seconds-per-load-run] [kills]      (defaults: 10, 10)
#
# 1. Accepted asynchronous calls per second (each journaled and fsynced before its 202),
#    beside synchronous calls of the same function in the same run, alternating.
# 2. `kill -9` of the node `kills` times while a sender keeps queueing calls that sleep 20 ms
#    and report to a callback: every call that got a 202 must reach the callback after the
#    restarts (at least once). Prints accepted, delivered, lost and delivered twice.
# Output: benchmarks/results/async-durable-<date>.txt (and the terminal).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
KILLS=${2:-10}
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
cargo build --release -q -p baton --bin baton
BATON=$PWD/target/release/baton
MISBEHAVE=$(ls "$PWD"/target/guests/wasm32-wasip2/release/misbehave.wasm)
WORK=$(mktemp -d)
OUT=benchmarks/results/async-durable-$(date -u +%F).txt
PORT=18191 CALLBACK_PORT=18192
TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
exec > >(tee "$OUT") 2>&1

# The callback: appends each X-Call-Id it is sent to a file.
cat >"$WORK/callback.py" <<'EOF'
import http.server, sys
out = open(sys.argv[2], "a", buffering=1)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        out.write(self.headers.get("X-Call-Id", "") + "\n")
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
EOF
cat >"$WORK/summary.py" <<'EOF'
import json, sys
s = json.load(sys.stdin)
l = s["latency"]
print("%.0f req/s, p50 %.2f ms, p99 %.2f ms, statuses %s, errors %s" % (
    s["throughput_rps"], l["p50_us"] / 1000, l["p99_us"] / 1000, s["statuses"], s["errors"]))
EOF
touch "$WORK/delivered"
python3 "$WORK/callback.py" "$CALLBACK_PORT" "$WORK/delivered" & PIDS+=($!)
CALLBACK=http://127.0.0.1:$CALLBACK_PORT/done

printf '[async]\nconcurrency = 4\n' >"$WORK/baton.toml"
start_node() {
  rm -f "$WORK/up.ready"
  BATON_TOKEN=$TOKEN BATON_LISTEN=127.0.0.1:$PORT BATON_DATA_DIR=$WORK/data BATON_EXAMPLES=false \
    BATON_LOG=warn BATON_CONFIG=$WORK/baton.toml BATON_READY_FILE="$WORK/up.ready" \
    "$BATON" up >>"$WORK/up.log" 2>&1 &
  NODE=$!; PIDS+=("$NODE")
  until [ -s "$WORK/up.ready" ]; do kill -0 "$NODE" || { tail "$WORK/up.log"; exit 1; }; sleep 0.01; done
}

echo "# baton durable async calls, $(date -u '+%F %T UTC'), $(nproc) cores, $(uname -r)"
echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
start_node
BATON_GATEWAY=http://127.0.0.1:$PORT BATON_TOKEN=$TOKEN "$BATON" deploy slow --wasm "$MISBEHAVE" >/dev/null

echo; echo "## 1. Accepted calls per second: async (journaled) vs sync, 32 connections, alternating"
for round in 1 2; do
  for kind in async sync; do
    if [ $kind = async ]; then
      url=http://127.0.0.1:$PORT/async-function/slow/ok; header="X-Callback-Url: $CALLBACK"
    else
      url=http://127.0.0.1:$PORT/function/slow/ok; header="X-Kind: sync"
    fi
    rate=$("$BATON" bench load "$url" -X POST -H "$header" -c 32 -d "${DURATION}s" --json |
      python3 "$WORK/summary.py")
    echo "round $round $kind: $rate"
  done
done
# Let the queue drain before the kills count anything.
until [ "$(curl -s http://127.0.0.1:$PORT/metrics | awk '/^baton_async_queue_depth / {print $2}')" = "0" ]; do sleep 0.5; done

echo; echo "## 2. kill -9 under async load, $KILLS times"
: >"$WORK/delivered"
: >"$WORK/accepted"
sender() {
  while :; do
    id=$(curl -s -o /dev/null -D - -X POST -H "X-Callback-Url: $CALLBACK" \
      "http://127.0.0.1:$PORT/async-function/slow/sleep?ms=20" 2>/dev/null |
      awk 'BEGIN{IGNORECASE=1} /^HTTP/ {code=$2} /^x-call-id:/ {id=$2} END {if (code == 202) print id}' | tr -d '\r')
    [ -n "$id" ] && echo "$id" >>"$WORK/accepted"
  done
}
SENDERS=()
for k in $(seq 1 4); do sender & SENDERS+=($!); PIDS+=($!); done
for kill in $(seq 1 "$KILLS"); do
  sleep "0.$((RANDOM % 9 + 1))"
  kill -9 "$NODE"; wait "$NODE" 2>/dev/null || true
  start_node
done
sleep 1
kill "${SENDERS[@]}" 2>/dev/null || true
wait "${SENDERS[@]}" 2>/dev/null || true
accepted=$(sort -u "$WORK/accepted" | wc -l)
deadline=$((SECONDS + 120))
while :; do
  lost=$(comm -23 <(sort -u "$WORK/accepted") <(sort -u "$WORK/delivered") | wc -l)
  [ "$lost" = 0 ] || [ $SECONDS -ge $deadline ] && break
  sleep 1
done
delivered=$(sort -u "$WORK/delivered" | wc -l)
twice=$(sort "$WORK/delivered" | uniq -d | wc -l)
echo "kills: $KILLS, accepted: $accepted, delivered: $delivered, lost: $lost, delivered twice: $twice"
