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
import type { AppContext, Service } from '../appliance.ts';
import type { Mac } from './mac.ts';
import { parseMac } from './mac.ts';
import { buildQuenchAdvertisement, parseRouterSolicitation } from './icmpv6.ts';
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
  private sendFailures = 0;
  private recvFailures = 0;

  constructor(
    private readonly ctx: AppContext,
    private readonly deps: RaQuenchDeps = { open: (d) => RawIcmpv6Socket.open(d), describe: describeInterface, now: () => performance.now(), pollMs: POLL_MS },
  ) {}

  async start(): Promise<void> {
    const { ctx } = this;
    const device = ctx.config.iface;
    if (!device) throw new Error(`${this.name}: needs --iface`);
    const { mac, linkLocal } = this.deps.describe(device);
    if (!linkLocal) {
      // Hosts drop an RA whose source is not link-local (RFC 4861 §6.1.2); say so now rather than send nothing useful.
      ctx.log.warn({ iface: device }, `${device} has no IPv6 link-local address yet (IPv6 disabled, or still in DAD): router advertisements cannot be sent until it has one`);
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
    this.unsubscribe = ctx.timeline.onEvent((evMac, event) => {
      const d = event.detail;
      if (event.step === 'dhcp.request' && d['mode'] === 'full' && d['type'] === 'DISCOVER' && d['ipxe'] === true) this.onIpxeDiscover(evMac);
    });
    ctx.log.info({ iface: device, linkLocal: linkLocal ?? null, mac: mac ?? null }, `${this.name}: answering IPv6 router solicitations on ${device} with router lifetime 0 (no prefix, no default route)`);
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
      let msg;
      try {
        msg = socket.recv();
      } catch (err) {
        // Polled ten times a second: one warning per burst of failures, not one per poll.
        if (this.recvFailures++ % 100 === 0) this.ctx.log.warn({ err, iface: socket.device, failures: this.recvFailures }, 'reading router solicitations failed');
        return;
      }
      this.recvFailures = 0;
      if (!msg) return;
      const rs = parseRouterSolicitation(msg.data);
      if (!rs.ok) {
        this.ctx.metrics.malformedPackets.inc({ protocol: 'icmpv6' });
        this.ctx.log.debug({ from: msg.from, reason: rs.reason, bytes: msg.data.length }, `router solicitation dropped: ${rs.reason}`);
        continue;
      }
      const mac = rs.value.sourceMac;
      this.ctx.log.info({ mac, from: msg.from, iface: socket.device, step: 'ipv6.router-solicitation' }, `IPv6 router solicitation from ${msg.from}`);
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
    if (wait <= 0) return this.send(trigger, mac);
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
      // Most likely no usable link-local yet; one warning per burst of failures, not one per packet.
      if (this.sendFailures++ % 50 === 0) this.ctx.log.warn({ err, iface: socket.device, mac, trigger, failures: this.sendFailures }, `router advertisement not sent: ${(err as Error).message}`);
      return;
    }
    this.sendFailures = 0;
    this.ctx.metrics.ipv6RouterAdverts.inc({ trigger });
    this.ctx.log.info({ mac, trigger, iface: socket.device, step: 'ipv6.router-advert' }, `IPv6 router advertisement (router lifetime 0) sent to ff02::1 on ${socket.device} (${trigger})`);
  }
}

/** Undefined unless --ipv6-ra-quench (config.ts allows it only with --dhcp full). */
export function createRaQuenchService(ctx: AppContext): Service | undefined {
  if (!ctx.config.ipv6RaQuench || ctx.config.dhcp.mode !== 'full') return undefined;
  return new RaQuenchService(ctx);
}
