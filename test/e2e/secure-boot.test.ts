/**
 * The signed shim → GRUB chain and arm64, with real firmware (issue 9):
 * - OVMF with Secure Boot enforced and Microsoft's keys, --dhcp full: the machine's mac/ config
 *   says "loader": "grub" (the default carries a wrong token); PXE → TFTP shimx64.efi → shim
 *   fetches grubx64.efi → GRUB reads grub/x86_64-efi/grub.cfg → the per-machine hand-over →
 *   kernel + initrd over TFTP → Debian's signed kernel boots and says Secure Boot is enabled.
 * - The same machine with "loader": "ipxe": the firmware refuses ipxe.efi (Access Denied), and
 *   the appliance says the firmware never came back after the NBP (log and /api/machines).
 * - Beside a site DHCP server (--dhcp proxy), the signed chain works once that server hands out
 *   next-server = the appliance, which is what explain tells the operator to set.
 * - arm64 (AAVMF) boots GRUB with the appliance's address in its prefix, in full mode and in
 *   ProxyDHCP mode beside a dnsmasq whose ACK names no next-server.
 */
import test, { type ExecutionContext } from 'ava';
import { isRoot } from '../helpers/netns.ts';
import { ensureGuestAssets, SECUREBOOT_RE, type GuestAssets } from './lib/assets.ts';
import { createLab, LAB, type Lab } from './lib/lab.ts';
import { startDnsmasq } from './lib/peers.ts';
import { FIRMWARE_GAVE_UP, startVm } from './lib/qemu.ts';
import { BOOT_TIMEOUT_MS, bootOnce, machineView, parseCmdline, randomMac, startOurs, token, type BootEntry } from './lib/scenario.ts';

const maybe = isRoot ? test.serial : test.skip;

function entry(tok: string, label: string, console: string, loader?: 'ipxe' | 'grub'): BootEntry {
  return { kernel: '/images/vmlinuz', initrd: ['/images/initrd.gz'], cmdline: { console, quiet: true, 'bca.token': tok, 'bca.entry': label }, ...(loader ? { loader } : {}) };
}

