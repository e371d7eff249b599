/**
 * The operator's view of one whole boot, end to end in namespaces (needs root): a scripted
 * BIOS PXE client gets an address and undionly.kpxe from full DHCP, fetches it with the
 * tftp-hpa client, asks DHCP again as iPXE, then curl fetches /boot.ipxe, /ipxe, the kernel
 * and the initrd from the client's address. Every step must then be in /api/machines/:mac,
 * on the machines page in Chromium, and in /metrics.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRoot, type Namespace } from '../helpers/netns.ts';
import { PROJECT_ROOT, startAppliance } from '../helpers/appliance.ts';
import { createLan, LAN, runPxeClient, testMac } from '../dhcp/scripted.ts';
import { MessageType } from '../../src/dhcp/options.ts';
import type { MachineJson } from '../../src/http/api.ts';
import type { PageProbe } from './page-probe.ts';

const maybe = isRoot ? test.serial : test.skip;
const PROBE = fileURLToPath(new URL('./page-probe.ts', import.meta.url));
const BASE = `http://${LAN.server}:8080`;

/** `name{labels} value` lines of the Prometheus text, summed over the series matching every given label. */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

interface Lab {
  client: Namespace;
  dir: string;
}

/** A LAN with one client namespace and the appliance in `mode`, serving a default config with a kernel and an initrd. */
async function lab(t: ExecutionContext, modeArgs: string[]): Promise<Lab> {
  const lan = await createLan({ clients: 1 });
  t.teardown(() => lan.destroy());
  const client = lan.clients[0]!;

  const dir = await mkdtemp(path.join(tmpdir(), 'bca-flow-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const data = path.join(dir, 'data');
  const images = path.join(dir, 'images');
  await mkdir(path.join(data, 'boot'), { recursive: true });
  await mkdir(images, { recursive: true });
  await writeFile(path.join(data, 'boot', 'default.json'), JSON.stringify({ kernel: '/images/vmlinuz', initrd: ['/images/initrd.img'], cmdline: 'console=ttyS0' }));
  await writeFile(path.join(images, 'vmlinuz'), Buffer.alloc(300_000, 7));
  await writeFile(path.join(images, 'initrd.img'), Buffer.alloc(500_000, 9));

  // prettier-ignore
  const app = await startAppliance(
    [
      '--iface',
      'eth0',
      '--address',
      `${LAN.server}:8080`,
      ...modeArgs,
      '--tftp-address',
      `${LAN.server}:69`,
      '--data-path',
      data,
      '--images-path',
      images,
      '--firmware-path',
      path.join(PROJECT_ROOT, 'firmware'),
    ],
    { ns: lan.srv, readyTimeoutMs: 90_000 },
  );
  t.teardown(() => app.stop());
  return { client, dir };
}

/** iPXE's HTTP half, from the client's address, as iPXE fetches it. */
async function httpChain(t: ExecutionContext, client: Namespace, mac: string): Promise<void> {
  const curl = (url: string) => client.exec('curl', ['-sS', '--fail', '--max-time', '20', '-o', '/dev/null', '-w', '%{http_code}', url]);
  t.is(await curl(`${BASE}/boot.ipxe`), '200');
  t.is(await curl(`${BASE}/ipxe?uuid=&mac=${mac.replaceAll(':', '-')}&domain=&hostname=&serial=`), '200');
  t.is(await curl(`${BASE}/images/vmlinuz`), '200');
  t.is(await curl(`${BASE}/images/initrd.img`), '200');
}

async function machine(client: Namespace, mac: string): Promise<MachineJson> {
  return JSON.parse(await client.exec('curl', ['-sS', '--fail', `${BASE}/api/machines/${mac.toUpperCase().replaceAll(':', '')}`])) as MachineJson;
}

/** Whether `wanted` occurs in `steps` in order (other steps may come between). */
function inOrder(steps: string[], wanted: string[]): boolean {
  let at = 0;
  for (const step of steps) if (step === wanted[at]) at++;
  return at === wanted.length;
}

maybe('a DHCP → TFTP → HTTP boot shows every step in /api/machines/:mac, on the page and in /metrics (needs root)', async (t) => {
  t.timeout(240_000);
  const { client, dir } = await lab(t, ['--dhcp', 'full', '--dhcp-range', `${LAN.prefix}.100,${LAN.prefix}.120`]);
  const mac = testMac();

  // 1. PXE ROM: DISCOVER → OFFER (undionly.kpxe), REQUEST → ACK.
  const offer = (await runPxeClient(client, { kind: 'bios', mac, xid: 0x0b5e0001, type: MessageType.DISCOVER, iface: 'eth0', maxReplies: 1 }))[0];
  t.truthy(offer, 'an OFFER');
  const ip = offer!.packet.yiaddr;
  t.is(offer!.packet.file, 'undionly.kpxe');
  const ack = await runPxeClient(client, { kind: 'bios', mac, xid: 0x0b5e0001, type: MessageType.REQUEST, serverId: LAN.server, requestedIp: ip, iface: 'eth0', maxReplies: 1 });
  t.is(ack[0]?.packet.options.messageType(), MessageType.ACK);
  await client.ip('addr', 'add', `${ip}/${LAN.cidr}`, 'dev', 'eth0');

  // 2. The firmware over TFTP, with a real client.
  const kpxe = path.join(dir, 'undionly.kpxe');
  await client.exec('tftp', ['-m', 'binary', LAN.server, '-c', 'get', 'undionly.kpxe', kpxe]);
  t.deepEqual(await readFile(kpxe), await readFile(path.join(PROJECT_ROOT, 'firmware', 'undionly.kpxe')));

  // 3. iPXE asks DHCP again and is sent to /boot.ipxe.
  const ipxeOffer = (await runPxeClient(client, { kind: 'ipxe-bios', mac, xid: 0x0b5e0002, type: MessageType.DISCOVER, iface: 'eth0', maxReplies: 1 }))[0];
  t.is(ipxeOffer?.packet.options.bootfileName(), `${BASE}/boot.ipxe`);

  // 4. The HTTP half, from the client's address, as iPXE would fetch it.
  await httpChain(t, client, mac);

  // /api/machines/:mac has every step, in order, and calls the boot complete.
  const m = await machine(client, mac);
  const steps = m.events.map((e) => e.step);
  t.log(steps.join(' → '));
  const wanted = ['dhcp.request', 'dhcp.reply', 'tftp.start', 'tftp.end', 'dhcp.request', 'dhcp.reply', 'http.boot-script', 'http.ipxe', 'http.image', 'http.image'];
  t.true(inOrder(steps, wanted), `every step in order; got ${steps.join(', ')}`);
  t.is(m.ip, ip);
  t.is(m.state, 'booted', m.reason);
  const tftpEnd = m.events.find((e) => e.step === 'tftp.end');
  t.is(tftpEnd?.detail.outcome, 'ok');
  t.is(tftpEnd?.detail.file, 'undionly.kpxe');

  // The machines page, in Chromium inside the client's namespace (the only place the appliance is reachable).
  const probeOut = await client.exec(process.execPath, ['--import', 'tsx', PROBE, BASE, mac]);
  const page = JSON.parse(probeOut.trim().split('\n').at(-1)!) as PageProbe;
  t.deepEqual(page.errors, []);
  t.deepEqual(
    page.rows.find((r) => r.mac === mac),
    { mac, state: 'booted', lastStep: 'http.image' },
  );
  t.is(page.timelineMac, mac);
  t.deepEqual(page.steps, steps);
  t.is(page.screenshotWidth, 1280);
  t.true(page.bootedBadgePixels > 100, `booted badge pixels in the screenshot: ${page.bootedBadgePixels}`);

  // /metrics counts each protocol step.
  const metrics = await client.exec('curl', ['-sS', '--fail', `${BASE}/metrics`]);
  t.is(metric(metrics, 'bootcfg_dhcp_requests_total', { type: 'DISCOVER', mode: 'full', arch: 'bios' }), 2);
  t.is(metric(metrics, 'bootcfg_dhcp_requests_total', { type: 'REQUEST', mode: 'full' }), 1);
  t.is(metric(metrics, 'bootcfg_dhcp_replies_total', { type: 'OFFER', mode: 'full' }), 2);
  t.is(metric(metrics, 'bootcfg_dhcp_replies_total', { type: 'ACK', mode: 'full' }), 1);
  t.is(metric(metrics, 'bootcfg_tftp_transfers_total', { outcome: 'ok' }), 1);
  t.is(metric(metrics, 'bootcfg_tftp_bytes_total'), (await stat(kpxe)).size);
  t.is(metric(metrics, 'bootcfg_http_requests_total', { route: 'boot.ipxe', status: '200' }), 1);
  t.is(metric(metrics, 'bootcfg_http_requests_total', { route: 'ipxe', status: '200' }), 1);
  t.is(metric(metrics, 'bootcfg_http_requests_total', { route: 'images', status: '200' }), 2);
  t.is(metric(metrics, 'bootcfg_boots_completed_total'), 1);
  t.is(metric(metrics, 'bootcfg_malformed_packets_total'), 0);
});

maybe('ProxyDHCP: the TFTP and HTTP steps of a BIOS client land on its MAC via the address it requests from the site server (needs root)', async (t) => {
  t.timeout(240_000);
  const { client, dir } = await lab(t, ['--dhcp', 'proxy']);
  const mac = testMac();
  const ip = `${LAN.prefix}.150`;

  const offer = (await runPxeClient(client, { kind: 'bios', mac, xid: 0x0b5e1001, type: MessageType.DISCOVER, iface: 'eth0', maxReplies: 1 }))[0];
  t.is(offer?.packet.file, 'undionly.kpxe');
  t.is(offer?.packet.yiaddr, '0.0.0.0');
  // The REQUEST goes to the site's server (which this LAN does not have); the proxy stays silent but learns the address.
  const none = await runPxeClient(client, { kind: 'bios', mac, xid: 0x0b5e1001, type: MessageType.REQUEST, serverId: LAN.site, requestedIp: ip, iface: 'eth0', waitMs: 800 });
  t.deepEqual(none, []);
  await client.ip('addr', 'add', `${ip}/${LAN.cidr}`, 'dev', 'eth0');
  await client.exec('tftp', ['-m', 'binary', LAN.server, '-c', 'get', 'undionly.kpxe', path.join(dir, 'undionly.kpxe')]);
  const ipxeOffer = (await runPxeClient(client, { kind: 'ipxe-bios', mac, xid: 0x0b5e1002, type: MessageType.DISCOVER, iface: 'eth0', maxReplies: 1 }))[0];
  t.is(ipxeOffer?.packet.options.bootfileName(), `${BASE}/boot.ipxe`);
  await httpChain(t, client, mac);

  const m = await machine(client, mac);
  const steps = m.events.map((e) => e.step);
  t.log(steps.join(' → '));
  t.true(
    inOrder(steps, ['dhcp.request', 'dhcp.reply', 'dhcp.request', 'tftp.start', 'tftp.end', 'dhcp.request', 'dhcp.reply', 'http.boot-script', 'http.ipxe', 'http.image', 'http.image']),
    steps.join(', '),
  );
  t.is(m.ip, ip);
  t.is(m.state, 'booted', m.reason);
  const metrics = await client.exec('curl', ['-sS', '--fail', `${BASE}/metrics`]);
  t.is(metric(metrics, 'bootcfg_dhcp_replies_total', { type: 'OFFER', mode: 'proxy' }), 2);
  t.is(metric(metrics, 'bootcfg_tftp_transfers_total', { outcome: 'ok' }), 1);
  t.is(metric(metrics, 'bootcfg_boots_completed_total'), 1);
});
