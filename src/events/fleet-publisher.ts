/**
 * This appliance's half of the fleet view: the machines of its timeline written to etcd
 * under its --name (`<prefix>/fleet/<name>/<mac>`), so every appliance sharing the store can
 * show them (fleet-view.ts). It only listens to the timeline; no service records differently.
 *
 * Why batched: a rack booting makes thousands of steps a second; each machine is written at
 * most once per flush interval (its latest events), and one flush is a few transactions of
 * many machines each, not one write per packet.
 *
 * Why an etcd lease: the keys live as long as this process keeps the lease alive, so a dead
 * appliance's machines leave the fleet view by themselves after --fleet-ttl. A lost lease
 * (etcd unreachable longer than the TTL) is granted again and every machine republished.
 */
import type { Lease, Namespace } from 'etcd3';
import type { Logger } from '../log.ts';
import type { Mac } from '../net/mac.ts';
import type { Service } from '../service.ts';
import type { BootTimeline, MachineRecord } from './timeline.ts';

/** What one key holds: the machine as this appliance saw it. fleet-view.ts validates it on read. */
export interface FleetMachine {
  appliance: string;
  mac: string;
  uuid: string | undefined;
  ip: string | undefined;
  firstSeen: number;
  lastSeen: number;
  events: MachineRecord['events'];
}

export interface FleetPublisherOptions {
  /** --name. */
  name: string;
  /** --fleet-ttl, seconds. */
  ttlSeconds: number;
  /** How long steps gather before they are written. */
  flushMs?: number;
  /** The latest steps of each machine written (the local timeline may keep more). */
  eventsPerMachine?: number;
}

export interface FleetPublisherDeps {
  /** The client scoped to `<prefix>/fleet/<name>/`: keys are MACs. */
  etcd: Namespace;
  timeline: Pick<BootTimeline, 'onEvent' | 'get' | 'list'>;
  log: Logger;
}

/** etcd's default limit is 128 operations per transaction. */
const PUTS_PER_TXN = 100;

export class FleetPublisher implements Service {
  readonly name = 'fleet-publisher';
  private lease: Lease | undefined;
  private leaseId: string | undefined;
  private readonly dirty = new Set<Mac>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;
  private failing = false;
  private leaseLost = false;
  private stopped = false;
  /** Transactions written and machines in them: the tests read them to see the batching. */
  readonly stats = { txns: 0, machines: 0 };

  constructor(
    private readonly options: FleetPublisherOptions,
    private readonly deps: FleetPublisherDeps,
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    this.unsubscribe = this.deps.timeline.onEvent((mac) => this.mark(mac));
    // The first grant is not awaited: an etcd outage at start must not keep the appliance from serving.
    this.grant();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer) {
      // What gathered since the last flush still goes out.
      clearTimeout(this.timer);
      this.timer = undefined;
      this.flush();
    }
    await this.flushing;
    // Not revoked: a restart within the TTL keeps the machines shown; a stop for good lets them expire.
    this.lease?.release();
    this.lease = undefined;
  }

  private grant(): void {
    if (this.stopped) return;
    const lease = this.deps.etcd.lease(this.options.ttlSeconds, { autoKeepAlive: true });
    this.lease = lease;
    this.leaseId = undefined;
    lease.on('lost', (err) => {
      if (this.lease !== lease || this.stopped) return;
      // Once per outage: while etcd stays away every retry loses its grant again.
      if (!this.leaseLost) this.deps.log.warn({ err: err.message, appliance: this.options.name }, 'fleet lease lost or not granted (etcd unreachable?): retrying, then publishing everything again');
      this.leaseLost = true;
      setTimeout(() => this.grant(), 1000).unref();
    });
    lease.grant().then(
      (id) => {
        if (this.lease !== lease) return;
        if (this.leaseLost) this.deps.log.info({ appliance: this.options.name }, 'fleet lease granted again');
        this.leaseLost = false;
        this.leaseId = id;
        // Everything the timeline holds: a new lease has none of it.
        for (const m of this.deps.timeline.list()) this.mark(m.mac);
      },
      () => undefined, // reported by 'lost'
    );
  }

  private mark(mac: Mac): void {
    this.dirty.add(mac);
    if (!this.timer && !this.stopped) this.timer = setTimeout(() => this.flush(), this.options.flushMs ?? 500);
  }

  private flush(): void {
    this.timer = undefined;
    this.flushing = this.flushing.then(() => this.write());
  }

  private async write(): Promise<void> {
    const leaseId = this.leaseId;
    if (!leaseId) {
      // Not granted yet: keep what is pending for when it is.
      if (this.dirty.size && !this.stopped) this.timer ??= setTimeout(() => this.flush(), 1000);
      return;
    }
    const macs = [...this.dirty];
    this.dirty.clear();
    const { etcd } = this.deps;
    const keep = this.options.eventsPerMachine ?? 50;
    try {
      for (let i = 0; i < macs.length; i += PUTS_PER_TXN) {
        const puts = [];
        for (const mac of macs.slice(i, i + PUTS_PER_TXN)) {
          const m = this.deps.timeline.get(mac);
          if (!m) continue;
          const value: FleetMachine = { appliance: this.options.name, mac: m.mac, uuid: m.uuid, ip: m.ip, firstSeen: m.firstSeen, lastSeen: m.lastSeen, events: m.events.slice(-keep) };
          puts.push(etcd.put(mac).value(JSON.stringify(value)).lease(leaseId));
        }
        if (!puts.length) continue;
        // etcd has no unconditional multi-put: a compare that always holds makes one transaction of them.
        await etcd
          .if(macs[i]!, 'Version', '>', -1)
          .then(...puts)
          .commit();
        this.stats.txns++;
        this.stats.machines += puts.length;
      }
      if (this.failing) this.deps.log.info({ appliance: this.options.name }, 'fleet view published again');
      this.failing = false;
    } catch (err) {
      for (const mac of macs) this.dirty.add(mac);
      if (!this.failing) this.deps.log.warn({ err: (err as Error).message, appliance: this.options.name }, 'fleet view not published (etcd unreachable?): retrying');
      this.failing = true;
      if (!this.stopped) this.timer ??= setTimeout(() => this.flush(), 2000);
    }
  }
}
