import test from 'ava';
import { encodePacket, MAGIC_COOKIE, MalformedPacketError, parsePacket, replyTo, tryParsePacket, hardwareAddress, emptyRequest, BOOTREPLY, FLAG_BROADCAST } from '../../src/dhcp/packet.ts';
import { DhcpOptions, encodeTlv, MessageType, Opt, pxeDiscoveryControl, PxeSubOpt, IpxeSubOpt, messageTypeName, u16 } from '../../src/dhcp/options.ts';
import { GUID_97, request, requestBytes, ALL_KINDS } from './fixtures.ts';
import type { Mac } from '../../src/net/mac.ts';

const MAC = '52:54:00:12:34:56' as Mac;

/** A raw packet: 236-byte header, cookie, then the given option bytes. */
function raw(options: number[] | Buffer, patch?: (b: Buffer) => void): Buffer {
  const opt = Buffer.from(options);
  const b = Buffer.alloc(240 + opt.length);
  b[0] = 1;
  b[1] = 1;
  b[2] = 6;
  b.writeUInt32BE(0xdeadbeef, 4);
  Buffer.from('525400123456', 'hex').copy(b, 28);
  b.writeUInt32BE(MAGIC_COOKIE, 236);
  opt.copy(b, 240);
  patch?.(b);
  return b;
}

test('round trip: every header field and option survives encode → parse', (t) => {
  for (const kind of ALL_KINDS) {
    const p = request({ kind, mac: MAC, xid: 0x01020304, ciaddr: '10.0.0.9', giaddr: '10.1.0.1' });
    p.sname = 'server';
    p.file = 'boot/file';
    const q = parsePacket(encodePacket(p));
    t.is(q.op, 1, kind);
    t.is(q.xid, 0x01020304);
    t.is(q.flags, p.flags);
    t.is(q.secs, p.secs);
    t.is(q.hops, p.hops);
    t.is(q.ciaddr, '10.0.0.9');
    t.is(q.giaddr, '10.1.0.1');
    t.is(q.sname, 'server');
    t.is(q.file, 'boot/file');
    t.deepEqual(hardwareAddress(q), Buffer.from('525400123456', 'hex'));
    t.deepEqual(
      q.options.entries().sort((a, b) => a[0] - b[0]),
      p.options.entries().sort((a, b) => a[0] - b[0]),
      kind,
    );
  }
});

test('encode: option 53 first, End present, padded to 300 bytes', (t) => {
  const p = replyTo(request({ kind: 'bios', mac: MAC, xid: 7 }));
  p.options.setIp(Opt.SERVER_ID, '10.0.0.1').setString(Opt.VENDOR_CLASS, 'PXEClient').setU8(Opt.MESSAGE_TYPE, MessageType.OFFER);
  const b = encodePacket(p);
  t.is(b.length, 300);
  t.is(b.readUInt32BE(236), MAGIC_COOKIE);
  t.deepEqual([...b.subarray(240, 243)], [53, 1, 2]);
  const endAt = 240 + 3 + 6 + 11;
  t.is(b[endAt], 255);
  t.true(b.subarray(endAt + 1).every((x) => x === 0));
  t.is(b[0], BOOTREPLY);
});

test('encode: long values split into 255-byte runs and rejoin on parse (RFC 3396)', (t) => {
  const p = emptyRequest();
  p.options.setU8(Opt.MESSAGE_TYPE, 1).set(Opt.VENDOR_SPECIFIC, Buffer.alloc(600, 7));
  const b = encodePacket(p);
  t.true(b.length > 600);
  t.deepEqual(parsePacket(b).options.get(Opt.VENDOR_SPECIFIC), Buffer.alloc(600, 7));
});

test('encode: refuses too long sname/file and packets beyond the client maximum', (t) => {
  const p = emptyRequest();
  p.file = 'x'.repeat(128);
  t.throws(() => encodePacket(p), { instanceOf: RangeError });
  p.file = 'x'.repeat(127);
  t.notThrows(() => encodePacket(p));
  p.sname = 'y'.repeat(64);
  t.throws(() => encodePacket(p), { instanceOf: RangeError });
  p.sname = '';
  p.options.set(Opt.VENDOR_SPECIFIC, Buffer.alloc(400));
  t.throws(() => encodePacket(p, { maxLength: 576 }), { instanceOf: RangeError });
});

