import test from 'ava';
import { LeasePool, normalizeClientId, type LeaseClient, type LeasePoolOptions } from '../../src/dhcp/leases.ts';
import { parseMac, type Mac } from '../../src/net/mac.ts';

const mac = (n: number): Mac => parseMac(`52:54:00:00:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`)!;
const client = (n: number, clientId?: string): LeaseClient => ({ mac: mac(n), clientId });

function pool(opts: Partial<LeasePoolOptions> = {}) {
  const clock = { t: 1_700_000_000_000 };
  const p = new LeasePool({ start: '10.0.0.10', end: '10.0.0.19', leaseTime: 3600, offerHold: 30, quarantine: 600, now: () => clock.t, ...opts });
  return { p, clock };
}

test('an offer picks the first address, holds it, and the same client is offered it again', (t) => {
  const { p } = pool();
  const a = p.offer(client(1))!;
  t.is(a.ip, '10.0.0.10');
  t.is(a.state, 'offered');
  t.is(p.offer(client(1))!.ip, '10.0.0.10');
  t.is(p.offer(client(2))!.ip, '10.0.0.11');
});

test('bind after offer makes a lease for leaseTime; a renewing client keeps its address', (t) => {
  const { p, clock } = pool();
  const o = p.offer(client(1))!;
  const r = p.bind(client(1), o.ip);
  t.true(r.ok);
  if (!r.ok) return;
  t.is(r.lease.state, 'bound');
  t.is(r.lease.expires, clock.t + 3600_000);
  clock.t += 1800_000;
  const renewed = p.bind(client(1), o.ip);
  t.true(renewed.ok && renewed.lease.expires === clock.t + 3600_000);
  t.is(p.offer(client(1))!.ip, o.ip, 'a bound client asking again is offered its lease');
});

test('client identity: 01+MAC is the MAC, so PXE ROM, iPXE and the OS share one address', (t) => {
  const m = mac(7);
  t.is(normalizeClientId(Buffer.from(`01${m.replaceAll(':', '')}`, 'hex'), m), undefined);
  t.is(normalizeClientId(undefined, m), undefined);
  t.is(normalizeClientId(Buffer.from('ff00112233', 'hex'), m), 'ff00112233');
  const { p } = pool();
  const pxe = p.offer({ mac: m })!;
  t.true(p.bind({ mac: m }, pxe.ip).ok);
  const os = p.offer({ mac: m, clientId: normalizeClientId(Buffer.from(`01${m.replaceAll(':', '')}`, 'hex'), m) })!;
  t.is(os.ip, pxe.ip);
});

test('a client id not tied to the MAC falls back to the MAC record only when that record has no id', (t) => {
  const { p } = pool();
  const first = p.offer({ mac: mac(1) })!;
  p.bind({ mac: mac(1) }, first.ip);
  // Same NIC, now with an opaque client id (dhclient with a DUID): dnsmasq matches it by chaddr too.
  const withId = p.offer({ mac: mac(1), clientId: 'ffaabbccdd' })!;
  t.is(withId.ip, first.ip);
  t.true(p.bind({ mac: mac(1), clientId: 'ffaabbccdd' }, withId.ip).ok);
  // A second OS on the same NIC with another id is another client.
  const other = p.offer({ mac: mac(1), clientId: 'ff11223344' })!;
  t.not(other.ip, first.ip);
});

test('a requested address (option 50) is offered when free, not when held', (t) => {
  const { p } = pool();
  t.is(p.offer(client(1), '10.0.0.15')!.ip, '10.0.0.15');
  t.is(p.offer(client(2), '10.0.0.15')!.ip, '10.0.0.10');
  t.is(p.offer(client(3), '10.0.0.99')!.ip, '10.0.0.11', 'outside the pool: ignored');
});

const refusals: [string, (p: LeasePool) => void, LeaseClient, string, RegExp][] = [
  ['outside the range', () => undefined, client(1), '10.0.0.30', /not in the pool/],
  ['below the range', () => undefined, client(1), '10.0.0.9', /not in the pool/],
  ['held (bound) by another client', (p) => p.bind(client(2), '10.0.0.12'), client(1), '10.0.0.12', /another client/],
  ['held (offered) by another client', (p) => p.offer(client(2), '10.0.0.12'), client(1), '10.0.0.12', /another client/],
  ['quarantined after a decline', (p) => p.decline(client(2), '10.0.0.12'), client(1), '10.0.0.12', /quarantined/],
];
for (const [title, setup, who, ip, reason] of refusals) {
  test(`bind is refused: ${title}`, (t) => {
    const { p } = pool();
    setup(p);
    const r = p.bind(who, ip);
    t.false(r.ok);
    if (!r.ok) t.regex(r.reason, reason);
  });
}

