/**
 * The harness itself, proven against software nobody here wrote: dnsmasq (DHCP + TFTP of
 * Debian's iPXE) and nginx boot the same guest the appliance scenarios boot. When these pass
 * and an appliance scenario fails, the fault is ours, not the firmware's, the guest's or the
 * namespace plumbing's.
 */
import test from 'ava';
import { isRoot } from '../helpers/netns.ts';
import { ensureGuestAssets } from './lib/assets.ts';
import { createLab } from './lib/lab.ts';
import type { Firmware } from './lib/qemu.ts';
import { startReference } from './lib/reference.ts';
import { bootOnce, GUEST_ARGS, parseCmdline, randomMac, token } from './lib/scenario.ts';

const maybe = isRoot ? test.serial : test.skip;

for (const firmware of ['bios', 'uefi'] as Firmware[]) {
  maybe(`reference: ${firmware} VM boots from dnsmasq + nginx (needs root)`, async (t) => {
    t.timeout(300_000);
    const guest = await ensureGuestAssets((m) => t.log(m));
    const lab = await createLab();
    t.teardown(() => lab.destroy());
    const tok = token();
    const mac = randomMac();
    const ref = await startReference(lab, guest, `${GUEST_ARGS} bca.token=${tok}`);
    t.teardown(() => ref.stop());
    const booted = await bootOnce({ lab, firmware, mac, name: `reference-${firmware}`, logs: ref.log });
    t.log(`${firmware}: booted in ${booted.seconds.toFixed(1)} s`);
    t.is(parseCmdline(booted.cmdline).get('bca.token'), tok);
    t.is(booted.mac, mac);
  });
}
