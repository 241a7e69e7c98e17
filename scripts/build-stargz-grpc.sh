#!/usr/bin/env bash
# Builds containerd-stargz-grpc for the cold-start benchmark, offline: Debian ships stargz-snapshotter's library
# (golang-github-containerd-stargz-snapshotter-dev) but not this command, so bench/stargz-grpc/main.go serves the
# library's snapshotter over containerd's snapshots API, built with Debian's Go in GOPATH mode. The binary is
# cached in .cache/stargz-grpc/ (gitignored) and rebuilt when main.go changes. Prints the binary's path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/bench/stargz-grpc"
OUT="$ROOT/.cache/stargz-grpc"
BIN="$OUT/containerd-stargz-grpc"
LIB=/usr/share/gocode/src/github.com/containerd/stargz-snapshotter
for need in /usr/bin/go "$LIB"; do
  [[ -e "$need" ]] || { echo "build-stargz-grpc: missing $need (scripts/install-deps.sh installs golang-go and golang-github-containerd-stargz-snapshotter-dev)" >&2; exit 1; }
done
stamp="$(sha256sum "$SRC/main.go" | cut -d' ' -f1)"
if [[ -x "$BIN" && -f "$OUT/stamp" && "$(cat "$OUT/stamp")" == "$stamp" ]]; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$OUT"
# No module proxy, no network: every import comes from Debian's -dev packages under /usr/share/gocode.
(cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOCACHE="$ROOT/.cache/go-build" \
  go build -o "$BIN.tmp" ./bench/stargz-grpc) >&2
mv "$BIN.tmp" "$BIN"
echo "$stamp" > "$OUT/stamp"
echo "$BIN"
