/**
 * ProxyDHCP and boot-server logic without sockets: bytes in, (bytes, destination) out,
 * plus what each exchange leaves in logs, metrics and the timeline. Includes the
 * in-process fuzz: 100,000 mutated packets straight into the handlers.
 */
import test from 'ava';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Metrics } from '../../src/metrics.ts';
import { BootTimeline } from '../../src/events/timeline.ts';
import type { BootSettings } from '../../src/boot/decide.ts';
import type { MachineMatch } from '../../src/boot/machine.ts';
import { PxeBootServerPolicy } from '../../src/dhcp/boot-server-policy.ts';
import { DhcpPipeline } from '../../src/dhcp/pipeline.ts';
import type { DhcpPolicy } from '../../src/dhcp/policy.ts';
import { ProxyDhcpPolicy } from '../../src/dhcp/proxy-policy.ts';
import { DhcpRecorder } from '../../src/dhcp/recorder.ts';
import { MessageType, Opt } from '../../src/dhcp/options.ts';
import { parsePacket, encodePacket, type DhcpPacket } from '../../src/dhcp/packet.ts';
import type { Destination } from '../../src/dhcp/transport.ts';
import type { Mac } from '../../src/net/mac.ts';
import { request, requestBytes, seedCorpus, type ClientKind } from './fixtures.ts';
import { mutate, rng } from './mutate.ts';

const US = '10.0.0.1';
const BASE = 'http://10.0.0.1:8080';

function harness(files = ['undionly.kpxe', 'ipxe.efi', 'snponly.efi']) {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const sent: { packet: DhcpPacket; bytes: Buffer; to: Destination }[] = [];
  const set = new Set(files);
  const settings: BootSettings = { baseUrl: BASE, efiFirmware: 'ipxe.efi', uefiLoader: 'ipxe', dhcpMode: 'proxy', tftpServer: undefined, tftpPort: 69, firmware: { has: (n) => set.has(n) } };
  const deps = {
    log: pino({ level: 'debug', base: undefined }, stream),
    metrics: new Metrics(),
    timeline: new BootTimeline(),
    settings,
    send: async (bytes: Buffer, to: Destination) => {
      sent.push({ packet: parsePacket(bytes), bytes, to });
    },
  };
  /** The socket handler of one port: the DHCP pipeline with this mode's policy; every machine matches a default config (ProxyDHCP answers only those). */
  const pipeline = (policy: DhcpPolicy, over: Partial<typeof deps> = {}) => {
    const d = { ...deps, ...over };
    return new DhcpPipeline(policy, { boot: d.settings, lookup: () => DEFAULT_MATCH, recorder: new DhcpRecorder(policy, d), send: d.send });
  };
  const makeProxy = (over: Partial<typeof deps> = {}) => pipeline(new ProxyDhcpPolicy(US), over);
  return { deps, lines, sent, makeProxy, proxy: makeProxy(), boot: pipeline(new PxeBootServerPolicy(US)) };
}

const DEFAULT_MATCH: MachineMatch = { kind: 'config', key: 'default' };
const MAC = '52:54:00:aa:bb:01' as Mac;
const CLIENT = { address: '0.0.0.0', port: 68 };

async function metric(m: Metrics, name: string): Promise<string> {
  return (await m.registry.getSingleMetricAsString(name))
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
}

test('DISCOVER from UEFI → one broadcast OFFER; request, reply, metrics and timeline recorded', async (t) => {
  const h = harness();
  await h.proxy.handle(requestBytes({ kind: 'uefi7', mac: MAC, xid: 42 }), CLIENT);
  t.is(h.sent.length, 1);
  const { packet, to } = h.sent[0]!;
  t.deepEqual(to, { address: '255.255.255.255', port: 68, via: 'broadcast' });
  t.is(packet.options.messageType(), MessageType.OFFER);
  t.is(packet.file, 'ipxe.efi');
  t.is(packet.yiaddr, '0.0.0.0');
  const reply = h.lines.find((l) => l.reply === 'OFFER')!;
  t.like(reply, { mac: MAC, arch: 'efi-x64', ipxe: false, file: 'ipxe.efi', action: 'tftp', to: '255.255.255.255:68' });
  t.regex(String(reply.reason), /ipxe\.efi over TFTP/);
  t.regex(await metric(h.deps.metrics, 'bootcfg_dhcp_requests_total'), /type="DISCOVER",mode="proxy",arch="efi-x64"\} 1/);
  t.regex(await metric(h.deps.metrics, 'bootcfg_dhcp_replies_total'), /type="OFFER",mode="proxy",arch="efi-x64"\} 1/);
  const steps = h.deps.timeline.get(MAC)!.events.map((e) => e.step);
  t.deepEqual(steps, ['dhcp.request', 'dhcp.reply']);
  t.is(h.deps.timeline.get(MAC)!.uuid as string | undefined, '8e8d6c3f-2a1b-4c5d-9e0f-112233445566');
});

