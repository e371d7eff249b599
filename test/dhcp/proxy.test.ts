/**
 * ProxyDHCP and the 4011 boot server against scripted PXE clients, inside namespaces
 * (needs root). Every field of every reply is checked against shared/notes/wire.md.
 */
import test, { type ExecutionContext } from 'ava';
import { isRoot } from '../helpers/netns.ts';
import { MessageType, Opt } from '../../src/dhcp/options.ts';
import { MAGIC_COOKIE } from '../../src/dhcp/packet.ts';
import { GUID_97, type ClientKind } from './fixtures.ts';
import { createLan, LAN, optionsHex, runPxeClient, startOnLan, testMac, type ProxyLan, type Reply } from './scripted.ts';

const maybe = isRoot ? test.serial : test.skip;
const BASE = `http://${LAN.server}:8080`;
const CLIENT_IP = '10.77.0.50';

let lan: ProxyLan;
let app: Awaited<ReturnType<typeof startOnLan>>;

if (isRoot) {
  test.before(async () => {
    lan = await createLan({ clients: 1 });
    app = await startOnLan(lan.srv);
    await app.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('pxe-bootserver: listening'));
  });
  test.after.always(async () => {
    await app?.stop();
    await lan?.destroy();
  });
}

let xidCounter = 0x5a000000;
const nextXid = () => (xidCounter += 1);

interface Expect {
  file: string;
  vendorClass: 'PXEClient' | 'HTTPClient';
  bios43: boolean;
}

/** Every field of a proxy reply, as wire.md lists them. */
function checkBootReply(t: ExecutionContext, r: Reply, req: { xid: number; mac: string; flags: number; ciaddr?: string; sent61?: boolean }, type: number, want: Expect): void {
  const p = r.packet;
  t.is(p.op, 2, 'BOOTREPLY');
  t.is(p.htype, 1);
  t.is(p.hlen, 6);
  t.is(p.xid, req.xid, 'xid echoed');
  t.is(p.chaddr.subarray(0, 6).toString('hex'), req.mac.replaceAll(':', ''), 'chaddr echoed');
  t.true(p.chaddr.subarray(6).every((b) => b === 0));
  t.is(p.flags, req.flags, 'flags echoed');
  t.is(p.yiaddr, '0.0.0.0', 'proxy never hands an address');
  t.is(p.ciaddr, req.ciaddr ?? '0.0.0.0');
  t.is(p.siaddr, LAN.server, 'siaddr = us');
  t.is(p.giaddr, '0.0.0.0');
  t.is(p.sname, LAN.server, 'sname = us');
  t.is(p.file, want.file, 'BOOTP file');
  t.true(r.bytes.length >= 300, 'padded to 300 bytes');
  t.is(r.bytes.readUInt32BE(236), MAGIC_COOKIE);
  t.deepEqual([...r.bytes.subarray(240, 243)], [Opt.MESSAGE_TYPE, 1, type], 'option 53 first');
  const expected: Record<number, string> = {
    [Opt.MESSAGE_TYPE]: Buffer.from([type]).toString('hex'),
    [Opt.SERVER_ID]: Buffer.from(LAN.server.split('.').map(Number)).toString('hex'),
    [Opt.VENDOR_CLASS]: Buffer.from(want.vendorClass).toString('hex'),
    [Opt.BOOTFILE_NAME]: Buffer.from(want.file).toString('hex'),
    [Opt.CLIENT_GUID]: GUID_97.toString('hex'),
  };
  if (want.bios43) expected[Opt.VENDOR_SPECIFIC] = '060108ff';
  // iPXE sends option 61 (01 + MAC); every reply echoes it (RFC 6842).
  if (req.sent61) expected[Opt.CLIENT_ID] = `01${req.mac.replaceAll(':', '')}`;
  t.deepEqual(optionsHex(p), expected, 'exactly these options');
}

const discoverCases: [ClientKind, Expect | undefined][] = [
  ['bios', { file: 'undionly.kpxe', vendorClass: 'PXEClient', bios43: true }],
  ['uefi7', { file: 'ipxe.efi', vendorClass: 'PXEClient', bios43: false }],
  ['uefi9', { file: 'ipxe.efi', vendorClass: 'PXEClient', bios43: false }],
  ['httpboot16', { file: `${BASE}/firmware/ipxe.efi`, vendorClass: 'HTTPClient', bios43: false }],
  ['ipxe-bios', { file: `${BASE}/boot.ipxe`, vendorClass: 'PXEClient', bios43: false }],
  ['ipxe-efi', { file: `${BASE}/boot.ipxe`, vendorClass: 'PXEClient', bios43: false }],
  ['ipxe-175-only', { file: `${BASE}/boot.ipxe`, vendorClass: 'PXEClient', bios43: false }],
  // Debian ships no arm64 iPXE build: arm64 PXE boots GRUB; arm64 HTTP Boot is ignored with a reason, never a file that is not there.
  ['arm64', { file: 'grubaa64.efi', vendorClass: 'PXEClient', bios43: false }],
  ['httpboot19', undefined],
  // Not PXE clients (no option 93): the site's server deals with them.
  ['udhcpc', undefined],
  ['dhclient', undefined],
];

