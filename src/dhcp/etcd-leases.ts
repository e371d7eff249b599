/**
 * A pool several appliances on one segment hand out together: its leases live in etcd, one
 * key per address (`<prefix>/leases/<subnet>/<ip>`, subnet as `10.0.0.0-24`: store/etcd-keys.ts,
 * so the pools of two segments never meet), and no lease file is written.
 *
 * Why this is safe with the pool (leases.ts) still deciding in memory: every write of an
 * address is a transaction that compares the key's mod revision with the one this process
 * last saw, so a decision taken on a stale view loses (the key is read back into the pool and
 * nothing is sent) instead of handing one address to two machines. The watch of the prefix
 * only keeps the in-memory view fresh, so that such conflicts stay rare; correctness never
 * rests on it. Offers are written too (state `offered`, for the offer hold): the other
 * appliance must not offer the same address meanwhile.
 *
 * Writes of one address are chained, so the value written is always the pool's latest record
 * of it and each compare uses the revision of our own previous write. Writes of different
 * addresses are grouped: those queued while a transaction is out leave in the next one, each
 * as a nested transaction with its own compare and outcome (bench/dhcp/full.md: 5× the DORA/s
 * of one transaction per address).
 */
import { isIPv4 } from 'node:net';
import { CompareResult, CompareTarget, type IKeyValue, type Namespace, type Watcher } from 'etcd3';
import { z } from 'zod';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { LeaseRecord } from './lease-file.ts';
import type { LeaseLedger, LeaseLedgerOpened, SharedLedger } from './lease-ledger.ts';
import type { Lease, LeasePool } from './leases.ts';

// The lease file's record plus what only a shared pool keeps: the offer hold, and who wrote it.
const LeaseValue = LeaseRecord.extend({
  state: z.enum(['offered', 'bound', 'released', 'declined']),
  /** The appliance that wrote it: for the operator reading etcd, never for deciding. */
  by: z.string().optional(),
});

/** Transactions out at once, and addresses per transaction (etcd allows 128 operations a level by default). */
const TXNS_IN_FLIGHT = 2;
const WRITES_PER_TXN = 100;

type WriteOutcome = { ok: true; revision: string } | { ok: false; kv: IKeyValue | undefined; revision: string };

interface QueuedWrite {
  ip: string;
  /** The mod revision the key must still have ('0': absent). */
  rev: string;
  /** Undefined deletes the key. */
  value: string | undefined;
  settle(outcome: WriteOutcome | Error): void;
}

/** What this process last saw of one key: its mod revision ('0' when absent, what the compare needs), the revision that view is from, and the record's JSON. */
interface Known {
  rev: string;
  at: bigint;
  body: string | undefined;
}

export interface EtcdLeasesOptions {
  /** `<prefix>/leases/<subnet>/`, for log lines. */
  where: string;
  /** --name: written beside each record. */
  name: string;
}

export interface EtcdLeasesDeps {
  /** The client; the ledger scopes it to `where` itself, so keys and compares agree. */
  etcd: Namespace;
  pool: LeasePool;
  log: Logger;
  /** A record another appliance bound: its downloads belong to its machine here too. */
  onBound?: ((lease: Lease) => void) | undefined;
  /** Counts each write by outcome, as `stats` does, for /metrics. */
  writes?: Pick<Metrics['sharedLeaseWrites'], 'inc'> | undefined;
}

function bodyOf(lease: Lease | undefined): string | undefined {
  if (!lease) return undefined;
  // A fixed key order: two appliances writing the same record write the same body.
  return JSON.stringify({ ip: lease.ip, mac: lease.mac, clientId: lease.clientId, hostname: lease.hostname, state: lease.state, expires: lease.expires });
}

function ipOfKey(key: Buffer): string {
  const text = key.toString('utf8');
  return text.slice(text.lastIndexOf('/') + 1);
}

/** The record an address has when its key went away: free, remembered by nobody. */
function freed(ip: string): Lease {
  return { ip, mac: undefined, clientId: undefined, hostname: undefined, state: 'released', expires: 0 };
}

export class EtcdLeases implements LeaseLedger, SharedLedger {
  readonly shared: SharedLedger = this;
  private readonly known = new Map<string, Known>();
  /** The chain of writes per address. */
  private readonly chains = new Map<string, Promise<boolean>>();
  /** Addresses whose watch events arrived while one of our writes was in flight, with the latest revision seen: read again after it unless our write is newer. */
  private readonly missed = new Map<string, bigint>();
  private watcher: Watcher | undefined;
  private closed = false;
  /** The client scoped to this subnet's leases: keys are addresses. */
  private readonly ns: Namespace;
  private readonly queue: QueuedWrite[] = [];
  private inFlight = 0;
  /** Writes sent and compares lost so far (the conflicts are also logged at debug). */
  readonly stats = { writes: 0, conflicts: 0 };

