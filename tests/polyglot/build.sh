#!/usr/bin/env bash
# Builds the polyglot test guests: python-hello with componentize-py (PyPI) and js-hello with
# componentize-js (npm), each pinned, installed on first use under OUT (a venv and a
# node_modules of their own; nothing global), and rebuilt only when a source changed.
#
#   tests/polyglot/build.sh OUT      (writes OUT/hello-py.wasm and OUT/hello-js.wasm)
#
# Needs python3 (with venv) and npm, as the machine has; the node tests call it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
COMPONENTIZE_PY=0.25.1
COMPONENTIZE_JS=0.23.0
exec 9>"$OUT/.lock"
flock 9 # one build at a time, however many tests ask

fresh() { # output, sources...: true when the output is newer than every source
  local out=$1; shift
  [ -f "$out" ] || return 1
  [ -z "$(find "$@" -newer "$out" -print -quit)" ]
}

if ! fresh "$OUT/hello-py.wasm" "$HERE/python-hello" "$HERE/wit" "$0"; then
  if [ ! -x "$OUT/venv/bin/componentize-py" ]; then
    echo "installing componentize-py $COMPONENTIZE_PY into $OUT/venv" >&2
    python3 -m venv "$OUT/venv"
    "$OUT/venv/bin/pip" install -q "componentize-py==$COMPONENTIZE_PY"
  fi
  echo "building hello-py.wasm with componentize-py" >&2
  (cd "$HERE/python-hello" && "$OUT/venv/bin/componentize-py" -q -d "$HERE/wit" \
    -w baton-test:polyglot/hello componentize app -o "$OUT/hello-py.wasm.tmp")
  mv "$OUT/hello-py.wasm.tmp" "$OUT/hello-py.wasm"
fi

if ! fresh "$OUT/hello-js.wasm" "$HERE/js-hello" "$HERE/wit" "$0"; then
  if [ ! -x "$OUT/node/node_modules/.bin/componentize-js" ]; then
    echo "installing componentize-js $COMPONENTIZE_JS into $OUT/node" >&2
    mkdir -p "$OUT/node"
    npm install -s --no-audit --no-fund --prefix "$OUT/node" \
      "@bytecodealliance/componentize-js@$COMPONENTIZE_JS"
  fi
  echo "building hello-js.wasm with componentize-js" >&2
  "$OUT/node/node_modules/.bin/componentize-js" "$HERE/js-hello/hello.js" \
    --wit "$HERE/wit" --world-name baton-test:polyglot/hello -o "$OUT/hello-js.wasm.tmp" >/dev/null
  mv "$OUT/hello-js.wasm.tmp" "$OUT/hello-js.wasm"
fi
