#!/usr/bin/env bash
# A/B of two `baton` binaries (say, the previous commit's and this one's), each running
# `baton up` with the examples, loaded in turn with the same wrk, several rounds, with each
# server's CPU time per request from /proc: the warm wasm `hello` (32 connections), the
# classic-mode Python example (a process per request, 1 connection) beside the floor under
# it (the same handler run directly), and `hello`'s latency idle and while 50 connections
# load the classic function. Only the ratios of one run count (the
# machine's speed varies 2x within an hour).
#
#   benchmarks/ab-warm.sh OLD_BATON NEW_BATON [seconds-per-run] [rounds]   (defaults 10, 3)
#
# Build the two binaries first, e.g. with a worktree of the previous commit:
#   git worktree add ../baton-prev HEAD~1 && (cd ../baton-prev && cargo build --release -p baton)
#   cargo build --release -p baton
#   benchmarks/ab-warm.sh ../baton-prev/target/release/baton target/release/baton
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1 NEW=$2 DURATION=${3:-10} ROUNDS=${4:-3}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
WORK=$(mktemp -d)
TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

start() { # name binary port
  BATON_TOKEN=$TOKEN BATON_LISTEN=127.0.0.1:$3 BATON_DATA_DIR=$WORK/$1 BATON_EXAMPLES=true BATON_LOG=warn \
    "$2" up >"$WORK/$1.log" 2>&1 &
  PIDS+=($!); eval "PID_$1=$!"
  # The log line, not the ready file: the older build of an A/B may predate ready files.
  until grep -q "baton listening" "$WORK/$1.log" 2>/dev/null; do sleep 0.01; done
  curl -sf "http://127.0.0.1:$3/function/hello" >/dev/null
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { # name port pid [path] [connections]
  local before out
  before=$(cpu_ticks "$3")
  out=$(wrk -t1 -c"${5:-32}" -d"${DURATION}s" --latency "http://127.0.0.1:$2/function/${4:-hello}")
  echo "$out" | awk -v name="$1" -v ticks=$(( $(cpu_ticks "$3") - before )) -v hz="$(getconf CLK_TCK)" -v d="$DURATION" '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 }
    /^ +99%/ { p99 = $2 }
    END { printf "%-4s %10.0f req/s  %6.1f us CPU/request  p50 %s  p99 %s\n", name, rps, ticks / hz / (rps * d) * 1e6, p50, p99 }'
}

echo "# ab-warm $(date -u '+%F %T UTC'), $(nproc) cores; old=$OLD new=$NEW; wrk -t1 -c32 -d${DURATION}s"
# The floor under a classic request: the function's own start, run directly, one at a time.
floor() {
  local start end n=50
  start=$(date +%s%N)
  for _ in $(seq $n); do echo hi | /usr/bin/python3 examples/python-classic/handler.py >/dev/null; done
  end=$(date +%s%N)
  awk -v ns=$((end - start)) -v n=$n 'BEGIN { printf "floor: the handler run directly, %.1f ms each (%.0f/s)\n", ns / n / 1e6, n / (ns / 1e9) }'
}
start old "$OLD" 18191
start new "$NEW" 18192
for round in $(seq "$ROUNDS"); do
  echo "## round $round: warm hello, 32 connections"
  load old 18191 "$PID_old"
  load new 18192 "$PID_new"
  echo "## round $round: python-classic, 1 connection"
  floor
  load old 18191 "$PID_old" python-classic 1
  load new 18192 "$PID_new" python-classic 1
  echo "## round $round: hello, 4 connections, idle"
  load old 18191 "$PID_old" hello 4
  load new 18192 "$PID_new" hello 4
  echo "## round $round: hello, 4 connections, while 50 connections load python-classic"
  for side in old:18191 new:18192; do
    name=${side%%:*} port=${side##*:}
    wrk -t1 -c50 -d"$((DURATION + 2))s" --timeout 10s "http://127.0.0.1:$port/function/python-classic" >/dev/null &
    bg=$!
    sleep 1
    pid_var="PID_$name"
    load "$name" "$port" "${!pid_var}" hello 4
    wait $bg || true
  done
done
