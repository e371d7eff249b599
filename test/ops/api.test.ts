import test from 'ava';
import { steps } from '../helpers/steps.ts';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Mac } from '../../src/net/mac.ts';
import type { MachineJson } from '../../src/http/api.ts';
import { startOpsServer, type OpsServer } from './lib.ts';

const MAC = '52:54:00:aa:bb:01' as Mac;
const BOOT = JSON.stringify({ kernel: '/images/vmlinuz', initrd: ['/images/initrd.img'], cmdline: { console: 'ttyS0' } });

async function withServer(t: { teardown(fn: () => Promise<void>): void }): Promise<OpsServer> {
  const server = await startOpsServer({ 'boot/default.json': BOOT });
  t.teardown(() => server.stop());
  const images = server.ctx.config.imagesPath;
  await mkdir(images, { recursive: true });
  await writeFile(path.join(images, 'vmlinuz'), Buffer.alloc(4096, 1));
  await writeFile(path.join(images, 'initrd.img'), Buffer.alloc(8192, 2));
  return server;
}

async function get(url: string): Promise<{ status: number; text: string; type: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') ?? '' };
}

/** DHCP and TFTP steps as those services record them; the HTTP steps come from real requests. */
async function bootOverHttp(server: OpsServer): Promise<void> {
  const { timeline } = server.ctx;
  timeline.record(steps.dhcpRequest({ mac: MAC }, { arch: 'bios' }));
  timeline.record(steps.dhcpReply({ mac: MAC, ip: '127.0.0.1' }, 'undionly.kpxe'));
  timeline.record(steps.tftpStart({ ip: '127.0.0.1' }, 'undionly.kpxe'));
  timeline.record(steps.tftpEnd({ ip: '127.0.0.1' }, 'undionly.kpxe'));
  for (const p of ['/boot.ipxe', `/ipxe?mac=${MAC.replaceAll(':', '-')}&uuid=`, '/images/vmlinuz', '/images/initrd.img']) {
    const res = await get(server.url + p);
    if (res.status !== 200) throw new Error(`${p}: ${res.status} ${res.text}`);
  }
}

test('/api/machines/:mac returns every step of a boot, in any MAC form', async (t) => {
  const server = await withServer(t);
  await bootOverHttp(server);
  for (const form of [MAC, '52-54-00-AA-BB-01', '5254.00aa.bb01', '525400aabb01']) {
    const res = await get(`${server.url}/api/machines/${form}`);
    t.is(res.status, 200, form);
    t.regex(res.type, /application\/json/);
    const m = JSON.parse(res.text) as MachineJson;
    t.is(m.mac, MAC);
    t.deepEqual(
      m.events.map((e) => e.step),
      ['dhcp.request', 'dhcp.reply', 'tftp.start', 'tftp.end', 'http.boot-script', 'http.ipxe', 'http.image', 'http.image'],
    );
    t.is(m.state, 'booted');
    t.is(m.ip, '127.0.0.1');
  }
});

test('/api/machines lists machines with their last step and verdict; ?state filters', async (t) => {
  const server = await withServer(t);
  await bootOverHttp(server);
  // A second machine answered by DHCP five minutes ago and never seen again: stalled.
  server.setClockOffset(-5 * 60_000);
  server.ctx.timeline.record(steps.dhcpRequest({ mac: '52:54:00:aa:bb:02' as Mac }));
  server.ctx.timeline.record(steps.dhcpReply({ mac: '52:54:00:aa:bb:02' as Mac }, 'ipxe.efi'));
  server.setClockOffset(0);
  const list = JSON.parse((await get(`${server.url}/api/machines`)).text) as { machines: { mac: string; state: string; lastStep: string; reason: string }[]; stallAfterSeconds: number };
  t.is(list.stallAfterSeconds, 60);
  t.deepEqual(
    list.machines.map((m) => [m.mac, m.state, m.lastStep]),
    [
      ['52:54:00:aa:bb:02', 'stalled', 'dhcp.reply'],
      [MAC, 'booted', 'http.image'],
    ],
  );
  t.regex(list.machines[0]!.reason, /DHCP answered with ipxe\.efi, but no TFTP or HTTP request followed/);
  const stalled = JSON.parse((await get(`${server.url}/api/machines?state=stalled`)).text) as { machines: { mac: string }[] };
  t.deepEqual(
    stalled.machines.map((m) => m.mac),
    ['52:54:00:aa:bb:02'],
  );
  t.is((await get(`${server.url}/api/machines?state=bogus`)).status, 400);
});

test('/api/machines/:mac is 404 for an unknown machine and 400 for a non-MAC', async (t) => {
  const server = await withServer(t);
  const unknown = await get(`${server.url}/api/machines/52:54:00:00:00:09`);
  t.is(unknown.status, 404);
  t.regex(unknown.text, /no boot steps recorded for 52:54:00:00:00:09/);
  const bad = await get(`${server.url}/api/machines/not-a-mac`);
  t.is(bad.status, 400);
  t.regex(bad.text, /not a MAC address/);
});

test('/metrics counts the boot once, and the HTTP requests by route and status', async (t) => {
  const server = await withServer(t);
  await bootOverHttp(server);
  // Fetching the kernel again is not a second boot.
  await get(`${server.url}/images/vmlinuz`);
  const res = await get(`${server.url}/metrics`);
  t.is(res.status, 200);
  t.regex(res.type, /text\/plain/);
  t.regex(res.text, /^bootcfg_boots_completed_total 1$/m);
  t.regex(res.text, /^bootcfg_http_requests_total\{route="ipxe",status="200"\} 1$/m);
  t.regex(res.text, /^bootcfg_http_requests_total\{route="images",status="200"\} 3$/m);
  // Every counter is exported, even before it is first incremented.
  for (const name of ['dhcp_requests', 'dhcp_replies', 'dhcp_ignored', 'malformed_packets', 'tftp_transfers', 'tftp_bytes', 'tftp_retransmissions', 'store_reloads', 'store_errors']) {
    t.regex(res.text, new RegExp(`^# TYPE bootcfg_${name}_total counter$`, 'm'), name);
  }
  t.regex(res.text, /^process_cpu_seconds_total /m);
});

test('a boot that never fetched its initrd is not counted and shows what is missing', async (t) => {
  const server = await withServer(t);
  await get(`${server.url}/ipxe?mac=${MAC}`);
  await get(`${server.url}/images/vmlinuz`);
  const m = JSON.parse((await get(`${server.url}/api/machines/${MAC}`)).text) as MachineJson;
  t.is(m.state, 'booting');
  t.deepEqual(m.missingFiles, ['/images/initrd.img']);
  t.regex((await get(`${server.url}/metrics`)).text, /^bootcfg_boots_completed_total 0$/m);
});
