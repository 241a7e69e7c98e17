#!/usr/bin/env bash
# `npm test`: the unit project (files in parallel), then the integration project one file at a time (its suites
# share /dev/fuse, containerd, the holder and the network namespaces), each with a JSON report; then
# scripts/check-test-results.mjs fails the run unless every test file on disk ran (an emptied or skipped project
# cannot pass) and prints one closing "N passed, N failed" line. Extra arguments (file filters) go to both runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh
out=.test-results
rm -rf "$out" && mkdir -p "$out"
filtered=$([[ $# -gt 0 ]] && echo 1 || echo 0)
status=0
npx vitest run --project unit --reporter=default --reporter=json --outputFile.json="$out/unit.json" \
  --passWithNoTests "$@" || status=$?
npx vitest run --project integration --no-file-parallelism --reporter=default --reporter=json \
  --outputFile.json="$out/integration.json" --passWithNoTests "$@" || status=$?
FERRY_TEST_FILTERED=$filtered node scripts/check-test-results.mjs "$out" || status=$?
exit "$status"
