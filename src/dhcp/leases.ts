/**
 * The full-mode address pool: which address belongs to which client, for how long.
 * Pure memory and policy; src/dhcp/lease-file.ts makes it durable.
 *
 * Invariant: one record per address (byIp), and a client is owner of at most one record,
 * so an address is never held by two clients. Records are kept after they expire or are
 * released so a returning client gets its old address back, and the oldest of them is
 * reused only when no address in the range was ever handed out.
 *
 * Reserved addresses (fixed hosts of the data directory, setReserved) are never handed out
 * and never counted free; a record already on one is kept, but no longer renewed or offered
 * to its client (full-policy.ts NAKs such a REQUEST), so the client moves to a pool address.
 */
import { intToIpv4, ipv4ToInt } from '../net/ipv4.ts';
import type { Mac } from '../net/mac.ts';

/** `offered` is a short hold between OFFER and REQUEST and is never written to disk. */
export type LeaseState = 'offered' | 'bound' | 'released' | 'declined';

export interface Lease {
  ip: string;
  /** Undefined once declined: a quarantined address belongs to nobody. */
  mac: Mac | undefined;
  /** Hex of option 61 when the client sent one that is not just its hardware address. */
  clientId: string | undefined;
  hostname: string | undefined;
  state: LeaseState;
  /** Milliseconds since the epoch: end of the lease, of the offer hold, or of the quarantine. */
  expires: number;
}

/** Who is asking: chaddr, and option 61 normalised by normalizeClientId. */
export interface LeaseClient {
  mac: Mac;
  clientId?: string | undefined;
}

/** A change to persist: the record now at `ip`, or `free: true` when nothing is there any more. */
export type LeaseChange = { ip: string; free: true } | (Lease & { free?: undefined });

export interface LeasePoolOptions {
  start: string;
  end: string;
  /** Seconds. */
  leaseTime: number;
  /** Seconds an offered address stays reserved for the client it was offered to. */
  offerHold?: number;
  /** Seconds a declined address is kept out of the pool (dnsmasq uses 10 minutes too). */
  quarantine?: number;
  /** Addresses inside the range never handed out (our own, the router's). */
  exclude?: string[];
  now?: () => number;
}

export type BindResult = { ok: true; lease: Lease } | { ok: false; reason: string };

/**
 * Option 61 as a pool key. A client id that is hardware type 1 followed by chaddr says
 * nothing chaddr doesn't, and treating it as the MAC keeps one address across the PXE ROM
 * (no 61), iPXE and the installed OS (01+MAC), which would otherwise take three.
 */
export function normalizeClientId(option61: Uint8Array | undefined, mac: Mac): string | undefined {
  // Longer than one option (RFC 3396 concatenation) is no client id anyone sends; the MAC is a safer key than a value the lease file would refuse.
  if (!option61 || option61.length === 0 || option61.length > 255) return undefined;
  const hex = Buffer.from(option61).toString('hex');
  if (hex === `01${mac.replaceAll(':', '')}`) return undefined;
  return hex;
}

export type LeaseCounts = ReturnType<LeasePool['counts']>;

/** Several pools' counts as one (the --iface pool and each declared subnet's), for /metrics. */
export function totalLeaseCounts(pools: LeasePool[]): LeaseCounts {
  const out: LeaseCounts = { bound: 0, offered: 0, declined: 0, free: 0 };
  for (const pool of pools) {
    const c = pool.counts();
    out.bound += c.bound;
    out.offered += c.offered;
    out.declined += c.declined;
    out.free += c.free;
  }
  return out;
}

export class LeasePool {
  readonly startInt: number;
  readonly endInt: number;
  readonly leaseTimeMs: number;
  private readonly offerHoldMs: number;
  private readonly quarantineMs: number;
  private readonly excluded: Set<number>;
  /** Fixed hosts' addresses inside the range; replaced whole when the data directory changes. */
  private reserved = new Set<number>();
  private readonly now: () => number;

