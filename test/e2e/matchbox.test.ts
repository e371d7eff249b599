/**
 * A matchbox data directory served as is: a BIOS VM (SeaBIOS + iPXE) whose MAC a group selects
 * boots that group's profile, its kernel args templated with the group's metadata (a token
 * only the metadata carries), through the appliance as the segment's DHCP server.
 */
import test from 'ava';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAppliance } from '../helpers/appliance.ts';
import { isRoot } from '../helpers/netns.ts';
import { ensureGuestAssets } from './lib/assets.ts';
import { createLab } from './lib/lab.ts';
import { applianceArgs, bootOnce, parseCmdline, randomMac, token } from './lib/scenario.ts';

const maybe = isRoot ? test.serial : test.skip;

maybe('matchbox layout: a VM boots its group’s profile, the kernel args templated with the group’s metadata (needs root)', async (t) => {
  t.timeout(420_000);
  const guest = await ensureGuestAssets((m) => t.log(m));
  const root = mkdtempSync(path.join(tmpdir(), 'bca-mbx-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const data = path.join(root, 'data');
  const images = path.join(root, 'images');
  for (const d of ['profiles', 'groups']) mkdirSync(path.join(data, d), { recursive: true });
  mkdirSync(images);
  copyFileSync(guest.kernel, path.join(images, 'vmlinuz'));
  copyFileSync(guest.initrd, path.join(images, 'initrd.gz'));
  const mac = randomMac();
  const tok = token();
  writeFileSync(
    path.join(data, 'profiles', 'guest.json'),
    JSON.stringify({
      id: 'guest',
      name: 'test guest',
      boot: { kernel: '/images/vmlinuz', initrd: ['/images/initrd.gz'], args: ['console=ttyS0', 'quiet', 'edd=off', 'bca.token={{.token}}', 'bca.entry={{.name}}'] },
    }),
  );
  // The MAC in another spelling than the VM's: selectors are normalised.
  writeFileSync(
    path.join(data, 'groups', 'node1.json'),
    JSON.stringify({ id: 'node1', profile: 'guest', selector: { mac: mac.replaceAll(':', '-').toUpperCase() }, metadata: { token: tok, name: 'node1' } }),
  );
  writeFileSync(path.join(data, 'groups', 'default.json'), JSON.stringify({ id: 'default', profile: 'guest', metadata: { token: 'wrong', name: 'default' } }));
  const lab = await createLab();
  t.teardown(() => lab.destroy());
  const app = await startAppliance(applianceArgs('full', data, images), { ns: lab.srv, readyTimeoutMs: 30_000 });
  t.teardown(() => app.stop());
  const booted = await bootOnce({ lab, firmware: 'bios', mac, name: 'matchbox-node1', logs: () => app.lines.map((l) => JSON.stringify(l)).join('\n') });
  t.log(`booted in ${booted.seconds.toFixed(1)} s: ${booted.cmdline}`);
  const args = parseCmdline(booted.cmdline);
  t.is(args.get('bca.token'), tok);
  t.is(args.get('bca.entry'), 'node1');
  t.is(booted.mac, mac);
});
