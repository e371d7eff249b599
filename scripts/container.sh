#!/usr/bin/env bash
# Builds the bootcfg-appliance OCI image (Containerfile) from Debian packages only:
#   scripts/container.sh [IMAGE]   (default: localhost/bootcfg-appliance:latest)
# The root filesystem comes from mmdebstrap (cached by its inputs under
# /var/cache/bootcfg-appliance-tests/container, or $BCA_CONTAINER_CACHE); Node.js is this
# host's (>= 20, from scripts/install.sh), the app the npm package of this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:-localhost/bootcfg-appliance:latest}
cache=${BCA_CONTAINER_CACHE:-/var/cache/bootcfg-appliance-tests/container}
pkgs="ipxe,iproute2,ca-certificates,libstdc++6"
mkdir -p "$cache"
rootfs="$cache/rootfs-bookworm-$(echo "$pkgs" | sha256sum | cut -c1-12).tar"
if [ ! -s "$rootfs" ]; then
  echo "container: mmdebstrap bookworm ($pkgs) → $rootfs" >&2
  # mmdebstrap picks the format by the name: it must end in .tar.
  partial="${rootfs%.tar}.partial.tar"
  rm -rf "$partial"
  mmdebstrap --quiet --variant=minbase --include="$pkgs" bookworm "$partial"
  mv "$partial" "$rootfs"
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp Containerfile "$ctx/"
ln "$rootfs" "$ctx/rootfs.tar" 2>/dev/null || cp "$rootfs" "$ctx/rootfs.tar"
mkdir -p "$ctx/app/usr/local/bin"
cp "$(readlink -f "$(command -v node)")" "$ctx/app/usr/local/bin/node"
tarball=$(npm pack --silent --pack-destination "$ctx" | tail -n 1)
npm install -g --silent --no-fund --no-audit --prefix "$ctx/app/usr/local" "$ctx/$tarball"
rm -f "$ctx/$tarball"
podman build --quiet -t "$image" -f "$ctx/Containerfile" "$ctx"
echo "container: built $image" >&2
