#!/usr/bin/env bash
# make run-embed: the embed function's local loop. Starts the AWS API
# emulator (moto) unless AWS_ENDPOINT_URL points at one (LocalStack, or a
# real account when set to an AWS endpoint), creates the documents queue
# with its dead-letter queue and an S3 Vectors bucket, and runs the embed
# function polling that queue. `make enqueue` (in another shell) sends
# sample documents; `go run ./scripts/embedq list` shows the vectors.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
started_here=${AWS_ENDPOINT_URL:+no}
source scripts/emulator.sh            # free port; .cache/embed-local.env tells `make enqueue`
wait_flag=()
# moto serves one request at a time, so a 20 s long poll would hold every
# other call (make enqueue's) for 20 s: poll it with 1 s waits.
[ -z "$started_here" ] && wait_flag=(-wait 1s)
queue=$(go run ./scripts/embedq setup -queue sluice-documents -bucket sluice-vectors)
cat > .cache/embed-local.env <<ENV
export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_REGION=$AWS_REGION AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
export SLUICE_QUEUE_URL=$queue SLUICE_VECTOR_BUCKET=sluice-vectors
ENV
echo "== queue $queue; vectors go to S3 Vectors bucket sluice-vectors on $AWS_ENDPOINT_URL"
echo "== in another shell: make enqueue   (then: source .cache/embed-local.env && go run ./scripts/embedq list)"
export SLUICE_QUEUE_URL=$queue SLUICE_VECTOR_BUCKET=sluice-vectors
go run ./functions/embed "${wait_flag[@]}" "$@"
