import test from 'ava';
import { readFileSync } from 'node:fs';
import { blksizeForInterface } from '../../src/tftp/service.ts';

test('blksize is capped by the interface MTU (MTU - 32), else 8192', (t) => {
  t.is(blksizeForInterface(undefined), 8192);
  t.is(blksizeForInterface('no-such-iface0'), 8192);
  t.is(blksizeForInterface('../../etc'), 8192);
  const loMtu = Number(readFileSync('/sys/class/net/lo/mtu', 'utf8'));
  t.is(blksizeForInterface('lo'), Math.min(8192, loMtu - 32));
  t.is(blksizeForInterface('lo', 65464), Math.min(65464, loMtu - 32));
});
