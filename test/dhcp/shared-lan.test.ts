/**
 * ProxyDHCP on a shared LAN answers only machines it has a config for: with a default config
 * every PXE client gets an offer; without one, a machine with its own mac/ file does and every
 * other machine is left alone, with "left alone: no config" in the log. Real sockets, in
 * namespaces this test builds.
 */
import test from 'ava';
import { rm, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MessageType } from '../../src/dhcp/options.ts';
import { isRoot } from '../helpers/netns.ts';
import { createLan, runPxeClient, startOnLan, testMac } from './scripted.ts';

const maybe = isRoot ? test.serial : test.skip;

maybe('ProxyDHCP with and without a default config: only machines with a config are answered (needs root)', async (t) => {
  t.timeout(90_000);
  const lan = await createLan({ clients: 1 });
  t.teardown(() => lan.destroy());
  const app = await startOnLan(lan.srv);
  t.teardown(() => app.stop());
  const client = lan.clients[0]!;
  const discover = (mac: string, xid: number) => runPxeClient(client, { kind: 'bios', mac, xid, type: MessageType.DISCOVER, iface: 'eth0', waitMs: 2500, maxReplies: 1 });

  const anyone = testMac();
  t.is((await discover(anyone, 0x5100)).length, 1, 'with boot/default: answered');

  const known = testMac();
  await mkdir(path.join(app.dataDir, 'boot', 'mac'), { recursive: true });
  await writeFile(path.join(app.dataDir, 'boot', 'mac', `${known}.json`), JSON.stringify({ kernel: '/images/k' }));
  await rm(path.join(app.dataDir, 'boot', 'default.json'));
  await app.waitForLog((l) => String(l.msg).startsWith('config removed') || (l.key === 'default' && /removed/.test(String(l.msg))), 10_000).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 1500));

  const stranger = testMac();
  t.is((await discover(stranger, 0x5101)).length, 0, 'without boot/default: a machine with no config is left alone');
  const line = await app.waitForLog((l) => l.mac === stranger && l.reason === 'no-config');
  t.regex(String(line.detail ?? line.msg), /left alone: no config/);
  t.is((await discover(known, 0x5102)).length, 1, 'its own mac/ file: answered');
});
