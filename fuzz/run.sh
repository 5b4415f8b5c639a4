#!/usr/bin/env bash
# Fuzzes every parser of outside input (the targets in fuzz/fuzz_targets/) with libFuzzer
# through cargo fuzz, each for a bounded time, starting from the seeds in fuzz/seeds/; prints
# per target the executions, the corpus size and the crashes (kept in fuzz/artifacts/TARGET/;
# each one found becomes a regression test in the crate that failed).
#
#   fuzz/run.sh [seconds-per-target] [target...]     (defaults: 60 s, every target)
#
# cargo fuzz needs the nightly toolchain; both are installed here on first use.
set -euo pipefail
cd "$(dirname "$0")"
PER_TARGET=${1:-60}
shift || true
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi
echo "# fuzz $(date -u '+%F %T UTC'), ${PER_TARGET}s per target, $(nproc) cores"
cargo +nightly fuzz build -O
printf '%-18s %12s %10s %8s\n' target executions corpus crashes
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  [ -d "seeds/$target" ] && cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null || true
  log=$(mktemp)
  # A crash stops the run early with a non-zero status; the table says so.
  cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
    -max_total_time="$PER_TARGET" -print_final_stats=1 -rss_limit_mb=2048 >"$log" 2>&1 || true
  executions=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  crashes=$(find "artifacts/$target" -type f | wc -l)
  printf '%-18s %12s %10s %8s\n' "$target" "${executions:-?}" "$(find "corpus/$target" -type f | wc -l)" "$crashes"
  if grep -q "SUMMARY\|panicked" "$log"; then grep -m3 "panicked\|SUMMARY" "$log" | sed 's/^/    /'; fi
  rm -f "$log"
done
