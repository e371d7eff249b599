/**
 * The wire rules every reply follows, against scripted clients and a scripted relay agent in
 * namespaces (needs root): relays (RFC 3046, RFC 3527, RFC 2131 §4.1) in ProxyDHCP and full
 * mode, the client id echo (RFC 6842), the size limit of option 57 (RFC 2131 §2) with shedding
 * and overload, the boot item echo on 4011 (PXE 2.1) and the ProxyDHCP rule for a REQUEST
 * without option 54.
 *
 * The LAN: the appliance on 10.77.0.1; c0 is a relay agent (10.77.0.9 on the LAN, giaddr
 * 10.88.0.1 for a relayed subnet behind it, routed from the server through it); c1 a client.
 */
import test, { type ExecutionContext } from 'ava';
import { isRoot } from '../helpers/netns.ts';
import { MessageType, Opt } from '../../src/dhcp/options.ts';
import { FLAG_BROADCAST } from '../../src/dhcp/packet.ts';
import { relayAgentInfo } from './fixtures.ts';
import { createLan, LAN, runPxeClient, startOnLan, testMac, type ClientScript, type ProxyLan, type Reply } from './scripted.ts';

const maybe = isRoot ? test.serial : test.skip;
const RELAY_LAN = '10.77.0.9';
const GIADDR = '10.88.0.1';
const CLIENT_IP = '10.77.0.51';
const BASE = `http://${LAN.server}:8080`;

let lan: ProxyLan;

if (isRoot) {
  test.before(async () => {
    lan = await createLan({ clients: 2 });
    const relay = lan.clients[0]!;
    await relay.ip('addr', 'add', `${RELAY_LAN}/24`, 'dev', 'eth0');
    await relay.ip('addr', 'add', `${GIADDR}/24`, 'dev', 'eth0');
    await lan.srv.ip('route', 'add', '10.88.0.0/24', 'via', RELAY_LAN);
  });
  test.after.always(async () => {
    await lan?.destroy();
  });
}

type App = Awaited<ReturnType<typeof startOnLan>>;

async function appliance(t: ExecutionContext, args: string[] = []): Promise<App> {
  const app = await startOnLan(lan.srv, args);
  t.teardown(() => app.stop().then(() => undefined));
  await app.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('pxe-bootserver: listening'));
  return app;
}

const FULL = ['--dhcp', 'full', '--dhcp-range', `${LAN.prefix}.100,${LAN.prefix}.120`, '--dhcp-router', `${LAN.prefix}.254`, '--dhcp-dns', `${LAN.prefix}.53`];

let xidCounter = 0x6b000000;
const nextXid = () => (xidCounter += 1);

/** A request relayed by c0: from 10.77.0.9:67 to the server, giaddr 10.88.0.1; the reply comes back to giaddr:67. */
function viaRelay(script: Omit<ClientScript, 'iface' | 'giaddr' | 'to' | 'fromPort'>): Promise<Reply[]> {
  return runPxeClient(lan.clients[0]!, { waitMs: 3000, maxReplies: 1, ...script, iface: 'eth0', giaddr: GIADDR, to: { address: LAN.server, port: 67 }, fromPort: 67 });
}

const hex = (b: Buffer | undefined) => b?.toString('hex');

maybe(
  'relay, proxy: a relayed DISCOVER gets its OFFER at giaddr:67 with option 82 echoed byte for byte and the broadcast flag set (no address yet), though the client asked for none (needs root)',
  async (t) => {
    const app = await appliance(t);
    const mac = testMac();
    const relayInfo = relayAgentInfo('ge-0/0/7.100', 'access-sw-3');
    // iPXE sets no broadcast flag (wire.md); through a relay it must be set anyway.
    const replies = await viaRelay({ kind: 'ipxe-bios', mac, xid: nextXid(), type: MessageType.DISCOVER, options: { [Opt.RELAY_AGENT_INFO]: relayInfo.toString('hex') } });
    t.is(replies.length, 1);
    const r = replies[0]!;
    t.deepEqual(r.from, { address: LAN.server, port: 67 });
    t.is(r.packet.options.messageType(), MessageType.OFFER);
    t.is(r.packet.giaddr, GIADDR);
    t.is(r.packet.flags, FLAG_BROADCAST, 'broadcast flag set for a client without an address');
    t.is(hex(r.packet.options.relayAgentInfo()), relayInfo.toString('hex'), '82 echoed unchanged');
    t.is(r.packet.options.bootfileName(), `${BASE}/boot.ipxe`);
    const line = await app.waitForLog((l) => l.mac === mac && l.reply === 'OFFER');
    t.is(line.to, `${GIADDR}:67`);
  },
);

