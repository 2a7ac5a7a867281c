#!/usr/bin/env bash
# Runs every Fuzz target in the repository, one after another, for a short
# time each: `make test` runs it with the default budget, and `make fuzz
# FUZZTIME=5m` is the longer run. Targets are found by their declarations
# (func FuzzXxx(f *testing.F) in *_test.go), so new ones join automatically.
#
#   FUZZ_BUDGET  seconds of fuzzing for all targets together (default 24), split evenly
#                with at least 2s each
#   FUZZTIME     time per target (e.g. 30s, 5m); overrides FUZZ_BUDGET
#
# A failure leaves the input under the package's testdata/fuzz/, where plain
# `go test` replays it from then on: commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t found < <(grep -rHoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' functions shared scripts 2>/dev/null | sort)
if [ ${#found[@]} -eq 0 ]; then
  echo "no fuzz targets"
  exit 0
fi
# inputs counts the saved inputs of a target (0 if it has none).
inputs() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }

budget=${FUZZ_BUDGET:-24}
per=${FUZZTIME:-$(( budget / ${#found[@]} > 2 ? budget / ${#found[@]} : 2 ))s}
echo "${#found[@]} fuzz targets, $per each"
start=$SECONDS
for hit in "${found[@]}"; do
  file=${hit%%:*}
  name=${hit#*:func }
  name=${name%(}
  pkg=./$(dirname "$file")
  printf '  %-48s %s\n' "$pkg" "$name"
  corpus="$pkg/testdata/fuzz/$name"
  before=$(inputs "$corpus")
  if out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$per" "$pkg" 2>&1); then
    continue
  fi
  # Go 1.26's fuzz coordinator can report its own -fuzztime deadline as a
  # failure (golang/go#75804, fixed in 1.27); a real failure always writes
  # the failing input to the corpus directory.
  after=$(inputs "$corpus")
  if [ "$after" -eq "$before" ] && grep -q 'context deadline exceeded' <<<"$out"; then
    echo "    (stopped at the deadline with no failing input: golang/go#75804)"
    continue
  fi
  echo "$out"
  echo "fuzz target $name in $pkg failed" >&2
  exit 1
done
echo "fuzzing took $((SECONDS - start))s"
