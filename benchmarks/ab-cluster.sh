#!/usr/bin/env bash
# A/B of two baton binaries on the cluster manager's benchmarks, alternating: sandbox
# creations per second (100 fake workers) and scale-from-zero latency (3 wasm workers).
# Usage: benchmarks/ab-cluster.sh OLD_BINARY NEW_BINARY [ROUNDS]
# Results: benchmarks/results/cluster-model/{creations,cold}-{old,new}-ROUND.json
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 rounds=${3:-2}
out=benchmarks/results/cluster-model
mkdir -p "$out"
for round in $(seq "$rounds"); do
  for side in old new; do
    bin=${!side}
    "$bin" bench cluster creations --workers 100 --functions 100 --sandboxes 10000 --runs 5 --json \
      2>/dev/null >"$out/creations-$side-$round.json"
    echo "$side round $round creations/s median: $(python3 -c "import json; print(round(json.load(open('$out/creations-$side-$round.json'))['creations_per_second']['median']))")"
  done
  for side in old new; do
    bin=${!side}
    "$bin" bench cluster cold-starts --workers 3 --rates 10,50,100 --seconds 5 --json \
      2>/dev/null >"$out/cold-$side-$round.json"
    python3 -c "
import json; r = json.load(open('$out/cold-$side-$round.json'))
print('$side round $round cold starts:', ', '.join('%g/s p50 %.2f p99 %.2f ms, %d not cold' % (x['rate'], x['p50_ms'], x['p99_ms'], x['not_cold_or_failed']) for x in r['rates']))"
  done
done
