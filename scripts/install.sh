#!/usr/bin/env bash
# Installs what bootcfg-appliance needs on Debian 12, from Debian's packages and the npm registry.
#   scripts/install.sh          runtime: Node.js >= 20, iPXE firmware, npm dependencies, build
#   scripts/install.sh --test   also every tool the test suite and benchmarks drive
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install.sh: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

# grub-common: grub-mkimage builds the arm64 GRUB image from Debian's arm64 modules (firmware/fetch.sh).
RUNTIME_PKGS=(ipxe ca-certificates iproute2 grub-common)
TEST_PKGS=(
  qemu-system-x86 ipxe-qemu ovmf        # real firmware booting in VMs (ovmf: with Secure Boot too)
  qemu-system-arm qemu-efi-aarch64      # arm64 VMs (AAVMF)
  dnsmasq-base                          # the neighbouring DHCP server, and a benchmark peer
  tftp-hpa atftp curl                   # TFTP clients nobody here wrote
  busybox-static isc-dhcp-client        # udhcpc and dhclient; busybox also builds the test initrd
  cpio xz-utils zstd                    # unpacking Debian's kernel, packing the initrd
  tcpdump iptables iputils-ping         # captures and reachability checks when a test fails
  ndisc6                                # rdisc6: the IPv6 router solicitation client (--ipv6-ra-quench)
  nginx-light wrk kea-admin             # benchmark peers and load (kea-admin brings perfdhcp)
  chromium                              # machines page test
  podman runc mmdebstrap                # the container image, built from Debian packages (scripts/container.sh)
  systemd                               # systemd-analyze verify
  etcd-server etcd-client               # the shared store (--store etcd://): a real 3-member cluster in the tests
  openssl                               # a throwaway CA and certificates for etcd over TLS (test/e2e/etcd-tls.test.ts)
)

pkgs=("${RUNTIME_PKGS[@]}")
[ "$want_test" = 1 ] && pkgs+=("${TEST_PKGS[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Debian's arm64 GRUB modules (and the arm64 test guest) are fetched as arm64 packages: dpkg must know the architecture.
need_update=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  need_update=1
fi
need_node=0
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then need_node=1; fi

if [ "${#missing[@]}" -gt 0 ] || [ "$need_node" = 1 ] || [ "$need_update" = 1 ]; then
  # Package scripts must not start services (nginx, tftpd) in the host's namespace.
  policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  $SUDO apt-get update -qq
  [ "$need_node" = 1 ] && missing+=(nodejs npm)
  [ "${#missing[@]}" -gt 0 ] && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ "$policy_added" = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
fi

if [ "$need_node" = 1 ]; then
  # Debian 12 ships Node 18; the npm registry's `node` package brings a Node 20 binary.
  $SUDO npm install -g --no-fund --no-audit node@20
  hash -r
fi

npm ci --no-fund --no-audit --loglevel=error
npm run build --silent
bash firmware/fetch.sh
