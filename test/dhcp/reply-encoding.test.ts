/** What every reply echoes, and how a reply is fitted into the client's size limit: pure, table by table. */
import test from 'ava';
import { encodeTlv, MessageType, Opt } from '../../src/dhcp/options.ts';
import { emptyRequest, encodePacket, parsePacket, replyTo, type DhcpPacket } from '../../src/dhcp/packet.ts';
import { echoRequestOptions, fitReply, replyLimit } from '../../src/dhcp/reply-encoding.ts';

const US = '10.0.0.1';

function req(init: { opt57?: number; prl?: number[]; giaddr?: string; clientId?: Buffer; relayInfo?: Buffer } = {}): DhcpPacket {
  const p = emptyRequest();
  p.options.setU8(Opt.MESSAGE_TYPE, MessageType.DISCOVER);
  if (init.opt57 !== undefined) p.options.setU16(Opt.MAX_MESSAGE_SIZE, init.opt57);
  if (init.prl) p.options.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from(init.prl));
  if (init.clientId) p.options.set(Opt.CLIENT_ID, init.clientId);
  if (init.relayInfo) p.options.set(Opt.RELAY_AGENT_INFO, init.relayInfo);
  p.giaddr = init.giaddr ?? '0.0.0.0';
  return p;
}

const limitRows: [string, number | undefined, number][] = [
  ['no option 57: 576 minus IP and UDP headers', undefined, 548],
  ['57 below 576 is no 57 (RFC 2132)', 300, 548],
  ['57 = 576', 576, 548],
  ['57 = 1260 (a BIOS ROM)', 1260, 1232],
  ['57 = 1472', 1472, 1444],
  ['57 = 65280 (OVMF): capped at an Ethernet frame, no fragments', 65280, 1472],
];
for (const [what, opt57, want] of limitRows) {
  test(`replyLimit: ${what} → ${want}`, (t) => {
    t.is(replyLimit(req(opt57 === undefined ? {} : { opt57 })), want);
  });
}

const RELAY_INFO = encodeTlv(
  [
    [1, Buffer.from('eth0/1/7')],
    [2, Buffer.from('relay-a')],
  ],
  false,
);
const CLIENT_ID = Buffer.from('01525400aabb01', 'hex');
const echoRows: [string, Parameters<typeof req>[0], { clientId: boolean; relayInfo: boolean }][] = [
  ['61 is echoed unchanged (RFC 6842)', { clientId: CLIENT_ID }, { clientId: true, relayInfo: false }],
  ['82 from a relay is echoed unchanged', { giaddr: '10.9.0.1', relayInfo: RELAY_INFO }, { clientId: false, relayInfo: true }],
  ['82 without a relay (the client sent it) is not', { relayInfo: RELAY_INFO }, { clientId: false, relayInfo: false }],
  ['both, through a relay', { giaddr: '10.9.0.1', relayInfo: RELAY_INFO, clientId: CLIENT_ID }, { clientId: true, relayInfo: true }],
  ['neither', {}, { clientId: false, relayInfo: false }],
];
for (const [what, init, want] of echoRows) {
  test(`echoRequestOptions: ${what}`, (t) => {
    const request = req(init);
    const reply = replyTo(request);
    reply.options.setU8(Opt.MESSAGE_TYPE, MessageType.OFFER).setIp(Opt.SERVER_ID, US);
    echoRequestOptions(reply, request);
    t.deepEqual(reply.options.get(Opt.CLIENT_ID), want.clientId ? CLIENT_ID : undefined);
    t.deepEqual(reply.options.get(Opt.RELAY_AGENT_INFO), want.relayInfo ? RELAY_INFO : undefined);
    if (want.relayInfo) t.is(reply.options.codes().at(-1), Opt.RELAY_AGENT_INFO, '82 last, where relays append it');
  });
}

