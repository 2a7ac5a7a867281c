#!/usr/bin/env bash
# Source this file to get an AWS API emulator for the integration tests.
# If AWS_ENDPOINT_URL is already set (LocalStack on :4566, say), it is used as
# is. Otherwise moto is installed into a cached virtualenv (once), started on
# a free loopback port serving one request at a time (see
# scripts/emulator/moto_atomic.py: DynamoDB's writes are atomic, plain moto's
# are not), and stopped when the calling shell exits.
#
# MOTO_PORT=5000 picks the port; MOTO_UNSAFE=1 serves without the lock, as
# plain moto_server does (only to show that the atomicity tests catch it).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOTO_VERSION=5.2.5

export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_DEFAULT_REGION=$AWS_REGION
# Tests that need the emulator fail instead of skipping from here on.
export SLUICE_REQUIRE_EMULATOR=1

if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
  echo "== using the AWS API emulator at $AWS_ENDPOINT_URL"
  return 0 2>/dev/null || exit 0
fi

venv="$root/.cache/moto-venv"
stamp="$venv/.sluice-moto-$MOTO_VERSION"
# A stamp file, not `pip show | grep`: under pipefail grep's early exit
# SIGPIPEs pip, and the check failed (and reinstalled moto) on most runs.
if [ ! -f "$stamp" ] || [ ! -x "$venv/bin/python" ]; then
  echo "== installing moto $MOTO_VERSION into $venv (once; about a minute)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  touch "$stamp"
fi
portfile=$(mktemp "${TMPDIR:-/tmp}/sluice-moto-port.XXXXXX")
rm -f "$portfile"
unsafe=()
[ -n "${MOTO_UNSAFE:-}" ] && unsafe=(--threaded-unsafe)
"$venv/bin/python" "$root/scripts/emulator/moto_atomic.py" -H 127.0.0.1 -p "${MOTO_PORT:-0}" \
  --port-file "$portfile" "${unsafe[@]}" > "$root/.cache/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null; wait $moto_pid 2>/dev/null; rm -f "$portfile"' EXIT
for _ in $(seq 1 200); do
  [ -s "$portfile" ] && break
  kill -0 $moto_pid 2>/dev/null || break
  sleep 0.05
done
if [ ! -s "$portfile" ]; then
  echo "moto did not start; its log:" >&2
  cat "$root/.cache/moto.log" >&2
  return 1 2>/dev/null || exit 1
fi
port=$(cat "$portfile")
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
if [ -n "${MOTO_UNSAFE:-}" ]; then
  echo "== moto $MOTO_VERSION (threaded, NOT atomic) listening on $AWS_ENDPOINT_URL"
else
  echo "== moto $MOTO_VERSION (one request at a time) listening on $AWS_ENDPOINT_URL"
fi