test('parse: pad bytes anywhere are skipped; repeated options concatenate', (t) => {
  const p = parsePacket(raw([0, 0, 53, 1, 1, 0, 60, 3, 0x50, 0x58, 0x45, 0, 60, 2, 0x43, 0x6c, 0, 255, 1, 2, 3]));
  t.is(p.options.messageType(), 1);
  t.is(p.options.vendorClass(), 'PXECl');
  t.deepEqual(p.options.codes(), [53, 60]);
});

test('parse: data after End is ignored; a missing End is tolerated', (t) => {
  t.deepEqual(parsePacket(raw([53, 1, 3, 255, 60, 200])).options.codes(), [53]);
  t.deepEqual(parsePacket(raw([53, 1, 3])).options.codes(), [53]);
});

test('parse: malformed input is rejected with a reason', (t) => {
  const cases: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['short header', raw([]).subarray(0, 239)],
    ['bad cookie', raw([53, 1, 1, 255], (b) => b.writeUInt32BE(0x63825364, 236))],
    ['bad op', raw([53, 1, 1, 255], (b) => (b[0] = 3))],
    ['hlen > 16', raw([53, 1, 1, 255], (b) => (b[2] = 17))],
    ['option without length', raw([53, 1, 1, 60])],
    ['option past the end', raw([53, 1, 1, 60, 10, 1, 2, 3])],
    ['bad overload value', raw([53, 1, 1, 52, 1, 9, 255])],
    ['overload of wrong length', raw([53, 1, 1, 52, 2, 1, 1, 255])],
    ['overloaded file field malformed', raw([53, 1, 1, 52, 1, 1, 255], (b) => b.fill(60, 108, 236))],
  ];
  for (const [what, b] of cases) {
    t.throws(() => parsePacket(b), { instanceOf: MalformedPacketError }, what);
    const r = tryParsePacket(b);
    t.false(r.ok, what);
  }
});

test('parse: overload 52 reads options from file (1), sname (2) and both (3), in that order', (t) => {
  const fileOpts = encodeTlv(
    [
      [Opt.VENDOR_CLASS, Buffer.from('FILE')],
      [Opt.BOOTFILE_NAME, Buffer.from('f.efi')],
    ],
    true,
  );
  const snameOpts = encodeTlv([[Opt.VENDOR_CLASS, Buffer.from('SNAME')]], true);
  const withFields = (over: number) =>
    raw([53, 1, 1, 52, 1, over, 60, 3, 0x4f, 0x50, 0x54, 255], (b) => {
      b.fill(0, 44, 236);
      fileOpts.copy(b, 108);
      snameOpts.copy(b, 44);
    });
  const p1 = parsePacket(withFields(1));
  t.is(p1.options.vendorClass(), 'OPTFILE');
  t.is(p1.options.bootfileName(), 'f.efi');
  t.is(p1.file, '');
  t.not(p1.sname, '');
  const p2 = parsePacket(withFields(2));
  t.is(p2.options.vendorClass(), 'OPTSNAME');
  t.is(p2.sname, '');
  t.not(p2.file, '');
  const p3 = parsePacket(withFields(3));
  t.is(p3.options.vendorClass(), 'OPTFILESNAME');
  t.is(p3.file, '');
  t.is(p3.sname, '');
});

test('parse: sname and file stop at the first NUL', (t) => {
  const b = raw([53, 1, 1, 255], (x) => {
    Buffer.from('srv\0junk').copy(x, 44);
    Buffer.from('undionly.kpxe\0zz').copy(x, 108);
  });
  const p = parsePacket(b);
  t.is(p.sname, 'srv');
  t.is(p.file, 'undionly.kpxe');
});