/** How long GRUB took to read the kernel and initrd over TFTP, from the appliance's tftp lines. */
function tftpImageTimes(lines: Record<string, unknown>[]): string {
  return lines
    .filter((l) => typeof l.file === 'string' && /^images\//.test(l.file) && l.outcome === 'ok')
    .map(
      (l) =>
        `${String(l.file)}: ${String(l.bytes)} B in ${String(l.ms)} ms (blksize ${String((l.granted as Record<string, unknown> | undefined)?.blksize ?? (l.options as Record<string, unknown> | undefined)?.blksize ?? 512)})`,
    )
    .join('; ');
}

async function secureBootLab(
  t: ExecutionContext,
  loader: 'grub' | 'ipxe',
  extra: string[] = [],
): Promise<{ lab: Lab; ours: Awaited<ReturnType<typeof startOurs>>; mac: string; tok: string; guest: GuestAssets }> {
  const guest = await ensureGuestAssets((m) => t.log(m));
  const lab = await createLab();
  t.teardown(() => lab.destroy());
  const mac = randomMac();
  const tok = token();
  const ours = await startOurs(lab, guest, 'full', { default: entry(token(), 'default', 'ttyS0'), mac: { [mac]: entry(tok, 'mac', 'ttyS0', loader) } }, extra);
  t.teardown(() => ours.stop());
  return { lab, ours, mac, tok, guest };
}

maybe('Secure Boot: OVMF with Secure Boot enforced boots its mac/ config through shim → GRUB, and the kernel says Secure Boot is on (needs root)', async (t) => {
  t.timeout(480_000);
  const { lab, ours, mac, tok } = await secureBootLab(t, 'grub');
  const booted = await bootOnce({ lab, firmware: 'uefi-secboot', mac, name: 'secboot-grub', logs: ours.log });
  t.log(`uefi-secboot: booted in ${booted.seconds.toFixed(1)} s; ${tftpImageTimes(ours.app.lines)}`);
  const args = parseCmdline(booted.cmdline);
  t.is(args.get('bca.entry'), 'mac', booted.cmdline);
  t.is(args.get('bca.token'), tok, booted.cmdline);
  t.is(booted.mac, mac);
  t.is(SECUREBOOT_RE.exec(booted.console)?.[1], 'secureboot: Secure boot enabled', 'the kernel reports Secure Boot on');
  // The chain as the appliance saw it: shim, GRUB, the dispatcher, the hand-over, the kernel and initrd over TFTP.
  const files = ours.app.lines.filter((l) => l.msg && String(l.msg).startsWith('tftp ') && l.outcome === 'ok').map((l) => String(l.file));
  for (const f of ['shimx64.efi', 'grubx64.efi', 'images/vmlinuz', 'images/initrd.gz']) t.true(files.includes(f), `${f} sent over TFTP: ${files.join(', ')}`);
  // Debian's image tests for the per-platform path first (`[ -e … ]`, which TFTP cannot answer) and reads grub/grub.cfg.
  t.true(
    files.some((f) => /^grub\/(x86_64-efi\/)?grub\.cfg$/.test(f)),
    `the dispatcher was read: ${files.join(', ')}`,
  );
  t.true(
    files.some((f) => f.startsWith(`grub/boot.cfg?mac=${mac}`)),
    `the hand-over named the machine: ${files.join(', ')}`,
  );
  const reply = ours.app.lines.find((l) => l.mac === mac && String(l.msg).startsWith('DHCP ') && String(l.file) === 'shimx64.efi');
  t.truthy(reply, 'the DHCP reply handed out shim');
  const view = await machineView(lab, mac);
  t.log(`timeline: ${view.steps.join(' → ')} (${view.state})`);
  t.true(view.steps.includes('grub.config'));
  t.is(view.state, 'booted');
});

maybe('Secure Boot: the same machine told "loader": "ipxe" is refused by its firmware, and the appliance says the firmware never came back after the NBP (needs root)', async (t) => {
  t.timeout(420_000);
  const { lab, ours, mac } = await secureBootLab(t, 'ipxe', ['--stall-after', '5']);
  const tap = await lab.tap();
  const vm = await startVm({ ns: lab.srv, tap, firmware: 'uefi-secboot', mac, name: 'secboot-ipxe' });
  try {
    const denied = await vm.waitFor(/Access Denied/, BOOT_TIMEOUT_MS['uefi-secboot']);
    t.log(`console: ${denied[0]}; ${FIRMWARE_GAVE_UP.exec(vm.serial())?.[0] ?? ''}`);
  } finally {
    await vm.kill();
  }
  const deadline = Date.now() + 30_000;
  let stalled: Record<string, unknown> | undefined;
  while (!stalled && Date.now() < deadline) {
    stalled = ours.app.lines.find((l) => l.step === 'boot.stalled' && l.mac === mac);
    if (!stalled) await new Promise((r) => setTimeout(r, 500));
  }
  t.truthy(stalled, `no "boot stalled" line for ${mac}:\n${ours.log().split('\n').slice(-30).join('\n')}`);
  t.regex(String(stalled?.msg), /ipxe\.efi was sent, but the firmware never came back after the NBP.*Secure Boot.*"loader": "grub"/);
  const body = await lab.srv.exec('curl', ['-sS', '--max-time', '5', `http://${LAB.server}:${LAB.httpPort}/api/machines/${mac}`]);
  const machine = JSON.parse(body) as { state: string; reason: string };
  t.is(machine.state, 'stalled');
  t.regex(machine.reason, /never came back after the NBP/);
});

maybe('Secure Boot beside a site DHCP server: explain says what the site server must hand out, and with it the chain boots (needs root)', async (t) => {
  t.timeout(480_000);
  const guest = await ensureGuestAssets((m) => t.log(m));
  const lab = await createLab({ withSite: true });
  t.teardown(() => lab.destroy());
  const mac = randomMac();
  const tok = token();
  const ours = await startOurs(lab, guest, 'proxy', { default: entry(token(), 'default', 'ttyS0'), mac: { [mac]: entry(tok, 'mac', 'ttyS0', 'grub') } });
  t.teardown(() => ours.stop());
  const explained = JSON.parse(await lab.srv.exec('curl', ['-sS', '--max-time', '5', `http://${LAB.server}:${LAB.httpPort}/api/explain?mac=${mac}`])) as {
    dhcp: { firmware: string; reason: string; chain: string[] }[];
  };
  const x64 = explained.dhcp.find((d) => d.firmware === 'efi-x64');
  t.deepEqual(x64?.chain, ['shimx64.efi', 'grubx64.efi', 'grub/grub.cfg']);
  const advice = /dnsmasq dhcp-boot=(shimx64\.efi,,[0-9.]+)/.exec(x64?.reason ?? '');
  t.truthy(advice, x64?.reason);
  t.regex(x64?.reason ?? '', new RegExp(`must hand out next-server ${LAB.server.replaceAll('.', '\\.')}`));
  // The site's server, configured as explain says.
  const site = await startDnsmasq(lab.site!, { iface: 'eth0', range: LAB.range, extra: [`dhcp-boot=${advice![1]}`] });
  t.teardown(() => site.stop());
  const booted = await bootOnce({ lab, firmware: 'uefi-secboot', mac, name: 'secboot-proxy', logs: () => `${ours.log()}\n--- site dnsmasq ---\n${site.log()}` });
  t.log(`uefi-secboot beside dnsmasq: booted in ${booted.seconds.toFixed(1)} s`);
  t.is(parseCmdline(booted.cmdline).get('bca.token'), tok, booted.cmdline);
  t.is(SECUREBOOT_RE.exec(booted.console)?.[1], 'secureboot: Secure boot enabled');
  t.regex(site.log(), new RegExp(`DHCPACK\\(eth0\\) 10\\.77\\.0\\.\\d+ ${mac}`), 'the site server gave the address');
});

for (const mode of ['full', 'proxy'] as const) {
  maybe(`arm64: AAVMF boots GRUB and its config in ${mode} mode (needs root)`, async (t) => {
    t.timeout(600_000);
    const guest = await ensureGuestAssets((m) => t.log(m), 'arm64');
    const lab = await createLab({ withSite: mode === 'proxy' });
    t.teardown(() => lab.destroy());
    // Beside a site DHCP server that names no next-server: GRUB finds us only through its prefix.
    const site = mode === 'proxy' ? await startDnsmasq(lab.site!, { iface: 'eth0', range: LAB.range }) : undefined;
    if (site) t.teardown(() => site.stop());
    const mac = randomMac();
    const tok = token();
    const ours = await startOurs(lab, guest, mode, { default: entry(token(), 'default', 'ttyAMA0'), mac: { [mac]: entry(tok, 'mac', 'ttyAMA0') } });
    t.teardown(() => ours.stop());
    const logs = () => `${ours.log()}${site ? `\n--- site dnsmasq ---\n${site.log()}` : ''}`;
    const booted = await bootOnce({ lab, firmware: 'arm64', mac, name: `arm64-${mode}`, logs });
    t.log(`arm64 ${mode}: booted in ${booted.seconds.toFixed(1)} s; ${tftpImageTimes(ours.app.lines)}`);
    const args = parseCmdline(booted.cmdline);
    t.is(args.get('bca.entry'), 'mac', booted.cmdline);
    t.is(args.get('bca.token'), tok, booted.cmdline);
    t.is(booted.mac, mac);
    const view = await machineView(lab, mac);
    t.log(`timeline: ${view.steps.join(' → ')} (${view.state})`);
    t.true(view.steps.includes('grub.config'));
    t.is(view.state, 'booted');
  });
}