for (const [kind, want] of discoverCases) {
  maybe(`proxy: DISCOVER from ${kind} → ${want ? `OFFER with ${want.file}` : 'no answer'} (needs root)`, async (t) => {
    const mac = testMac();
    const xid = nextXid();
    const replies = await runPxeClient(lan.clients[0]!, { kind, mac, xid, type: MessageType.DISCOVER, iface: 'eth0', waitMs: want ? 3000 : 1200, maxReplies: 1 });
    if (!want) {
      t.is(replies.length, 0, 'no reply');
      if (kind === 'httpboot19') {
        const line = await app.waitForLog((l) => l.mac === mac && l.reason === 'no-firmware');
        t.regex(String(line.detail), /ipxe-arm64\.efi/);
      }
      return;
    }
    t.is(replies.length, 1);
    const r = replies[0]!;
    t.deepEqual(r.from, { address: LAN.server, port: 67 });
    // iPXE does not set the broadcast flag; the firmware PXE clients do (wire.md).
    const flags = kind.startsWith('ipxe') ? 0 : 0x8000;
    checkBootReply(t, r, { xid, mac, flags, sent61: kind.startsWith('ipxe') }, MessageType.OFFER, want);
    const line = await app.waitForLog((l) => l.mac === mac && l.reply === 'OFFER');
    t.is(line.file, want.file);
    t.is(line.ipxe, kind.startsWith('ipxe'));
  });
}

maybe('proxy: REQUEST naming us (or no server) gets an ACK with the same boot info; one naming another server gets nothing (needs root)', async (t) => {
  const c = lan.clients[0]!;
  for (const kind of ['bios', 'uefi7', 'ipxe-efi'] as ClientKind[]) {
    const mac = testMac();
    const ours = nextXid();
    const replies = await runPxeClient(c, { kind, mac, xid: ours, type: MessageType.REQUEST, serverId: LAN.server, iface: 'eth0', waitMs: 3000, maxReplies: 1 });
    t.is(replies.length, 1, kind);
    const want: Expect =
      kind === 'bios'
        ? { file: 'undionly.kpxe', vendorClass: 'PXEClient', bios43: true }
        : kind === 'uefi7'
          ? { file: 'ipxe.efi', vendorClass: 'PXEClient', bios43: false }
          : { file: `${BASE}/boot.ipxe`, vendorClass: 'PXEClient', bios43: false };
    checkBootReply(t, replies[0]!, { xid: ours, mac, flags: kind.startsWith('ipxe') ? 0 : 0x8000, sent61: kind.startsWith('ipxe') }, MessageType.ACK, want);

    const theirs = await runPxeClient(c, { kind, mac, xid: nextXid(), type: MessageType.REQUEST, serverId: '10.77.0.254', requestedIp: CLIENT_IP, iface: 'eth0', waitMs: 1000 });
    t.is(theirs.length, 0, `${kind}: never ACK/NAK a REQUEST for another server`);
    // Naming no server (Intel ROMs, Pixiecore issue 21): the same ACK, still without an address.
    const noneXid = nextXid();
    const none = await runPxeClient(c, { kind, mac, xid: noneXid, type: MessageType.REQUEST, requestedIp: CLIENT_IP, iface: 'eth0', waitMs: 3000, maxReplies: 1 });
    t.is(none.length, 1, `${kind}: a PXE REQUEST naming no server is answered`);
    checkBootReply(t, none[0]!, { xid: noneXid, mac, flags: kind.startsWith('ipxe') ? 0 : 0x8000, sent61: kind.startsWith('ipxe') }, MessageType.ACK, want);
  }
});

maybe('proxy: a relayed DISCOVER is answered to giaddr:67 (needs root)', async (t) => {
  const c = lan.clients[0]!;
  await c.ip('addr', 'add', `${CLIENT_IP}/${LAN.cidr}`, 'dev', 'eth0');
  t.teardown(() => c.ip('addr', 'del', `${CLIENT_IP}/${LAN.cidr}`, 'dev', 'eth0').then(() => undefined));
  const mac = testMac();
  const xid = nextXid();
  // The relay agent sends from port 67 to the server; the reply must come back to giaddr:67.
  const replies = await runPxeClient(c, {
    kind: 'uefi7',
    mac,
    xid,
    type: MessageType.DISCOVER,
    giaddr: CLIENT_IP,
    to: { address: LAN.server, port: 67 },
    fromPort: 67,
    iface: 'eth0',
    waitMs: 3000,
    maxReplies: 1,
  });
  t.is(replies.length, 1);
  t.is(replies[0]!.packet.giaddr, CLIENT_IP, 'giaddr echoed');
  t.is(replies[0]!.packet.file, 'ipxe.efi');
  const line = await app.waitForLog((l) => l.mac === mac && l.reply === 'OFFER');
  t.is(line.to, `${CLIENT_IP}:67`);
  t.is(line.via, 'relay');
});