  constructor(
    private readonly options: EtcdLeasesOptions,
    private readonly deps: EtcdLeasesDeps,
  ) {
    this.ns = deps.etcd.namespace(options.where);
  }

  get where(): string {
    return this.options.where;
  }

  /** Reads every record of the subnet, then watches from the revision read, so no change falls between. */
  async open(): Promise<LeaseLedgerOpened> {
    const { pool } = this.deps;
    const { ns } = this;
    const res = await ns.getAll().exec();
    const problems: string[] = [];
    const records: Lease[] = [];
    for (const kv of res.kvs) {
      const lease = this.parse(kv, problems);
      if (!lease) continue;
      records.push(lease);
      this.known.set(lease.ip, { rev: kv.mod_revision, at: BigInt(kv.mod_revision), body: bodyOf(lease) });
    }
    const { loaded, outside } = pool.load(records);
    pool.takeChanges();
    for (const l of records) if (l.state === 'bound' && l.mac && pool.isActive(l)) this.deps.onBound?.(l);
    const next = (BigInt(res.header.revision) + 1n).toString();
    this.watcher = await ns.watch().prefix('').startRevision(next).create();
    this.watcher.on('put', (kv) => this.remote(kv, false));
    this.watcher.on('delete', (kv) => this.remote(kv, true));
    this.watcher.on('error', (err) => this.deps.log.warn({ err, leases: this.where }, 'etcd lease watch failed; reconnecting'));
    return { loaded, outside, problems };
  }

  /** Writes every pending change; a conflict is not a failure here (the pool now holds the winner's record). */
  async commit(): Promise<void> {
    await this.flushPending(undefined);
  }

