/**
 * --ipv6-ra-quench: iPXE's "Configuring" runs DHCP and IPv6 autoconfiguration side by side
 * and waits for both; on a segment without an IPv6 router the IPv6 side only gives up after
 * ~13 s (shared/notes/wire.md). One Router Advertisement with router lifetime 0 and no
 * prefix ends that wait at once and tells hosts nothing else: no default route, no address.
 *
 * It is still a router advertisement to every host on the segment, so config.ts allows it
 * only with --dhcp full (a segment that is ours alone), and there it is `auto` by default:
 * - `auto`: first find out whether the segment has an IPv6 router of its own: send a Router
 *   Solicitation (routers answer at once; their periodic RAs can be minutes apart) and listen
 *   for LISTEN_MS. No RA heard: quench. An RA heard, then or at any later time: never answer
 *   (again) on this segment, and say so. A host there already gets its answer from that router.
 * - `on` (forced): quench whatever else advertises; a foreign RA only earns a warning.
 * While quenching we send one RA:
 * - in answer to a Router Solicitation arriving on --iface (the path iPXE waits on), and
 * - when an iPXE client sends a DHCPDISCOVER, since iPXE starts IPv6 autoconf at that moment.
 * Both are rate-limited; every RA goes to ff02::1, so one answers all pending solicitors.
 */
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { Service } from '../service.ts';
import { RateLimiter } from '../util/rate-limiter.ts';
import {
  buildQuenchAdvertisement,
  buildRouterSolicitation,
  ICMPV6_ROUTER_ADVERTISEMENT,
  ICMPV6_ROUTER_SOLICITATION,
  parseRouterAdvertisement,
  parseRouterSolicitation,
  type RouterAdvertisement,
} from './icmpv6.ts';
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
/**
 * `auto` listens this long before its first RA. A router rate-limits its multicast RAs to one
 * per 3 s (RFC 4861 MIN_DELAY_BETWEEN_RAS) and delays an answer up to 0.5 s, so 4 s hears any
 * router that answers solicitations; solicitations arriving meanwhile are answered at its end.
 */
export const LISTEN_MS = 4000;
/** Our own solicitations in the listening window: at its start and half-way (one may be lost). */
const SOLICITATIONS = 2;

/** on: forced (--ipv6-ra-quench on); auto: quench only where no IPv6 router advertises (the full-mode default). */
export type RaQuenchMode = 'on' | 'auto';
/** What the service is doing now: listening (auto's start), quenching, or standing down because a router advertises. */
export type RaQuenchState = 'listening' | 'quenching' | 'router-present' | 'unavailable';

export type RaTrigger = 'solicitation' | 'ipxe-discover';

/** The transport seam: RawIcmpv6Socket in the appliance, a fake in unit tests. */
export interface RaSocket {
  readonly device: string;
  recv(): { data: Buffer; from: string } | undefined;
  sendToAllNodes(message: Buffer): void;
  sendToAllRouters(message: Buffer): void;
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
  mode: RaQuenchMode;
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
  /** auto's listening window (LISTEN_MS; tests shorten it). */
  listenMs: number;
}

function describeInterface(device: string): { mac: Mac | undefined; linkLocal: string | undefined } {
  const entries = networkInterfaces()[device] ?? [];
  const ll = entries.find((e) => e.family === 'IPv6' && e.address.toLowerCase().startsWith('fe80:'));
  return { mac: parseMac(entries[0]?.mac ?? ''), linkLocal: ll?.address };
}

export const CAP_NET_RAW_HINT =
  '--ipv6-ra-quench needs CAP_NET_RAW to open a raw ICMPv6 socket: run as root, or grant it (systemd: add CAP_NET_RAW to AmbientCapabilities and CapabilityBoundingSet, see docs/operations.md), or set --ipv6-ra-quench off';

const DEFAULT_DEPS: RaQuenchDeps = { open: (d) => RawIcmpv6Socket.open(d), describe: describeInterface, now: () => performance.now(), pollMs: POLL_MS, listenMs: LISTEN_MS };

