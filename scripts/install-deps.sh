#!/usr/bin/env bash
# Installs the system packages Ferry and its tests use (Debian 12), idempotently. Needs root.
set -euo pipefail

PACKAGES=(libfuse2 fuse3 docker-registry containerd runc zstd attr tar gzip kmod util-linux busybox-static pigz curl stargz-snapshotter skopeo systemd iproute2 g++ make python3 binutils golang-go golang-github-containerd-containerd-dev)

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
