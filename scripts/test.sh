#!/usr/bin/env bash
# Runs every test: type check, unit tests (src/), integration tests against real erl and PostgreSQL
# (integration/). Installs what is missing first. Ends with one line: "tests: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
if ! bash scripts/ensure-deps.sh || ! bash scripts/provision.sh; then
  echo "tests: 0 passed, 1 failed, 0 skipped (could not install what the tests need: see above)"
  exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
echo "== type check (tsc --noEmit)"
npx tsc -p tsconfig.json --noEmit || status=1
echo "== unit tests (src/)"
npx uvu -r tsx src '\.test\.ts$' 2>&1 | tee -a "$log"; [ "${PIPESTATUS[0]}" = 0 ] || status=1
echo "== benchmark targets behave (bench/: the C-node, BEAM and ts echo answer what they are sent; no timings)"
npx uvu -r tsx bench '\.test\.ts$' 2>&1 | tee -a "$log"; [ "${PIPESTATUS[0]}" = 0 ] || status=1
echo "== integration tests (integration/, real erl and PostgreSQL)"
npx uvu -r tsx integration '\.test\.ts$' 2>&1 | tee -a "$log"; [ "${PIPESTATUS[0]}" = 0 ] || status=1

plain=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
total=$(echo "$plain" | awk '/^ *Total:/ {s += $2} END {print s + 0}')
passed=$(echo "$plain" | awk '/^ *Passed:/ {s += $2} END {print s + 0}')
skipped=$(echo "$plain" | awk '/^ *Skipped:/ {s += $2} END {print s + 0}')
failed=$((total - passed - skipped))
[ "$status" = 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
