# Sourced by the setup, test and demo scripts: puts the checkout's own Node.js 24 (installed by scripts/setup.sh
# from the npm registry's `node` package into .node/) first on PATH, so npm, vitest, tsc and every child process
# run on the supported runtime whatever Node the machine came with. Native modules build against its headers.
FERRY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FERRY_NODE_VERSION=24.21.0
FERRY_NODE_HOME="$FERRY_ROOT/.node"
export PATH="$FERRY_NODE_HOME/bin:$PATH"
# node-gyp compiles against these headers instead of the machine's own Node (npm may be set to use /usr's).
npm_config_nodedir="$(dirname "$(readlink -f "$FERRY_NODE_HOME/bin/node" 2>/dev/null || echo /nonexistent/bin/node)")/.."
export npm_config_nodedir
