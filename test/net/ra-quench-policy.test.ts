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
import { buildRouterAdvertisement, parseRouterAdvertisement, parseRouterSolicitation } from '../../src/net/icmpv6.ts';
import type { Mac } from '../../src/net/mac.ts';
import { RaQuenchService, type RaSocket } from '../../src/net/ra-quench.ts';
import { RawIcmpv6Error } from '../../src/net/router-advert.ts';
import { request } from '../dhcp/fixtures.ts';
import { fullHarness } from '../dhcp/full-harness.ts';

const env = { lookupInterface: () => ({ address: '10.9.0.1', netmask: '255.255.255.0' }), isTty: false };
const FULL: RawOptions = { iface: 'br0', dhcp: 'full', 'dhcp-range': '10.9.0.100,10.9.0.200' };

test('config: --ipv6-ra-quench is auto by default in full mode, off elsewhere; on/1/true force it on, off/0/false off', (t) => {
  t.is(resolveConfig(FULL, env).ipv6RaQuench, 'auto');
  t.is(resolveConfig({ ...FULL, 'ipv6-ra-quench': 'auto' }, env).ipv6RaQuench, 'auto');
  for (const on of ['on', 'true', '1'] as const) t.is(resolveConfig({ ...FULL, 'ipv6-ra-quench': on }, env).ipv6RaQuench, 'on', on);
  for (const off of ['off', 'false', '0'] as const) t.is(resolveConfig({ ...FULL, 'ipv6-ra-quench': off }, env).ipv6RaQuench, 'off', off);
  t.is(resolveConfig({ iface: 'br0' }, env).ipv6RaQuench, 'off', 'proxy mode: not our segment');
  t.is(resolveConfig({ iface: 'br0', 'ipv6-ra-quench': 'auto' }, env).ipv6RaQuench, 'off', 'auto in proxy mode is off');
  t.is(resolveConfig({ iface: 'br0', 'ipv6-ra-quench': 'false' }, env).ipv6RaQuench, 'off');
  t.is(resolveConfig({}, env).ipv6RaQuench, 'off');
});

const refused: [string, RawOptions, RegExp][] = [
  ['proxy mode', { iface: 'br0', dhcp: 'proxy', 'ipv6-ra-quench': 'true' }, /--ipv6-ra-quench: only with --dhcp full \(this is --dhcp proxy\).*not ours to send/],
  ['default (proxy) mode', { iface: 'br0', 'ipv6-ra-quench': '1' }, /only with --dhcp full \(this is --dhcp proxy\)/],
  ['DHCP off', { iface: 'br0', dhcp: 'off', 'ipv6-ra-quench': '1' }, /only with --dhcp full \(this is --dhcp off\)/],
  ['no --iface', { 'ipv6-ra-quench': '1' }, /only with --dhcp full/],
  ['forced on in proxy mode', { iface: 'br0', 'ipv6-ra-quench': 'on' }, /only with --dhcp full \(this is --dhcp proxy\)/],
  ['a value it does not know', { ...FULL, 'ipv6-ra-quench': 'yes' as never }, /--ipv6-ra-quench: expected on, off or auto \(or 1, true, 0, false\)/],
];
for (const [name, raw, message] of refused) {
  test(`config: --ipv6-ra-quench refused with ${name}`, (t) => {
    const err = t.throws(() => resolveConfig(raw, env), { instanceOf: ConfigError });
    t.regex(err!.message, message);
  });
}

test('cli: --ipv6-ra-quench alone is on, or takes on/off/auto (and 1/true/0/false); BOOTCFG_IPV6_RA_QUENCH too', (t) => {
  const quench = (args: string[], e: NodeJS.ProcessEnv = {}) => readServeOptions(args, e).raw['ipv6-ra-quench'];
  t.is(quench(['--ipv6-ra-quench']), 'true');
  t.is(quench(['-ipv6-ra-quench']), 'true', 'Go style');
  t.is(quench(['--ipv6-ra-quench', 'auto']), 'auto');
  t.is(quench(['--ipv6-ra-quench', 'off']), 'off');
  t.is(quench(['--ipv6-ra-quench=0']), '0');
  t.is(quench(['-ipv6-ra-quench=auto']), 'auto');
  const alone = readServeOptions(['--ipv6-ra-quench', '--dhcp', 'full'], {}).raw;
  t.is(alone['ipv6-ra-quench'], 'true', 'alone before another flag');
  t.is(alone.dhcp, 'full');
  t.is(quench([], { BOOTCFG_IPV6_RA_QUENCH: '1' }), '1');
  t.is(quench([], { BOOTCFG_IPV6_RA_QUENCH: 'auto' }), 'auto');
  t.is(quench([]), undefined);
  t.throws(() => readServeOptions(['--ipv6-ra-quench', 'yes'], {}), { message: /Unexpected argument 'yes'/ }, 'an unknown word is not taken as its value');
  t.throws(() => resolveConfig({ ...FULL, ...readServeOptions(['--ipv6-ra-quench=yes'], {}).raw }, env), { message: /--ipv6-ra-quench: expected on, off or auto/ });
  t.true(SERVICE_FACTORIES.indexOf(createRaQuenchService) > SERVICE_FACTORIES.findIndex((f) => f.name === 'createDhcpService'), 'starts after DHCP');
});