maybe('relay, proxy: a relayed REQUEST from a client that has its address (ciaddr) keeps its own flag; 82 still echoed (needs root)', async (t) => {
  await appliance(t);
  const relayInfo = relayAgentInfo('ge-0/0/8.100', 'access-sw-3');
  const replies = await viaRelay({
    kind: 'ipxe-efi',
    mac: testMac(),
    xid: nextXid(),
    type: MessageType.REQUEST,
    serverId: LAN.server,
    ciaddr: '10.88.0.50',
    options: { [Opt.RELAY_AGENT_INFO]: relayInfo.toString('hex') },
  });
  t.is(replies.length, 1);
  const p = replies[0]!.packet;
  t.is(p.options.messageType(), MessageType.ACK);
  t.is(p.flags, 0, 'the relay can unicast to ciaddr: the flag is the client’s');
  t.is(hex(p.options.relayAgentInfo()), relayInfo.toString('hex'));
});

maybe('client id, proxy: option 61 in any form comes back unchanged in the OFFER and the ACK (RFC 6842) (needs root)', async (t) => {
  await appliance(t);
  const mac = testMac();
  const clientId = Buffer.concat([Buffer.from([0]), Buffer.from('rack7-node12', 'latin1')]).toString('hex');
  for (const type of [MessageType.DISCOVER, MessageType.REQUEST]) {
    const replies = await runPxeClient(lan.clients[1]!, { kind: 'bios', mac, xid: nextXid(), type, iface: 'eth0', waitMs: 3000, maxReplies: 1, options: { [Opt.CLIENT_ID]: clientId } });
    t.is(replies.length, 1, `reply to ${type}`);
    t.is(hex(replies[0]!.packet.options.get(Opt.CLIENT_ID)), clientId);
  }
});

maybe('size, proxy: a relayed BIOS DISCOVER with option 57 = 576 and long 61 and 82 gets a reply within 548 bytes: 82 rides in sname (52 = 2), the boot file stays in file (needs root)', async (t) => {
  await appliance(t);
  const relayInfo = Buffer.concat([relayAgentInfo('c'.repeat(30), 'r'.repeat(24))]);
  t.is(relayInfo.length, 58);
  const clientId = Buffer.alloc(200, 0x43).toString('hex');
  const replies = await viaRelay({
    kind: 'bios',
    mac: testMac(),
    xid: nextXid(),
    type: MessageType.DISCOVER,
    options: { [Opt.MAX_MESSAGE_SIZE]: '0240', [Opt.CLIENT_ID]: clientId, [Opt.RELAY_AGENT_INFO]: relayInfo.toString('hex') },
  });
  t.is(replies.length, 1);
  const r = replies[0]!;
  t.true(r.bytes.length <= 576 - 28, `${r.bytes.length} bytes`);
  t.is(r.packet.options.overload(), 2, 'sname holds options');
  t.is(r.packet.file, 'undionly.kpxe', 'the BIOS ROM still finds its file in the BOOTP field');
  t.is(hex(r.packet.options.get(Opt.CLIENT_ID)), clientId);
  t.is(hex(r.packet.options.relayAgentInfo()), relayInfo.toString('hex'));
  t.is(hex(r.packet.options.get(Opt.VENDOR_SPECIFIC)), '060108ff');
});

