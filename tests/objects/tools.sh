#!/usr/bin/env bash
# Installs, pinned and once, what the objects tests use from PyPI, under OUT (nothing global):
#
#   tests/objects/tools.sh OUT boto3   OUT/boto3: boto3 as a plain directory, for PYTHONPATH
#                                      (process functions run the system's python3, which
#                                      may have no venv module)
#   tests/objects/tools.sh OUT moto    OUT/moto: a venv with moto's S3 server (moto_server)
#
# Needs python3 with pip, as the machine has; the node tests call it.
set -euo pipefail
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
BOTO3=1.43.11
MOTO=5.2.1
exec 9>"$OUT/.lock"
flock 9 # one install at a time, however many tests ask

case "$2" in
  boto3)
    if [ ! -f "$OUT/boto3/.installed-$BOTO3" ]; then
      echo "installing boto3 $BOTO3 into $OUT/boto3" >&2
      rm -rf "$OUT/boto3"
      python3 -m pip install -q --disable-pip-version-check --target "$OUT/boto3" --no-warn-conflicts "boto3==$BOTO3" "botocore==1.43.127"
      chmod -R a+rX "$OUT/boto3"
      touch "$OUT/boto3/.installed-$BOTO3"
    fi
    ;;
  moto)
    if [ ! -f "$OUT/moto/.installed-$MOTO" ]; then
      echo "installing moto[server] $MOTO into $OUT/moto" >&2
      rm -rf "$OUT/moto"
      python3 -m venv "$OUT/moto"
      "$OUT/moto/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO"
      touch "$OUT/moto/.installed-$MOTO"
    fi
    ;;
  *)
    echo "usage: $0 OUT boto3|moto" >&2
    exit 2
    ;;
esac