maybe('bootserver: OVMF request from its address:4011 to us:4011 gets the ACK at its address:4011 (needs root)', async (t) => {
  const c = lan.clients[0]!;
  await c.ip('addr', 'add', `${CLIENT_IP}/${LAN.cidr}`, 'dev', 'eth0');
  t.teardown(() => c.ip('addr', 'del', `${CLIENT_IP}/${LAN.cidr}`, 'dev', 'eth0').then(() => undefined));
  for (const kind of ['uefi7', 'uefi9'] as ClientKind[]) {
    const mac = testMac();
    const xid = nextXid();
    const replies = await runPxeClient(c, {
      kind,
      mac,
      xid,
      type: MessageType.REQUEST,
      ciaddr: CLIENT_IP,
      to: { address: LAN.server, port: 4011 },
      fromPort: 4011,
      iface: 'eth0',
      waitMs: 3000,
      maxReplies: 1,
    });
    t.is(replies.length, 1, kind);
    t.deepEqual(replies[0]!.from, { address: LAN.server, port: 4011 });
    checkBootReply(t, replies[0]!, { xid, mac, flags: 0x8000, ciaddr: CLIENT_IP }, MessageType.ACK, { file: 'ipxe.efi', vendorClass: 'PXEClient', bios43: false });
    const line = await app.waitForLog((l) => l.mac === mac && l.reply === 'ACK');
    t.is(line.to, `${CLIENT_IP}:4011`);
  }
});

maybe('bootserver: EFI iPXE ProxyDHCP request from port 68 gets the boot script URL at port 68 (needs root)', async (t) => {
  const c = lan.clients[0]!;
  await c.ip('addr', 'add', `${CLIENT_IP}/${LAN.cidr}`, 'dev', 'eth0');
  t.teardown(() => c.ip('addr', 'del', `${CLIENT_IP}/${LAN.cidr}`, 'dev', 'eth0').then(() => undefined));
  const mac = testMac();
  const xid = nextXid();
  const replies = await runPxeClient(c, {
    kind: 'ipxe-efi',
    mac,
    xid,
    type: MessageType.REQUEST,
    ciaddr: CLIENT_IP,
    serverId: LAN.server,
    to: { address: LAN.server, port: 4011 },
    fromPort: 68,
    iface: 'eth0',
    waitMs: 3000,
    maxReplies: 1,
  });
  t.is(replies.length, 1);
  t.deepEqual(replies[0]!.from, { address: LAN.server, port: 4011 });
  checkBootReply(t, replies[0]!, { xid, mac, flags: 0, ciaddr: CLIENT_IP, sent61: true }, MessageType.ACK, { file: `${BASE}/boot.ipxe`, vendorClass: 'PXEClient', bios43: false });
});

maybe('proxy: metrics count requests, replies and ignores by label (needs root)', async (t) => {
  const text = await lan.srv.exec('curl', ['-sf', `${BASE}/metrics`]);
  t.regex(text, /bootcfg_dhcp_replies_total\{type="OFFER",mode="proxy",arch="efi-x64"\} [1-9]/);
  t.regex(text, /bootcfg_dhcp_replies_total\{type="ACK",mode="bootserver",arch="efi-x64"\} [1-9]/);
  t.regex(text, /bootcfg_dhcp_ignored_total\{reason="no-firmware"\} [1-9]/);
  t.regex(text, /bootcfg_dhcp_ignored_total\{reason="other-server"\} [1-9]/);
  t.regex(text, /bootcfg_dhcp_ignored_total\{reason="not-pxe"\} [1-9]/);
});

maybe('proxy: the HTTP Boot URL handed out answers HEAD and GET as an EFI program (needs root)', async (t) => {
  const mac = testMac();
  const replies = await runPxeClient(lan.clients[0]!, { kind: 'httpboot16', mac, xid: nextXid(), type: MessageType.DISCOVER, iface: 'eth0', waitMs: 3000, maxReplies: 1 });
  t.is(replies.length, 1);
  const url = replies[0]!.packet.options.bootfileName()!;
  t.is(url, `${BASE}/firmware/ipxe.efi`);
  // As the firmware does: HEAD first, then GET; the file must be there and typed application/efi.
  const head = await lan.srv.exec('curl', ['-sfI', url]);
  t.regex(head, /^HTTP\/1\.1 200/m);
  t.regex(head, /content-type: application\/efi/i);
  t.regex(head, /content-length: \d+/i);
});
