/**
 * The operator's view of a real firmware boot (needs root): OVMF native PXE behind a site
 * dnsmasq, the appliance in ProxyDHCP mode (offer on 67, 4011, TFTP ipxe.efi with OVMF's size
 * probe, iPXE, HTTP). Whatever real firmware does on the way, the timeline must end "booted"
 * with every step on the VM's MAC, and the boot must be counted once.
 */
import test from 'ava';
import { isRoot } from '../helpers/netns.ts';
import { ensureGuestAssets } from '../e2e/lib/assets.ts';
import { createLab, LAB } from '../e2e/lib/lab.ts';
import { startDnsmasq } from '../e2e/lib/peers.ts';
import { bootOnce, guestConfig, randomMac, startOurs, token } from '../e2e/lib/scenario.ts';
import type { MachineJson } from '../../src/http/api.ts';

const maybe = isRoot ? test.serial : test.skip;

maybe('a real UEFI PXE boot through ProxyDHCP ends "booted" in the timeline with every step on its MAC (needs root)', async (t) => {
  t.timeout(420_000);
  const guest = await ensureGuestAssets((m) => t.log(m));
  const lab = await createLab({ withSite: true });
  t.teardown(() => lab.destroy());
  const site = await startDnsmasq(lab.site!, { iface: 'eth0', range: LAB.range });
  const ours = await startOurs(lab, guest, 'proxy', { default: guestConfig(token()) });
  t.teardown(() => ours.stop());
  const mac = randomMac();
  const booted = await bootOnce({ lab, firmware: 'uefi', mac, name: 'ops-uefi', logs: () => `${ours.log()}\n--- site dnsmasq ---\n${site.log()}` });
  t.is(booted.mac, mac);

  const base = `http://${LAB.server}:${LAB.httpPort}`;
  const m = JSON.parse(await lab.srv.exec('curl', ['-sS', '--fail', `${base}/api/machines/${mac}`])) as MachineJson;
  const steps = m.events.map((e) => e.step);
  t.log(steps.join(' → '));
  const wanted = ['dhcp.request', 'dhcp.reply', 'pxe.request', 'pxe.reply', 'tftp.start', 'tftp.end', 'dhcp.request', 'dhcp.reply', 'http.boot-script', 'http.ipxe', 'http.image', 'http.image'];
  let at = 0;
  for (const step of steps) if (step === wanted[at]) at++;
  t.is(at, wanted.length, `every step in order; got ${steps.join(', ')}`);
  t.is(m.state, 'booted', m.reason);
  t.true(m.events.some((e) => e.step === 'tftp.end' && e.detail.file === 'ipxe.efi' && e.detail.outcome === 'ok'));

  const metrics = await lab.srv.exec('curl', ['-sS', '--fail', `${base}/metrics`]);
  t.regex(metrics, /^bootcfg_boots_completed_total 1$/m);
  t.regex(metrics, /^bootcfg_boots_stalled_total 0$/m);
});
