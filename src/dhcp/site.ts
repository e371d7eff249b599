/**
 * Full DHCP for a real site: the fixed hosts and relayed subnets of <data>/dhcp (read and
 * judged by store/dhcp-files.ts), kept in step with the files while running. Each declared
 * subnet with a range has its own pool and lease file, leases-<name>.json beside --lease-file,
 * loaded before it answers and locked like the main one; leases of two subnets never meet.
 *
 * A change is applied subnet by subnet: one whose file changed is closed (its journal folded
 * into its snapshot) and opened again from its file, so nothing bound is forgotten; one that
 * went away stops being served; the fixed addresses are re-reserved in every pool at once.
 */
import path from 'node:path';
import type { BootTimeline } from '../events/timeline.ts';
import type { Logger } from '../log.ts';
import { intToIpv4 } from '../net/ipv4.ts';
import type { Mac } from '../net/mac.ts';
import type { Service } from '../service.ts';
import type { FixedHost, SiteConfig, SiteSubnet } from '../store/dhcp-files.ts';
import { LeaseFile, LeaseFileLockedError } from './lease-file.ts';
import type { LeaseLedger } from './lease-ledger.ts';
import { LeasePool } from './leases.ts';
import { contains, type ServedSubnet, type SubnetDirectory } from './subnets.ts';

/** The files behind the site (DhcpSiteFiles); an interface so tests can hand one in. */
export interface SiteSource {
  open(): Promise<void>;
  close(): Promise<void>;
  current(): SiteConfig;
  onChange(listener: () => void): () => void;
}

/** What the policy asks about fixed addresses, per request; answered from memory. */
export interface FixedHosts {
  hostFor(mac: Mac): FixedHost | undefined;
  /** The MAC an address is fixed for, if any. */
  ownerOf(ip: string): Mac | undefined;
}

export interface DhcpSiteOptions {
  /** Each subnet's leases-<name>.json lives in this directory (that of --lease-file). */
  leaseDir: string;
  /** --lease-time, for a subnet file that names none. */
  defaultLeaseTime: number;
  /** The --iface pool: it skips the fixed addresses too. */
  ownPool: LeasePool | undefined;
  /** Where a subnet's leases are kept; by default its lease file (etcd-leases.ts when the pools are shared). */
  ledgerFor?: ((pool: LeasePool, subnet: SiteSubnet) => LeaseLedger) | undefined;
}

export interface DhcpSiteDeps {
  source: SiteSource;
  log: Logger;
  timeline: Pick<BootTimeline, 'bindAddress'>;
}

interface Running {
  /** The file's content this subnet was opened with: any change reopens it. */
  shape: string;
  subnet: ServedSubnet;
  leases: LeaseLedger | undefined;
}

export function leaseFileFor(leaseDir: string, name: string): string {
  return path.join(leaseDir, `leases-${name}.json`);
}

