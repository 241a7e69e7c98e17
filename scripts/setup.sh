#!/usr/bin/env bash
# Brings a checkout to a runnable state on Debian 12: system packages (as root), node_modules (npm ci when
# missing or older than package-lock.json), and dist/ (npm run build). Idempotent; used by `npm test`,
# `npm run demo` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
  echo "setup: run as root (it installs packages; Ferry mounts FUSE and overlayfs)" >&2
  exit 1
fi
bash scripts/install-deps.sh
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run build --silent
