/**
 * --ipv6-ra-quench without sockets: when RAs go out (solicitations, iPXE DISCOVERs), how
 * often, what the config accepts, and that a real DhcpServer's iPXE DISCOVER triggers one.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createRaQuenchService, SERVICE_FACTORIES, type ApplianceParts } from '../../src/appliance.ts';
import { readServeOptions } from '../../src/cli.ts';
import { ConfigError, resolveConfig, type RawOptions } from '../../src/config.ts';
import { MessageType } from '../../src/dhcp/options.ts';
import { ipxeDiscovers } from '../../src/events/ipxe-discovers.ts';
import { BootTimeline } from '../../src/events/timeline.ts';
import { Metrics } from '../../src/metrics.ts';
import { parseRouterAdvertisement } from '../../src/net/icmpv6.ts';
import type { Mac } from '../../src/net/mac.ts';
import { RaQuenchService, type RaSocket } from '../../src/net/ra-quench.ts';
import { RawIcmpv6Error } from '../../src/net/router-advert.ts';
import { request } from '../dhcp/fixtures.ts';
import { fullHarness } from '../dhcp/full-harness.ts';

const env = { lookupInterface: () => ({ address: '10.9.0.1', netmask: '255.255.255.0' }), isTty: false };
const FULL: RawOptions = { iface: 'br0', dhcp: 'full', 'dhcp-range': '10.9.0.100,10.9.0.200' };

test('config: --ipv6-ra-quench is off by default and on with 1 or true in full mode', (t) => {
  t.false(resolveConfig(FULL, env).ipv6RaQuench);
  t.true(resolveConfig({ ...FULL, 'ipv6-ra-quench': 'true' }, env).ipv6RaQuench);
  t.true(resolveConfig({ ...FULL, 'ipv6-ra-quench': '1' }, env).ipv6RaQuench);
  t.false(resolveConfig({ ...FULL, 'ipv6-ra-quench': '0' }, env).ipv6RaQuench);
  t.false(resolveConfig({ iface: 'br0', 'ipv6-ra-quench': 'false' }, env).ipv6RaQuench);
});

const refused: [string, RawOptions, RegExp][] = [
  ['proxy mode', { iface: 'br0', dhcp: 'proxy', 'ipv6-ra-quench': 'true' }, /--ipv6-ra-quench: only with --dhcp full \(this is --dhcp proxy\).*not ours to send/],
  ['default (proxy) mode', { iface: 'br0', 'ipv6-ra-quench': '1' }, /only with --dhcp full \(this is --dhcp proxy\)/],
  ['DHCP off', { iface: 'br0', dhcp: 'off', 'ipv6-ra-quench': '1' }, /only with --dhcp full \(this is --dhcp off\)/],
  ['no --iface', { 'ipv6-ra-quench': '1' }, /only with --dhcp full/],
  ['a value that is not a boolean', { ...FULL, 'ipv6-ra-quench': 'yes' as never }, /--ipv6-ra-quench: expected 1, true, 0 or false/],
];
for (const [name, raw, message] of refused) {
  test(`config: --ipv6-ra-quench refused with ${name}`, (t) => {
    const err = t.throws(() => resolveConfig(raw, env), { instanceOf: ConfigError });
    t.regex(err!.message, message);
  });
}

test('cli: --ipv6-ra-quench is a boolean flag; BOOTCFG_IPV6_RA_QUENCH=1 sets it too', (t) => {
  t.is(readServeOptions(['--ipv6-ra-quench'], {}).raw['ipv6-ra-quench'], 'true');
  t.is(readServeOptions([], { BOOTCFG_IPV6_RA_QUENCH: '1' }).raw['ipv6-ra-quench'], '1');
  t.is(readServeOptions([], {}).raw['ipv6-ra-quench'], undefined);
  t.throws(() => readServeOptions(['--ipv6-ra-quench=yes'], {}), { message: /ipv6-ra-quench/ });
  t.true(SERVICE_FACTORIES.indexOf(createRaQuenchService) > SERVICE_FACTORIES.findIndex((f) => f.name === 'createDhcpService'), 'starts after DHCP');
});

class FakeSocket implements RaSocket {
  readonly device = 'br0';
  readonly queue: { data: Buffer; from: string }[] = [];
  readonly sent: Buffer[] = [];
  closed = false;
  recv() {
    return this.queue.shift();
  }
  sendToAllNodes(message: Buffer) {
    this.sent.push(message);
  }
  close() {
    this.closed = true;
  }
}

const RS = Buffer.from('8500000000000000' + '0101525400123456', 'hex');

function harness(raw: RawOptions = { ...FULL, 'ipv6-ra-quench': 'true' }) {
  const config = resolveConfig(raw, env);
  const metrics = new Metrics();
  const log = pino({ level: 'silent' });
  const timeline = new BootTimeline();
  // The parts the appliance's factory reads (config, log, metrics, timeline); nothing else is started here.
  const ctx = { config, log, metrics, timeline } as unknown as ApplianceParts;
  const socket = new FakeSocket();
  let now = 1000;
  const options = { iface: 'br0', log, metrics, onIpxeDiscover: ipxeDiscovers(timeline) };
  const service = new RaQuenchService(options, {
    open: () => socket,
    describe: () => ({ mac: '02:00:00:00:00:01' as Mac, linkLocal: 'fe80::1' }),
    now: () => now,
    pollMs: 60_000, // the test calls poll() itself
  });
  return { ctx, options, metrics, socket, service, advance: (ms: number) => (now += ms) };
}

test('createRaQuenchService: only when the flag is on', (t) => {
  t.is(createRaQuenchService(harness(FULL).ctx), undefined);
  t.truthy(createRaQuenchService(harness().ctx));
});

test('a solicitation is answered with one quench RA carrying the interface MAC', async (t) => {
  const h = harness();
  await h.service.start();
  t.teardown(() => h.service.stop());
  h.socket.queue.push({ data: RS, from: 'fe80::5054:ff:fe12:3456' });
  h.service.poll();
  t.is(h.socket.sent.length, 1);
  const ra = parseRouterAdvertisement(h.socket.sent[0]!);
  t.true(ra.ok);
  if (ra.ok) {
    t.is(ra.value.routerLifetime, 0);
    t.is(ra.value.sourceMac as string | undefined, '02:00:00:00:00:01');
    t.deepEqual(ra.value.optionTypes, [1]);
  }
  t.regex(await h.metrics.registry.metrics(), /bootcfg_ipv6_router_adverts_total\{trigger="solicitation"\} 1/);
});

test('a burst of solicitations gets one RA now and one at the end of the gap, not one each', async (t) => {
  const h = harness();
  await h.service.start();
  t.teardown(() => h.service.stop());
  for (let i = 0; i < 10; i++) h.socket.queue.push({ data: RS, from: `fe80::${i + 1}` });
  h.service.poll();
  t.is(h.socket.sent.length, 1);
  await new Promise((r) => setTimeout(r, 300)); // the trailing RA's timer (200 ms gap) fires
  t.is(h.socket.sent.length, 2);
});

test('malformed solicitations are counted and not answered; a flood is drained in bounded slices', async (t) => {
  const h = harness();
  await h.service.start();
  t.teardown(() => h.service.stop());
  for (let i = 0; i < 100; i++) h.socket.queue.push({ data: Buffer.from('85010000', 'hex'), from: '::' });
  h.service.poll();
  t.is(h.socket.sent.length, 0);
  t.is(h.socket.queue.length, 100 - 32, 'at most 32 per poll');
  t.regex(await h.metrics.registry.metrics(), /bootcfg_malformed_packets_total\{protocol="icmpv6"\} 32/);
});

test('a real full-mode iPXE DISCOVER triggers an RA (rate-limited to one a second); a PXE ROM DISCOVER does not', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-raq-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const h = harness({ ...FULL, 'ipv6-ra-quench': 'true', 'data-path': dir });
  await h.service.start();
  t.teardown(() => h.service.stop());
  const dhcp = fullHarness(h.ctx.config, { timeline: h.ctx.timeline, boot: { firmware: { has: () => true } } });
  await dhcp.start();
  t.teardown(() => dhcp.stop());
  const tick = () => new Promise((r) => setImmediate(r));

  t.truthy(await dhcp.handle(request({ kind: 'bios', mac: '52:54:00:00:00:01' as Mac, xid: 1 })));
  await tick();
  t.is(h.socket.sent.length, 0, 'a PXE ROM does no IPv6');

  t.truthy(await dhcp.handle(request({ kind: 'ipxe-bios', mac: '52:54:00:00:00:01' as Mac, xid: 2 })));
  await tick();
  t.is(h.socket.sent.length, 1);

  h.advance(500);
  await dhcp.handle(request({ kind: 'ipxe-efi', mac: '52:54:00:00:00:02' as Mac, xid: 3 }));
  await tick();
  t.is(h.socket.sent.length, 1, 'second iPXE DISCOVER within a second: no new RA');

  h.advance(600);
  await dhcp.handle(request({ kind: 'ipxe-bios', mac: '52:54:00:00:00:03' as Mac, xid: 4, type: MessageType.DISCOVER }));
  await tick();
  t.is(h.socket.sent.length, 2);
  t.regex(await h.metrics.registry.metrics(), /bootcfg_ipv6_router_adverts_total\{trigger="ipxe-discover"\} 2/);
});

test('start: no CAP_NET_RAW is a clear refusal naming the capability; stop closes the socket', async (t) => {
  const h = harness();
  const denied = new RaQuenchService(h.options, {
    open: () => {
      throw new RawIcmpv6Error('socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6): Operation not permitted (errno 1)', true);
    },
    describe: () => ({ mac: undefined, linkLocal: 'fe80::1' }),
    now: () => 0,
    pollMs: 60_000,
  });
  await t.throwsAsync(() => denied.start(), { message: /needs CAP_NET_RAW.*Operation not permitted/ });
  await h.service.start();
  await h.service.stop();
  t.true(h.socket.closed);
});

test('cli: --ipv6-ra-quench in proxy mode exits 2 before anything binds, saying why', async (t) => {
  const { execFile } = await import('node:child_process');
  const { cliArgs, PROJECT_ROOT } = await import('../helpers/appliance.ts');
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile(process.execPath, cliArgs(['--iface', 'lo', '--ipv6-ra-quench']), { cwd: PROJECT_ROOT, env: { ...process.env, BOOTCFG_DATA_PATH: '' }, timeout: 30_000 }, (err, _out, stderr) => {
      const code = err ? ((err as { code?: number | null }).code ?? null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, stderr });
    });
  });
  t.is(r.code, 2);
  t.regex(r.stderr.split('\n')[0]!, /^bootcfg-appliance: --ipv6-ra-quench: only with --dhcp full \(this is --dhcp proxy\)/);
});

test('a failing read or send is logged, never thrown out of the poll timer', async (t) => {
  const h = harness();
  await h.service.start();
  t.teardown(() => h.service.stop());
  let reads = 0;
  h.socket.recv = () => {
    reads++;
    throw new RawIcmpv6Error('recvfrom on br0: Network is down (errno 100)');
  };
  t.notThrows(() => h.service.poll());
  t.is(reads, 1, 'a failed read ends this poll');
  h.socket.recv = () => h.socket.queue.shift();
  h.socket.sendToAllNodes = () => {
    throw new RawIcmpv6Error('sendto ff02::1%br0: Cannot assign requested address (errno 99)');
  };
  h.socket.queue.push({ data: RS, from: 'fe80::2' });
  t.notThrows(() => h.service.poll());
  t.notRegex(await h.metrics.registry.metrics(), /bootcfg_ipv6_router_adverts_total\{/);
});