  private readonly byIp = new Map<number, Lease>();
  private readonly byClientId = new Map<string, Lease>();
  private readonly byMac = new Map<Mac, Lease>();
  /** Addresses whose durable state changed since the last takeChanges(). */
  private readonly changed = new Set<number>();
  private cursor: number;

  constructor(options: LeasePoolOptions) {
    this.startInt = ipv4ToInt(options.start);
    this.endInt = ipv4ToInt(options.end);
    if (this.startInt > this.endInt) throw new RangeError(`lease range ${options.start}-${options.end} is empty`);
    this.leaseTimeMs = options.leaseTime * 1000;
    this.offerHoldMs = (options.offerHold ?? 30) * 1000;
    this.quarantineMs = (options.quarantine ?? 600) * 1000;
    this.excluded = new Set((options.exclude ?? []).map(ipv4ToInt).filter((n) => n >= this.startInt && n <= this.endInt));
    this.now = options.now ?? Date.now;
    this.cursor = this.startInt;
  }

  get size(): number {
    return this.endInt - this.startInt + 1;
  }

  /** True when `ip` is one this pool may hand out. */
  inPool(ip: string): boolean {
    const n = ipv4ToInt(ip);
    return this.inRange(n) && !this.reserved.has(n);
  }

  /** The fixed hosts' addresses: from now on none of them is offered, bound or counted free. */
  setReserved(ips: Iterable<string>): void {
    const next = new Set<number>();
    for (const ip of ips) {
      const n = ipv4ToInt(ip);
      if (this.inRange(n)) next.add(n);
    }
    this.reserved = next;
  }

  isReserved(ip: string): boolean {
    return this.reserved.has(ipv4ToInt(ip));
  }

  private inRange(n: number): boolean {
    return n >= this.startInt && n <= this.endInt && !this.excluded.has(n);
  }

  /** The client's record in any state (bound, expired, released, offered), if it has one. */
  find(client: LeaseClient): Lease | undefined {
    if (client.clientId) {
      const byId = this.byClientId.get(client.clientId);
      if (byId) return byId;
    }
    // Like dnsmasq: fall back to chaddr when either side has no client id.
    const byMac = this.byMac.get(client.mac);
    if (byMac && (!byMac.clientId || !client.clientId)) return byMac;
    return undefined;
  }

  get(ip: string): Lease | undefined {
    return this.byIp.get(ipv4ToInt(ip));
  }

  /** True while the record keeps its address from everyone else. */
  isActive(lease: Lease, now = this.now()): boolean {
    return lease.state !== 'released' && lease.expires > now;
  }

  /**
   * Picks the address to OFFER: the client's own (RFC 2131 4.3.1 order), else the one it
   * asked for if free, else one never handed out, else the longest-expired. The choice is
   * held for offerHold so a second client cannot be offered it meanwhile.
   */
  offer(client: LeaseClient, requested?: string, hostname?: string): Lease | undefined {
    const now = this.now();
    const own = this.find(client);
    // A record on an address reserved since is not the client's to keep: it gets another one.
    if (own && own.state !== 'declined' && !this.reserved.has(ipv4ToInt(own.ip))) {
      if (own.state === 'bound' && own.expires > now) return own;
      if (own.state === 'offered' && own.expires > now) {
        own.expires = now + this.offerHoldMs;
        return own;
      }
      return this.assign(own.ip, client, hostname, 'offered', now + this.offerHoldMs, false);
    }
    let ip: number | undefined;
    if (requested && this.inPool(requested)) {
      const n = ipv4ToInt(requested);
      const there = this.byIp.get(n);
      if (!there || !this.isActive(there, now)) ip = n;
    }
    ip ??= this.fresh() ?? this.oldestFree(now);
    if (ip === undefined) return undefined;
    return this.assign(intToIpv4(ip), client, hostname, 'offered', now + this.offerHoldMs, false);
  }