export class RaQuenchService implements Service {
  readonly name = 'ipv6-ra-quench';
  private socket: RaSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private pendingMac: Mac | undefined;
  private listenTimers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | undefined;
  private advert: Buffer = buildQuenchAdvertisement();
  private own: { mac: Mac | undefined; linkLocal: string | undefined } = { mac: undefined, linkLocal: undefined };
  private lastSent = -Infinity;
  private lastDiscover = -Infinity;
  /** A solicitation (or iPXE DISCOVER) came while auto was still listening: answered when it decides to quench. */
  private heldWhileListening: { trigger: RaTrigger; mac: Mac | undefined } | undefined;
  private state: RaQuenchState = 'unavailable';
  private readonly warnedRouters = new Set<string>();
  private readonly sendFailures = new RateLimiter(1, FAILURE_LOG_INTERVAL_MS);
  private readonly recvFailures = new RateLimiter(1, FAILURE_LOG_INTERVAL_MS);

  constructor(
    private readonly options: RaQuenchOptions,
    private readonly deps: RaQuenchDeps = DEFAULT_DEPS,
  ) {}

  /** What it is doing now (for tests and diagnostics). */
  get current(): RaQuenchState {
    return this.state;
  }

  async start(): Promise<void> {
    const { log, iface: device, mode } = this.options;
    this.own = this.deps.describe(device);
    const { mac, linkLocal } = this.own;
    if (!linkLocal) {
      // Hosts drop an RA whose source is not link-local (RFC 4861 §6.1.2); say so now rather than send nothing useful.
      log.warn({ iface: device }, `${device} has no IPv6 link-local address yet (IPv6 disabled, or still in DAD): router advertisements cannot be sent until it has one`);
    }
    try {
      this.socket = this.deps.open(device);
    } catch (err) {
      const why = err instanceof RawIcmpv6Error && err.notPermitted ? `${CAP_NET_RAW_HINT} (${(err as Error).message})` : `--ipv6-ra-quench: ${(err as Error).message}`;
      if (mode === 'on') throw new Error(why);
      // The default must not stop a full-mode appliance that would have run without it: boot on, just slower.
      log.warn({ iface: device, err }, `${this.name} auto: not quenching on ${device}, iPXE clients will wait ~13 s for an IPv6 router: ${why}`);
      return;
    }
    this.advert = buildQuenchAdvertisement(mac);
    this.timer = setInterval(() => this.poll(), this.deps.pollMs);
    this.timer.unref();
    this.unsubscribe = this.options.onIpxeDiscover((evMac) => this.onIpxeDiscover(evMac));
    if (mode === 'on') {
      this.state = 'quenching';
      log.info(
        { iface: device, linkLocal: linkLocal ?? null, mac: mac ?? null, mode },
        `${this.name}: answering IPv6 router solicitations on ${device} with router lifetime 0 (no prefix, no default route): forced on by --ipv6-ra-quench`,
      );
      return;
    }
    this.state = 'listening';
    const listenMs = this.deps.listenMs;
    this.solicit();
    for (let i = 1; i < SOLICITATIONS; i++) this.listenTimers.push(this.later((listenMs * i) / SOLICITATIONS, () => this.solicit()));
    this.listenTimers.push(this.later(listenMs, () => this.decide()));
    log.info(
      { iface: device, linkLocal: linkLocal ?? null, mac: mac ?? null, mode, listenMs },
      `${this.name} auto: looking for an IPv6 router on ${device} (router solicitation sent, listening ${listenMs / 1000} s) before answering iPXE's router solicitations with router lifetime 0`,
    );
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer) clearInterval(this.timer);
    if (this.pending) clearTimeout(this.pending);
    for (const t of this.listenTimers) clearTimeout(t);
    this.listenTimers = [];
    this.timer = this.pending = undefined;
    this.socket?.close();
    this.socket = undefined;
    this.state = 'unavailable';
  }

  private later(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  }

  private solicit(): void {
    if (this.state !== 'listening' || !this.socket) return;
    try {
      this.socket.sendToAllRouters(buildRouterSolicitation(this.own.mac));
    } catch (err) {
      // No link-local yet (DAD): listening alone still hears a router's periodic RA.
      this.options.log.debug({ err, iface: this.socket.device }, `router solicitation not sent: ${(err as Error).message}`);
    }
  }

  /** End of auto's listening window with no RA heard: quench from now on, answering whoever solicited meanwhile. */
  private decide(): void {
    if (this.state !== 'listening') return;
    this.state = 'quenching';
    const device = this.options.iface;
    this.options.log.info(
      { iface: device, mode: 'auto', listenMs: this.deps.listenMs },
      `${this.name} auto: no IPv6 router advertised on ${device} within ${this.deps.listenMs / 1000} s: quenching (router solicitations answered with router lifetime 0); if a router shows up later, quenching stops`,
    );
    const held = this.heldWhileListening;
    this.heldWhileListening = undefined;
    if (held) this.request(held.trigger, held.mac);
  }

  /** Drains what the kernel queued (only types 133 and 134 pass its filter). Public for tests. */
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
      if (msg.data[0] === ICMPV6_ROUTER_ADVERTISEMENT) this.onAdvertisement(msg);
      else this.onSolicitation(msg);
    }
  }

  private onSolicitation(msg: { data: Buffer; from: string }): void {
    const rs = parseRouterSolicitation(msg.data);
    if (!rs.ok) {
      this.malformed(msg, rs.reason, ICMPV6_ROUTER_SOLICITATION);
      return;
    }
    const mac = rs.value.sourceMac;
    this.options.log.info({ mac, from: msg.from, iface: this.options.iface, step: 'ipv6.router-solicitation' }, `IPv6 router solicitation from ${msg.from}`);
    this.request('solicitation', mac);
  }

  private onAdvertisement(msg: { data: Buffer; from: string }): void {
    const ra = parseRouterAdvertisement(msg.data);
    if (!ra.ok) {
      this.malformed(msg, ra.reason, ICMPV6_ROUTER_ADVERTISEMENT);
      return;
    }
    // The kernel does not loop our own back (IPV6_MULTICAST_LOOP 0); this guards a second socket of ours on the link.
    if (msg.from === this.own.linkLocal || (ra.value.sourceMac !== undefined && ra.value.sourceMac === this.own.mac)) return;
    this.routerSeen(msg.from, ra.value);
  }

  private routerSeen(from: string, ra: RouterAdvertisement): void {
    const { log, iface: device } = this.options;
    const fields = { iface: device, router: from, routerMac: ra.sourceMac ?? null, routerLifetime: ra.routerLifetime };
    const who = `${from}${ra.sourceMac ? ` (${ra.sourceMac})` : ''}, router lifetime ${ra.routerLifetime} s`;
    if (this.options.mode === 'on') {
      if (this.warnedRouters.has(from)) return;
      this.warnedRouters.add(from);
      log.warn(fields, `${this.name}: another IPv6 router advertises on ${device}: ${who}; still quenching because --ipv6-ra-quench is forced on (set it to auto to stand down)`);
      return;
    }
    const before = this.state;
    if (before === 'router-present') return;
    this.state = 'router-present';
    this.heldWhileListening = undefined;
    for (const t of this.listenTimers) clearTimeout(t);
    this.listenTimers = [];
    if (this.pending) clearTimeout(this.pending);
    this.pending = undefined;
    if (before === 'listening') {
      log.info(fields, `${this.name} auto: not quenching on ${device}: an IPv6 router advertises there (${who}); its RAs end iPXE's wait`);
    } else {
      log.warn(fields, `${this.name} auto: stopped quenching on ${device}: an IPv6 router began advertising there (${who}); no more router advertisements from us`);
    }
  }

  private malformed(msg: { data: Buffer; from: string }, reason: string, type: number): void {
    this.options.metrics.malformedPackets.inc({ protocol: 'icmpv6' });
    const what = type === ICMPV6_ROUTER_ADVERTISEMENT ? 'router advertisement' : 'router solicitation';
    this.options.log.debug({ from: msg.from, reason, bytes: msg.data.length }, `${what} dropped: ${reason}`);
  }

  private onIpxeDiscover(mac: Mac): void {
    if (this.state !== 'quenching' && this.state !== 'listening') return;
    const now = this.deps.now();
    if (now - this.lastDiscover < DISCOVER_GAP_MS) return;
    this.lastDiscover = now;
    // After the OFFER is on its way: the DHCP handler records the request before it replies.
    setImmediate(() => this.request('ipxe-discover', mac));
  }

  /** Sends now, or once at the end of the minimum gap when one went out just before. */
  private request(trigger: RaTrigger, mac: Mac | undefined): void {
    if (!this.socket) return;
    if (this.state === 'listening') {
      if (!this.heldWhileListening || trigger === 'solicitation') this.heldWhileListening = { trigger, mac };
      return;
    }
    if (this.state !== 'quenching') return;
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
    if (!socket || this.state !== 'quenching') return;
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
