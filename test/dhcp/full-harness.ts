/** Full DHCP as the appliance wires it (lease file, pool, pipeline), with the sockets replaced by hand-fed ones. */
import { pino, type Logger } from 'pino';
import type { BootSettings } from '../../src/boot/decide.ts';
import { NO_MATCH } from '../../src/boot/machine.ts';
import type { AppConfig, FullDhcpConfig } from '../../src/config.ts';
import { encodePacket, parsePacket, type DhcpPacket } from '../../src/dhcp/packet.ts';
import { dhcpServiceFor, poolFor, type DhcpService } from '../../src/dhcp/service.ts';
import type { Destination, PacketHandler, Peer } from '../../src/dhcp/transport.ts';
import type { LeaseFile } from '../../src/dhcp/lease-file.ts';
import type { LeasePool } from '../../src/dhcp/leases.ts';
import { BootTimeline } from '../../src/events/timeline.ts';
import { Metrics } from '../../src/metrics.ts';

export interface FullHarness {
  service: DhcpService;
  pool: LeasePool;
  leases: LeaseFile;
  metrics: Metrics;
  timeline: BootTimeline;
  /** Every datagram port 67 sent, in order, and where each went. */
  sent: Buffer[];
  sentTo: Destination[];
  /** A request through the codec both ways, as on the wire: what port 67 answered, or undefined for silence. */
  handle(request: DhcpPacket, from?: Peer): Promise<{ packet: DhcpPacket; to: Destination } | undefined>;
  /** Raw bytes into port 67's handler. */
  onPacket(bytes: Buffer, from: Peer): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface FullHarnessOptions {
  boot?: Partial<BootSettings>;
  timeline?: BootTimeline;
  log?: Logger;
}

export function fullHarness(config: AppConfig, opts: FullHarnessOptions = {}): FullHarness {
  if (config.dhcp.mode !== 'full') throw new Error('fullHarness needs --dhcp full');
  const dhcp: FullDhcpConfig = config.dhcp;
  const pool = poolFor(dhcp.range, dhcp.segment.address, dhcp.router, dhcp.leaseTime);
  const metrics = new Metrics({ leaseCounts: () => pool.counts() });
  const timeline = opts.timeline ?? new BootTimeline();
  const handlers = new Map<number, PacketHandler>();
  const sent: Buffer[] = [];
  const sentTo: Destination[] = [];
  const boot: BootSettings = {
    baseUrl: config.baseUrl,
    efiFirmware: 'ipxe.efi',
    uefiLoader: 'ipxe',
    dhcpMode: 'full',
    tftpServer: undefined,
    tftpPort: 69,
    firmware: { has: (n: string) => ['undionly.kpxe', 'ipxe.efi'].includes(n) },
    ...opts.boot,
  };
  const service = dhcpServiceFor(
    { mode: 'full', segment: dhcp.segment, router: dhcp.router, dns: dhcp.dns, leaseTime: dhcp.leaseTime, leaseFile: dhcp.leaseFile, pool },
    {
      boot,
      lookup: () => NO_MATCH,
      log: opts.log ?? pino({ level: 'silent' }),
      metrics,
      timeline,
      openTransport: async ({ port }) => ({
        onPacket: (handler) => void handlers.set(port, handler),
        send: async (bytes, to) => {
          if (port !== 67) return;
          sent.push(bytes);
          sentTo.push(to as Destination);
        },
        close: async () => void handlers.delete(port),
      }),
    },
  );
  const onPacket = async (bytes: Buffer, from: Peer) => {
    const handler = handlers.get(67);
    if (!handler) throw new Error('port 67 is not open (start the harness)');
    await handler(bytes, from);
  };
  return {
    service,
    pool,
    leases: service.leases!,
    metrics,
    timeline,
    sent,
    sentTo,
    onPacket,
    async handle(request, from = { address: '0.0.0.0', port: 68 }) {
      const before = sent.length;
      await onPacket(encodePacket(request), from);
      if (sent.length === before) return undefined;
      return { packet: parsePacket(sent.at(-1)!), to: sentTo.at(-1)! };
    },
    start: () => service.start(),
    stop: () => service.stop(),
  };
}