  /**
   * Binds `ip` to the client for a lease time (REQUEST in any state). Refuses an address
   * outside the pool or held by someone else; the caller NAKs or stays silent.
   */
  bind(client: LeaseClient, ip: string, hostname?: string): BindResult {
    if (this.isReserved(ip)) return { ok: false, reason: `${ip} is reserved for a fixed host` };
    if (!this.inPool(ip)) return { ok: false, reason: `${ip} is not in the pool` };
    const now = this.now();
    const there = this.byIp.get(ipv4ToInt(ip));
    if (there && this.isActive(there, now) && !this.owns(there, client)) {
      return { ok: false, reason: there.state === 'declined' ? `${ip} was declined and is quarantined` : `${ip} is held by another client` };
    }
    return { ok: true, lease: this.assign(ip, client, hostname, 'bound', now + this.leaseTimeMs, true) };
  }

  /** DHCPRELEASE: the address stays the client's preferred one but is free for others. */
  release(client: LeaseClient, ip: string): boolean {
    const there = this.byIp.get(ipv4ToInt(ip));
    if (!there || !this.owns(there, client) || there.state === 'declined') return false;
    there.state = 'released';
    there.expires = this.now();
    this.changed.add(ipv4ToInt(ip));
    return true;
  }

  /**
   * DHCPDECLINE: someone else answers ARP for the address. It leaves the client and stays out
   * of the pool for the quarantine. Only the client holding it (or a free address) can be
   * declined, so a stray DECLINE cannot take a working client's address away.
   */
  decline(client: LeaseClient, ip: string): boolean {
    if (!this.inPool(ip)) return false;
    const n = ipv4ToInt(ip);
    const there = this.byIp.get(n);
    const now = this.now();
    if (there && this.isActive(there, now) && !this.owns(there, client)) return false;
    if (there) this.unlink(there);
    const lease: Lease = { ip, mac: undefined, clientId: undefined, hostname: undefined, state: 'declined', expires: now + this.quarantineMs };
    this.byIp.set(n, lease);
    this.changed.add(n);
    return true;
  }

  /** The client turned to another server (REQUEST with someone else's option 54): drop our hold. */
  forgetOffer(client: LeaseClient): void {
    const own = this.find(client);
    if (own && own.state === 'offered') own.expires = Math.min(own.expires, this.now());
  }

  /**
   * Records to restore at start (from disk); later entries for the same address win. A record
   * on a reserved address is kept (not handed out again, see offer): the reservation may go.
   */
  load(records: Iterable<Lease>): { loaded: number; outside: number } {
    let loaded = 0;
    let outside = 0;
    for (const r of records) {
      if (!this.inRange(ipv4ToInt(r.ip))) {
        outside++;
        continue;
      }
      const n = ipv4ToInt(r.ip);
      const old = this.byIp.get(n);
      if (old) this.unlink(old);
      const lease: Lease = { ...r };
      if (lease.mac) {
        // A client owns one record: keep whichever lasts longer.
        const prev = this.find({ mac: lease.mac, clientId: lease.clientId });
        if (prev && prev.expires > lease.expires) {
          lease.mac = undefined;
          lease.clientId = undefined;
          lease.state = 'released';
        } else if (prev) {
          this.unlink(prev);
          prev.mac = undefined;
          prev.clientId = undefined;
          prev.state = 'released';
        }
      }
      this.byIp.set(n, lease);
      this.link(lease);
      loaded++;
    }
    return { loaded, outside };
  }

  /** Everything worth persisting. An outstanding offer is written as a released record of that client: affinity without a hold. */
  snapshot(): Lease[] {
    const out: Lease[] = [];
    for (const lease of this.byIp.values()) out.push(this.durable(lease));
    return out;
  }

  /** The durable changes since the previous call (what the next journal write must hold). */
  takeChanges(): LeaseChange[] {
    const out: LeaseChange[] = [];
    for (const n of this.changed) {
      const lease = this.byIp.get(n);
      out.push(lease ? this.durable(lease) : { ip: intToIpv4(n), free: true });
    }
    this.changed.clear();
    return out;
  }