export class DhcpSite implements Service, SubnetDirectory, FixedHosts {
  readonly name = 'dhcp-site';
  private running = new Map<string, Running>();
  private hosts = new Map<Mac, FixedHost>();
  private owners = new Map<string, Mac>();
  private applying: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly options: DhcpSiteOptions,
    private readonly deps: DhcpSiteDeps,
  ) {}

  subnetFor(link: string): ServedSubnet | undefined {
    for (const r of this.running.values()) if (contains(r.subnet, link)) return r.subnet;
    return undefined;
  }

  hostFor(mac: Mac): FixedHost | undefined {
    return this.hosts.get(mac);
  }

  ownerOf(ip: string): Mac | undefined {
    return this.owners.get(ip);
  }

  /** The declared subnets' pools, for the lease metrics. */
  pools(): LeasePool[] {
    const out: LeasePool[] = [];
    for (const r of this.running.values()) if (r.subnet.pool) out.push(r.subnet.pool);
    return out;
  }

  /** Reads the files and opens every subnet's lease file before port 67 answers; a lease file another appliance holds stops the start. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.deps.source.open();
    try {
      await this.apply(this.deps.source.current(), true);
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.unsubscribe = this.deps.source.onChange(() => {
      this.applying = this.applying
        .then(() => (this.stopped ? undefined : this.apply(this.deps.source.current(), false)))
        .catch((err: unknown) => this.deps.log.error({ err }, 'dhcp site change not applied'));
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.deps.source.close();
    await this.applying;
    const running = [...this.running.values()];
    this.running = new Map();
    for (const r of running) await r.leases?.close().catch((err: unknown) => this.deps.log.warn({ err, leaseFile: r.leases?.where }, 'subnet lease file not closed cleanly'));
  }

  private async apply(site: SiteConfig, starting: boolean): Promise<void> {
    const { log } = this.deps;
    // Reservations first: from this moment no pool hands out a fixed address.
    this.hosts = new Map(site.hosts.map((h) => [h.mac, h]));
    this.owners = new Map(site.hosts.map((h) => [h.ip, h.mac]));
    const fixed = site.hosts.map((h) => h.ip);
    this.options.ownPool?.setReserved(fixed);
    for (const r of this.running.values()) r.subnet.pool?.setReserved(fixed);

    const wanted = new Map(site.subnets.map((s) => [s.name, s]));
    for (const [name, r] of [...this.running]) {
      const decl = wanted.get(name);
      if (decl && shapeOf(decl) === r.shape) continue;
      this.running.delete(name);
      await r.leases?.close().catch((err: unknown) => log.warn({ err, leaseFile: r.leases?.where }, 'subnet lease file not closed cleanly'));
      if (!decl) log.info({ subnet: name }, `subnet ${name} is no longer served (its file went away or was refused)`);
    }
    for (const decl of site.subnets) {
      if (this.running.has(decl.name)) continue;
      try {
        this.running.set(decl.name, await this.open(decl, fixed));
      } catch (err) {
        if (starting && err instanceof LeaseFileLockedError) throw err;
        log.error({ err, subnet: decl.name, path: decl.path }, `subnet ${decl.name} not served: ${(err as Error).message}`);
      }
    }
  }

  private async open(decl: SiteSubnet, fixed: string[]): Promise<Running> {
    const leaseTime = decl.leaseTime ?? this.options.defaultLeaseTime;
    const leaseFile = leaseFileFor(this.options.leaseDir, decl.name);
    // The relay answers on the router's address, so the router is never a client's.
    const pool = decl.range && new LeasePool({ start: decl.range.start, end: decl.range.end, leaseTime, exclude: decl.router ? [decl.router] : [] });
    pool?.setReserved(fixed);
    const leases: LeaseLedger | undefined = pool && (this.options.ledgerFor?.(pool, decl) ?? new LeaseFile(leaseFile, pool, this.deps.log));
    const broadcast = intToIpv4((decl.network | (~decl.mask >>> 0)) >>> 0);
    const subnet: ServedSubnet = {
      name: decl.name,
      network: decl.network,
      mask: decl.mask,
      netmask: decl.netmask,
      broadcast,
      pool,
      router: decl.router,
      dns: decl.dns,
      leaseTime,
      leaseFile: leases?.where ?? leaseFile,
      commit: () => leases?.commit() ?? Promise.resolve(),
      shared: leases?.shared,
    };
    if (leases && pool) {
      const opened = await leases.open();
      const active = pool.all().filter((l) => l.state === 'bound' && pool.isActive(l));
      for (const l of active) if (l.mac) this.deps.timeline.bindAddress(l.ip, l.mac);
      this.deps.log.info(
        {
          subnet: decl.name,
          cidr: decl.cidr,
          leaseFile: leases.where,
          loaded: opened.loaded,
          active: active.length,
          outsideRange: opened.outside,
          problems: opened.problems,
          range: `${decl.range!.start}-${decl.range!.end}`,
        },
        `subnet ${decl.name} (${decl.cidr}) served: ${active.length} active lease(s) of ${opened.loaded}`,
      );
    } else this.deps.log.info({ subnet: decl.name, cidr: decl.cidr }, `subnet ${decl.name} (${decl.cidr}) served: fixed hosts only (no range)`);
    return { shape: shapeOf(decl), subnet, leases };
  }
}

function shapeOf(decl: SiteSubnet): string {
  return JSON.stringify([decl.cidr, decl.range, decl.router, decl.dns, decl.leaseTime]);
}
