#!/usr/bin/env bash
# SDK compatibility: the official OpenAI SDKs (npm "openai" and pip "openai",
# pinned in scripts/compat) against a locally built stream function, which
# serves simulated models and routes to fakes of the OpenAI and Anthropic
# APIs (scripts/fakeupstream). The SDKs are installed into .cache/ the first
# time and again only when their pins change.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/compat"
mkdir -p "$cache"

if ! cmp -s "$root/scripts/compat/package-lock.json" "$cache/package-lock.json" || [ ! -d "$cache/node_modules/openai" ]; then
  echo "== installing the openai and @anthropic-ai/sdk npm packages into $cache"
  cp "$root/scripts/compat/package.json" "$root/scripts/compat/package-lock.json" "$cache/"
  (cd "$cache" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
venv="$root/.cache/compat-py"
if ! cmp -s "$root/scripts/compat/python/requirements.txt" "$venv/requirements.txt" 2>/dev/null; then
  echo "== installing the openai and anthropic pip packages into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/compat/python/requirements.txt"
  cp "$root/scripts/compat/python/requirements.txt" "$venv/requirements.txt"
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/sluice-stream" "$root/functions/stream"
go build -o "$work/fakeupstream" "$root/scripts/fakeupstream"

waitfile() {
  for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done
  echo "$2 did not start" >&2
  return 1
}

"$work/fakeupstream" -port-file "$work/fake.url" > "$work/fake.log" 2>&1 &
pids+=($!)
waitfile "$work/fake.url" "the fake upstream"
export FAKE_URL FAKE_KEY=sk-fake-upstream
FAKE_URL=$(cat "$work/fake.url")
sed "s|{{FAKE_URL}}|$FAKE_URL|g" "$root/scripts/compat/sluice.yaml" > "$work/sluice.yaml"

# The bedrock provider signs its calls to the fake with whatever keys the
# environment has (the emulator's, under make test).
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-fake} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-fake}
"$work/sluice-stream" -addr 127.0.0.1:0 -config "$work/sluice.yaml" 2> "$work/sluice.log" &
pids+=($!)
for _ in $(seq 1 200); do
  SLUICE_URL=$(sed -n 's/.*"msg":"listening","url":"\([^"]*\)".*/\1/p' "$work/sluice.log" | head -1)
  [ -n "$SLUICE_URL" ] && break
  sleep 0.05
done
if [ -z "${SLUICE_URL:-}" ]; then
  echo "sluice did not start; its log:" >&2
  cat "$work/sluice.log" >&2
  exit 1
fi
export SLUICE_URL

status=0
echo "== npm openai $(node -p "require('$cache/node_modules/openai/package.json').version"), @anthropic-ai/sdk $(node -p "require('$cache/node_modules/@anthropic-ai/sdk/package.json').version") against $SLUICE_URL"
cp "$root"/scripts/compat/*.test.mjs "$cache/"
# features.test.mjs starts a server of its own, on its own config.
cp "$root/scripts/compat/server.mjs" "$root/scripts/compat/features.yaml" "$cache/"
export SLUICE_BIN="$work/sluice-stream"
(cd "$cache" && node --test --test-concurrency=4 ./*.test.mjs) || status=1
echo "== pip openai $("$venv/bin/python" -c 'import openai; print(openai.__version__)'), anthropic $("$venv/bin/python" -c 'import anthropic; print(anthropic.__version__)') against $SLUICE_URL"
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/scripts/compat/python" || status=1
if [ $status -ne 0 ]; then
  echo "== sluice log (last 40 lines)"
  tail -40 "$work/sluice.log"
fi
exit $status
