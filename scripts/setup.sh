#!/usr/bin/env bash
# Brings a checkout to a runnable state on Debian 12: system packages (as root), Node.js 24 into .node/ (the
# machine's own Node may be older), node_modules (npm ci when missing, older than package-lock.json, or built for
# another Node), and dist/ (npm run build). Idempotent; used by `npm test`, `npm run demo` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
  echo "setup: run as root (it installs packages; Ferry mounts FUSE and overlayfs)" >&2
  exit 1
fi
bash scripts/install-deps.sh
bash scripts/install-node.sh
source scripts/node-env.sh

# Native modules are compiled for one Node ABI; a checkout set up with another Node needs them rebuilt.
abi="$(node -p 'process.versions.modules')"
marker=node_modules/.ferry-node-abi
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ||
  "$(cat "$marker" 2>/dev/null)" != "$abi" ]]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$abi" >"$marker"
fi
npm run build --silent
