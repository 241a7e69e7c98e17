#!/usr/bin/env bash
# `npm run demo`: sets up what the demo needs on a fresh Debian machine, then runs scripts/demo.ts.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
  echo "demo: run as root (it installs packages, mounts FUSE and overlayfs)" >&2
  exit 1
fi
bash scripts/install-deps.sh
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run build --silent
exec node --import tsx scripts/demo.ts "$@"
