#!/usr/bin/env bash
# Runs the official OpenAI SDK (npm "openai", pinned in scripts/compat) against
# a locally built stream function. The SDK is installed into .cache/compat
# the first time and again only when the lock file changes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/compat"
mkdir -p "$cache"
if ! cmp -s "$root/scripts/compat/package-lock.json" "$cache/package-lock.json" || [ ! -d "$cache/node_modules/openai" ]; then
  cp "$root/scripts/compat/package.json" "$root/scripts/compat/package-lock.json" "$cache/"
  (cd "$cache" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
cp "$root/scripts/compat/compat.test.mjs" "$root/scripts/compat/sluice.yaml" "$cache/"
bin="$cache/sluice-stream"
go build -o "$bin" "$root/functions/stream"
cd "$cache"
SLUICE_BIN="$bin" node --test compat.test.mjs

# Route features (cache, guard, shadow) through the same SDK.
cp "$root/scripts/compat/features.test.mjs" "$root/scripts/compat/features.yaml" "$root/scripts/compat/server.mjs" "$cache/"
SLUICE_BIN="$bin" node --test features.test.mjs
