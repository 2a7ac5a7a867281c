#!/usr/bin/env bash
# Bootstrap and deploy the Sluice CDK stack into LocalStack.
#
#   docker compose -f infra/localstack/docker-compose.yml up -d --wait
#   infra/localstack/deploy.sh [extra cdk args, e.g. -c configFile=../sluice.json]
#   infra/localstack/deploy.sh destroy
#
# Uses cdklocal (npm aws-cdk-local, which wraps the aws-cdk CLI) through npx.
# Environment:
#   AWS_ENDPOINT_URL     LocalStack gateway (default http://localhost.localstack.cloud:4566)
#   AWS_ENDPOINT_URL_S3  S3 endpoint with a ".s3." host (derived for localhost endpoints)
#   AWS_REGION           region to deploy to (default us-east-1)
#   SLUICE_DIST          directory with stream.zip, embed.zip, orchestrate.zip (default <repo>/dist)
#   SLUICE_ARCH          arm64 or x86_64 (default: read from the bootstrap in dist/stream.zip)
#   SLUICE_SKIP_BUILD=1  never run `make build`, even when a zip is missing
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
infra="$(cd "$here/.." && pwd)"
root="$(cd "$infra/.." && pwd)"

die() { echo "deploy.sh: $*" >&2; exit 1; }
say() { echo "==> $*" >&2; }

for cmd in curl go npx node; do
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd is required (see infra/README.md)"
done

# --- endpoints -------------------------------------------------------------
# cdklocal needs an S3 endpoint whose subdomains resolve (bucket.s3...), which
# *.localhost.localstack.cloud does (it resolves to 127.0.0.1).
endpoint="${AWS_ENDPOINT_URL:-http://localhost.localstack.cloud:4566}"
endpoint="${endpoint%/}"
if [[ -z "${AWS_ENDPOINT_URL_S3:-}" ]]; then
	if [[ "$endpoint" =~ ^(https?)://(localhost|127\.0\.0\.1|localhost\.localstack\.cloud)(:([0-9]+))?$ ]]; then
		AWS_ENDPOINT_URL_S3="${BASH_REMATCH[1]}://s3.localhost.localstack.cloud:${BASH_REMATCH[4]:-4566}"
	else
		die "AWS_ENDPOINT_URL=$endpoint is not local; set AWS_ENDPOINT_URL_S3 too (an S3 endpoint with a .s3. host)"
	fi
fi
export AWS_ENDPOINT_URL="$endpoint" AWS_ENDPOINT_URL_S3
export AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
export AWS_DEFAULT_REGION="$AWS_REGION"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
# cdklocal drops AWS_* variables other than AWS_ENDPOINT_URL* unless listed here.
export AWS_ENVAR_ALLOWLIST="AWS_REGION,AWS_DEFAULT_REGION,AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY"
export CDK_DISABLE_CLI_TELEMETRY=true
account=000000000000 # LocalStack's default account

cdklocal() {
	(cd "$infra" && npx --yes -p aws-cdk@2 -p aws-cdk-local@3 cdklocal "$@")
}

say "checking LocalStack at $endpoint"
if ! health="$(curl -fsS --max-time 5 "$endpoint/_localstack/health" 2>/dev/null)"; then
	die "LocalStack is not answering at $endpoint/_localstack/health.
Start it with: docker compose -f infra/localstack/docker-compose.yml up -d --wait"
fi
for svc in cloudformation lambda sqs dynamodb s3 iam ssm sts logs; do
	# "disabled" means SERVICES left it out; "available"/"running" are fine.
	if [[ "$health" =~ \"$svc\":\ *\"(disabled|error)\" ]]; then
		die "LocalStack service $svc is ${BASH_REMATCH[1]}; use infra/localstack/docker-compose.yml (its SERVICES list)"
	fi
done

if [[ "${1:-}" == "destroy" ]]; then
	shift
	# destroy still synthesizes the app, which wants the three zips; it
	# uploads nothing, so empty stand-ins do.
	stub="$(mktemp -d)"
	trap 'rm -rf "$stub"' EXIT
	for f in stream embed orchestrate; do
		printf 'PK\005\006%018d' 0 | tr 0 '\000' >"$stub/$f.zip" # an empty zip archive
	done
	say "destroying stack Sluice"
	cdklocal destroy Sluice --force --no-notices -c distDir="$stub" "$@"
	exit 0
fi

# --- function zips ---------------------------------------------------------
dist="${SLUICE_DIST:-$root/dist}"
missing=0
for f in stream embed orchestrate; do
	[[ -f "$dist/$f.zip" ]] || missing=1
done
if ((missing)); then
	[[ "${SLUICE_SKIP_BUILD:-0}" != 1 && -z "${SLUICE_DIST:-}" ]] || die "missing zips in $dist (run make build)"
	say "function zips missing in $dist: running make build"
	make -C "$root" build
	for f in stream embed orchestrate; do
		[[ -f "$dist/$f.zip" ]] || die "make build did not produce $dist/$f.zip"
	done
fi
dist="$(cd "$dist" && pwd)"

# The Lambda architecture must match the binaries: read the ELF e_machine of
# the bootstrap in stream.zip unless SLUICE_ARCH says otherwise.
arch="${SLUICE_ARCH:-}"
if [[ -z "$arch" ]] && command -v python3 >/dev/null 2>&1; then
	arch="$(python3 - "$dist/stream.zip" <<-'PY' 2>/dev/null || true
		import sys, zipfile
		head = zipfile.ZipFile(sys.argv[1]).open("bootstrap").read(20)
		machine = int.from_bytes(head[18:20], "little") if head[:4] == b"\x7fELF" else 0
		print({0xB7: "arm64", 0x3E: "x86_64"}.get(machine, ""))
	PY
	)"
fi
arch="${arch:-arm64}"
case "$(uname -m)" in
	aarch64 | arm64) host=arm64 ;;
	x86_64 | amd64) host=x86_64 ;;
	*) host="$(uname -m)" ;;
esac
if [[ "$arch" != "$host" ]]; then
	echo "deploy.sh: note: functions are $arch but this host is $host; LocalStack runs them in" >&2
	echo "  $arch containers, which needs qemu binfmt on the Docker host (or rebuild the zips" >&2
	echo "  for $host and run with SLUICE_ARCH=$host)." >&2
fi

# --- bootstrap and deploy --------------------------------------------------
say "bootstrapping aws://$account/$AWS_REGION"
cdklocal bootstrap "aws://$account/$AWS_REGION" --no-notices

say "deploying Sluice ($arch, zips from $dist)"
outputs="$here/outputs.json"
# Later -c values win, so "$@" can override urlAuth (LocalStack does not
# enforce Function URL IAM auth by default anyway).
cdklocal deploy Sluice --require-approval never --no-notices --outputs-file "$outputs" \
	-c distDir="$dist" -c architecture="$arch" -c urlAuth=NONE "$@"

say "outputs (also in $outputs):"
cat "$outputs" >&2
cat >&2 <<EOF

Try it:
  curl -N -H 'content-type: application/json' \\
    -d '{"model":"sluice-sim","stream":true,"messages":[{"role":"user","content":"hi"}]}' \\
    "\$(python3 -c 'import json;print(json.load(open("$outputs"))["Sluice"]["StreamUrl"])')v1/chat/completions"
Integration tests against LocalStack instead of moto:
  AWS_ENDPOINT_URL=http://localhost:4566 make test
Tear down:
  infra/localstack/deploy.sh destroy
EOF
