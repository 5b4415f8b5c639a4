#!/usr/bin/env bash
# Prepares the browser tests: Debian's Chromium (apt, when absent) and playwright-core
# (npm, pinned, under OUT; nothing global) to drive it.
#
#   tests/browser/setup.sh OUT      (prints the node_modules directory to use as NODE_PATH)
#
# The node tests call it; it needs root for apt (CI and this machine run as root).
set -euo pipefail
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
PLAYWRIGHT=1.64.1
exec 9>"$OUT/.lock"
flock 9 # one installation at a time, however many tests ask

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -f "$OUT/node/node_modules/playwright-core/package.json" ]; then
  echo "installing playwright-core $PLAYWRIGHT into $OUT/node" >&2
  mkdir -p "$OUT/node"
  npm install -s --no-audit --no-fund --prefix "$OUT/node" "playwright-core@$PLAYWRIGHT" >&2
fi
echo "$OUT/node/node_modules"
