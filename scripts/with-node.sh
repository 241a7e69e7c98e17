#!/usr/bin/env bash
# Runs a command with the checkout's Node.js 24 first on PATH (npm scripts use it: `bash scripts/with-node.sh vitest run`).
set -euo pipefail
source "$(dirname "$0")/node-env.sh"
exec "$@"