maybe('boot item, 4011: the ACK echoes the 43.71 the client asked for, beside the 43 its target carries (needs root)', async (t) => {
  await appliance(t);
  const c = lan.clients[1]!;
  await c.ip('addr', 'add', `${CLIENT_IP}/${LAN.cidr}`, 'dev', 'eth0');
  t.teardown(() => c.ip('addr', 'del', `${CLIENT_IP}/${LAN.cidr}`, 'dev', 'eth0').then(() => undefined));
  const rows: [ClientScript['kind'], string, string][] = [
    // BIOS: discovery control stays, the item is added.
    ['bios', '4704000000 00ff'.replace(' ', ''), '060108470400000000ff'],
    // iPXE's boot server discovery asks for item type 0x8003; UEFI has no other 43.
    ['uefi7', '470480030000ff', '470480030000ff'],
  ];
  for (const [kind, sent, want] of rows) {
    const replies = await runPxeClient(c, {
      kind,
      mac: testMac(),
      xid: nextXid(),
      type: MessageType.REQUEST,
      ciaddr: CLIENT_IP,
      to: { address: LAN.server, port: 4011 },
      fromPort: 4011,
      iface: 'eth0',
      waitMs: 3000,
      maxReplies: 1,
      options: { [Opt.VENDOR_SPECIFIC]: sent },
    });
    t.is(replies.length, 1, kind);
    t.is(hex(replies[0]!.packet.options.get(Opt.VENDOR_SPECIFIC)), want, kind);
  }
});

maybe('REQUEST without 54, proxy: a PXE client before it has an address (INIT-REBOOT shape) gets its ACK; one renewing or rebinding a lease (ciaddr set) gets nothing (needs root)', async (t) => {
  const app = await appliance(t);
  const c = lan.clients[1]!;
  await c.ip('addr', 'add', `${CLIENT_IP}/${LAN.cidr}`, 'dev', 'eth0');
  t.teardown(() => c.ip('addr', 'del', `${CLIENT_IP}/${LAN.cidr}`, 'dev', 'eth0').then(() => undefined));
  for (const kind of ['bios', 'uefi7'] as const) {
    const boot = await runPxeClient(c, { kind, mac: testMac(), xid: nextXid(), type: MessageType.REQUEST, requestedIp: CLIENT_IP, iface: 'eth0', waitMs: 3000, maxReplies: 1 });
    t.is(boot.length, 1, `${kind}: boot phase (ciaddr 0) answered`);
    t.is(boot[0]!.packet.options.messageType(), MessageType.ACK);

    const mac = testMac();
    // REBINDING: broadcast, ciaddr set, no 54, no 50. The reply would go to ciaddr:68, which c1 holds.
    const rebinding = await runPxeClient(c, { kind, mac, xid: nextXid(), type: MessageType.REQUEST, ciaddr: CLIENT_IP, iface: 'eth0', waitMs: 1500 });
    t.is(rebinding.length, 0, `${kind}: REBINDING not answered`);
    await app.waitForLog((l) => l.mac === mac && l.reason === 'not-boot-phase');
    // RENEWING: unicast to us.
    const renewing = await runPxeClient(c, { kind, mac: testMac(), xid: nextXid(), type: MessageType.REQUEST, ciaddr: CLIENT_IP, to: { address: LAN.server, port: 67 }, iface: 'eth0', waitMs: 1500 });
    t.is(renewing.length, 0, `${kind}: RENEWING not answered`);
  }
});

