import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export type LeaseCounts = Record<'bound' | 'offered' | 'declined' | 'free', number>;

export interface MetricsOptions {
  /** Node's own process metrics (CPU, memory, event loop). */
  processMetrics?: boolean;
  /** Full DHCP: what the pool holds, read at scrape time. */
  leaseCounts?: (() => LeaseCounts) | undefined;
  /** What the boot timeline holds (events/timeline.ts size()), read at scrape time. */
  timelineSize?: (() => Record<'machines' | 'events' | 'addresses', number>) | undefined;
}

/**
 * Node's process metrics, collected once per process: collectDefaultMetrics starts a GC
 * observer and an event-loop delay monitor that nothing stops, and the services (with their
 * Metrics) are built again on every --iface address change (commands/serve.ts).
 */
let processRegistry: Registry | undefined;

function processMetricsRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * Every counter the appliance exports, in one place so names and labels stay consistent
 * across services. Each appliance owns its registry (tests run several in one process).
 */
export class Metrics {
  /** The appliance's own metrics. */
  readonly registry = new Registry();
  /** What GET /metrics serves: the appliance's own, and the process's when asked for. */
  readonly scraped: Registry;

  readonly dhcpRequests = new Counter({
    name: 'bootcfg_dhcp_requests_total',
    help: 'DHCP requests received, by message type, mode and client architecture',
    labelNames: ['type', 'mode', 'arch'] as const,
    registers: [this.registry],
  });
  readonly dhcpReplies = new Counter({
    name: 'bootcfg_dhcp_replies_total',
    help: 'DHCP replies sent, by message type, mode and client architecture',
    labelNames: ['type', 'mode', 'arch'] as const,
    registers: [this.registry],
  });
  readonly dhcpIgnored = new Counter({
    name: 'bootcfg_dhcp_ignored_total',
    help: 'DHCP requests deliberately left unanswered, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly malformedPackets = new Counter({
    name: 'bootcfg_malformed_packets_total',
    help: 'Packets dropped because they could not be parsed, by protocol',
    labelNames: ['protocol'] as const,
    registers: [this.registry],
  });
  readonly tftpTransfers = new Counter({ name: 'bootcfg_tftp_transfers_total', help: 'TFTP transfers finished, by outcome', labelNames: ['outcome'] as const, registers: [this.registry] });
  readonly tftpBytes = new Counter({ name: 'bootcfg_tftp_bytes_total', help: 'File bytes sent over TFTP', registers: [this.registry] });
  readonly tftpRetransmissions = new Counter({ name: 'bootcfg_tftp_retransmissions_total', help: 'TFTP DATA packets sent again after a timeout', registers: [this.registry] });
  readonly imageBodies = new Counter({
    name: 'bootcfg_http_image_bodies_total',
    help: 'Image bodies written, by how: sendfile (--http-sendfile on) or buffers',
    labelNames: ['writer'] as const,
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({ name: 'bootcfg_http_requests_total', help: 'HTTP requests, by route and status', labelNames: ['route', 'status'] as const, registers: [this.registry] });
  readonly bootsCompleted = new Counter({ name: 'bootcfg_boots_completed_total', help: 'Machines that fetched their boot script and every file it names', registers: [this.registry] });
  readonly bootsStalled = new Counter({
    name: 'bootcfg_boots_stalled_total',
    help: 'Boots that went a minute without the step that should follow their last one (see /ui)',
    registers: [this.registry],
  });
  readonly storeReloads = new Counter({ name: 'bootcfg_store_reloads_total', help: 'FileStore reloads, by kind of data', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly storeErrors = new Counter({
    name: 'bootcfg_store_errors_total',
    help: 'Data files rejected on load (the last good version keeps serving)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly storeConnected = new Gauge({
    name: 'bootcfg_store_connected',
    help: 'Whether the config store answers (1) or the last configs read keep serving through an outage (0); etcd store only',
    labelNames: ['store'] as const,
    registers: [this.registry],
  });
  readonly dhcpLeases = new Gauge({
    name: 'bootcfg_dhcp_leases',
    help: 'Full DHCP pool addresses by state (bound, offered, declined = quarantined, free)',
    labelNames: ['state'] as const,
    registers: [this.registry],
    collect: () => {
      const counts = this.leaseCounts?.();
      if (counts) for (const [state, n] of Object.entries(counts)) this.dhcpLeases.set({ state }, n);
    },
  });
  readonly ipv6RouterAdverts = new Counter({
    name: 'bootcfg_ipv6_router_adverts_total',
    help: 'IPv6 router advertisements (lifetime 0) sent by --ipv6-ra-quench, by trigger',
    labelNames: ['trigger'] as const,
    registers: [this.registry],
  });
  readonly sharedLeaseWrites = new Counter({
    name: 'bootcfg_dhcp_shared_lease_writes_total',
    help: 'Lease writes to etcd by a shared pool (--store etcd), by outcome: written, conflict (another appliance changed the address first; theirs stands and nothing is sent) or failed (the transaction did not go through: etcd unreachable, or refusing it)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly dhcpLeaseWriteFailures = new Counter({
    name: 'bootcfg_dhcp_lease_write_failures_total',
    help: 'Full DHCP requests left without an ACK because their lease could not be written to the lease file',
    registers: [this.registry],
  });

  readonly timelineEntries = new Gauge({
    name: 'bootcfg_timeline_entries',
    help: 'What the boot timeline holds, by kind (machines, events, addresses); each is bounded (events/timeline.ts)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
    collect: () => {
      const size = this.timelineSize?.();
      if (size) for (const [kind, n] of Object.entries(size)) this.timelineEntries.set({ kind }, n);
    },
  });
  readonly timelineEvictions = new Counter({
    name: 'bootcfg_timeline_evictions_total',
    help: 'Machines the boot timeline forgot to stay within its bounds, by which bound (machines, events)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  private readonly leaseCounts: (() => LeaseCounts) | undefined;
  private readonly timelineSize: MetricsOptions['timelineSize'];

  constructor(options: MetricsOptions = {}) {
    this.leaseCounts = options.leaseCounts;
    this.timelineSize = options.timelineSize;
    this.scraped = options.processMetrics ? Registry.merge([this.registry, processMetricsRegistry()]) : this.registry;
  }
}