/** A full-mode-shaped reply: lease, mask, broadcast, router, a DNS list of `dns` servers, the boot file, a client id and maybe a relay's 82. */
function bigReply(request: DhcpPacket, row: FitRow): DhcpPacket {
  const r = replyTo(request);
  r.yiaddr = '10.0.0.100';
  r.siaddr = US;
  r.sname = US;
  r.file = FILE;
  const o = r.options;
  o.setU8(Opt.MESSAGE_TYPE, MessageType.OFFER).setIp(Opt.SERVER_ID, US).setU32(Opt.LEASE_TIME, 3600).setU32(Opt.RENEWAL_TIME, 1800).setU32(Opt.REBINDING_TIME, 3150);
  o.setIp(Opt.SUBNET_MASK, '255.255.255.0').setIp(Opt.BROADCAST_ADDRESS, '10.0.0.255').setIp(Opt.ROUTER, '10.0.0.254');
  o.setIps(
    Opt.DNS,
    Array.from({ length: row.dns }, (_, i) => `10.0.${1 + (i >> 8)}.${i & 255}`),
  );
  o.setString(Opt.BOOTFILE_NAME, FILE);
  o.set(Opt.CLIENT_ID, Buffer.alloc(row.clientId, 0x41));
  if (row.relayInfo) o.set(Opt.RELAY_AGENT_INFO, Buffer.alloc(row.relayInfo, 0x52));
  return r;
}

const FILE = 'undionly.kpxe';
const ALL = [1, 3, 6, 28, 58, 59];

interface FitRow {
  what: string;
  prl: number[];
  dns: number;
  clientId: number;
  relayInfo?: number;
  shed: number[];
  overload: number | undefined;
  file: string;
}

// Sizes: the limit is 548 (57 = 576), so the options field holds 308 bytes with End.
const fitRows: FitRow[] = [
  { what: 'options the client did not ask for are shed first, nothing overloaded', prl: [1, 3, 6], dns: 57, clientId: 20, shed: [28, 58, 59], overload: undefined, file: FILE },
  { what: 'everything asked for and still too big: sname carries options (52 = 2), file keeps the boot file', prl: ALL, dns: 58, clientId: 20, shed: [], overload: 2, file: FILE },
  { what: 'more: file and sname carry options (52 = 3), the boot file in 67 only', prl: ALL, dns: 64, clientId: 100, relayInfo: 40, shed: [], overload: 3, file: '' },
  { what: 'more than the fields hold: the optional options asked for go last', prl: ALL, dns: 150, clientId: 20, shed: [3, 6, 28, 58, 59], overload: undefined, file: '' },
];
for (const row of fitRows) {
  test(`fitReply: ${row.what}`, (t) => {
    const request = req({ opt57: 576, prl: row.prl });
    const reply = bigReply(request, row);
    const limit = replyLimit(request);
    t.true(encodePacket(reply).length > limit, 'the reply starts too big');
    const fit = fitReply(reply, request, limit);
    t.true(fit.bytes.length <= limit, `${fit.bytes.length} <= ${limit}`);
    const back = parsePacket(fit.bytes);
    for (const code of [1, 3, 6, 28, 51, 54, 58, 59]) t.is(back.options.has(code), !row.shed.includes(code), `option ${code} ${row.shed.includes(code) ? 'shed' : 'kept'}`);
    t.is(back.options.overload(), row.overload);
    t.is(back.file, row.file);
    t.is(back.options.bootfileName(), FILE, 'the boot file in 67 always');
    t.deepEqual(back.options.get(Opt.CLIENT_ID), Buffer.alloc(row.clientId, 0x41), 'the echoes survive whole');
    if (row.relayInfo) t.deepEqual(back.options.get(Opt.RELAY_AGENT_INFO), Buffer.alloc(row.relayInfo, 0x52));
    if (back.options.has(Opt.DNS)) t.is(back.options.get(Opt.DNS)!.length, row.dns * 4, 'DNS list whole');
    t.is(fit.bytes[240], Opt.MESSAGE_TYPE, 'option 53 first in the options field');
    t.regex(fit.how, row.overload ? /overloaded/ : /^fitted into 548 bytes: shed options/);
  });
}

test('fitReply: a reply that cannot fit however it is cut is refused with a RangeError', (t) => {
  const request = req({ opt57: 576 });
  const reply = replyTo(request);
  reply.options.setU8(Opt.MESSAGE_TYPE, MessageType.OFFER).set(Opt.CLIENT_ID, Buffer.alloc(255, 1)).set(Opt.RELAY_AGENT_INFO, Buffer.alloc(255, 2));
  t.throws(() => fitReply(reply, request, replyLimit(request)), { instanceOf: RangeError });
});
