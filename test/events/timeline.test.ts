import test from 'ava';
import { BootTimeline, DEFAULT_TIMELINE_LIMITS, type EvictionReason } from '../../src/events/timeline.ts';
import type { Mac } from '../../src/net/mac.ts';

const mac = (i: number) => `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}` as Mac;
const request = (m: Mac, ip?: string) =>
  ({ step: 'dhcp.request', mac: m, uuid: undefined, ip, detail: { type: 'DISCOVER', mode: 'proxy', arch: 'bios', ipxe: false, xid: 1, port: 67, hostname: undefined } }) as const;

test('timeline: the defaults hold a 10,000-machine site', (t) => {
  t.true(DEFAULT_TIMELINE_LIMITS.machines >= 10_000);
  t.true(DEFAULT_TIMELINE_LIMITS.events >= 10_000 * 16);
});

test('timeline: more machines than the bound forgets the one seen least recently, says so, and frees its address', (t) => {
  const evictions: EvictionReason[] = [];
  const tl = new BootTimeline({ machines: 3, eventsPerMachine: 10, events: 1000 }, Date.now, (r) => evictions.push(r));
  for (let i = 0; i < 3; i++) tl.record(request(mac(i), `10.0.0.${i + 1}`));
  tl.record(request(mac(0))); // 0 is now the newest; 1 the oldest
  tl.record(request(mac(3)));
  t.deepEqual(evictions, ['machines']);
  t.is(tl.get(mac(1)), undefined);
  t.is(tl.macForAddress('10.0.0.2'), undefined);
  t.is(tl.macForAddress('10.0.0.1'), mac(0));
  t.deepEqual(
    tl.list().map((m) => m.mac),
    [mac(3), mac(0), mac(2)],
  );
  t.deepEqual(tl.size(), { machines: 3, events: 4, addresses: 2 });
});

test('timeline: each machine keeps its latest events, and all of them together stay within the event budget', (t) => {
  const evictions: EvictionReason[] = [];
  const tl = new BootTimeline({ machines: 100, eventsPerMachine: 5, events: 12 }, Date.now, (r) => evictions.push(r));
  for (let n = 0; n < 8; n++) tl.record(request(mac(0)));
  t.is(tl.get(mac(0))!.events.length, 5);
  t.is(tl.size().events, 5);
  for (let n = 0; n < 5; n++) tl.record(request(mac(1)));
  t.is(tl.size().events, 10);
  for (let n = 0; n < 3; n++) tl.record(request(mac(2)));
  // 13 > 12: machine 0, seen least recently, goes with its 5 events.
  t.deepEqual(evictions, ['events']);
  t.is(tl.get(mac(0)), undefined);
  t.is(tl.size().events, 8);
  t.is(tl.size().machines, 2);
});

test('timeline: a machine past its bound loses its oldest eighth at once, and the count follows', (t) => {
  const tl = new BootTimeline({ machines: 10, eventsPerMachine: 16, events: 1000 });
  const details = (n: number) =>
    tl
      .get(mac(0))!
      .events.map((e) => (e.detail as { xid: number }).xid)
      .slice(0, n);
  for (let n = 0; n < 16; n++) tl.record({ ...request(mac(0)), detail: { ...request(mac(0)).detail, xid: n } });
  t.is(tl.get(mac(0))!.events.length, 16);
  tl.record({ ...request(mac(0)), detail: { ...request(mac(0)).detail, xid: 16 } });
  // 17 > 16: the oldest 1 + 16/8 go, the newest 14 stay, in order.
  t.is(tl.get(mac(0))!.events.length, 14);
  t.deepEqual(details(2), [3, 4]);
  t.is(tl.size().events, 14);
  for (let n = 0; n < 100; n++) tl.record(request(mac(0)));
  t.true(tl.get(mac(0))!.events.length <= 16 && tl.get(mac(0))!.events.length >= 14);
  t.is(tl.size().events, tl.get(mac(0))!.events.length);
});

test('timeline: a storm of new machines stays within both bounds', (t) => {
  const counts: Record<EvictionReason, number> = { machines: 0, events: 0 };
  const limits = { machines: 500, eventsPerMachine: 20, events: 2000 };
  const tl = new BootTimeline(limits, Date.now, (r) => counts[r]++);
  for (let i = 0; i < 30_000; i++) {
    const m = mac(i % 20_000);
    tl.record(request(m, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`));
    tl.record(request(m));
  }
  const size = tl.size();
  t.true(size.machines <= limits.machines);
  t.true(size.events <= limits.events);
  t.true(size.addresses <= limits.machines * 4);
  t.is(
    size.events,
    tl.list().reduce((n, m) => n + m.events.length, 0),
    'the count is the events held',
  );
  t.true(counts.machines + counts.events >= 30_000 - limits.machines);
});
