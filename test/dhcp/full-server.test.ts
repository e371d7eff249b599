/** Full DHCP policy, table by table, without sockets: DhcpServer.handle() on packets shaped like real clients'. */
import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { resolveConfig } from '../../src/config.ts';
import { IpxeSubOpt, MessageType, Opt } from '../../src/dhcp/options.ts';
import { encodePacket, parsePacket, type DhcpPacket } from '../../src/dhcp/packet.ts';
import type { Mac } from '../../src/net/mac.ts';
import { GUID_97, request, type ClientKind, type RequestInit } from './fixtures.ts';
import { fullHarness, type FullHarness } from './full-harness.ts';

const US = '10.20.0.1';
const BASE = `http://${US}:8080`;

async function server(t: { teardown(fn: () => Promise<void>): void }, extra: Record<string, string> = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-full-'));
  const config = resolveConfig(
    { iface: 'br0', dhcp: 'full', 'dhcp-range': '10.20.0.100,10.20.0.109', 'dhcp-router': '10.20.0.254', 'dhcp-dns': '10.20.0.53,10.20.0.54', 'data-path': dir, ...extra },
    { lookupInterface: () => ({ address: US, netmask: '255.255.255.0' }), isTty: false },
  );
  const s = fullHarness(config);
  const ctx = s;
  await s.start();
  t.teardown(async () => {
    await s.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { s, ctx, config };
}

const mac = (n: number) => `52:54:00:aa:00:${n.toString(16).padStart(2, '0')}` as Mac;
/** Through the codec both ways, as on the wire. */
async function ask(s: FullHarness, init: RequestInit, from?: { address: string; port: number }) {
  // A relayed request comes from the relay agent's port 67.
  return s.handle(request(init), from ?? (init.giaddr ? { address: init.giaddr, port: 67 } : undefined));
}
const type = (p: DhcpPacket) => p.options.messageType();

test('a giaddr in a packet not from port 67 is no relay agent: silence (a reply to an address nobody answers ARP for would hold up every client)', async (t) => {
  const { s } = await server(t);
  t.is(await ask(s, { kind: 'udhcpc', mac: mac(1), xid: 1, giaddr: '10.20.0.250' }, { address: '10.20.0.250', port: 68 }), undefined);
  t.is((await ask(s, { kind: 'udhcpc', mac: mac(1), xid: 2, giaddr: '10.20.0.250' }))?.packet.options.messageType(), MessageType.OFFER, 'from 67 it is answered');
});

/** Per client kind: the boot fields of the OFFER (wire.md "Full DHCP mode"). */
const bootRows: [ClientKind, { file: string; siaddr: string; vendorClass?: string; ipxe175?: boolean; guid?: boolean }][] = [
  ['bios', { file: 'undionly.kpxe', siaddr: US, guid: true }],
  ['uefi7', { file: 'ipxe.efi', siaddr: US, guid: true }],
  ['uefi9', { file: 'ipxe.efi', siaddr: US, guid: true }],
  ['ia32', { file: '', siaddr: '0.0.0.0' }], // 32-bit UEFI needs ipxe-ia32.efi, not in this catalog: address only
  ['httpboot16', { file: `${BASE}/firmware/ipxe.efi`, siaddr: US, vendorClass: 'HTTPClient', guid: true }],
  ['ipxe-bios', { file: `${BASE}/boot.ipxe`, siaddr: US, ipxe175: true, guid: true }],
  ['ipxe-efi', { file: `${BASE}/boot.ipxe`, siaddr: US, ipxe175: true, guid: true }],
  ['ipxe-175-only', { file: `${BASE}/boot.ipxe`, siaddr: US, ipxe175: true, guid: true }],
  ['arm64', { file: '', siaddr: '0.0.0.0' }], // no arm64 build in this catalog: address only
  ['udhcpc', { file: '', siaddr: '0.0.0.0' }], // not PXE: address only
  ['dhclient', { file: '', siaddr: '0.0.0.0' }],
];
for (const [kind, want] of bootRows) {
  test(`DISCOVER from ${kind}: OFFER with an address, the common options and ${want.file || 'no boot file'}`, async (t) => {
    const { s } = await server(t);
    const r = (await ask(s, { kind, mac: mac(1), xid: 0x1234 }))!;
    t.truthy(r);
    const p = r.packet;
    t.is(type(p), MessageType.OFFER);
    t.is(p.xid, 0x1234);
    t.is(p.yiaddr, '10.20.0.100');
    t.deepEqual(r.to, { address: '255.255.255.255', port: 68, via: 'broadcast' });
    t.is(p.options.serverId(), US);
    t.is(p.options.leaseTime(), 3600);
    t.is(p.options.get(Opt.RENEWAL_TIME)?.readUInt32BE(0), 1800);
    t.is(p.options.get(Opt.REBINDING_TIME)?.readUInt32BE(0), 3150);
    t.deepEqual([...p.options.get(Opt.SUBNET_MASK)!], [255, 255, 255, 0]);
    t.deepEqual([...p.options.get(Opt.ROUTER)!], [10, 20, 0, 254]);
    t.deepEqual([...p.options.get(Opt.DNS)!], [10, 20, 0, 53, 10, 20, 0, 54]);
    t.is(p.siaddr, want.siaddr);
    t.is(p.file, want.file);
    t.is(p.options.bootfileName(), want.file || undefined);
    // The trap: PXEClient without 43 sends OVMF to 4011. Only HTTPClient is ever sent in full mode.
    t.is(p.options.vendorClass(), want.vendorClass);
    t.false(p.options.has(Opt.VENDOR_SPECIFIC));
    t.is(p.options.ipxeOptions()?.get(IpxeSubOpt.NO_PXEDHCP)?.[0], want.ipxe175 ? 1 : undefined);
    t.deepEqual(p.options.clientGuid(), want.guid ? GUID_97 : undefined);
  });
}

test('DORA: the ACK comes after the lease is on disk, with the same boot fields as the offer', async (t) => {
  const { s, config } = await server(t);
  const offer = (await ask(s, { kind: 'ipxe-efi', mac: mac(2), xid: 1 }))!.packet;
  const ack = (await ask(s, { kind: 'ipxe-efi', mac: mac(2), xid: 2, type: MessageType.REQUEST, serverId: US, requestedIp: offer.yiaddr }))!;
  t.is(type(ack.packet), MessageType.ACK);
  t.is(ack.packet.yiaddr, offer.yiaddr);
  t.is(ack.packet.options.bootfileName(), `${BASE}/boot.ipxe`);
  t.is(ack.packet.options.ipxeOptions()?.get(IpxeSubOpt.NO_PXEDHCP)?.[0], 1);
  const journal = await readFile(`${config.dhcp.leaseFile}.journal`, 'utf8');
  t.regex(journal, new RegExp(`"ip":"${offer.yiaddr.replaceAll('.', '\\.')}","mac":"${mac(2)}".*"bound"`));
  t.true(config.dhcp.leaseFile.endsWith(path.join('state', 'leases.json')));
});

test('a REQUEST naming another server: silence, and our offer is freed for others', async (t) => {
  const { s } = await server(t, { 'dhcp-range': '10.20.0.100,10.20.0.100' });
  const offer = (await ask(s, { kind: 'udhcpc', mac: mac(3), xid: 1 }))!.packet;
  t.is(await ask(s, { kind: 'udhcpc', mac: mac(4), xid: 2 }), undefined, 'the only address is held');
  t.is(await ask(s, { kind: 'udhcpc', mac: mac(3), xid: 3, type: MessageType.REQUEST, serverId: '10.20.0.2', requestedIp: offer.yiaddr }), undefined);
  t.is((await ask(s, { kind: 'udhcpc', mac: mac(4), xid: 4 }))?.packet.yiaddr, offer.yiaddr);
});

const requestRows: [string, Partial<RequestInit>, 'ACK' | 'NAK' | 'silent', ('unicast' | 'relay')?][] = [
  ['SELECTING our offer', { serverId: US, requestedIp: 'OFFERED' }, 'ACK'],
  ['SELECTING with an address we did not offer, held by someone else', { serverId: US, requestedIp: '10.20.0.105' }, 'NAK'],
  ['INIT-REBOOT with the address it holds', { requestedIp: 'OFFERED' }, 'ACK'],
  ['INIT-REBOOT from another network', { requestedIp: '192.168.7.7' }, 'NAK'],
  ['INIT-REBOOT with an address held by someone else', { requestedIp: '10.20.0.105' }, 'NAK'],
  ['INIT-REBOOT for this subnet outside our pool, from a client we know', { requestedIp: '10.20.0.20' }, 'NAK'],
  ['RENEWING (ciaddr, unicast): ACK back to ciaddr', { ciaddr: 'OFFERED' }, 'ACK', 'unicast'],
  ['RENEWING an address outside our pool: not ours to answer', { ciaddr: '10.20.0.20' }, 'silent'],
  ['RELAYED SELECTING: the reply goes to giaddr:67', { serverId: US, requestedIp: 'OFFERED', giaddr: '10.20.0.250' }, 'ACK', 'relay'],
  ['RELAYED from another subnet: not ours', { serverId: US, requestedIp: 'OFFERED', giaddr: '10.99.0.1' }, 'silent'],
  ['no 54, no 50, no ciaddr', {}, 'silent'],
];
for (const [title, fields, expected, via] of requestRows) {
  test(`REQUEST ${title} → ${expected}`, async (t) => {
    const { s } = await server(t);
    // Someone else holds .105.
    const other = (await ask(s, { kind: 'udhcpc', mac: mac(9), xid: 9, requestedIp: '10.20.0.105' }))!.packet;
    t.is(other.yiaddr, '10.20.0.105');
    t.is(type((await ask(s, { kind: 'udhcpc', mac: mac(9), xid: 9, type: MessageType.REQUEST, serverId: US, requestedIp: '10.20.0.105' }))!.packet), MessageType.ACK);
    const offered = (await ask(s, { kind: 'dhclient', mac: mac(5), xid: 10 }))!.packet.yiaddr;
    const sub = (v: string | undefined) => (v === 'OFFERED' ? offered : v);
    const r = await ask(s, { kind: 'dhclient', mac: mac(5), xid: 11, type: MessageType.REQUEST, ...fields, requestedIp: sub(fields.requestedIp), ciaddr: sub(fields.ciaddr) });
    if (expected === 'silent') return t.is(r, undefined);
    t.truthy(r);
    t.is(type(r!.packet), expected === 'ACK' ? MessageType.ACK : MessageType.NAK);
    if (expected === 'ACK') {
      t.is(r!.packet.yiaddr, offered);
      t.is(r!.to.via, via ?? 'broadcast');
      if (via === 'unicast') t.deepEqual(r!.to, { address: offered, port: 68, via: 'unicast' });
      if (via === 'relay') t.deepEqual(r!.to, { address: '10.20.0.250', port: 67, via: 'relay' });
    } else {
      t.is(r!.packet.yiaddr, '0.0.0.0');
      t.is(r!.packet.options.serverId(), US);
      t.is(r!.to.address, '255.255.255.255', 'a NAK is broadcast');
    }
  });
}

test('RELEASE frees the address for others; the client gets it back first', async (t) => {
  const { s } = await server(t, { 'dhcp-range': '10.20.0.100,10.20.0.101' });
  const a = (await ask(s, { kind: 'udhcpc', mac: mac(1), xid: 1 }))!.packet.yiaddr;
  await ask(s, { kind: 'udhcpc', mac: mac(1), xid: 2, type: MessageType.REQUEST, serverId: US, requestedIp: a });
  t.is(await ask(s, { kind: 'udhcpc', mac: mac(1), xid: 3, type: MessageType.RELEASE, serverId: US, ciaddr: a }), undefined);
  t.is(s.pool.get(a)?.state, 'released');
  t.is((await ask(s, { kind: 'udhcpc', mac: mac(1), xid: 4 }))!.packet.yiaddr, a);
});

test('DECLINE quarantines the address: the client is offered another one, nobody gets it', async (t) => {
  const { s } = await server(t, { 'dhcp-range': '10.20.0.100,10.20.0.101' });
  const a = (await ask(s, { kind: 'dhclient', mac: mac(1), xid: 1 }))!.packet.yiaddr;
  await ask(s, { kind: 'dhclient', mac: mac(1), xid: 2, type: MessageType.REQUEST, serverId: US, requestedIp: a });
  await ask(s, { kind: 'dhclient', mac: mac(1), xid: 3, type: MessageType.DECLINE, serverId: US, requestedIp: a });
  t.is(s.pool.get(a)?.state, 'declined');
  const b = (await ask(s, { kind: 'dhclient', mac: mac(1), xid: 4 }))!.packet.yiaddr;
  t.not(b, a);
  await ask(s, { kind: 'dhclient', mac: mac(1), xid: 5, type: MessageType.REQUEST, serverId: US, requestedIp: b });
  t.is(await ask(s, { kind: 'dhclient', mac: mac(2), xid: 6 }), undefined, 'pool exhausted: the declined one is not offered');
});

test('INFORM: an ACK with configuration, no address and no lease time, to ciaddr', async (t) => {
  const { s } = await server(t);
  const r = (await ask(s, { kind: 'dhclient', mac: mac(1), xid: 1, type: MessageType.INFORM, ciaddr: '10.20.0.30' }))!;
  t.is(type(r.packet), MessageType.ACK);
  t.is(r.packet.yiaddr, '0.0.0.0');
  t.is(r.packet.options.leaseTime(), undefined);
  t.truthy(r.packet.options.get(Opt.ROUTER));
  t.deepEqual(r.to, { address: '10.20.0.30', port: 68, via: 'unicast' });
  t.is(s.pool.find({ mac: mac(1) }), undefined, 'no lease');
  t.is(await ask(s, { kind: 'dhclient', mac: mac(1), xid: 2, type: MessageType.INFORM, ciaddr: '192.168.9.9' }), undefined, 'a host of another subnet: our options are not its');
});

test('metrics and timeline: requests and replies counted with mode full, the ACKed address tied to the MAC', async (t) => {
  const { s, ctx } = await server(t);
  const offer = (await ask(s, { kind: 'bios', mac: mac(7), xid: 1 }))!.packet;
  await ask(s, { kind: 'bios', mac: mac(7), xid: 2, type: MessageType.REQUEST, serverId: US, requestedIp: offer.yiaddr });
  const text = await ctx.metrics.registry.metrics();
  t.regex(text, /bootcfg_dhcp_requests_total\{type="DISCOVER",mode="full",arch="bios"\} 1/);
  t.regex(text, /bootcfg_dhcp_replies_total\{type="ACK",mode="full",arch="bios"\} 1/);
  t.regex(text, /bootcfg_dhcp_leases\{state="bound"\} 1\n/);
  t.regex(text, /bootcfg_dhcp_leases\{state="free"\} 9\n/);
  t.is(ctx.timeline.macForAddress(offer.yiaddr), mac(7));
  t.deepEqual(
    ctx.timeline.get(mac(7))!.events.map((e) => e.step),
    ['dhcp.request', 'dhcp.reply', 'dhcp.request', 'dhcp.reply'],
  );
  t.is((ctx.timeline.get(mac(7))!.events[3]!.detail as { file?: string }).file, 'undionly.kpxe', 'the boot file, where the progress rules read it');
  // A plain host (no option 93) gets its address tied to its MAC, but no boot timeline.
  const plain = (await ask(s, { kind: 'udhcpc', mac: mac(8), xid: 3 }))!.packet;
  await ask(s, { kind: 'udhcpc', mac: mac(8), xid: 4, type: MessageType.REQUEST, serverId: US, requestedIp: plain.yiaddr });
  t.is(ctx.timeline.get(mac(8)), undefined);
  t.is(ctx.timeline.macForAddress(plain.yiaddr), mac(8));
});

test('leases survive a restart of the server on the same lease file', async (t) => {
  const { s, config, ctx } = await server(t);
  const offer = (await ask(s, { kind: 'udhcpc', mac: mac(8), xid: 1 }))!.packet;
  await ask(s, { kind: 'udhcpc', mac: mac(8), xid: 2, type: MessageType.REQUEST, serverId: US, requestedIp: offer.yiaddr });
  await s.leases.abandon(); // as if killed
  const again = fullHarness(config, { timeline: ctx.timeline, boot: { firmware: { has: () => false } } });
  await again.start();
  t.is((await ask(again, { kind: 'udhcpc', mac: mac(99), xid: 3 }))!.packet.yiaddr !== offer.yiaddr, true, 'a new client gets another address');
  t.is((await ask(again, { kind: 'udhcpc', mac: mac(8), xid: 4 }))!.packet.yiaddr, offer.yiaddr, 'the old client its own');
  await again.stop();
});

test('30,000 mutated real-shaped packets through the full server: nothing throws, the pool stays consistent, a valid client is still served', async (t) => {
  const { mutate, rng } = await import('./mutate.ts');
  const { seedCorpus } = await import('./fixtures.ts');
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-full-fuzz-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = resolveConfig(
    { iface: 'br0', dhcp: 'full', 'dhcp-range': '10.20.1.0,10.20.255.254', 'data-path': dir },
    { lookupInterface: () => ({ address: US, netmask: '255.255.0.0' }), isTty: false },
  );
  const s = fullHarness(config, { boot: { firmware: { has: () => true } } });
  const ctx = s;
  const { sent } = s;
  await s.start();
  t.teardown(() => s.stop());
  const seeds = seedCorpus();
  const rand = rng(0xf011);
  let thrown = 0;
  for (let i = 0; i < 30_000; i++) {
    try {
      await s.onPacket(mutate(seeds[i % seeds.length]!, rand), { address: '0.0.0.0', port: 68 });
    } catch {
      thrown++;
    }
  }
  t.is(thrown, 0);
  t.true(sent.length > 0, 'the packets that still parse as requests were answered');
  for (const b of sent) t.notThrows(() => parsePacket(b));
  const active = s.pool.all().filter((l) => l.mac && s.pool.isActive(l));
  t.is(new Set(active.map((l) => l.mac)).size, active.length, 'no client holds two addresses');
  const before = sent.length;
  await s.onPacket(encodePacket(request({ kind: 'uefi7', mac: mac(0xfe), xid: 0xabc })), { address: '0.0.0.0', port: 68 });
  t.is(sent.length, before + 1);
  const offer = parsePacket(sent.at(-1)!);
  t.is(offer.options.messageType(), MessageType.OFFER);
  t.is(offer.file, 'ipxe.efi');
  t.regex(await ctx.metrics.registry.metrics(), /bootcfg_malformed_packets_total\{protocol="dhcp"\} [1-9]/);
});

test('a lease that cannot be written gets no ACK (counted); the retry after the file recovers does', async (t) => {
  const { s, ctx } = await server(t);
  const offer = (await ask(s, { kind: 'udhcpc', mac: mac(1), xid: 1 }))!.packet;
  // The journal's descriptor goes bad under the server (as on EIO): the append fails.
  await (s.leases as unknown as { journal: { close(): Promise<void> } }).journal.close();
  t.is(await ask(s, { kind: 'udhcpc', mac: mac(1), xid: 2, type: MessageType.REQUEST, serverId: US, requestedIp: offer.yiaddr }), undefined, 'no ACK for a lease not on disk');
  t.regex(await ctx.metrics.registry.metrics(), /bootcfg_dhcp_lease_write_failures_total 1\n/);
  t.is(s.pool.get(offer.yiaddr)?.mac, mac(1), 'the address stays reserved for this client meanwhile');
  // The client asks again; the next write starts a fresh snapshot + journal.
  const ack = await ask(s, { kind: 'udhcpc', mac: mac(1), xid: 3, type: MessageType.REQUEST, serverId: US, requestedIp: offer.yiaddr });
  t.is(ack?.packet.options.messageType(), MessageType.ACK);
  await s.leases.abandon();
  const { LeaseFile } = await import('../../src/dhcp/lease-file.ts');
  const { LeasePool } = await import('../../src/dhcp/leases.ts');
  const pool = new LeasePool({ start: '10.20.0.100', end: '10.20.0.109', leaseTime: 3600 });
  const lf = new LeaseFile(s.leases.file, pool, pino({ level: 'silent' }));
  await lf.open();
  t.is(pool.get(offer.yiaddr)?.state, 'bound', 'on disk after the retry');
  await lf.close();
});