maybe(
  'relay, full: 82.5 (link selection) names our segment behind a relay on another subnet: OFFER and ACK from our pool at giaddr:67, 82 and 61 echoed; a relayed NAK is broadcast; a relay on no subnet we serve gets nothing (needs root)',
  async (t) => {
    const app = await appliance(t, FULL);
    const mac = testMac();
    const relayInfo = relayAgentInfo('ge-0/0/9.200', 'access-sw-4', `${LAN.prefix}.0`);
    const opt82 = { [Opt.RELAY_AGENT_INFO]: relayInfo.toString('hex') };
    const offers = await viaRelay({ kind: 'udhcpc', mac, xid: nextXid(), type: MessageType.DISCOVER, options: opt82 });
    t.is(offers.length, 1);
    const offer = offers[0]!.packet;
    t.is(offer.options.messageType(), MessageType.OFFER);
    t.regex(offer.yiaddr, /^10\.77\.0\.1[0-2]\d$/, 'an address of our segment’s pool');
    t.is(offer.giaddr, GIADDR);
    t.deepEqual([...offer.options.get(Opt.ROUTER)!], [10, 77, 0, 254]);
    t.is(hex(offer.options.relayAgentInfo()), relayInfo.toString('hex'));
    t.is(hex(offer.options.get(Opt.CLIENT_ID)), `01${mac.replaceAll(':', '')}`);

    const acks = await viaRelay({ kind: 'udhcpc', mac, xid: nextXid(), type: MessageType.REQUEST, serverId: LAN.server, requestedIp: offer.yiaddr, options: opt82 });
    t.is(acks[0]?.packet.options.messageType(), MessageType.ACK);
    t.is(acks[0]!.packet.yiaddr, offer.yiaddr);
    t.is(hex(acks[0]!.packet.options.relayAgentInfo()), relayInfo.toString('hex'));

    const naks = await viaRelay({ kind: 'udhcpc', mac, xid: nextXid(), type: MessageType.REQUEST, requestedIp: '192.168.7.7', options: opt82 });
    t.is(naks[0]?.packet.options.messageType(), MessageType.NAK);
    t.is(naks[0]!.packet.flags, FLAG_BROADCAST, 'the relay broadcasts a NAK');
    t.is(hex(naks[0]!.packet.options.relayAgentInfo()), relayInfo.toString('hex'));

    const other = testMac();
    const none = await viaRelay({
      kind: 'udhcpc',
      mac: other,
      xid: nextXid(),
      type: MessageType.DISCOVER,
      waitMs: 1500,
      options: { [Opt.RELAY_AGENT_INFO]: relayAgentInfo('ge-0/0/9.300', 'access-sw-4').toString('hex') },
    });
    t.is(none.length, 0, 'giaddr 10.88.0.1 is on no subnet this appliance serves');
    await app.waitForLog((l) => l.mac === other && l.reason === 'relay-other-subnet');
  },
);

maybe('size, full: option 57 = 576 and a 200-byte client id: the OFFER fits 548 bytes by shedding what the client did not ask for (58, 59), keeping what it did (needs root)', async (t) => {
  const dns = Array.from({ length: 15 }, (_, i) => `${LAN.prefix}.${30 + i}`).join(',');
  const args = FULL.slice(0, -1).concat(dns);
  await appliance(t, args);
  const clientId = Buffer.alloc(200, 0x49).toString('hex');
  const replies = await runPxeClient(lan.clients[1]!, {
    kind: 'udhcpc',
    mac: testMac(),
    xid: nextXid(),
    type: MessageType.DISCOVER,
    iface: 'eth0',
    waitMs: 3000,
    maxReplies: 1,
    options: { [Opt.MAX_MESSAGE_SIZE]: '0240', [Opt.CLIENT_ID]: clientId },
  });
  t.is(replies.length, 1);
  const r = replies[0]!;
  t.true(r.bytes.length <= 548, `${r.bytes.length} bytes`);
  const o = r.packet.options;
  t.is(o.overload(), undefined, 'shedding was enough');
  t.false(o.has(Opt.RENEWAL_TIME));
  t.false(o.has(Opt.REBINDING_TIME));
  // udhcpc asks for 1, 3, 6, 12, 15, 28, 42.
  t.is(o.get(Opt.DNS)?.length, 60, 'the 15 DNS servers it asked for');
  t.truthy(o.get(Opt.BROADCAST_ADDRESS));
  t.is(o.leaseTime(), 3600);
  t.is(hex(o.get(Opt.CLIENT_ID)), clientId);
});
