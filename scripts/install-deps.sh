#!/usr/bin/env bash
# Installs the system packages Ferry uses (Debian 12), idempotently. Needs root.
#
#   bash scripts/install-deps.sh             # runtime + test: what setup, the demo and CI need
#   bash scripts/install-deps.sh --runtime   # only what a production node running `ferry daemon` needs
#
# Runtime: libfuse2 (fuse-native), mount/util-linux (mount(8) -o fd=, umount), kmod (modprobe below),
# ca-certificates, systemd (systemd-notify for the units), attr (setfattr: xattrs of materialised layers). Test:
# registries, containerd and producers the suites
# run, compilers for the native modules (npm ci), Go for the conformance suite and the stargz-snapshotter
# the cold-start benchmark builds, mmdebstrap for the image.
set -euo pipefail

RUNTIME_PACKAGES=(libfuse2 mount util-linux kmod ca-certificates systemd attr)
TEST_PACKAGES=(fuse3 docker-registry containerd runc zstd tar gzip busybox-static pigz curl stargz-snapshotter skopeo iproute2 g++ make python3 binutils golang-go golang-github-containerd-containerd-dev golang-github-containerd-stargz-snapshotter-dev mmdebstrap)

case "${1:-}" in
  --runtime) PACKAGES=("${RUNTIME_PACKAGES[@]}") ;;
  '') PACKAGES=("${RUNTIME_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
  *) echo "usage: install-deps.sh [--runtime]" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The kernel side: FUSE and overlayfs. On a machine without module loading these are built in or absent.
modprobe fuse 2>/dev/null || true
modprobe overlay 2>/dev/null || true
[[ -c /dev/fuse ]] || { echo "install-deps: /dev/fuse is missing; FUSE is required" >&2; exit 1; }
grep -qw overlay /proc/filesystems || { echo "install-deps: the kernel has no overlayfs" >&2; exit 1; }
