/**
 * Real firmware against the appliance as the only DHCP server on its segment (--dhcp full):
 * - BIOS: SeaBIOS + iPXE ROM → DHCP (iPXE) → /boot.ipxe → /ipxe → kernel + initrd over HTTP,
 *   with --ipv6-ra-quench (iPXE's IPv6 autoconf answered by our RA of router lifetime 0).
 * - UEFI: OVMF native PXE → DHCP (arch 7) → TFTP ipxe.efi → iPXE → DHCP → HTTP.
 * - Machine-specific: two VMs with different MACs get their own mac/ entries; a VM with a
 *   known SMBIOS UUID gets its uuid/ entry, ahead of a mac/ entry for its MAC.
 * Each boot asserts, on the guest's serial console, a random token only the FileStore carried,
 * and the VM's MAC.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { isRoot } from '../helpers/netns.ts';
import { ensureGuestAssets } from './lib/assets.ts';
import { createLab } from './lib/lab.ts';
import type { Firmware } from './lib/qemu.ts';
import { bootOnce, guestConfig, machineView, parseCmdline, randomMac, startOurs, token } from './lib/scenario.ts';

const maybe = isRoot ? test.serial : test.skip;

for (const firmware of ['bios', 'uefi'] as Firmware[]) {
  maybe(`full DHCP: ${firmware} VM boots the FileStore's default entry (needs root)`, async (t) => {
    t.timeout(firmware === 'uefi' ? 480_000 : 360_000);
    const guest = await ensureGuestAssets((m) => t.log(m));
    const lab = await createLab();
    t.teardown(() => lab.destroy());
    const tok = token();
    // BIOS also runs with --ipv6-ra-quench (one scenario only): iPXE's IPv6 wait ends at our RA.
    const ours = await startOurs(lab, guest, 'full', { default: guestConfig(tok) }, firmware === 'bios' ? ['--ipv6-ra-quench'] : []);
    t.teardown(() => ours.stop());
    const mac = randomMac();
    const booted = await bootOnce({ lab, firmware, mac, name: `full-${firmware}`, logs: ours.log });
    t.log(`${firmware}: booted in ${booted.seconds.toFixed(1)} s`);
    const args = parseCmdline(booted.cmdline);
    t.is(args.get('bca.token'), tok, booted.cmdline);
    t.is(booted.mac, mac);
    // The operator's view of the same boot: every protocol step recorded under this MAC.
    const view = await machineView(lab, mac);
    t.log(`timeline: ${view.steps.join(' → ')} (${view.state})`);
    const expected = firmware === 'uefi' ? ['dhcp.reply', 'tftp.end', 'http.boot-script', 'http.ipxe', 'http.image'] : ['dhcp.reply', 'http.boot-script', 'http.ipxe', 'http.image'];
    for (const step of expected) t.true(view.steps.includes(step), `${step} not in the timeline of ${mac}: ${view.steps.join(', ')}`);
    t.is(view.state, 'booted');
    if (firmware === 'bios') {
      const adverts = ours.app.lines.filter((l) => l.step === 'ipv6.router-advert');
      // iPXE sends its first router solicitation as "Configuring" starts; it must have been answered.
      t.true(
        adverts.some((l) => l.trigger === 'solicitation'),
        `iPXE's router solicitation was answered: ${JSON.stringify(adverts)}`,
      );
      t.log(`RAs sent: ${adverts.map((l) => String(l.trigger)).join(', ')}; solicitations: ${ours.app.lines.filter((l) => l.step === 'ipv6.router-solicitation').length}`);
    }
  });
}

maybe('full DHCP: machine-specific mac/ and uuid/ entries reach the right VMs (needs root)', async (t) => {
  t.timeout(480_000);
  const guest = await ensureGuestAssets((m) => t.log(m));
  const lab = await createLab();
  t.teardown(() => lab.destroy());
  const macA = randomMac();
  const macB = randomMac();
  const macC = randomMac();
  const uuidC = randomUUID();
  const tok = { default: token(), a: token(), b: token(), cMac: token(), cUuid: token() };
  const ours = await startOurs(lab, guest, 'full', {
    default: guestConfig(tok.default, 'default'),
    // Different MAC spellings on disk: the store keys them by their canonical form.
    mac: {
      [macA]: guestConfig(tok.a, 'mac-a'),
      [macB.replaceAll(':', '-').toUpperCase()]: guestConfig(tok.b, 'mac-b'),
      [macC]: guestConfig(tok.cMac, 'mac-c'),
    },
    uuid: { [uuidC]: guestConfig(tok.cUuid, 'uuid-c') },
  });
  t.teardown(() => ours.stop());

  // At most two VMs run at once (VM slots); C waits for one of A and B.
  const [a, b, c] = await Promise.all([
    bootOnce({ lab, firmware: 'bios', mac: macA, name: 'machine-a', logs: ours.log }),
    bootOnce({ lab, firmware: 'bios', mac: macB, name: 'machine-b', logs: ours.log }),
    bootOnce({ lab, firmware: 'bios', mac: macC, uuid: uuidC, name: 'machine-c-uuid', logs: ours.log }),
  ]);
  for (const [who, booted, mac, expected, entry] of [
    ['A', a, macA, tok.a, 'mac-a'],
    ['B', b, macB, tok.b, 'mac-b'],
    ['C', c, macC, tok.cUuid, 'uuid-c'],
  ] as const) {
    const args = parseCmdline(booted.cmdline);
    t.is(args.get('bca.entry'), entry, `${who}: ${booted.cmdline}`);
    t.is(args.get('bca.token'), expected, `${who}: ${booted.cmdline}`);
    t.is(booted.mac, mac, `${who}`);
  }
});
