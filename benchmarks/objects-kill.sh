#!/usr/bin/env bash
# Write-back under kill -9, ten rounds: nothing acknowledged may be lost. See
# benchmarks/objects-kill.py.
#
#   benchmarks/objects-kill.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p baton
python3 benchmarks/objects-kill.py target/release/baton "${1:-10}"
