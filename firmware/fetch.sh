#!/usr/bin/env bash
# Puts the boot loaders the appliance hands out in this folder, from Debian's packages, and
# checks each against SHA256SUMS (firmware/README.md says what each is and where it comes from).
# Source of a package's files, in order: the installed package when it is the pinned version;
# else that exact version fetched with `apt-get download` and unpacked with `dpkg-deb -x` (no
# root needed); else whatever version apt offers (the checksum then decides).
# grubaa64.efi is built here with grub-mkimage from Debian's arm64 GRUB modules (README.md).
# Files are replaced atomically, and nothing that fails its checksum is left behind under the real name.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

# file  package[:arch]  pinned version  path in the package (or "build:<how>")
SOURCES=(
  "undionly.kpxe ipxe 1.0.0+git-20190125.36a4c85-5.1 usr/lib/ipxe/undionly.kpxe"
  "ipxe.efi ipxe 1.0.0+git-20190125.36a4c85-5.1 boot/ipxe.efi"
  "snponly.efi ipxe 1.0.0+git-20190125.36a4c85-5.1 usr/lib/ipxe/snponly.efi"
  "shimx64.efi shim-signed 1.51~1+deb12u1+16.1-2~deb12u1 usr/lib/shim/shimx64.efi.signed"
  "grubx64.efi grub-efi-amd64-signed 1+2.06+13+deb12u2 usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"
  "grubaa64.efi grub-efi-arm64-bin:arm64 2.06-13+deb12u2 build:grub-arm64"
)

# The arm64 network image: GRUB's own modules for TFTP over the firmware's NIC, Linux, the
# config language, and smbios for the machine's UUID. Its prefix is a placeholder of fixed
# length that the TFTP server overwrites with this appliance's address when it serves the
# file (src/firmware/grub-prefix.ts), so GRUB reads its config from us even beside a site
# DHCP server whose ACK names another next-server.
GRUB_ARM64_MODULES="efinet tftp net linux boot gzio normal configfile echo test regexp sleep smbios minicmd halt reboot"
GRUB_PREFIX_PLACEHOLDER="(tftp,000.000.000.000)/grub"

if sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1; then
  echo "firmware: $(awk '!/^#/ && NF {print $2}' SHA256SUMS | xargs) present and verified"
  exit 0
fi

tmp=$(mktemp -d)
cleanup() {
  rm -rf "$tmp"
  rm -f "$here"/*.fetch-tmp
}
trap cleanup EXIT

# Prints the folder a package's files are under (/ when installed at the pinned version), or fails.
unpacked() {
  local pkg=$1 version=$2 base=${1%%:*}
  local installed
  installed=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
  if [ "$installed" = "$version" ]; then
    echo /
    return
  fi
  local dir="$tmp/$base"
  if [ ! -d "$dir" ]; then
    mkdir -p "$tmp/deb-$base"
    if ! (cd "$tmp/deb-$base" && apt-get download "$pkg=$version" >/dev/null 2>&1); then
      echo "firmware: $pkg $version not offered by apt; trying the version it has" >&2
      (cd "$tmp/deb-$base" && apt-get download "$pkg" 2>&1 >/dev/null | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    fi
    ls "$tmp/deb-$base"/*.deb >/dev/null 2>&1 || return 1
    dpkg-deb -x "$tmp/deb-$base"/*.deb "$dir"
  fi
  echo "$dir"
}

build_grub_arm64() {
  local root=$1 out=$2
  command -v grub-mkimage >/dev/null || {
    echo "firmware: grub-mkimage not found (Debian package grub-common)" >&2
    return 1
  }
  grub-mkimage -O arm64-efi -d "$root/usr/lib/grub/arm64-efi" -p "$GRUB_PREFIX_PLACEHOLDER" -o "$out" $GRUB_ARM64_MODULES
}

for line in "${SOURCES[@]}"; do
  read -r name pkg version from <<<"$line"
  want=$(awk -v f="$name" '$2 == f {print $1}' SHA256SUMS)
  [ -n "$want" ] || continue
  if [ -f "$name" ] && [ "$(sha256sum "$name" | awk '{print $1}')" = "$want" ]; then continue; fi
  if [[ $pkg == *:arm64 ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "firmware: $name needs $pkg, and dpkg has no arm64 architecture (scripts/install.sh adds it: dpkg --add-architecture arm64 && apt-get update); left out" >&2
    continue
  fi
  if ! root=$(unpacked "$pkg" "$version"); then
    echo "firmware: $name: $pkg could not be downloaded; left out (the appliance will say so and not hand it out)" >&2
    continue
  fi
  case "$from" in
    build:grub-arm64) build_grub_arm64 "$root" "$name.fetch-tmp" || { echo "firmware: $name: build failed; left out" >&2; continue; } ;;
    *)
      if [ ! -e "$root/$from" ]; then
        echo "firmware: $name is not in $pkg ($from); left out (the appliance will say so and not hand it out)" >&2
        continue
      fi
      cp -fL "$root/$from" "$name.fetch-tmp"
      ;;
  esac
  got=$(sha256sum "$name.fetch-tmp" | awk '{print $1}')
  if [ "$want" != "$got" ]; then
    echo "firmware: $name: checksum mismatch (expected $want, got $got): $pkg differs from $version" >&2
    rm -f "$name.fetch-tmp"
    continue
  fi
  mv -f "$name.fetch-tmp" "$name"
done

sha256sum -c SHA256SUMS