  /** A write failed: these changes are pending again, for the next one. */
  restoreChanges(changes: LeaseChange[]): void {
    for (const c of changes) this.changed.add(ipv4ToInt(c.ip));
  }

  /**
   * Addresses by state right now (for /metrics): expired and released records count as free;
   * reserved addresses never do (a record still on one counts by its state, not as free).
   */
  counts(): Record<'bound' | 'offered' | 'declined' | 'free', number> {
    const now = this.now();
    const out = { bound: 0, offered: 0, declined: 0, free: 0 };
    let activeOnReserved = 0;
    for (const l of this.byIp.values()) {
      if (!this.isActive(l, now)) continue;
      out[l.state as 'bound' | 'offered' | 'declined']++;
      if (this.reserved.has(ipv4ToInt(l.ip))) activeOnReserved++;
    }
    out.free = this.size - this.excluded.size - this.reserved.size - (out.bound + out.offered + out.declined - activeOnReserved);
    return out;
  }

  /** Every record, for the tests' invariant checks and the operator's view. */
  all(): Lease[] {
    return [...this.byIp.values()];
  }

  private durable(lease: Lease): Lease {
    if (lease.state !== 'offered') return { ...lease };
    return { ...lease, state: 'released', expires: Math.min(lease.expires, this.now()) };
  }

  private owns(lease: Lease, client: LeaseClient): boolean {
    return lease.mac !== undefined && this.find(client) === lease;
  }

  /**
   * Puts `client` at `ip`, taking the address from a previous (inactive) owner and releasing
   * the client's other record, so both maps keep one record per address and per client.
   */
  private assign(ip: string, client: LeaseClient, hostname: string | undefined, state: LeaseState, expires: number, durable: boolean): Lease {
    const n = ipv4ToInt(ip);
    const mine = this.find(client);
    if (mine && mine.ip !== ip) {
      this.unlink(mine);
      this.byIp.delete(ipv4ToInt(mine.ip));
      this.changed.add(ipv4ToInt(mine.ip));
    }
    const there = this.byIp.get(n);
    if (there) this.unlink(there);
    // Option 12 can be concatenated past 255 bytes; the lease file keeps at most 255 (what a DNS label chain allows).
    const name = (hostname ?? (there === mine ? there?.hostname : undefined))?.slice(0, 255);
    const lease: Lease = { ip, mac: client.mac, clientId: client.clientId, hostname: name, state, expires };
    this.byIp.set(n, lease);
    this.link(lease);
    if (durable || (there && there !== mine)) this.changed.add(n);
    return lease;
  }

  private link(lease: Lease): void {
    if (!lease.mac) return;
    if (lease.clientId) this.byClientId.set(lease.clientId, lease);
    this.byMac.set(lease.mac, lease);
  }

  private unlink(lease: Lease): void {
    if (lease.clientId && this.byClientId.get(lease.clientId) === lease) this.byClientId.delete(lease.clientId);
    if (lease.mac && this.byMac.get(lease.mac) === lease) this.byMac.delete(lease.mac);
  }

  /** The next address that has never had a record, scanning round the range once. */
  private fresh(): number | undefined {
    if (this.byIp.size + this.excluded.size >= this.size) return undefined;
    for (let i = 0; i < this.size; i++) {
      const n = this.cursor;
      this.cursor = n >= this.endInt ? this.startInt : n + 1;
      if (!this.byIp.has(n) && !this.excluded.has(n) && !this.reserved.has(n)) return n;
    }
    return undefined;
  }

  /** The record that has been free the longest, when every address has been used once. */
  private oldestFree(now: number): number | undefined {
    let best: Lease | undefined;
    for (const lease of this.byIp.values()) {
      if (this.isActive(lease, now) || this.reserved.has(ipv4ToInt(lease.ip))) continue;
      if (!best || lease.expires < best.expires) best = lease;
    }
    return best ? ipv4ToInt(best.ip) : undefined;
  }
}
