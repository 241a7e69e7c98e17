#!/usr/bin/env bash
# Builds Ferry's OCI image (the Dockerfile's runtime stage) on this machine without pulling a base image: a
# Debian 12 root made by mmdebstrap from Debian's archive with the Dockerfile's RUNTIME_PACKAGES, the Node 24
# binary from .node/, and dist/ + production node_modules, as three gzip layers in an OCI archive.
#
#   sudo bash scripts/build-image.sh [--out DIR] [--no-build] [--import] [--address SOCK] [--namespace NS]
#
# --no-build packs the dist/ already built (npm run build) instead of building it first.
# Prints the archive's path and the image name (localhost/ferry:<version>). --import loads it into containerd
# (`ctr images import`, by default into namespace k8s.io, what the kubelet uses). The base layer is cached under
# FERRY_IMAGE_CACHE (/var/cache/ferry-image), keyed by the package list, so a rebuild only redoes Ferry's layer.
# Push elsewhere with skopeo: skopeo copy oci-archive:<archive> docker://registry.example/ferry:<version>
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh

out=build/image
import=0
build=1
address=/run/containerd/containerd.sock
namespace=k8s.io
while (($#)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --import) import=1; shift ;;
    --no-build) build=0; shift ;;
    --address) address="$2"; shift 2 ;;
    --namespace) namespace="$2"; shift 2 ;;
    *) echo "build-image: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $EUID -eq 0 ]] || { echo "build-image: run as root (mmdebstrap builds the root file system)" >&2; exit 1; }
for tool in mmdebstrap sha256sum tar gzip; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
[[ "$(node --version)" == "v$FERRY_NODE_VERSION" ]] || {
  echo "build-image: .node/bin/node is not Node $FERRY_NODE_VERSION (bash scripts/install-node.sh)" >&2
  exit 1
}
grep -q "^ARG NODE_VERSION=$FERRY_NODE_VERSION\$" Dockerfile || {
  echo "build-image: the Dockerfile's NODE_VERSION is not $FERRY_NODE_VERSION (scripts/node-env.sh)" >&2
  exit 1
}
packages="$(sed -n 's/^ARG RUNTIME_PACKAGES="\(.*\)"$/\1/p' Dockerfile)"
[[ -n "$packages" ]] || { echo "build-image: no ARG RUNTIME_PACKAGES in the Dockerfile" >&2; exit 1; }
version="$(node -p 'require("./package.json").version')"
name="localhost/ferry:$version"
arch="$(dpkg --print-architecture)"
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
gz() { if command -v pigz >/dev/null; then pigz -n -6; else gzip -n -6; fi; }
tarball() { tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -C "$1" -cf - .; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
blobs="$work/oci/blobs/sha256"
mkdir -p "$blobs"
diff_ids=()
layers=()

# Adds a layer from an uncompressed tar: its diff ID, then the gzip blob under its own digest.
# Cached layers keep their digests beside them (<tar>.sums), so a rebuild hashes only Ferry's layer.
add_layer() {
  local tarfile="$1" gzfile="$1.gz" diff digest
  if [[ -f "$tarfile.sums" && "$tarfile.sums" -nt "$gzfile" ]]; then
    read -r diff digest <"$tarfile.sums"
  else
    diff="$(sha256sum "$tarfile" | cut -d' ' -f1)"
    [[ -f "$gzfile" ]] || gz <"$tarfile" >"$gzfile"
    digest="$(sha256sum "$gzfile" | cut -d' ' -f1)"
    echo "$diff $digest" >"$tarfile.sums"
  fi
  ln "$gzfile" "$blobs/$digest" 2>/dev/null || cp "$gzfile" "$blobs/$digest"
  diff_ids+=("\"sha256:$diff\"")
  layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$digest\",\"size\":$(stat -c %s "$gzfile")}")
}

