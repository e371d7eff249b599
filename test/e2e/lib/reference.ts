/**
 * The reference boot server, built from the peers people use today: dnsmasq (full DHCP + TFTP of
 * Debian's iPXE builds + chain to an HTTP script on iPXE's user class) and nginx serving a static
 * iPXE script, the kernel and the initrd. It boots exactly what the appliance scenarios boot, so
 * it proves the harness (firmware, guest, taps) independently of our code and is the peer of
 * bench/boot.
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../../helpers/appliance.ts';
import type { GuestAssets } from './assets.ts';
import { LAB, type Lab } from './lab.ts';
import { startDnsmasq, startNginx, type Daemon } from './peers.ts';

export const FIRMWARE_DIR = process.env.BCA_FIRMWARE ?? path.join(PROJECT_ROOT, 'firmware');

export interface Reference {
  dnsmasq: Daemon;
  nginx: Daemon;
  log(): string;
  stop(): Promise<void>;
}

/** The iPXE script both set-ups boot: kernel with `initrd=<name>` (needed by the EFI stub, wire.md), one initrd. */
export function referenceScript(baseUrl: string, cmdline: string): string {
  return `#!ipxe\nkernel ${baseUrl}/vmlinuz ${cmdline} initrd=initrd.gz\ninitrd ${baseUrl}/initrd.gz\nboot\n`;
}

export async function startReference(lab: Lab, guest: GuestAssets, cmdline: string): Promise<Reference> {
  const root = mkdtempSync(path.join(tmpdir(), 'bca-www-'));
  const base = `http://${LAB.server}:${LAB.httpPort}`;
  symlinkSync(guest.kernel, path.join(root, 'vmlinuz'));
  symlinkSync(guest.initrd, path.join(root, 'initrd.gz'));
  writeFileSync(path.join(root, 'boot.ipxe'), referenceScript(base, cmdline));
  let nginx: Daemon;
  try {
    nginx = await startNginx(lab.srv, { root, listen: `${LAB.server}:${LAB.httpPort}` });
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  let dnsmasq: Daemon;
  try {
    dnsmasq = await startDnsmasq(lab.srv, {
      iface: LAB.bridge,
      range: LAB.range,
      pxe: { tftpRoot: FIRMWARE_DIR, ipxeScriptUrl: `${base}/boot.ipxe` },
    });
  } catch (err) {
    await nginx.stop();
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  return {
    dnsmasq,
    nginx,
    log: () => `--- dnsmasq ---\n${dnsmasq.log()}\n--- nginx ---\n${nginx.log()}`,
    async stop() {
      await dnsmasq.stop();
      await nginx.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
