#!/usr/bin/env bash
# Source this file to get an AWS API emulator for the integration tests.
# If AWS_ENDPOINT_URL is already set (LocalStack on :4566, say), it is used as
# is. Otherwise moto's server is installed into a cached virtualenv (once),
# started on a free loopback port, and stopped when the calling shell exits.
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
if [ ! -x "$venv/bin/moto_server" ] || ! "$venv/bin/pip" show moto 2>/dev/null | grep -q "^Version: $MOTO_VERSION\$"; then
  echo "== installing moto $MOTO_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$root/.cache/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null; wait $moto_pid 2>/dev/null' EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "moto did not start; its log:" >&2
  cat "$root/.cache/moto.log" >&2
  exit 1
fi
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
echo "== moto $MOTO_VERSION listening on $AWS_ENDPOINT_URL"
