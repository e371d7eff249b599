/**
 * --ipv6-ra-quench: iPXE's "Configuring" runs DHCP and IPv6 autoconfiguration side by side
 * and waits for both; on a segment without an IPv6 router the IPv6 side only gives up after
 * ~13 s (shared/notes/wire.md). One Router Advertisement with router lifetime 0 and no
 * prefix ends that wait at once and tells hosts nothing else: no default route, no address.
 *
 * It is still a router advertisement to every host on the segment, so config.ts accepts the
 * flag only with --dhcp full (a segment that is ours alone). We send one:
 * - in answer to a Router Solicitation arriving on --iface (the path iPXE waits on), and
 * - when an iPXE client sends a DHCPDISCOVER, since iPXE starts IPv6 autoconf at that moment.
 * Both are rate-limited; every RA goes to ff02::1, so one answers all pending solicitors.
 */
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { Service } from '../service.ts';
import { RateLimiter } from '../util/rate-limiter.ts';
import { buildQuenchAdvertisement, parseRouterSolicitation } from './icmpv6.ts';
import { parseMac, type Mac } from './mac.ts';
import { RawIcmpv6Error, RawIcmpv6Socket } from './router-advert.ts';

/** Solicitations are read this often; a non-blocking recvfrom that finds nothing costs one syscall. */
const POLL_MS = 100;
/** At most this many messages handled per poll, so a flood cannot hold the event loop. */
const MAX_PER_POLL = 32;
/** Minimum gap between two RAs; a solicitation inside the gap is answered at its end. */
const MIN_GAP_MS = 200;
/** DISCOVER-triggered RAs at most this often (a rack powering on sends hundreds of DISCOVERs). */
const DISCOVER_GAP_MS = 1000;

export type RaTrigger = 'solicitation' | 'ipxe-discover';

/** The transport seam: RawIcmpv6Socket in the appliance, a fake in unit tests. */
export interface RaSocket {
  readonly device: string;
  recv(): { data: Buffer; from: string } | undefined;
  sendToAllNodes(message: Buffer): void;
  close(): void;
}

/** A full-mode iPXE DISCOVER, as the DHCP side reports it (iPXE starts IPv6 autoconf at that moment). */
export type IpxeDiscoverSource = (listener: (mac: Mac) => void) => () => void;

/** Counters the quench keeps, narrowed so this leaf module depends on no appliance types. */
export interface RaQuenchCounters {
  malformedPackets: { inc(labels: { protocol: 'icmpv6' }): void };
  ipv6RouterAdverts: { inc(labels: { trigger: RaTrigger }): void };
}

export interface RaQuenchOptions {
  iface: string;
  log: Logger;
  metrics: RaQuenchCounters;
  /** Subscribes to full-mode iPXE DISCOVERs; returns the unsubscribe. */
  onIpxeDiscover: IpxeDiscoverSource;
}

/** Failures of the socket are logged at most this often (it is polled 10 times a second). */
const FAILURE_LOG_INTERVAL_MS = 10_000;

export interface RaQuenchDeps {
  open: (device: string) => RaSocket;
  /** The interface's MAC for the source link-layer option, and whether it has an IPv6 link-local address. */
  describe: (device: string) => { mac: Mac | undefined; linkLocal: string | undefined };
  now: () => number;
  pollMs: number;
}

function describeInterface(device: string): { mac: Mac | undefined; linkLocal: string | undefined } {
  const entries = networkInterfaces()[device] ?? [];
  const ll = entries.find((e) => e.family === 'IPv6' && e.address.toLowerCase().startsWith('fe80:'));
  return { mac: parseMac(entries[0]?.mac ?? ''), linkLocal: ll?.address };
}

export const CAP_NET_RAW_HINT =
  '--ipv6-ra-quench needs CAP_NET_RAW to open a raw ICMPv6 socket: run as root, or grant it (systemd: add CAP_NET_RAW to AmbientCapabilities and CapabilityBoundingSet, see docs/operations.md), or drop the flag';

export class RaQuenchService implements Service {
  readonly name = 'ipv6-ra-quench';
  private socket: RaSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private pendingMac: Mac | undefined;
  private unsubscribe: (() => void) | undefined;
  private advert: Buffer = buildQuenchAdvertisement();
  private lastSent = -Infinity;
  private lastDiscover = -Infinity;
  private readonly sendFailures = new RateLimiter(1, FAILURE_LOG_INTERVAL_MS);
  private readonly recvFailures = new RateLimiter(1, FAILURE_LOG_INTERVAL_MS);