test('typed accessors: table', (t) => {
  const o = new DhcpOptions()
    .setString(Opt.HOSTNAME, 'node1')
    .setIp(Opt.REQUESTED_IP, '10.0.0.50')
    .setU32(Opt.LEASE_TIME, 3600)
    .setU8(Opt.MESSAGE_TYPE, 3)
    .setIp(Opt.SERVER_ID, '10.0.0.1')
    .set(Opt.PARAMETER_REQUEST_LIST, Buffer.from([1, 3, 67]))
    .setU16(Opt.MAX_MESSAGE_SIZE, 1500)
    .setString(Opt.VENDOR_CLASS, 'PXEClient:Arch:00007:UNDI:003000\0')
    .set(Opt.CLIENT_ID, Buffer.from('01525400123456', 'hex'))
    .setString(Opt.TFTP_SERVER_NAME, '10.0.0.1')
    .setString(Opt.BOOTFILE_NAME, 'ipxe.efi')
    .setString(Opt.USER_CLASS, 'iPXE')
    .set(Opt.CLIENT_ARCH, Buffer.from([0, 7, 0, 9]))
    .set(Opt.CLIENT_NDI, Buffer.from([1, 3, 0]))
    .set(Opt.CLIENT_GUID, GUID_97)
    .set(Opt.VENDOR_SPECIFIC, pxeDiscoveryControl(8))
    .set(Opt.IPXE_ENCAP, Buffer.from([IpxeSubOpt.HTTP, 1, 1, IpxeSubOpt.NO_PXEDHCP, 1, 1]))
    .setU8(Opt.OVERLOAD, 3);
  t.is(o.hostname(), 'node1');
  t.is(o.requestedIp(), '10.0.0.50');
  t.is(o.leaseTime(), 3600);
  t.is(o.messageType(), 3);
  t.is(o.serverId(), '10.0.0.1');
  t.deepEqual(o.parameterRequestList(), [1, 3, 67]);
  t.is(o.maxMessageSize(), 1500);
  t.is(o.vendorClass(), 'PXEClient:Arch:00007:UNDI:003000');
  t.deepEqual(o.clientId(), Buffer.from('01525400123456', 'hex'));
  t.is(o.tftpServerName(), '10.0.0.1');
  t.is(o.bootfileName(), 'ipxe.efi');
  t.deepEqual(o.userClass(), Buffer.from('iPXE'));
  t.deepEqual(o.clientArchitectures(), [7, 9]);
  t.deepEqual(o.clientNdi(), { type: 1, major: 3, minor: 0 });
  t.deepEqual(o.clientGuid(), GUID_97);
  t.deepEqual([...o.pxeVendorOptions()!.entries()], [[PxeSubOpt.DISCOVERY_CONTROL, Buffer.from([8])]]);
  t.deepEqual([...o.ipxeOptions()!.keys()], [IpxeSubOpt.HTTP, IpxeSubOpt.NO_PXEDHCP]);
  t.is(o.overload(), 3);
});

test('typed accessors: wrong shapes read as absent, never throw', (t) => {
  const o = new DhcpOptions()
    .set(Opt.MESSAGE_TYPE, Buffer.from([1, 2]))
    .set(Opt.SERVER_ID, Buffer.from([10, 0, 0]))
    .set(Opt.LEASE_TIME, Buffer.from([1]))
    .set(Opt.MAX_MESSAGE_SIZE, u16(100))
    .set(Opt.CLIENT_ARCH, Buffer.from([0]))
    .set(Opt.CLIENT_NDI, Buffer.from([1]))
    .set(Opt.CLIENT_ID, Buffer.from([1]))
    .set(Opt.VENDOR_SPECIFIC, Buffer.from([6, 5, 1]))
    .set(Opt.IPXE_ENCAP, Buffer.from([19]))
    .setU8(Opt.OVERLOAD, 4);
  t.is(o.messageType(), undefined);
  t.is(o.serverId(), undefined);
  t.is(o.leaseTime(), undefined);
  t.is(o.maxMessageSize(), undefined);
  t.is(o.clientArchitectures(), undefined);
  t.is(o.clientNdi(), undefined);
  t.is(o.clientId(), undefined);
  t.is(o.pxeVendorOptions(), undefined);
  t.is(o.ipxeOptions(), undefined);
  t.is(o.overload(), undefined);
});

