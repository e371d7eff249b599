/**
 * bench/boot: seconds from qemu's start to the guest's userland (its BOOTED console line), for
 * the BIOS (SeaBIOS + iPXE ROM) and UEFI (OVMF native PXE → ipxe.efi) boots, on the appliance
 * in full DHCP mode against the peer set-up people use today: dnsmasq (DHCP + TFTP + iPXE
 * user-class chain) with nginx serving the same script, kernel and initrd. Same guest, same
 * lab, same machine, one VM at a time, peer and ours alternating; ratios are ours / peer
 * (below 1.0 = we boot faster). Needs root (namespaces, taps).
 *
 *   sudo node --import tsx bench/boot/run.ts [--runs N] [--firmware bios,uefi] [-- extra appliance flags]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../../test/helpers/appliance.ts';
import { isRoot } from '../../test/helpers/netns.ts';
import { ensureGuestAssets } from '../../test/e2e/lib/assets.ts';
import { createLab } from '../../test/e2e/lib/lab.ts';
import type { Firmware } from '../../test/e2e/lib/qemu.ts';
import { startReference } from '../../test/e2e/lib/reference.ts';
import { bootOnce, GUEST_ARGS, guestConfig, parseCmdline, randomMac, startOurs, token } from '../../test/e2e/lib/scenario.ts';

const { values, positionals } = parseArgs({
  options: { runs: { type: 'string', default: '1' }, firmware: { type: 'string', default: 'bios,uefi' } },
  allowPositionals: true,
});
const runs = Math.max(1, Math.min(5, Number(values.runs)));
const firmwares = values.firmware!.split(',').map((s) => s.trim()) as Firmware[];
const extraArgs = positionals;

if (!isRoot) {
  console.error('bench/boot needs root (network namespaces, taps): sudo node --import tsx bench/boot/run.ts');
  process.exit(2);
}

type Server = 'dnsmasq+nginx' | 'bootcfg-appliance';

async function bootWith(server: Server, firmware: Firmware, run: number): Promise<number> {
  const guest = await ensureGuestAssets((m) => console.error(m));
  const lab = await createLab();
  try {
    const tok = token();
    const mac = randomMac();
    const name = `bench-${server === 'dnsmasq+nginx' ? 'peer' : 'ours'}-${firmware}-${run}`;
    let logs: () => string;
    let stop: () => Promise<void>;
    if (server === 'dnsmasq+nginx') {
      const ref = await startReference(lab, guest, `${GUEST_ARGS} bca.token=${tok}`);
      logs = ref.log;
      stop = ref.stop;
    } else {
      const ours = await startOurs(lab, guest, 'full', { default: guestConfig(tok) }, extraArgs);
      logs = ours.log;
      stop = ours.stop;
    }
    try {
      const booted = await bootOnce({ lab, firmware, mac, name, logs });
      if (parseCmdline(booted.cmdline).get('bca.token') !== tok || booted.mac !== mac) {
        throw new Error(`${name}: booted the wrong thing: ${booted.cmdline} mac=${booted.mac}`);
      }
      return booted.seconds;
    } finally {
      await stop();
    }
  } finally {
    await lab.destroy();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const results: Record<string, Record<Server, number[]>> = {};
for (const firmware of firmwares) {
  results[firmware] = { 'dnsmasq+nginx': [], 'bootcfg-appliance': [] };
  for (let run = 0; run < runs; run++) {
    for (const server of ['dnsmasq+nginx', 'bootcfg-appliance'] as Server[]) {
      const s = await bootWith(server, firmware, run);
      results[firmware]![server].push(s);
      console.error(`${firmware} ${server} run ${run + 1}/${runs}: ${s.toFixed(1)} s`);
    }
  }
}

console.log(`\nboot to userland (qemu TCG, seconds, median of ${runs}; ratio = ours / peer, < 1 is faster)`);
console.log('firmware | dnsmasq+nginx | bootcfg-appliance | ratio');
console.log('---|---|---|---');
const summary: Record<string, { peer: number; ours: number; ratio: number }> = {};
for (const firmware of firmwares) {
  const peer = median(results[firmware]!['dnsmasq+nginx']);
  const ours = median(results[firmware]!['bootcfg-appliance']);
  summary[firmware] = { peer, ours, ratio: ours / peer };
  console.log(`${firmware} | ${peer.toFixed(1)} | ${ours.toFixed(1)} | ${(ours / peer).toFixed(2)}`);
}
const outDir = path.join(PROJECT_ROOT, 'bench', 'results');
mkdirSync(outDir, { recursive: true });
const out = path.join(outDir, `boot-${new Date().toISOString().replaceAll(':', '-')}.json`);
writeFileSync(out, JSON.stringify({ runs, extraArgs, results, summary }, null, 2));
console.log(`\nraw figures: ${path.relative(PROJECT_ROOT, out)}`);
