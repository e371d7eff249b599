import test from 'ava';
import { encodeAck, encodeData, encodeError, encodeOack, encodeRequest, ERR, parsePacket, type TftpPacket } from '../../src/tftp/packet.ts';

const b = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

const good: [string, Buffer, TftpPacket][] = [
  ['plain RRQ', b([0, 1], 'undionly.kpxe\0octet\0'), { op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: {} }],
  ['RRQ mode is case-insensitive', b([0, 1], 'a\0OCTET\0'), { op: 'rrq', filename: 'a', mode: 'octet', options: {} }],
  [
    'OVMF size probe',
    b([0, 1], 'ipxe.efi\0octet\0tsize\x000\0blksize\x001468\0windowsize\x004\0'),
    { op: 'rrq', filename: 'ipxe.efi', mode: 'octet', options: { tsize: '0', blksize: '1468', windowsize: '4' } },
  ],
  ['option names are case-insensitive, first wins', b([0, 1], 'f\0octet\0BlkSize\x001024\0blksize\x00512\0'), { op: 'rrq', filename: 'f', mode: 'octet', options: { blksize: '1024' } }],
  ['NUL padding after options is ignored', b([0, 1], 'f\0octet\0tsize\x000\0\0\0\0'), { op: 'rrq', filename: 'f', mode: 'octet', options: { tsize: '0' } }],
  ['option without value is ignored', b([0, 1], 'f\0octet\0tsize\0'), { op: 'rrq', filename: 'f', mode: 'octet', options: {} }],
  ['unterminated trailing option is ignored', b([0, 1], 'f\0octet\0blksize\x00512'), { op: 'rrq', filename: 'f', mode: 'octet', options: {} }],
  ['high bytes kept one char each', b([0, 1], [0x66, 0xe9, 0], 'octet\0'), { op: 'rrq', filename: 'f\u00e9', mode: 'octet', options: {} }],
  ['WRQ', b([0, 2], 'up\0octet\0'), { op: 'wrq', filename: 'up', mode: 'octet', options: {} }],
  ['DATA', b([0, 3, 0xff, 0xff], 'xyz'), { op: 'data', block: 65535, data: Buffer.from('xyz') }],
  ['empty DATA', b([0, 3, 0, 7]), { op: 'data', block: 7, data: Buffer.alloc(0) }],
  ['ACK', b([0, 4, 1, 2]), { op: 'ack', block: 258 }],
  ['ACK padded by a ROM', b([0, 4, 0, 9, 0, 0]), { op: 'ack', block: 9 }],
  ['ERROR 8', b([0, 5, 0, 8], 'User aborted the transfer\0'), { op: 'error', code: 8, message: 'User aborted the transfer' }],
  ['ERROR without NUL', b([0, 5, 0, 1], 'nope'), { op: 'error', code: 1, message: 'nope' }],
  ['OACK', b([0, 6], 'blksize\x001468\0tsize\x0099\0'), { op: 'oack', options: { blksize: '1468', tsize: '99' } }],
];

for (const [name, buf, want] of good) {
  test(`parse: ${name}`, (t) => {
    const r = parsePacket(buf);
    if (!r.ok) return t.fail(r.reason);
    const got = r.packet;
    if ('options' in got) t.deepEqual({ ...got, options: { ...got.options } }, want);
    else t.deepEqual(got, want);
  });
}

const bad: [string, Buffer][] = [
  ['empty', Buffer.alloc(0)],
  ['3 bytes', b([0, 1, 0])],
  ['opcode 0', b([0, 0], 'f\0octet\0')],
  ['opcode 7', b([0, 7], 'f\0octet\0')],
  ['opcode 0xffff', b([0xff, 0xff, 0, 0])],
  ['RRQ without mode', b([0, 1], 'f\0')],
  ['RRQ with unterminated mode', b([0, 1], 'f\0octet')],
  ['RRQ with unterminated filename', b([0, 1], 'ffff')],
  ['RRQ with empty filename', b([0, 1], '\0octet\0')],
  ['RRQ with empty mode', b([0, 1], 'f\0\0')],
  ['RRQ over 1024 bytes', b([0, 1], 'x'.repeat(1100), '\0octet\0')],
  ['ACK of 40 bytes', b([0, 4], 'x'.repeat(38))],
  ['DATA over 65468 bytes', Buffer.concat([b([0, 3, 0, 1]), Buffer.alloc(65465)])],
  ['OACK unpaired', b([0, 6], 'blksize\0')],
  ['OACK unterminated', b([0, 6], 'blksize\x00512')],
];

for (const [name, buf] of bad) {
  test(`parse rejects: ${name}`, (t) => {
    const r = parsePacket(buf);
    t.false(r.ok);
    if (!r.ok) t.true(r.reason.length > 0);
  });
}

test('encoders round-trip through the parser', (t) => {
  const cases: [Buffer, TftpPacket][] = [
    [encodeRequest('rrq', 'a/b.efi', 'octet', { blksize: '1468' }), { op: 'rrq', filename: 'a/b.efi', mode: 'octet', options: { blksize: '1468' } }],
    [encodeRequest('wrq', 'x'), { op: 'wrq', filename: 'x', mode: 'octet', options: {} }],
    [encodeData(65535, Buffer.from('hi')), { op: 'data', block: 65535, data: Buffer.from('hi') }],
    [encodeAck(0), { op: 'ack', block: 0 }],
    [encodeError(ERR.FILE_NOT_FOUND, 'File not found'), { op: 'error', code: 1, message: 'File not found' }],
    [encodeOack({ tsize: '74213', windowsize: '4' }), { op: 'oack', options: { tsize: '74213', windowsize: '4' } }],
  ];
  for (const [buf, want] of cases) {
    const r = parsePacket(buf);
    t.true(r.ok);
    if (!r.ok) continue;
    const got = r.packet;
    t.deepEqual('options' in got ? { ...got, options: { ...got.options } } : got, want);
  }
});

test('encoders refuse what the wire cannot carry', (t) => {
  t.throws(() => encodeAck(65536), { instanceOf: RangeError });
  t.throws(() => encodeAck(-1), { instanceOf: RangeError });
  t.throws(() => encodeData(1, Buffer.alloc(65465)), { instanceOf: RangeError });
  t.throws(() => encodeRequest('rrq', 'a\0b'), { instanceOf: RangeError });
  t.throws(() => encodeOack({ 'x\0': '1' }), { instanceOf: RangeError });
});

test('ERROR messages are cut to a size that fits one frame', (t) => {
  t.true(encodeError(0, 'x'.repeat(5000)).length <= 205);
});

test('parse never throws on random bytes', (t) => {
  let seed = 42;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed >>> 16) & 0xff;
  };
  for (let i = 0; i < 20_000; i++) {
    const len = rnd() % 64;
    const buf = Buffer.alloc(len);
    for (let j = 0; j < len; j++) buf[j] = rnd();
    if (len >= 2 && i % 2 === 0) {
      buf[0] = 0;
      buf[1] = rnd() % 7;
    }
    parsePacket(buf);
  }
  t.pass();
});