test('option 43 for BIOS is exactly 06 01 08 ff', (t) => {
  t.deepEqual(pxeDiscoveryControl(8), Buffer.from([6, 1, 8, 255]));
});

test('user class: plain iPXE string and RFC 3004 form both decode', (t) => {
  t.deepEqual(new DhcpOptions().setString(Opt.USER_CLASS, 'iPXE').userClasses(), ['iPXE']);
  t.deepEqual(new DhcpOptions().set(Opt.USER_CLASS, Buffer.from('\x04iPXE\x03foo', 'latin1')).userClasses().slice(1), ['iPXE', 'foo']);
});

test('replyTo echoes xid, flags, giaddr, chaddr and leaves addresses zero', (t) => {
  const req = request({ kind: 'uefi7', mac: MAC, xid: 0xcafe, giaddr: '10.9.0.1' });
  const r = replyTo(req);
  t.is(r.op, BOOTREPLY);
  t.is(r.xid, 0xcafe);
  t.is(r.flags, FLAG_BROADCAST);
  t.is(r.giaddr, '10.9.0.1');
  t.deepEqual(r.chaddr, req.chaddr);
  t.is(r.yiaddr, '0.0.0.0');
  t.is(r.options.size, 0);
});

test('messageTypeName labels', (t) => {
  t.is(messageTypeName(1), 'DISCOVER');
  t.is(messageTypeName(undefined), 'none');
  t.is(messageTypeName(42), 'type-42');
});

test('fixtures encode to at least 300 bytes and parse back', (t) => {
  for (const kind of ALL_KINDS) {
    const b = requestBytes({ kind, mac: MAC, xid: 1 });
    t.true(b.length >= 300);
    t.true(tryParsePacket(b).ok, kind);
  }
});

const overloadRows: { what: string; file: string; sname: string; sizes: number[]; overload: number | undefined | 'refused' }[] = [
  { what: 'fits: no 52', file: '', sname: '', sizes: [100], overload: undefined },
  { what: 'overflow into file first (1)', file: '', sname: '', sizes: [250, 60], overload: 1 },
  { what: 'file and sname (3)', file: '', sname: '', sizes: [250, 100, 50], overload: 3 },
  { what: 'file taken by a boot file: sname only (2)', file: 'boot.efi', sname: '', sizes: [250, 60], overload: 2 },
  { what: 'both fields taken: refused', file: 'boot.efi', sname: '10.0.0.1', sizes: [250, 60], overload: 'refused' },
  { what: 'more than the three fields hold: refused', file: '', sname: '', sizes: [250, 120, 120], overload: 'refused' },
];
for (const row of overloadRows) {
  test(`encode with overload (maxLength 548): ${row.what}`, (t) => {
    const p = emptyRequest();
    p.file = row.file;
    p.sname = row.sname;
    p.options.setU8(Opt.MESSAGE_TYPE, 2);
    for (const [i, n] of row.sizes.entries()) p.options.set(200 + i, Buffer.alloc(n, i + 1));
    if (row.overload === 'refused') return void t.throws(() => encodePacket(p, { maxLength: 548, overload: true }), { instanceOf: RangeError });
    const b = encodePacket(p, { maxLength: 548, overload: true });
    t.true(b.length <= 548);
    t.deepEqual([...b.subarray(240, 243)], [Opt.MESSAGE_TYPE, 1, 2], '53 first');
    const back = parsePacket(b);
    t.is(back.options.overload(), row.overload);
    for (const [i, n] of row.sizes.entries()) t.deepEqual(back.options.get(200 + i), Buffer.alloc(n, i + 1), `option ${200 + i} whole`);
    t.is(back.file, row.overload !== undefined && row.overload & 1 ? '' : row.file);
    t.is(back.sname, row.overload !== undefined && row.overload & 2 ? '' : row.sname);
  });
}