test('REQUEST: ACK when option 54 names us or no server, never when it names another', async (t) => {
  const h = harness();
  await h.proxy.handle(requestBytes({ kind: 'bios', mac: MAC, xid: 1, type: MessageType.REQUEST, serverId: '10.0.0.9' }), CLIENT);
  t.is(h.sent.length, 0);
  await h.proxy.handle(requestBytes({ kind: 'bios', mac: MAC, xid: 3, type: MessageType.REQUEST, serverId: US }), CLIENT);
  t.is(h.sent.length, 1);
  t.is(h.sent[0]!.packet.options.messageType(), MessageType.ACK);
  t.deepEqual(h.sent[0]!.packet.options.get(Opt.VENDOR_SPECIFIC), Buffer.from('060108ff', 'hex'));
  // No option 54 at all (Intel ROMs): answered too, never with an address.
  await h.proxy.handle(requestBytes({ kind: 'bios', mac: MAC, xid: 2, type: MessageType.REQUEST, requestedIp: '10.0.0.50' }), CLIENT);
  t.is(h.sent.length, 2);
  t.is(h.sent[1]!.packet.options.messageType(), MessageType.ACK);
  t.is(h.sent[1]!.packet.yiaddr, '0.0.0.0');
  // A non-PXE client's REQUEST naming no server is still not ours.
  await h.proxy.handle(requestBytes({ kind: 'udhcpc', mac: MAC, xid: 4, type: MessageType.REQUEST, requestedIp: '10.0.0.50' }), CLIENT);
  t.is(h.sent.length, 2);
  t.regex(await metric(h.deps.metrics, 'bootcfg_dhcp_ignored_total'), /reason="other-server"\} 1/);
});

test('other message types on 67 (RELEASE, DECLINE, INFORM) and BOOTREPLYs are not answered', async (t) => {
  const h = harness();
  for (const type of [MessageType.RELEASE, MessageType.DECLINE, MessageType.INFORM, MessageType.OFFER, MessageType.ACK, MessageType.NAK]) {
    await h.proxy.handle(requestBytes({ kind: 'uefi7', mac: MAC, xid: type, type, serverId: US }), CLIENT);
  }
  const p = request({ kind: 'uefi7', mac: MAC, xid: 99 });
  p.op = 2;
  await h.proxy.handle(encodePacket(p), CLIENT);
  const bootp = request({ kind: 'uefi7', mac: MAC, xid: 100 });
  bootp.options.delete(Opt.MESSAGE_TYPE);
  await h.proxy.handle(encodePacket(bootp), CLIENT);
  t.is(h.sent.length, 0);
});

test('relayed DISCOVER → OFFER to giaddr:67 with giaddr echoed', async (t) => {
  const h = harness();
  await h.proxy.handle(requestBytes({ kind: 'bios', mac: MAC, xid: 5, giaddr: '10.5.0.1' }), { address: '10.5.0.1', port: 67 });
  t.deepEqual(h.sent[0]!.to, { address: '10.5.0.1', port: 67, via: 'relay' });
  t.is(h.sent[0]!.packet.giaddr, '10.5.0.1');
});

