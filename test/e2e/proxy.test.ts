/**
 * Real firmware against the appliance in ProxyDHCP mode beside the site's own DHCP server: a
 * PXE-unaware dnsmasq (Debian's dnsmasq-base) in a second namespace hands out the addresses,
 * the appliance adds only the boot information (and answers OVMF's request on 4011).
 * - BIOS: SeaBIOS + iPXE ROM → proxy offer → /boot.ipxe → /ipxe → HTTP.
 * - UEFI: OVMF native PXE → proxy offer + 4011 → TFTP ipxe.efi → iPXE → HTTP.
 */
import test from 'ava';
import { isRoot } from '../helpers/netns.ts';
import { ensureGuestAssets } from './lib/assets.ts';
import { createLab, LAB } from './lib/lab.ts';
import { startDnsmasq } from './lib/peers.ts';
import type { Firmware } from './lib/qemu.ts';
import { bootOnce, guestConfig, machineView, parseCmdline, randomMac, startOurs, token } from './lib/scenario.ts';

const maybe = isRoot ? test.serial : test.skip;

for (const firmware of ['bios', 'uefi'] as Firmware[]) {
  maybe(`proxy DHCP beside dnsmasq: ${firmware} VM boots the FileStore's mac/ entry (needs root)`, async (t) => {
    t.timeout(firmware === 'uefi' ? 480_000 : 360_000);
    const guest = await ensureGuestAssets((m) => t.log(m));
    const lab = await createLab({ withSite: true });
    t.teardown(() => lab.destroy());
    const site = await startDnsmasq(lab.site!, { iface: 'eth0', range: LAB.range });
    t.teardown(() => site.stop());
    const mac = randomMac();
    const tok = token();
    const ours = await startOurs(lab, guest, 'proxy', {
      default: guestConfig(token(), 'default'),
      mac: { [mac]: guestConfig(tok, 'mac') },
    });
    t.teardown(() => ours.stop());
    const logs = () => `${ours.log()}\n--- site dnsmasq ---\n${site.log()}`;
    const booted = await bootOnce({ lab, firmware, mac, name: `proxy-${firmware}`, logs });
    t.log(`${firmware}: booted in ${booted.seconds.toFixed(1)} s`);
    const args = parseCmdline(booted.cmdline);
    t.is(args.get('bca.entry'), 'mac', booted.cmdline);
    t.is(args.get('bca.token'), tok, booted.cmdline);
    t.is(booted.mac, mac);
    // The site's server, not the appliance, gave the address.
    t.regex(site.log(), new RegExp(`DHCPACK\\(eth0\\) 10\\.77\\.0\\.\\d+ ${mac}`));
    // The operator's view: UEFI went through the 4011 boot server and our TFTP before iPXE's HTTP.
    const view = await machineView(lab, mac);
    t.log(`timeline: ${view.steps.join(' → ')} (${view.state})`);
    const expected = firmware === 'uefi' ? ['dhcp.reply', 'pxe.reply', 'tftp.end', 'http.ipxe', 'http.image'] : ['dhcp.reply', 'http.ipxe', 'http.image'];
    for (const step of expected) t.true(view.steps.includes(step), `${step} not in the timeline of ${mac}: ${view.steps.join(', ')}`);
    t.is(view.state, 'booted');
  });
}