  async claim(ip: string): Promise<boolean> {
    return this.flushPending(ip);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.chains.values()]);
    await this.watcher?.cancel().catch(() => undefined);
    this.watcher = undefined;
  }

  private async flushPending(ip: string | undefined): Promise<boolean> {
    if (this.closed) throw new Error('etcd lease ledger is closed');
    const ips = new Set(this.deps.pool.takeChanges().map((c) => c.ip));
    if (ip) ips.add(ip);
    const results = await Promise.allSettled([...ips].map((a) => this.write(a).then((ok) => [a, ok] as const)));
    let mine = true;
    let failure: unknown;
    for (const r of results) {
      if (r.status === 'rejected') failure ??= r.reason;
      else if (r.value[0] === ip) mine = r.value[1];
    }
    if (failure !== undefined) throw failure;
    return mine;
  }

  /** Queues a write of the pool's current record at `ip` behind the previous one. */
  private write(ip: string): Promise<boolean> {
    const prev = this.chains.get(ip) ?? Promise.resolve(true);
    const next = prev.catch(() => false).then(() => this.writeNow(ip));
    this.chains.set(ip, next);
    const forget = () => {
      if (this.chains.get(ip) === next) this.chains.delete(ip);
      const rev = this.missed.get(ip);
      if (rev === undefined || this.chains.has(ip)) return;
      this.missed.delete(ip);
      // Most of these are the echo of the write that just finished.
      if ((this.known.get(ip)?.at ?? 0n) < rev) void this.reread(ip);
    };
    next.then(forget, forget);
    return next;
  }

  private async writeNow(ip: string): Promise<boolean> {
    const { pool } = this.deps;
    // Read at write time, not at queue time: a later change of the same address rides along.
    const record = pool.get(ip);
    const body = bodyOf(record);
    const known = this.known.get(ip) ?? { rev: '0', at: 0n, body: undefined };
    if (body === known.body) return true;
    this.stats.writes++;
    const value = record && JSON.stringify({ ...JSON.parse(body!), by: this.options.name });
    let outcome: WriteOutcome;
    try {
      outcome = await this.send({ ip, rev: known.rev, value });
    } catch (err) {
      this.deps.writes?.inc({ outcome: 'failed' });
      throw err;
    }
    if (outcome.ok) {
      this.known.set(ip, { rev: body === undefined ? '0' : outcome.revision, at: BigInt(outcome.revision), body });
      this.deps.writes?.inc({ outcome: 'written' });
      return true;
    }
    // Someone else changed it since we read it: theirs stands, ours is dropped.
    this.stats.conflicts++;
    this.deps.writes?.inc({ outcome: 'conflict' });
    this.adopt(ip, outcome.kv, BigInt(outcome.revision));
    this.deps.log.debug({ ip, leases: this.where }, 'lease changed by another appliance first: nothing sent for ours');
    return false;
  }

  /**
   * Group commit: a write waits only while TXNS_IN_FLIGHT transactions are out, and everything
   * queued meanwhile leaves in the next one, each address as its own nested transaction (its
   * own compare, its own outcome), so a rack booting is a few round trips, not one per lease.
   */
  private send(write: Omit<QueuedWrite, 'settle'>): Promise<WriteOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ...write, settle: (r) => (r instanceof Error ? reject(r) : resolve(r)) });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < TXNS_IN_FLIGHT && this.queue.length) {
      const batch = this.queue.splice(0, WRITES_PER_TXN);
      this.inFlight++;
      void this.commitBatch(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async commitBatch(batch: QueuedWrite[]): Promise<void> {
    const { ns } = this;
    try {
      const ops = await Promise.all(
        batch.map(async (w) => ({
          request_txn: {
            compare: [{ key: Buffer.from(`${this.options.where}${w.ip}`), result: CompareResult.Equal, target: CompareTarget.Mod, mod_revision: w.rev }],
            success: [w.value ? await ns.put(w.ip).value(w.value).op() : await ns.delete().key(w.ip).op()],
            failure: [await ns.get(w.ip).op()],
          },
        })),
      );
      // etcd has no bare multi-operation request: an outer compare that always holds carries them.
      const res = await ns
        .if(batch[0]!.ip, 'Version', '>', -1)
        .then(...ops)
        .commit();
      const revision = res.header.revision;
      batch.forEach((w, i) => {
        const inner = res.responses[i]?.response_txn;
        if (inner?.succeeded) w.settle({ ok: true, revision });
        else w.settle({ ok: false, kv: inner?.responses[0]?.response_range?.kvs[0], revision });
      });
    } catch (err) {
      for (const w of batch) w.settle(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** A change from the watch. Our own writes come back too: their revision is already known. */
  private remote(kv: IKeyValue, deleted: boolean): void {
    const ip = ipOfKey(kv.key);
    if (!isIPv4(ip)) return;
    if (this.chains.has(ip)) {
      this.miss(ip, kv.mod_revision);
      return;
    }
    if ((this.known.get(ip)?.at ?? 0n) >= BigInt(kv.mod_revision)) return;
    this.adopt(ip, deleted ? undefined : kv, BigInt(kv.mod_revision));
  }

  private miss(ip: string, rev: string): void {
    const r = BigInt(rev);
    const had = this.missed.get(ip);
    if (had === undefined || had < r) this.missed.set(ip, r);
  }

  private async reread(ip: string): Promise<void> {
    if (this.closed) return;
    try {
      const res = await this.ns.get(ip).exec();
      const kv = res.kvs[0];
      if (this.chains.has(ip)) {
        this.miss(ip, kv?.mod_revision ?? res.header.revision);
        return;
      }
      if ((this.known.get(ip)?.at ?? 0n) >= BigInt(res.header.revision)) return;
      this.adopt(ip, kv, BigInt(res.header.revision));
    } catch (err) {
      this.deps.log.warn({ err, ip, leases: this.where }, 'lease not read back after a missed change');
    }
  }

  /** Puts the stored record (or its absence) into the pool as it is in etcd. */
  private adopt(ip: string, kv: IKeyValue | undefined, at: bigint): void {
    const problems: string[] = [];
    const lease = kv ? this.parse(kv, problems) : undefined;
    if (kv && !lease) {
      // An unreadable value still holds the address: never hand it out on our guess.
      this.known.set(ip, { rev: kv.mod_revision, at, body: undefined });
      this.deps.pool.load([{ ...freed(ip), state: 'declined', expires: Number.MAX_SAFE_INTEGER }]);
      return;
    }
    this.known.set(ip, { rev: kv ? kv.mod_revision : '0', at, body: bodyOf(lease) });
    this.deps.pool.load([lease ?? freed(ip)]);
    if (lease?.state === 'bound' && lease.mac && this.deps.pool.isActive(lease)) this.deps.onBound?.(lease);
  }

  private parse(kv: IKeyValue, problems: string[]): Lease | undefined {
    const key = kv.key.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(kv.value.toString('utf8'));
    } catch {
      json = undefined;
    }
    const parsed = LeaseValue.safeParse(json);
    if (!parsed.success || parsed.data.ip !== ipOfKey(kv.key)) {
      const why = parsed.success ? `its ip ${parsed.data.ip} is not its key's` : (parsed.error.issues[0]?.message ?? 'not JSON');
      problems.push(`${key}: ${why}`);
      this.deps.log.error({ key, reason: why, leases: this.where }, 'unreadable lease in etcd: its address is kept out of the pool');
      return undefined;
    }
    const { ip, mac, clientId, hostname, state, expires } = parsed.data;
    return { ip, mac, clientId, hostname, state, expires };
  }
}
