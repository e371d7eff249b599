#!/usr/bin/env bash
# Puts Debian's iPXE builds in this folder and checks them against SHA256SUMS.
# Source: /usr/lib/ipxe when the `ipxe` package is installed, else the package itself
# fetched with `apt-get download` and unpacked with `dpkg-deb -x` (no root needed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
files=$(awk '{print $2}' SHA256SUMS)

if sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1; then
  echo "firmware: $(echo $files) present and verified"
  exit 0
fi

src=/usr/lib/ipxe
tmp=""
if [ ! -r "$src/undionly.kpxe" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download ipxe >/dev/null)
  dpkg-deb -x "$tmp"/ipxe_*.deb "$tmp/root"
  src="$tmp/root/usr/lib/ipxe"
  # ipxe.efi is a symlink to /boot/ipxe.efi in the package.
  [ -e "$src/ipxe.efi" ] || ln -sf "$tmp/root/boot/ipxe.efi" "$src/ipxe.efi"
fi
for f in $files; do
  cp -fL "$src/$f" "$here/$f.tmp" && mv -f "$here/$f.tmp" "$here/$f"
done
if ! sha256sum -c SHA256SUMS; then
  echo "firmware: checksum mismatch: Debian's ipxe package differs from the version SHA256SUMS was made from (1.0.0+git-20190125.36a4c85-5.1)" >&2
  exit 1
fi