# 1. Debian 12 with the runtime packages (cached: mmdebstrap takes about a minute).
cache="${FERRY_IMAGE_CACHE:-/var/cache/ferry-image}"
key="$(printf '%s\n' bookworm essential "$packages" "$arch" v1 | sha256sum | cut -c1-16)"
base="$cache/base-$key.tar"
if [[ ! -f "$base" || ! -f "$base.gz" ]]; then
  mkdir -p "$cache"
  echo "build-image: debian bookworm + $packages (mmdebstrap)" >&2
  mmdebstrap --quiet --variant=essential --include="${packages// /,}" --skip=output/dev \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*' \
    bookworm "$work/base.tar" http://deb.debian.org/debian
  gz <"$work/base.tar" >"$work/base.tar.gz"
  mv "$work/base.tar" "$base"
  mv "$work/base.tar.gz" "$base.gz"
fi
add_layer "$base"

# 2. The Node 24 binary (its own layer, cached: it changes with the runtime, not with Ferry).
nodetar="$cache/node-$FERRY_NODE_VERSION-$arch.tar"
if [[ ! -f "$nodetar" || ! -f "$nodetar.gz" ]]; then
  mkdir -p "$work/node/usr/local/bin"
  cp "$(readlink -f .node/bin/node)" "$work/node/usr/local/bin/node"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/node" -cf "$work/node.tar" .
  gz <"$work/node.tar" >"$work/node.tar.gz"
  mv "$work/node.tar" "$nodetar"
  mv "$work/node.tar.gz" "$nodetar.gz"
fi
add_layer "$nodetar"

# 3. Ferry: dist/ (built now), bin/, proto/ and production node_modules (node_modules pruned of dev packages).
if ((build)); then
  echo "build-image: npm run build" >&2
  npm run build --silent
fi
[[ -f dist/main.js ]] || { echo "build-image: dist/main.js is missing: npm run build" >&2; exit 1; }
app="$work/app/opt/ferry"
mkdir -p "$app" "$work/app/usr/local/bin"
cp -a package.json package-lock.json bin proto dist "$app/"
cp -a "$(readlink -f node_modules)" "$app/node_modules"
(cd "$app" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >&2)
rm -f "$app/package-lock.json" "$app/node_modules/.package-lock.json" "$app/node_modules/.ferry-node-abi"
ln -s /opt/ferry/bin/ferry.js "$work/app/usr/local/bin/ferry"
tarball "$work/app" >"$work/app.tar"
add_layer "$work/app.tar"

# The config, manifest and index (what the Dockerfile's ENTRYPOINT/CMD/ENV say).
blob() { # stdin → blob; prints "digest size"
  cat >"$work/blob"
  local d
  d="$(sha256sum "$work/blob" | cut -d' ' -f1)"
  mv "$work/blob" "$blobs/$d"
  echo "sha256:$d $(stat -c %s "$blobs/$d")"
}
created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
read -r cdigest csize < <(
  printf '{"architecture":"%s","os":"linux","created":"%s","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","NODE_ENV=production"],"Entrypoint":["ferry"],"Cmd":["daemon"],"Labels":{"org.opencontainers.image.title":"ferry","org.opencontainers.image.version":"%s","org.opencontainers.image.revision":"%s"}},"rootfs":{"type":"layers","diff_ids":[%s]},"history":[{"created":"%s","created_by":"mmdebstrap bookworm: %s"},{"created":"%s","created_by":"node %s"},{"created":"%s","created_by":"ferry %s"}]}' \
    "$arch" "$created" "$version" "$revision" "$(IFS=,; echo "${diff_ids[*]}")" \
    "$created" "$packages" "$created" "$FERRY_NODE_VERSION" "$created" "$version" | blob
)
read -r mdigest msize < <(
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
    "$cdigest" "$csize" "$(IFS=,; echo "${layers[*]}")" | blob
)
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$mdigest" "$msize" "$arch" "$name" "$version" >"$work/oci/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"

mkdir -p "$out"
archive="$(cd "$out" && pwd)/ferry-$version.oci.tar"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -C "$work/oci" -cf "$archive.tmp" .
mv "$archive.tmp" "$archive"
echo "build-image: $name $mdigest, $(stat -c %s "$archive") bytes: $archive" >&2
if ((import)); then
  ctr --address "$address" -n "$namespace" images import "$archive" >&2
fi
printf '%s\n%s\n' "$archive" "$name"