  constructor(
    private readonly options: RaQuenchOptions,
    private readonly deps: RaQuenchDeps = { open: (d) => RawIcmpv6Socket.open(d), describe: describeInterface, now: () => performance.now(), pollMs: POLL_MS },
  ) {}

  async start(): Promise<void> {
    const { log, iface: device } = this.options;
    const { mac, linkLocal } = this.deps.describe(device);
    if (!linkLocal) {
      // Hosts drop an RA whose source is not link-local (RFC 4861 §6.1.2); say so now rather than send nothing useful.
      log.warn({ iface: device }, `${device} has no IPv6 link-local address yet (IPv6 disabled, or still in DAD): router advertisements cannot be sent until it has one`);
    }
    try {
      this.socket = this.deps.open(device);
    } catch (err) {
      if (err instanceof RawIcmpv6Error && err.notPermitted) throw new Error(`${CAP_NET_RAW_HINT} (${err.message})`);
      throw new Error(`--ipv6-ra-quench: ${(err as Error).message}`);
    }
    this.advert = buildQuenchAdvertisement(mac);
    this.timer = setInterval(() => this.poll(), this.deps.pollMs);
    this.timer.unref();
    this.unsubscribe = this.options.onIpxeDiscover((evMac) => this.onIpxeDiscover(evMac));
    log.info({ iface: device, linkLocal: linkLocal ?? null, mac: mac ?? null }, `${this.name}: answering IPv6 router solicitations on ${device} with router lifetime 0 (no prefix, no default route)`);
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer) clearInterval(this.timer);
    if (this.pending) clearTimeout(this.pending);
    this.timer = this.pending = undefined;
    this.socket?.close();
    this.socket = undefined;
  }

  /** Drains what the kernel queued (only type 133 passes its filter). Public for tests. */
  poll(): void {
    const socket = this.socket;
    if (!socket) return;
    for (let i = 0; i < MAX_PER_POLL; i++) {
      let msg: ReturnType<RaSocket['recv']>;
      try {
        msg = socket.recv();
      } catch (err) {
        const held = this.recvFailures.take();
        if (held !== undefined) this.options.log.warn({ err, iface: socket.device, suppressed: held }, 'reading router solicitations failed');
        return;
      }
      if (!msg) return;
      const rs = parseRouterSolicitation(msg.data);
      if (!rs.ok) {
        this.options.metrics.malformedPackets.inc({ protocol: 'icmpv6' });
        this.options.log.debug({ from: msg.from, reason: rs.reason, bytes: msg.data.length }, `router solicitation dropped: ${rs.reason}`);
        continue;
      }
      const mac = rs.value.sourceMac;
      this.options.log.info({ mac, from: msg.from, iface: socket.device, step: 'ipv6.router-solicitation' }, `IPv6 router solicitation from ${msg.from}`);
      this.request('solicitation', mac);
    }
  }

  private onIpxeDiscover(mac: Mac): void {
    const now = this.deps.now();
    if (now - this.lastDiscover < DISCOVER_GAP_MS) return;
    this.lastDiscover = now;
    // After the OFFER is on its way: the DHCP handler records the request before it replies.
    setImmediate(() => this.request('ipxe-discover', mac));
  }

  /** Sends now, or once at the end of the minimum gap when one went out just before. */
  private request(trigger: RaTrigger, mac: Mac | undefined): void {
    if (!this.socket) return;
    const wait = this.lastSent + MIN_GAP_MS - this.deps.now();
    if (wait <= 0) {
      this.send(trigger, mac);
      return;
    }
    if (trigger === 'ipxe-discover' || this.pending) return; // an RA just went (or is about to go) to everyone
    this.pendingMac = mac;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.send('solicitation', this.pendingMac);
    }, wait);
    this.pending.unref();
  }

  private send(trigger: RaTrigger, mac: Mac | undefined): void {
    const socket = this.socket;
    if (!socket) return;
    this.lastSent = this.deps.now();
    try {
      socket.sendToAllNodes(this.advert);
    } catch (err) {
      // Most likely no usable link-local yet.
      const held = this.sendFailures.take();
      if (held !== undefined) this.options.log.warn({ err, iface: socket.device, mac, trigger, suppressed: held }, `router advertisement not sent: ${(err as Error).message}`);
      return;
    }
    this.options.metrics.ipv6RouterAdverts.inc({ trigger });
    this.options.log.info({ mac, trigger, iface: socket.device, step: 'ipv6.router-advert' }, `IPv6 router advertisement (router lifetime 0) sent to ff02::1 on ${socket.device} (${trigger})`);
  }
}