test('excluded addresses (ours, the router) are never handed out', (t) => {
  const { p } = pool({ start: '10.0.0.1', end: '10.0.0.4', exclude: ['10.0.0.1', '10.0.0.3', '192.168.1.1'] });
  t.is(p.offer(client(1))!.ip, '10.0.0.2');
  t.is(p.offer(client(2))!.ip, '10.0.0.4');
  t.is(p.offer(client(3)), undefined);
  t.false(p.bind(client(3), '10.0.0.3').ok);
});

test('an offer hold lapses: the address goes to the next client and the first one is refused', (t) => {
  const { p, clock } = pool({ start: '10.0.0.10', end: '10.0.0.10' });
  t.is(p.offer(client(1))!.ip, '10.0.0.10');
  t.is(p.offer(client(2)), undefined, 'held for client 1');
  clock.t += 31_000;
  t.is(p.offer(client(2))!.ip, '10.0.0.10');
  t.true(p.bind(client(2), '10.0.0.10').ok);
  t.false(p.bind(client(1), '10.0.0.10').ok);
});

test('release: the address is free for others but the client gets it back first', (t) => {
  const { p } = pool({ start: '10.0.0.10', end: '10.0.0.11' });
  const a = p.offer(client(1))!;
  p.bind(client(1), a.ip);
  t.true(p.release(client(1), a.ip));
  t.false(p.release(client(2), a.ip), 'only the holder releases');
  t.is(p.offer(client(1))!.ip, a.ip, 'returning client');
  p.forgetOffer(client(1));
  t.is(p.offer(client(2))!.ip, '10.0.0.11', 'a never-used address before a released one');
  t.is(p.offer(client(3))!.ip, a.ip, 'then the released one');
  t.is(p.offer(client(1)), undefined, 'client 1 lost it to client 3');
});

test('expiry: a lapsed lease is reused, the oldest expired first', (t) => {
  const { p, clock } = pool({ start: '10.0.0.10', end: '10.0.0.12' });
  for (const n of [1, 2, 3]) p.bind(client(n), p.offer(client(n))!.ip);
  t.is(p.offer(client(4)), undefined, 'full');
  clock.t += 100_000;
  p.bind(client(1), '10.0.0.10'); // client 1 renews later than 2 and 3
  clock.t += 3600_000 - 50_000;
  t.is(p.offer(client(4))!.ip, '10.0.0.11', 'oldest expired (client 2)');
  t.is(p.offer(client(5))!.ip, '10.0.0.12');
  t.is(p.offer(client(6)), undefined, 'client 1 still holds .10');
  t.false(p.bind(client(2), '10.0.0.11').ok, 'client 2 came back too late: offered to client 4');
});

test('decline: the address is quarantined, the decliner gets another one, and it returns after the quarantine', (t) => {
  const { p, clock } = pool({ start: '10.0.0.10', end: '10.0.0.11' });
  const a = p.offer(client(1))!;
  p.bind(client(1), a.ip);
  t.false(p.decline(client(2), a.ip), 'a stray DECLINE cannot take a working lease away');
  t.true(p.decline(client(1), a.ip));
  t.is(p.get(a.ip)!.state, 'declined');
  t.is(p.get(a.ip)!.mac, undefined);
  t.is(p.offer(client(1))!.ip, '10.0.0.11');
  t.true(p.bind(client(1), '10.0.0.11').ok);
  t.is(p.offer(client(2)), undefined, 'the declined address is not offered');
  clock.t += 601_000;
  t.is(p.offer(client(2))!.ip, a.ip);
});

test('changes: binds, releases and declines are durable changes; a fresh offer is not', (t) => {
  const { p } = pool();
  p.offer(client(1));
  t.deepEqual(p.takeChanges(), []);
  p.bind(client(1), '10.0.0.10');
  p.bind(client(2), '10.0.0.11');
  const ch = p.takeChanges();
  t.deepEqual(
    ch.map((c) => [c.ip, 'state' in c ? c.state : 'free']),
    [
      ['10.0.0.10', 'bound'],
      ['10.0.0.11', 'bound'],
    ],
  );
  p.bind(client(1), '10.0.0.13'); // moved: its old address is freed
  t.deepEqual(
    p
      .takeChanges()
      .map((c) => [c.ip, c.free ? 'free' : c.state])
      .sort(),
    [
      ['10.0.0.10', 'free'],
      ['10.0.0.13', 'bound'],
    ],
  );
});

