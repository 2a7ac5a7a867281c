#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
mkdir -p .cache

# DynamoDB (and later SQS) integration tests run against a real AWS API
# emulator: moto, started here, or whatever AWS_ENDPOINT_URL points at.
source scripts/emulator.sh

echo "== go test -race ./..."
go test -race -count=1 -timeout 5m ./...

echo "== fuzz: every Fuzz target briefly (make fuzz FUZZTIME=5m runs longer)"
bash scripts/fuzz.sh

echo "== SDK compatibility (npm and pip openai, against simulated, OpenAI-wire and Anthropic-wire upstreams)"
bash scripts/compat.sh

if [ -f infra/go.mod ]; then
  echo "== infra (CDK synth assertions)"
  (cd infra && go test -count=1 ./...)
fi

echo "== all tests passed in $((SECONDS - start))s"
