/**
 * The DHCP side of the appliance as one service: port 67 in the configured mode (ProxyDHCP
 * or full DHCP) and the PXE boot server on 4011 in both, every socket tied to --iface.
 * If any part cannot start, the parts already up are stopped and nothing DHCP-related runs.
 */
import type { BootSettings } from '../boot/decide.ts';
import type { BootTimeline } from '../events/timeline.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Segment } from '../net/interface.ts';
import { intToIpv4 } from '../net/ipv4.ts';
import type { Service } from '../service.ts';
import { PxeBootServerPolicy } from './boot-server-policy.ts';
import { FullDhcpPolicy } from './full-policy.ts';
import { LeaseFile } from './lease-file.ts';
import type { LeaseLedger } from './lease-ledger.ts';
import { LeasePool } from './leases.ts';
import type { MachineLookup } from './pipeline.ts';
import { ProxyDhcpPolicy } from './proxy-policy.ts';
import { DhcpRecorder } from './recorder.ts';
import { DhcpResponder } from './responder.ts';
import type { DhcpSite } from './site.ts';
import { ownThenOthers, servedSubnet, singleSubnet } from './subnets.ts';
import type { OpenTransport } from './transport.ts';

export interface ProxyDhcpServiceOptions {
  mode: 'proxy';
  segment: Segment;
}

export interface FullDhcpServiceOptions {
  mode: 'full';
  segment: Segment;
  router: string | undefined;
  dns: string[];
  /** Seconds. */
  leaseTime: number;
  leaseFile: string;
  /** The pool of --dhcp-range (poolFor); the metrics read it too. */
  pool: LeasePool;
  /** The fixed hosts and relayed subnets of <data>/dhcp; without it, the --iface pool only. */
  site?: DhcpSite | undefined;
  /** Where the pool's leases are kept; by default the lease file at leaseFile (etcd-leases.ts when shared). */
  ledger?: LeaseLedger | undefined;
}

export type DhcpServiceOptions = ProxyDhcpServiceOptions | FullDhcpServiceOptions;

export interface DhcpServiceDeps {
  boot: BootSettings;
  lookup: MachineLookup;
  log: Logger;
  metrics: Pick<Metrics, 'dhcpRequests' | 'dhcpReplies' | 'dhcpIgnored' | 'malformedPackets' | 'dhcpLeaseWriteFailures'>;
  timeline: Pick<BootTimeline, 'record' | 'bindAddress'>;
  /** The sockets; by default each is bound to the segment's interface (DhcpTransport). */
  openTransport?: OpenTransport | undefined;
}

/** The address pool of --dhcp-range, without our own address and the router's. */
export function poolFor(range: { start: string; end: string }, serverAddress: string, router: string | undefined, leaseTime: number): LeasePool {
  return new LeasePool({ start: range.start, end: range.end, leaseTime, exclude: [serverAddress, ...(router ? [router] : [])] });
}

/** The lease ledger of full mode (the lease file, or etcd): loaded before port 67 answers, closed after it stops. */
class LeaseLedgerService implements Service {
  readonly name = 'leases';

  constructor(
    readonly leases: LeaseLedger,
    private readonly pool: LeasePool,
    private readonly deps: Pick<DhcpServiceDeps, 'log' | 'timeline'>,
  ) {}

  async start(): Promise<void> {
    const { pool, leases } = this;
    const opened = await leases.open();
    const active = pool.all().filter((l) => l.state === 'bound' && pool.isActive(l));
    this.deps.log.info(
      {
        [leases.shared ? 'leases' : 'leaseFile']: leases.where,
        loaded: opened.loaded,
        active: active.length,
        outsideRange: opened.outside,
        problems: opened.problems,
        range: `${intToIpv4(pool.startInt)}-${intToIpv4(pool.endInt)}`,
      },
      `leases loaded: ${active.length} active of ${opened.loaded}`,
    );
    // Machines that booted before a restart still own their addresses: their downloads stay theirs.
    for (const l of active) if (l.mac) this.deps.timeline.bindAddress(l.ip, l.mac);
  }

  async stop(): Promise<void> {
    await this.leases.close();
  }
}

/** Starts its parts in order and, if one fails, stops the ones already up before rethrowing. */
export class DhcpService implements Service {
  readonly name = 'dhcp';
  private readonly running: Service[] = [];

  constructor(
    readonly parts: Service[],
    private readonly log: Logger,
    private readonly iface: string,
    /** Full mode's lease file (undefined in proxy mode). */
    readonly leases?: LeaseFile,
  ) {}

  async start(): Promise<void> {
    for (const part of this.parts) {
      try {
        await part.start();
      } catch (err) {
        await this.stop();
        this.log.error({ err, part: part.name, iface: this.iface }, `DHCP not started: ${(err as Error).message}`);
        throw err;
      }
      this.running.push(part);
    }
  }

  async stop(): Promise<void> {
    while (this.running.length)
      await this.running
        .pop()!
        .stop()
        .catch(() => undefined);
  }
}

export function dhcpServiceFor(options: DhcpServiceOptions, deps: DhcpServiceDeps): DhcpService {
  const { segment } = options;
  const responder = (name: string, policy: ProxyDhcpPolicy | PxeBootServerPolicy | FullDhcpPolicy, extra?: string) =>
    new DhcpResponder(name, segment, policy, { boot: deps.boot, lookup: deps.lookup, recorder: new DhcpRecorder(policy, deps) }, deps.log, extra, deps.openTransport);
  const bootServer = responder('pxe-bootserver', new PxeBootServerPolicy(segment.address));
  if (options.mode === 'proxy') return new DhcpService([responder('proxydhcp', new ProxyDhcpPolicy(segment.address)), bootServer], deps.log, segment.iface);

  const { pool } = options;
  const leases: LeaseLedger = options.ledger ?? new LeaseFile(options.leaseFile, pool, deps.log);
  const own = servedSubnet({
    name: 'iface',
    address: segment.address,
    netmask: segment.netmask,
    pool,
    router: options.router,
    dns: options.dns,
    leaseTime: options.leaseTime,
    leaseFile: leases.where,
    commit: () => leases.commit(),
    shared: leases.shared,
  });
  const { site } = options;
  const subnets = site ? ownThenOthers(own, site) : singleSubnet(own);
  const policy = new FullDhcpPolicy({ serverAddress: segment.address }, { subnets, hosts: site, log: deps.log, metrics: deps.metrics });
  const range = `${intToIpv4(pool.startInt)}-${intToIpv4(pool.endInt)}`;
  // The site after the main lease file (a second appliance is refused naming leases.json first), both before port 67 answers.
  const parts: Service[] = [new LeaseLedgerService(leases, pool, deps), ...(site ? [site] : []), responder('dhcp-full', policy, `, handing out ${range}`), bootServer];
  return new DhcpService(parts, deps.log, segment.iface, leases instanceof LeaseFile ? leases : undefined);
}
