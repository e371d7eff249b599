#!/usr/bin/env bash
# Puts Debian's iPXE builds in this folder and checks them against SHA256SUMS.
# Source, in order: /usr/lib/ipxe when the installed `ipxe` package is the version SHA256SUMS
# was made from; else that exact version fetched with `apt-get download` and unpacked with
# `dpkg-deb -x` (no root needed); else whatever version apt offers (the checksum then decides).
# Files are replaced atomically, and nothing that fails its checksum is left behind as the real name.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
VERSION="1.0.0+git-20190125.36a4c85-5.1"
files=$(awk '!/^#/ && NF {print $2}' SHA256SUMS)

if sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1; then
  echo "firmware: $(echo $files) present and verified"
  exit 0
fi

src=/usr/lib/ipxe
tmp=""
cleanup() {
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
  rm -f "$here"/*.fetch-tmp
}
trap cleanup EXIT

installed=$(dpkg-query -W -f='${Version}' ipxe 2>/dev/null || true)
if [ "$installed" != "$VERSION" ] || [ ! -r "$src/undionly.kpxe" ]; then
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download "ipxe=$VERSION" >/dev/null 2>&1); then
    echo "firmware: ipxe $VERSION not offered by apt; trying the version it has" >&2
    (cd "$tmp" && apt-get download ipxe 2>&1 >/dev/null | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    ls "$tmp"/ipxe_*.deb >/dev/null
  fi
  dpkg-deb -x "$tmp"/ipxe_*.deb "$tmp/root"
  src="$tmp/root/usr/lib/ipxe"
  # ipxe.efi is a symlink to /boot/ipxe.efi in the package.
  [ -e "$src/ipxe.efi" ] || ln -sf "$tmp/root/boot/ipxe.efi" "$src/ipxe.efi"
fi

for f in $files; do
  if [ ! -e "$src/$f" ]; then
    echo "firmware: $f is not in Debian's ipxe package; left out (the appliance will say so and not hand it out)" >&2
    continue
  fi
  cp -fL "$src/$f" "$here/$f.fetch-tmp"
  want=$(awk -v f="$f" '$2 == f {print $1}' SHA256SUMS)
  got=$(sha256sum "$here/$f.fetch-tmp" | awk '{print $1}')
  if [ "$want" != "$got" ]; then
    echo "firmware: $f: checksum mismatch (expected $want, got $got): Debian's ipxe package differs from $VERSION" >&2
    rm -f "$here/$f.fetch-tmp"
    continue
  fi
  mv -f "$here/$f.fetch-tmp" "$here/$f"
done

sha256sum -c SHA256SUMS
