#!/usr/bin/env bash
# make bench: micro-benchmarks, then the TTFT load test (overhead, hedging,
# and state backends against the AWS API emulator).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
source scripts/emulator.sh
go test -run '^$' -bench . -benchmem -benchtime 2s ./shared/...
go run ./scripts/ttftbench
