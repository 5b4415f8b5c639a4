#!/usr/bin/env bash
# Objects behind a cache (after OFC): the I/O-bound function with the store 20 ms away,
# without and with a warm cache, write-through and write-back; write latency; flush
# throughput; the hit ratio of a Zipf workload over more objects than fit. See
# benchmarks/objects.py for the scenario.
#
#   benchmarks/objects.sh            (LATENCY=20ms CALLS=15 ZIPF_CALLS=600 to change)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p baton
# The guest is built with the tests' (crates/baton-guests/build.rs).
cargo build -q -p baton-guests
guest=target/guests/wasm32-wasip2/release/blobstore_wasmcloud.wasm
python3 benchmarks/objects.py target/release/baton "$guest" benchmarks/results/objects