test('load: later records win, leases outside a new range are dropped, one record per client', (t) => {
  const { p, clock } = pool();
  const r = p.load([
    { ip: '10.0.0.10', mac: mac(1), clientId: undefined, hostname: 'a', state: 'bound', expires: clock.t + 1000 },
    { ip: '10.0.0.11', mac: mac(1), clientId: undefined, hostname: 'a', state: 'bound', expires: clock.t + 5000 },
    { ip: '10.0.0.12', mac: mac(2), clientId: undefined, hostname: undefined, state: 'bound', expires: clock.t + 1000 },
    { ip: '10.0.0.12', mac: mac(3), clientId: undefined, hostname: undefined, state: 'bound', expires: clock.t + 1000 },
    { ip: '10.1.0.12', mac: mac(4), clientId: undefined, hostname: undefined, state: 'bound', expires: clock.t + 1000 },
  ]);
  t.deepEqual(r, { loaded: 4, outside: 1 });
  t.is(p.find(client(1))!.ip, '10.0.0.11');
  t.is(p.find(client(3))!.ip, '10.0.0.12');
  t.is(p.find(client(2)), undefined);
  t.false(p.isActive(p.get('10.0.0.10')!) && p.get('10.0.0.10')!.mac !== undefined);
});

test('random operations never give one address to two clients nor two addresses to one client', (t) => {
  const { p, clock } = pool({ start: '10.0.0.1', end: '10.0.0.20', leaseTime: 120, offerHold: 10, quarantine: 60 });
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 20_000; i++) {
    const c = client(rnd(40));
    const op = rnd(10);
    if (op < 4) p.offer(c, rnd(3) === 0 ? `10.0.0.${1 + rnd(25)}` : undefined);
    else if (op < 8) p.bind(c, p.find(c)?.ip ?? `10.0.0.${1 + rnd(25)}`);
    else if (op === 8) p.release(c, p.find(c)?.ip ?? '10.0.0.1');
    else p.decline(c, p.find(c)?.ip ?? '10.0.0.1');
    clock.t += rnd(5000);
    const active = p.all().filter((l) => p.isActive(l) && l.mac);
    const owners = active.map((l) => l.mac!);
    if (new Set(owners).size !== owners.length) return t.fail(`step ${i}: a client holds two active addresses`);
    const ips = p.all().map((l) => l.ip);
    if (new Set(ips).size !== ips.length) return t.fail(`step ${i}: two records for one address`);
  }
  t.pass();
});

test('reserved (fixed) addresses: never offered nor bound to anyone, never counted free; a client already on one is moved off it', (t) => {
  const { p } = pool({ start: '10.0.0.10', end: '10.0.0.13' });
  const before = p.offer(client(9))!;
  t.is(before.ip, '10.0.0.10');
  t.true(p.bind(client(9), before.ip).ok);
  p.setReserved(['10.0.0.10', '10.0.0.11', '10.9.9.9']);
  t.deepEqual(p.counts(), { bound: 1, offered: 0, declined: 0, free: 2 }, 'free: .12 and .13 only; the lease still on .10 counts as bound, not free');
  t.is(p.offer(client(1), '10.0.0.11')!.ip, '10.0.0.12', 'asking for a reserved address does not get it');
  const bind = p.bind(client(2), '10.0.0.11');
  t.false(bind.ok);
  t.regex(bind.ok ? '' : bind.reason, /reserved for a fixed host/);
  const moved = p.offer(client(9))!;
  t.is(moved.ip, '10.0.0.13', 'the client on a reserved address is offered another one');
  t.is(p.get('10.0.0.10'), undefined, 'and its record on the reserved address is gone');
  t.is(p.offer(client(3)), undefined, 'the pool is exhausted rather than hand out .10 or .11');
  t.is(p.counts().free, 0);
  p.setReserved([]);
  t.is(p.offer(client(3))!.ip, '10.0.0.10', 'a reservation removed frees the address');
});