const RELAY = { address: '10.5.0.1', port: 67 };
/** ProxyDHCP's relay and REQUEST-without-54 rules: what answers, and with which flag. */
const proxyRuleRows: [string, Parameters<typeof requestBytes>[0], { address: string; port: number }, number | 'silent', string?][] = [
  ['relayed DISCOVER, client flag 0: broadcast flag set (no address yet)', { kind: 'ipxe-bios', mac: MAC, xid: 1, giaddr: '10.5.0.1' }, RELAY, 0x8000],
  ['relayed REQUEST with ciaddr: the client’s own flag', { kind: 'ipxe-efi', mac: MAC, xid: 2, type: MessageType.REQUEST, serverId: US, ciaddr: '10.5.0.9', giaddr: '10.5.0.1' }, RELAY, 0],
  ['giaddr set but not from port 67: no relay agent', { kind: 'bios', mac: MAC, xid: 3, giaddr: '10.5.0.1' }, { address: '10.5.0.1', port: 68 }, 'silent', 'relay-bad-port'],
  ['REQUEST without 54 before an address (INIT-REBOOT shape)', { kind: 'bios', mac: MAC, xid: 4, type: MessageType.REQUEST, requestedIp: '10.0.0.50' }, CLIENT, 0x8000],
  ['REQUEST without 54 with ciaddr (REBINDING)', { kind: 'bios', mac: MAC, xid: 5, type: MessageType.REQUEST, ciaddr: '10.0.0.50' }, CLIENT, 'silent', 'not-boot-phase'],
  [
    'REQUEST without 54 with ciaddr (RENEWING, iPXE)',
    { kind: 'ipxe-efi', mac: MAC, xid: 6, type: MessageType.REQUEST, ciaddr: '10.0.0.50' },
    { address: '10.0.0.50', port: 68 },
    'silent',
    'not-boot-phase',
  ],
];
for (const [what, init, from, want, reason] of proxyRuleRows) {
  test(`proxy rule: ${what}`, async (t) => {
    const h = harness();
    await h.proxy.handle(requestBytes(init), from);
    if (want === 'silent') {
      t.is(h.sent.length, 0);
      t.regex(await metric(h.deps.metrics, 'bootcfg_dhcp_ignored_total'), new RegExp(`reason="${reason}"\\} 1`));
      return;
    }
    t.is(h.sent.length, 1);
    t.is(h.sent[0]!.packet.flags, want);
  });
}

test('4011: OVMF from its address:4011 → ACK there with ciaddr; iPXE from 68 → ACK to 68; timeline binds the address', async (t) => {
  const h = harness();
  await h.boot.handle(requestBytes({ kind: 'uefi9', mac: MAC, xid: 7, type: MessageType.REQUEST, ciaddr: '10.0.0.77' }), { address: '10.0.0.77', port: 4011 });
  t.deepEqual(h.sent[0]!.to, { address: '10.0.0.77', port: 4011, via: 'unicast' });
  t.is(h.sent[0]!.packet.ciaddr, '10.0.0.77');
  t.is(h.sent[0]!.packet.file, 'ipxe.efi');
  t.is(h.deps.timeline.macForAddress('10.0.0.77'), MAC);
  const ipxeMac = '52:54:00:aa:bb:02' as Mac;
  await h.boot.handle(requestBytes({ kind: 'ipxe-efi', mac: ipxeMac, xid: 8, type: MessageType.REQUEST, ciaddr: '10.0.0.78', serverId: US }), { address: '10.0.0.78', port: 68 });
  t.deepEqual(h.sent[1]!.to, { address: '10.0.0.78', port: 68, via: 'unicast' });
  t.is(h.sent[1]!.packet.file, `${BASE}/boot.ipxe`);
  const steps = h.deps.timeline.get(ipxeMac)!.events.map((e) => [e.step, e.ip]);
  t.deepEqual(steps, [
    ['pxe.request', '10.0.0.78'],
    ['pxe.reply', '10.0.0.78'],
  ]);
  t.regex(await metric(h.deps.metrics, 'bootcfg_dhcp_replies_total'), /type="ACK",mode="bootserver",arch="efi-x64"\} 2/);
});

test('4011: a DISCOVER is not the boot server’s business', async (t) => {
  const h = harness();
  await h.boot.handle(requestBytes({ kind: 'uefi7', mac: MAC, xid: 9 }), { address: '10.0.0.77', port: 4011 });
  t.is(h.sent.length, 0);
});