class FakeSocket implements RaSocket {
  readonly device = 'br0';
  readonly queue: { data: Buffer; from: string }[] = [];
  readonly sent: Buffer[] = [];
  readonly solicited: Buffer[] = [];
  closed = false;
  recv() {
    return this.queue.shift();
  }
  sendToAllNodes(message: Buffer) {
    this.sent.push(message);
  }
  sendToAllRouters(message: Buffer) {
    this.solicited.push(message);
  }
  close() {
    this.closed = true;
  }
}

const RS = Buffer.from('8500000000000000' + '0101525400123456', 'hex');

function harness(raw: RawOptions = { ...FULL, 'ipv6-ra-quench': 'true' }, listenMs = 60_000) {
  const config = resolveConfig(raw, env);
  const metrics = new Metrics();
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const timeline = new BootTimeline();
  // The parts the appliance's factory reads (config, log, metrics, timeline); nothing else is started here.
  const ctx = { config, log, metrics, timeline } as unknown as ApplianceParts;
  const socket = new FakeSocket();
  let now = 1000;
  const mode = config.ipv6RaQuench === 'off' ? 'on' : config.ipv6RaQuench;
  const options = { iface: 'br0', mode, log, metrics, onIpxeDiscover: ipxeDiscovers(timeline) };
  const service = new RaQuenchService(options, {
    open: () => socket,
    describe: () => ({ mac: '02:00:00:00:00:01' as Mac, linkLocal: 'fe80::1' }),
    now: () => now,
    pollMs: 60_000, // the test calls poll() itself
    listenMs,
  });
  return { ctx, options, metrics, socket, service, lines, advance: (ms: number) => (now += ms) };
}

