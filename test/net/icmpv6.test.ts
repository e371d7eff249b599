import test from 'ava';
import { buildQuenchAdvertisement, parseRouterAdvertisement, parseRouterSolicitation } from '../../src/net/icmpv6.ts';
import type { Mac } from '../../src/net/mac.ts';
import { formatIpv6 } from '../../src/net/router-advert.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('quench RA: type 134, code 0, checksum left to the kernel, every field 0, no options', (t) => {
  const b = buildQuenchAdvertisement();
  t.deepEqual(b, hex('86 00 0000  00 00 0000  00000000  00000000'));
});

test('quench RA with the interface MAC: one source link-layer option (type 1, length 1)', (t) => {
  const b = buildQuenchAdvertisement('52:54:00:ab:cd:ef' as Mac);
  t.is(b.length, 24);
  t.deepEqual(b.subarray(16), hex('01 01 525400abcdef'));
  const ra = parseRouterAdvertisement(b);
  t.deepEqual(ra, {
    ok: true,
    value: { curHopLimit: 0, managed: false, other: false, routerLifetime: 0, reachableTime: 0, retransTimer: 0, sourceMac: '52:54:00:ab:cd:ef', optionTypes: [1] },
  });
});

test('parseRouterAdvertisement reads a real router RA (lifetime 1800, M/O flags, prefix option)', (t) => {
  const b = hex('86 00 1234 40 c0 0708 00000000 00000000' + '01 01 001122334455' + '03 04 40 c0 00278d00 00093a80 00000000 20010db8000000000000000000000000');
  const ra = parseRouterAdvertisement(b);
  t.true(ra.ok);
  if (!ra.ok) return;
  t.is(ra.value.curHopLimit, 64);
  t.true(ra.value.managed);
  t.true(ra.value.other);
  t.is(ra.value.routerLifetime, 1800);
  t.is(ra.value.sourceMac as string | undefined, '00:11:22:33:44:55');
  t.deepEqual(ra.value.optionTypes, [1, 3]);
});

const solicitations: [string, string, { ok: true; mac: string | undefined } | { ok: false; reason: RegExp }][] = [
  ['bare RS (from ::, no options)', '85 00 0000 00000000', { ok: true, mac: undefined }],
  ['RS with source link-layer option', '85 00 abcd 00000000 01 01 525400123456', { ok: true, mac: '52:54:00:12:34:56' }],
  ['RS with an unknown option first', '85 00 0000 00000000 0e 01 000000000000 01 01 525400123456', { ok: true, mac: '52:54:00:12:34:56' }],
  ['source link-layer option of an all-zero-tail MAC', '85 00 0000 00000000 01 01 5254 0000 0000', { ok: true, mac: '52:54:00:00:00:00' }],
  ['too short', '85 00 0000 0000', { ok: false, reason: /too short/ }],
  ['empty', '', { ok: false, reason: /too short/ }],
  ['not an RS (an RA)', '86 00 0000 00000000', { ok: false, reason: /type 134/ }],
  ['nonzero code', '85 01 0000 00000000', { ok: false, reason: /code 1/ }],
  ['option length 0 (RFC 4861: discard)', '85 00 0000 00000000 01 00 525400123456', { ok: false, reason: /length 0/ }],
  ['option runs past the end', '85 00 0000 00000000 01 02 525400123456', { ok: false, reason: /past the end/ }],
  ['truncated option header', '85 00 0000 00000000 01', { ok: false, reason: /truncated/ }],
];
for (const [name, bytes, want] of solicitations) {
  test(`parseRouterSolicitation: ${name}`, (t) => {
    const rs = parseRouterSolicitation(hex(bytes));
    if (want.ok) t.deepEqual(rs, { ok: true, value: { sourceMac: want.mac as Mac | undefined } });
    else {
      t.false(rs.ok);
      if (!rs.ok) t.regex(rs.reason, want.reason);
    }
  });
}

test('parseRouterAdvertisement refuses what is not an RA', (t) => {
  t.false(parseRouterAdvertisement(hex('85 00 0000 00000000 00000000 00000000')).ok);
  t.false(parseRouterAdvertisement(hex('86 00 0000 00000000')).ok);
  t.false(parseRouterAdvertisement(hex('86 00 0000 00000000 00000000 00000000 01 00')).ok);
});

const addresses: [string, string][] = [
  ['fe800000000000005054 00fffe123456', 'fe80::5054:ff:fe12:3456'],
  ['00000000000000000000000000000000', '::'],
  ['ff020000000000000000000000000001', 'ff02::1'],
  ['20010db8000000010000000000000001', '2001:db8:0:1::1'],
  ['20010db8000100010001000100010001', '2001:db8:1:1:1:1:1:1'],
  ['00000000000000000000000000000001', '::1'],
  ['20010db8000000000001000000000000', '2001:db8:0:0:1::'],
  ['20010db8000000000001000000010000', '2001:db8::1:0:1:0'],
];
for (const [bytes, text] of addresses) {
  test(`formatIpv6 ${text}`, (t) => {
    t.is(formatIpv6(hex(bytes)), text);
  });
}