test('ignored PXE clients get a reason in the log, a metric and a timeline event; non-PXE clients only debug + metric', async (t) => {
  const h = harness(['undionly.kpxe']);
  await h.proxy.handle(requestBytes({ kind: 'uefi7', mac: MAC, xid: 10 }), CLIENT);
  const other = '52:54:00:aa:bb:03' as Mac;
  await h.proxy.handle(requestBytes({ kind: 'udhcpc', mac: other, xid: 11 }), CLIENT);
  t.is(h.sent.length, 0);
  const line = h.lines.find((l) => l.mac === MAC && l.reason === 'no-firmware')!;
  t.regex(String(line.detail), /ipxe\.efi/);
  t.is((line as { level: number }).level, 30);
  t.deepEqual(
    h.deps.timeline.get(MAC)!.events.map((e) => e.step),
    ['dhcp.request', 'dhcp.ignored'],
  );
  t.is(h.deps.timeline.get(other), undefined);
  const quiet = h.lines.find((l) => l.mac === other && l.reason === 'not-pxe')!;
  t.is((quiet as { level: number }).level, 20);
  const m = await metric(h.deps.metrics, 'bootcfg_dhcp_ignored_total');
  t.regex(m, /reason="no-firmware"\} 1/);
  t.regex(m, /reason="not-pxe"\} 1/);
});

test('a reply that would exceed the client’s size limit is not sent (logged), nothing thrown', async (t) => {
  const h = harness();
  const longBase = { ...h.deps.settings, baseUrl: `http://10.0.0.1:8080/${'x'.repeat(300)}` };
  const r = h.makeProxy({ settings: longBase });
  await r.handle(requestBytes({ kind: 'ipxe-efi', mac: MAC, xid: 12 }), CLIENT);
  // 67 carries the 300-byte URL (file cannot): still under 576, so it is sent, with file empty.
  t.is(h.sent.length, 1);
  t.is(h.sent[0]!.packet.file, '');
  t.is(h.sent[0]!.packet.options.bootfileName(), `${longBase.baseUrl}/boot.ipxe`);
  const huge = h.makeProxy({ settings: { ...h.deps.settings, baseUrl: `http://h/${'y'.repeat(1500)}` } });
  await t.notThrowsAsync(huge.handle(requestBytes({ kind: 'ipxe-efi', mac: MAC, xid: 13 }), CLIENT));
  t.is(h.sent.length, 1);
  t.true(h.lines.some((l) => typeof l.msg === 'string' && l.msg.includes('cannot build reply')));
});

test('a failing send is logged, not thrown', async (t) => {
  const h = harness();
  const r = h.makeProxy({ send: () => Promise.reject(new Error('ENETUNREACH')) });
  await t.notThrowsAsync(r.handle(requestBytes({ kind: 'bios', mac: MAC, xid: 14 }), CLIENT));
  t.true(h.lines.some((l) => typeof l.msg === 'string' && l.msg.includes('failed: ENETUNREACH')));
});

test('fuzz in process: 100,000 mutated and truncated packets, no throw, malformed counted, valid ones still answered', async (t) => {
  const h = harness();
  // Keep the log quiet for this run: the handlers still build every line.
  h.deps.log.level = 'warn';
  const seeds = seedCorpus();
  const rand = rng(0xb007);
  const kinds: ClientKind[] = ['bios', 'uefi7', 'ipxe-efi'];
  for (let i = 0; i < 100_000; i++) {
    const bytes = mutate(seeds[i % seeds.length]!, rand);
    const from = i % 2 ? CLIENT : { address: '10.0.0.77', port: 4011 };
    // handle() must never reject; a rejection here fails the test with the seed index.
    try {
      await (i % 2 ? h.proxy : h.boot).handle(bytes, from);
    } catch (err) {
      t.fail(`packet ${i} (${bytes.toString('hex')}) threw: ${(err as Error).stack}`);
      return;
    }
  }
  t.true(h.sent.length > 0, 'mutated packets that are still valid requests were answered');
  const malformed = Number(/\} (\d+)/.exec(await metric(h.deps.metrics, 'bootcfg_malformed_packets_total'))?.[1] ?? 0);
  t.true(malformed > 30_000, `malformed counted: ${malformed}`);
  t.false(
    h.lines.some((l) => typeof l.msg === 'string' && /bug|cannot build/.test(l.msg)),
    'no handler bug surfaced',
  );
  const before = h.sent.length;
  for (const kind of kinds) await h.proxy.handle(requestBytes({ kind, mac: MAC, xid: 0xf00d, type: MessageType.DISCOVER }), CLIENT);
  t.is(h.sent.length, before + kinds.length, 'valid DISCOVERs still answered');
});
