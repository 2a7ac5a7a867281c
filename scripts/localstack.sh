#!/usr/bin/env bash
# The LocalStack path, for users with Docker (LocalStack runs Lambda in
# containers, so it cannot run on a machine without a Docker engine):
#
#   make local-up           start LocalStack (infra/localstack/docker-compose.yml)
#   make local-deploy       make build, then cdklocal bootstrap + deploy (infra/localstack/deploy.sh)
#   make test-integration   the integration suites against LocalStack, plus
#                           requests to the deployed functions' URLs
#   make local-down         stop it
#
# LOCALSTACK_ENDPOINT (default http://localhost:4566) selects the gateway.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
endpoint=${LOCALSTACK_ENDPOINT:-http://localhost:4566}
compose=(docker compose -f "$root/infra/localstack/docker-compose.yml")

need_docker() {
  if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "localstack: no usable Docker engine here. LocalStack runs Lambda functions in containers," >&2
    echo "  so this path needs Docker. Without it, make test covers the same ground on moto and the" >&2
    echo "  Lambda Runtime Interface Emulator (README, \"Proven on the Lambda runtime\")." >&2
    exit 1
  fi
}

need_localstack() {
  if ! curl -fsS --max-time 5 "$endpoint/_localstack/health" >/dev/null 2>&1; then
    echo "localstack: nothing answers at $endpoint/_localstack/health; run make local-up first" >&2
    exit 1
  fi
}

case "${1:-}" in
up)
  need_docker
  "${compose[@]}" up -d --wait
  echo "== LocalStack is up at $endpoint; next: make local-deploy"
  ;;
down)
  need_docker
  "${compose[@]}" down
  ;;
deploy)
  need_localstack
  AWS_ENDPOINT_URL=$endpoint bash "$root/infra/localstack/deploy.sh" "${@:2}"
  ;;
test)
  need_localstack
  export AWS_ENDPOINT_URL=$endpoint AWS_REGION=${AWS_REGION:-us-east-1}
  export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
  export SLUICE_REQUIRE_EMULATOR=1
  outputs="$root/infra/localstack/outputs.json"
  if [ ! -f "$outputs" ]; then
    echo "localstack: $outputs is missing; run make local-deploy first" >&2
    exit 1
  fi
  echo "== DynamoDB and SQS integration suites, and the stack on the runtime emulator, against LocalStack"
  (cd "$root" && go test -race -count=1 -timeout 10m ./shared/... ./scripts/stackemu/)
  echo "== the deployed stack: requests to its Function URLs"
  (cd "$root" && SLUICE_LOCALSTACK_OUTPUTS="$outputs" go test -count=1 -run TestLocalStackDeployment -v ./scripts/stackemu/)
  ;;
*)
  echo "usage: $0 up|down|deploy|test" >&2
  exit 2
  ;;
esac
