#!/usr/bin/env bash
# `npm run demo`: sets up what the demo needs on a fresh Debian machine, then runs scripts/demo.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/node-env.sh
exec node --import tsx scripts/demo.ts "$@"
