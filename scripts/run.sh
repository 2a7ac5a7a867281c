#!/usr/bin/env bash
# make run: compile the stream function and serve it on localhost. It says
# what it is doing, because the first compile (modules downloaded, the AWS
# SDK built) takes minutes on a small machine and is silent otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/sluice-stream
echo "== compiling ./functions/stream into $bin"
echo "   (the first time this downloads modules and compiles the AWS SDK: a few minutes on 2 cores; then seconds)"
start=$(date +%s)
( while sleep 20; do echo "   still compiling, $(( $(date +%s) - start ))s so far"; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
go build -o "$bin" ./functions/stream
kill $ticker 2>/dev/null || true
echo "== compiled in $(( $(date +%s) - start ))s; starting sluice (Ctrl-C stops it)"
exec "$bin" "$@"
