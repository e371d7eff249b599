import test from 'ava';
import { negotiate } from '../../src/tftp/options.ts';

const limits = { maxBlksize: 8192, maxWindowsize: 64, maxWindowBytes: 1024 * 1024 };

const cases: [string, Record<string, string>, number, { blksize: number; windowsize: number; timeoutMs: number | undefined; oack: Record<string, string> }][] = [
  ['no options: RFC 1350 defaults, no OACK', {}, 100, { blksize: 512, windowsize: 1, timeoutMs: undefined, oack: {} }],
  ['OVMF probe', { tsize: '0', blksize: '1468', windowsize: '4' }, 850528, { blksize: 1468, windowsize: 4, timeoutMs: undefined, oack: { blksize: '1468', tsize: '850528', windowsize: '4' } }],
  ['blksize above the limit is clamped', { blksize: '65464' }, 1, { blksize: 8192, windowsize: 1, timeoutMs: undefined, oack: { blksize: '8192' } }],
  ['blksize below 8 is ignored', { blksize: '7' }, 1, { blksize: 512, windowsize: 1, timeoutMs: undefined, oack: {} }],
  ['blksize above 65464 is ignored', { blksize: '65465' }, 1, { blksize: 512, windowsize: 1, timeoutMs: undefined, oack: {} }],
  ['blksize 8 is granted', { blksize: '8' }, 1, { blksize: 8, windowsize: 1, timeoutMs: undefined, oack: { blksize: '8' } }],
  ['non-decimal values are ignored', { blksize: '1468abc', timeout: ' 5', windowsize: '0x10', tsize: '-1' }, 1, { blksize: 512, windowsize: 1, timeoutMs: undefined, oack: {} }],
  ['timeout 1..255 is acknowledged', { timeout: '3' }, 1, { blksize: 512, windowsize: 1, timeoutMs: 3000, oack: { timeout: '3' } }],
  ['timeout 0 and 256 are ignored', { timeout: '0' }, 1, { blksize: 512, windowsize: 1, timeoutMs: undefined, oack: {} }],
  ['timeout 256 is ignored', { timeout: '256' }, 1, { blksize: 512, windowsize: 1, timeoutMs: undefined, oack: {} }],
  ['tsize answers the file size whatever was sent', { tsize: '12345' }, 0, { blksize: 512, windowsize: 1, timeoutMs: undefined, oack: { tsize: '0' } }],
  ['windowsize above the limit is clamped', { windowsize: '65535' }, 1, { blksize: 512, windowsize: 64, timeoutMs: undefined, oack: { windowsize: '64' } }],
  ['windowsize 0 is ignored', { windowsize: '0' }, 1, { blksize: 512, windowsize: 1, timeoutMs: undefined, oack: {} }],
  ['unknown options are ignored', { multicast: '', rollover: '0' }, 1, { blksize: 512, windowsize: 1, timeoutMs: undefined, oack: {} }],
];

for (const [name, requested, size, want] of cases) {
  test(`negotiate: ${name}`, (t) => {
    t.deepEqual(negotiate(requested, size, limits), want);
  });
}

test('negotiate: an MTU-derived limit of 1468 caps blksize 8192', (t) => {
  t.is(negotiate({ blksize: '8192' }, 1, { maxBlksize: 1468, maxWindowsize: 64, maxWindowBytes: 65536 }).blksize, 1468);
});

test('negotiate: a window is kept within maxWindowBytes, and never below 1', (t) => {
  const l = { maxBlksize: 65464, maxWindowsize: 64, maxWindowBytes: 65536 };
  t.deepEqual(negotiate({ blksize: '8192', windowsize: '16' }, 1, l).oack, { blksize: '8192', windowsize: '8' });
  t.is(negotiate({ blksize: '1468', windowsize: '16' }, 1, l).windowsize, 16);
  t.is(negotiate({ blksize: '1468', windowsize: '64' }, 1, l).windowsize, 44);
  t.is(negotiate({ blksize: '65464', windowsize: '4' }, 1, l).windowsize, 1);
  t.is(negotiate({ windowsize: '200' }, 1, l).windowsize, 64);
});