test('createRaQuenchService: in full mode unless forced off (and says so); never in proxy mode', (t) => {
  t.truthy(createRaQuenchService(harness(FULL).ctx), 'auto by default');
  t.truthy(createRaQuenchService(harness().ctx));
  const off = harness({ ...FULL, 'ipv6-ra-quench': 'off' });
  t.is(createRaQuenchService(off.ctx), undefined);
  t.true(off.lines.some((l) => /ipv6-ra-quench: off \(--ipv6-ra-quench off\)/.test(String(l.msg))));
  t.is(createRaQuenchService(harness({ iface: 'br0' }).ctx), undefined);
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

/** The service as a process without CAP_NET_RAW sees it: socket() fails with EPERM. */
function withoutNetRaw(options: ConstructorParameters<typeof RaQuenchService>[0]): RaQuenchService {
  return new RaQuenchService(options, {
    open: () => {
      throw new RawIcmpv6Error('socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6): Operation not permitted (errno 1)', true);
    },
    describe: () => ({ mac: undefined, linkLocal: 'fe80::1' }),
    now: () => 0,
    pollMs: 60_000,
    listenMs: 60_000,
  });
}

test('start: no CAP_NET_RAW is a clear refusal naming the capability; stop closes the socket', async (t) => {
  const h = harness();
  const denied = withoutNetRaw(h.options);
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

const ROUTER_RA = buildRouterAdvertisement(1800, '02:00:00:00:99:01' as Mac);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('auto: solicits, listens, and with no router heard quenches, answering the solicitation that came meanwhile', async (t) => {
  const h = harness(FULL, 50);
  await h.service.start();
  t.teardown(() => h.service.stop());
  t.is(h.service.current, 'listening');
  t.is(h.socket.solicited.length, 1, 'a router solicitation at once');
  const rs = parseRouterSolicitation(h.socket.solicited[0]!);
  t.true(rs.ok && rs.value.sourceMac === '02:00:00:00:00:01');
  h.socket.queue.push({ data: RS, from: 'fe80::5054:ff:fe12:3456' });
  h.service.poll();
  t.is(h.socket.sent.length, 0, 'nothing answered while listening');
  await wait(120);
  t.is(h.service.current, 'quenching');
  t.is(h.socket.solicited.length, 2, 'a second solicitation half-way');
  t.is(h.socket.sent.length, 1, 'the held solicitation answered when it decided');
  t.true(h.lines.some((l) => /auto: looking for an IPv6 router on br0/.test(String(l.msg))));
  t.true(h.lines.some((l) => /auto: no IPv6 router advertised on br0 within 0.05 s: quenching/.test(String(l.msg))));
});

test('auto: a router advertising while it listens means it never answers there, and says why', async (t) => {
  const h = harness(FULL, 50);
  await h.service.start();
  t.teardown(() => h.service.stop());
  h.socket.queue.push({ data: RS, from: 'fe80::5054:ff:fe12:3456' });
  h.socket.queue.push({ data: ROUTER_RA, from: 'fe80::99' });
  h.service.poll();
  t.is(h.service.current, 'router-present');
  await wait(120);
  h.socket.queue.push({ data: RS, from: 'fe80::5054:ff:fe12:3457' });
  h.service.poll();
  t.is(h.service.current, 'router-present');
  t.is(h.socket.sent.length, 0, 'no RA from us where a router advertises');
  const why = h.lines.find((l) => /auto: not quenching on br0: an IPv6 router advertises there/.test(String(l.msg)));
  t.truthy(why);
  t.like(why, { router: 'fe80::99', routerMac: '02:00:00:00:99:01', routerLifetime: 1800 });
});

test('auto: a router showing up after it began quenching stops it (logged as a warning); iPXE DISCOVERs then trigger nothing', async (t) => {
  const h = harness(FULL, 10);
  await h.service.start();
  t.teardown(() => h.service.stop());
  await wait(40);
  t.is(h.service.current, 'quenching');
  h.socket.queue.push({ data: RS, from: 'fe80::2' });
  h.service.poll();
  t.is(h.socket.sent.length, 1);
  h.advance(1000);
  h.socket.queue.push({ data: ROUTER_RA, from: 'fe80::99' });
  h.socket.queue.push({ data: RS, from: 'fe80::3' });
  h.service.poll();
  t.is(h.service.current, 'router-present');
  t.is(h.socket.sent.length, 1, 'no more RAs');
  const stopped = h.lines.find((l) => /auto: stopped quenching on br0: an IPv6 router began advertising there/.test(String(l.msg)));
  t.is(stopped?.level, 40);
});

test('auto: our own RA (same link-local or MAC) is not taken for a router; a malformed RA is counted', async (t) => {
  const h = harness(FULL, 10);
  await h.service.start();
  t.teardown(() => h.service.stop());
  h.socket.queue.push({ data: buildRouterAdvertisement(0), from: 'fe80::1' });
  h.socket.queue.push({ data: buildRouterAdvertisement(0, '02:00:00:00:00:01' as Mac), from: 'fe80::77' });
  h.socket.queue.push({ data: Buffer.from('8600', 'hex'), from: 'fe80::78' });
  h.service.poll();
  t.is(h.service.current, 'listening');
  t.regex(await h.metrics.registry.metrics(), /bootcfg_malformed_packets_total\{protocol="icmpv6"\} 1/);
});

test('forced on: another router earns one warning per router, and the quench goes on', async (t) => {
  const h = harness({ ...FULL, 'ipv6-ra-quench': 'on' });
  await h.service.start();
  t.teardown(() => h.service.stop());
  t.is(h.service.current, 'quenching');
  t.is(h.socket.solicited.length, 0, 'forced on: no need to look for a router');
  h.socket.queue.push({ data: ROUTER_RA, from: 'fe80::99' });
  h.socket.queue.push({ data: ROUTER_RA, from: 'fe80::99' });
  h.socket.queue.push({ data: RS, from: 'fe80::2' });
  h.service.poll();
  t.is(h.service.current, 'quenching');
  t.is(h.socket.sent.length, 1);
  t.is(h.lines.filter((l) => /another IPv6 router advertises on br0.*forced on/.test(String(l.msg))).length, 1);
});

test('auto without CAP_NET_RAW: a warning, and the appliance starts anyway', async (t) => {
  const h = harness(FULL);
  const denied = withoutNetRaw(h.options);
  await t.notThrowsAsync(() => denied.start());
  t.is(denied.current, 'unavailable');
  t.true(h.lines.some((l) => l.level === 40 && /auto: not quenching on br0, iPXE clients will wait ~13 s.*CAP_NET_RAW/.test(String(l.msg))));
  await denied.stop();
});
