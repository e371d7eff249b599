import test from 'ava';
import { LruMap } from '../../src/util/lru-map.ts';

test('LruMap: oldest first, touch and set make a key newest, past the capacity the oldest goes and is reported', (t) => {
  const evicted: string[] = [];
  const m = new LruMap<string, number>(3, (k, v) => evicted.push(`${k}=${v}`));
  m.set('a', 1).set('b', 2).set('c', 3);
  t.is(m.touch('a'), 1);
  t.deepEqual(
    [...m.entries()],
    [
      ['b', 2],
      ['c', 3],
      ['a', 1],
    ],
  );
  m.set('b', 20); // an existing key: newest, nothing evicted
  t.deepEqual([...m.values()], [3, 1, 20]);
  m.set('d', 4);
  t.deepEqual(evicted, ['c=3']);
  t.deepEqual(
    [...m.entries()],
    [
      ['a', 1],
      ['b', 20],
      ['d', 4],
    ],
  );
  t.is(m.get('a'), 1);
  t.deepEqual([...m.values()], [1, 20, 4], 'get does not reorder');
  t.is(m.size, 3);
});

test('LruMap: delete, delete while iterating, evictOldest, clear', (t) => {
  const evicted: string[] = [];
  const m = new LruMap<string, number>(10, (k) => evicted.push(k));
  for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) m.set(k, i);
  t.true(m.delete('b'));
  t.false(m.delete('b'));
  t.false(m.has('b'));
  const seen: string[] = [];
  for (const [k] of m.entries()) {
    seen.push(k);
    m.delete(k);
  }
  t.deepEqual(seen, ['a', 'c', 'd']);
  t.is(m.size, 0);
  t.false(m.evictOldest());
  m.set('x', 1).set('y', 2);
  t.true(m.evictOldest());
  t.deepEqual(evicted, ['x']);
  t.deepEqual([...m.entries()], [['y', 2]]);
  m.clear();
  t.is(m.size, 0);
  t.deepEqual([...m.entries()], []);
  m.set('z', 3);
  t.deepEqual([...m.entries()], [['z', 3]]);
});

test('LruMap: a stream of new keys far past the capacity keeps it at the capacity, newest kept', (t) => {
  let evictions = 0;
  const m = new LruMap<number, number>(100, () => evictions++);
  for (let i = 0; i < 10_000; i++) {
    m.set(i, i);
    if (i % 3 === 0) m.touch(i - 50);
  }
  t.is(m.size, 100);
  t.is(evictions, 9_900);
  t.is([...m.entries()].length, 100);
  t.true(m.has(9_999));
});

test('LruMap: capacity must be a positive integer', (t) => {
  t.throws(() => new LruMap(0), { instanceOf: RangeError });
  t.throws(() => new LruMap(1.5), { instanceOf: RangeError });
});
