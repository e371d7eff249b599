/**
 * Full DHCP (--dhcp full): we hand out the addresses of --dhcp-range on --iface, and the
 * boot file per client exactly as ProxyDHCP does (boot-reply.ts), so a segment with no
 * other DHCP server boots with nothing else running.
 *
 * Policy lives here, addresses in leases.ts, durability in lease-file.ts, bytes in
 * packet.ts and sockets in transport.ts. An ACK leaves only after its lease is on disk
 * (group commit), so a crash never forgets an address a client is using.
 */
import type { AppContext, Service } from '../appliance.ts';
import { classifyClient, type ClientInfo } from '../boot/client.ts';
import { resolveBootTarget, type BootSettings, type BootTarget } from '../boot/decide.ts';
import { intToIpv4, ipv4ToInt } from '../config.ts';
import type { Mac } from '../net/mac.ts';
import { applyBootTarget, bootFileOf } from './boot-reply.ts';
import { MalformedReporter } from './drops.ts';
import { LeaseFile } from './lease-file.ts';
import { LeasePool, normalizeClientId, type Lease, type LeaseClient } from './leases.ts';
import { encodeEncapsulated, IpxeSubOpt, MessageType, messageTypeName, Opt, u8 } from './options.ts';
import { BOOTREQUEST, DEFAULT_MAX_MESSAGE_SIZE, encodePacket, replyTo, tryParsePacket, type DhcpPacket } from './packet.ts';
import { DhcpTransport, replyDestination, SERVER_PORT, type Destination, type Peer } from './transport.ts';

export interface FullDhcpSettings {
  /** Our address on the interface: option 54, siaddr. */
  serverAddress: string;
  netmask: string;
  router: string | undefined;
  dns: string[];
  /** Seconds. */
  leaseTime: number;
  boot: BootSettings;
}

export interface Reply {
  packet: DhcpPacket;
  to: Destination;
}

/** Bounded set of reasons for dhcpIgnored{reason} in full mode. */
type FullIgnoreReason = 'not-ethernet' | 'not-request' | 'other-server' | 'pool-exhausted' | 'relay-other-subnet' | 'not-ours' | 'no-address' | 'lease-write-failed';

const ACKED_OK = Symbol('acked');

export class DhcpServer implements Service {
  readonly name = 'dhcp-full';
  readonly pool: LeasePool;
  readonly leases: LeaseFile;
  private transport: DhcpTransport | undefined;
  private readonly mask: number;
  private readonly subnet: number;
  private readonly ipxeNoProxy = encodeEncapsulated([[IpxeSubOpt.NO_PXEDHCP, u8(1)]]);
  private readonly malformed: MalformedReporter;

  constructor(
    private readonly ctx: AppContext,
    readonly settings: FullDhcpSettings,
    private readonly openTransport: (onPacket: (data: Buffer, from: Peer) => Promise<void>) => Promise<DhcpTransport | undefined> = defaultTransport(ctx),
  ) {
    const range = ctx.config.dhcp.range;
    if (!range) throw new Error('--dhcp full needs --dhcp-range');
    this.pool = new LeasePool({
      start: range.start,
      end: range.end,
      leaseTime: settings.leaseTime,
      exclude: [settings.serverAddress, ...(settings.router ? [settings.router] : [])],
    });
    this.leases = new LeaseFile(ctx.config.dhcp.leaseFile, this.pool, ctx.log);
    this.malformed = new MalformedReporter(ctx.log, ctx.metrics);
    this.mask = ipv4ToInt(settings.netmask);
    this.subnet = (ipv4ToInt(settings.serverAddress) & this.mask) >>> 0;
  }

  async start(): Promise<void> {
    const { log } = this.ctx;
    const opened = await this.leases.open();
    const active = this.pool.all().filter((l) => l.state === 'bound' && this.pool.isActive(l)).length;
    log.info(
      { leaseFile: this.leases.file, loaded: opened.loaded, active, outsideRange: opened.outside, problems: opened.problems, range: `${intToIpv4(this.pool.startInt)}-${intToIpv4(this.pool.endInt)}` },
      `leases loaded: ${active} active of ${opened.loaded}`,
    );
    for (const l of this.pool.all()) if (l.mac && l.state === 'bound' && this.pool.isActive(l)) this.ctx.timeline.bindAddress(l.ip, l.mac);
    this.ctx.metrics.leaseCounts = () => this.pool.counts();
    try {
      this.transport = await this.openTransport((data, from) => this.onPacket(data, from));
    } catch (err) {
      await this.leases.abandon();
      throw err;
    }
    if (this.transport) log.info({ iface: this.transport.device, port: SERVER_PORT, address: this.settings.serverAddress }, `${this.name}: listening on UDP ${SERVER_PORT}, bound to ${this.transport.device} (${this.settings.serverAddress}), handing out ${intToIpv4(this.pool.startInt)}-${intToIpv4(this.pool.endInt)}`);
  }

  async stop(): Promise<void> {
    await this.transport?.close();
    this.transport = undefined;
    await this.leases.close();
  }

  /** Socket entry: parse, answer, send. Never throws (a malformed packet is counted and dropped). */
  async onPacket(data: Buffer, from: Peer): Promise<void> {
    const parsed = tryParsePacket(data);
    if (!parsed.ok) {
      this.malformed.report(parsed.reason, from, SERVER_PORT, data.length);
      return;
    }
    const reply = await this.handle(parsed.packet);
    if (!reply || !this.transport) return;
    const max = parsed.packet.options.maxMessageSize() ?? DEFAULT_MAX_MESSAGE_SIZE;
    await this.transport.send(encodePacket(reply.packet, { maxLength: Math.max(max, DEFAULT_MAX_MESSAGE_SIZE) }), reply.to);
  }

  /** The decision for one request: the reply and where it goes, or undefined for silence. */
  async handle(req: DhcpPacket): Promise<Reply | undefined> {
    if (req.op !== BOOTREQUEST) return undefined;
    const client = classifyClient(req);
    const type = req.options.messageType();
    const typeName = messageTypeName(type);
    const arch = client?.archName ?? 'none';
    this.ctx.metrics.dhcpRequests.inc({ type: typeName, mode: 'full', arch });
    if (!client) return this.ignore('not-ethernet', req, undefined, typeName);
    if (booting(client)) this.ctx.timeline.record({ step: 'dhcp.request', mac: client.mac, uuid: client.uuid, ip: req.ciaddr, detail: { type: typeName, mode: 'full', arch, ipxe: client.ipxe, xid: req.xid, port: SERVER_PORT } });
    if (this.ctx.log.isLevelEnabled('debug')) this.ctx.log.debug({ mac: client.mac, xid: req.xid, type: typeName, arch, ciaddr: req.ciaddr, requested: req.options.requestedIp(), serverId: req.options.serverId(), giaddr: req.giaddr }, `DHCP ${typeName}`);
    if (req.giaddr !== '0.0.0.0' && !this.onSubnet(req.giaddr)) return this.ignore('relay-other-subnet', req, client, typeName);
    const who: LeaseClient = { mac: client.mac, clientId: normalizeClientId(req.options.clientId(), client.mac) };
    switch (type) {
      case MessageType.DISCOVER:
        return this.discover(req, client, who);
      case MessageType.REQUEST:
        return this.request(req, client, who);
      case MessageType.RELEASE:
        return this.release(req, client, who);
      case MessageType.DECLINE:
        return this.decline(req, client, who);
      case MessageType.INFORM:
        return this.inform(req, client);
      default:
        return this.ignore('not-request', req, client, typeName);
    }
  }

  private discover(req: DhcpPacket, client: ClientInfo, who: LeaseClient): Reply | undefined {
    const lease = this.pool.offer(who, req.options.requestedIp(), client.hostname);
    if (!lease) {
      this.ctx.log.warn({ mac: client.mac, xid: req.xid, range: `${intToIpv4(this.pool.startInt)}-${intToIpv4(this.pool.endInt)}` }, 'no free address to offer: pool exhausted');
      return this.ignore('pool-exhausted', req, client, 'DISCOVER');
    }
    // A lease already bound is offered for what is left of it, a new one for the full time.
    const seconds = lease.state === 'bound' ? Math.max(60, Math.floor((lease.expires - Date.now()) / 1000)) : this.settings.leaseTime;
    return this.reply(req, client, MessageType.OFFER, lease.ip, seconds);
  }

  /** RFC 2131 §4.3.2: SELECTING (54 + 50), INIT-REBOOT (50 only), RENEWING/REBINDING (ciaddr only). */
  private async request(req: DhcpPacket, client: ClientInfo, who: LeaseClient): Promise<Reply | undefined> {
    const serverId = req.options.serverId();
    const requested = req.options.requestedIp();
    let ip: string;
    let state: 'selecting' | 'init-reboot' | 'renewing';
    if (serverId !== undefined) {
      if (serverId !== this.settings.serverAddress) {
        // The client took another server's offer: release our hold, say nothing.
        this.pool.forgetOffer(who);
        return this.ignore('other-server', req, client, 'REQUEST', { serverId });
      }
      state = 'selecting';
      ip = requested ?? req.ciaddr;
    } else if (requested !== undefined) {
      state = 'init-reboot';
      ip = requested;
      if (!this.onSubnet(ip)) return this.nak(req, client, `${ip} is not on this network`);
      // An address of this subnet outside our pool may be another server's (or static): only
      // a client we know is told no.
      if (!this.pool.inPool(ip) && !this.pool.find(who)) return this.ignore('not-ours', req, client, 'REQUEST', { requested: ip });
    } else if (req.ciaddr !== '0.0.0.0') {
      state = 'renewing';
      ip = req.ciaddr;
      if (!this.pool.inPool(ip)) return this.ignore('not-ours', req, client, 'REQUEST', { ciaddr: ip });
    } else {
      return this.ignore('no-address', req, client, 'REQUEST');
    }
    if (ip === '0.0.0.0') return this.ignore('no-address', req, client, 'REQUEST');
    const bound = this.pool.bind(who, ip, client.hostname);
    if (!bound.ok) return this.nak(req, client, bound.reason, state);
    if ((await this.durable(req, client)) !== ACKED_OK) return undefined;
    this.ctx.timeline.bindAddress(ip, client.mac);
    return this.reply(req, client, MessageType.ACK, bound.lease.ip, this.settings.leaseTime, state);
  }

  private async release(req: DhcpPacket, client: ClientInfo, who: LeaseClient): Promise<undefined> {
    if (req.options.serverId() !== undefined && req.options.serverId() !== this.settings.serverAddress) return this.ignore('other-server', req, client, 'RELEASE');
    const released = this.pool.release(who, req.ciaddr);
    this.ctx.log.info({ mac: client.mac, ip: req.ciaddr, released }, released ? 'lease released' : 'RELEASE for an address this client does not hold: ignored');
    if (released) await this.leases.commit().catch((err: unknown) => this.ctx.log.error({ err, leaseFile: this.leases.file }, 'lease file write failed'));
    return undefined;
  }

  private async decline(req: DhcpPacket, client: ClientInfo, who: LeaseClient): Promise<undefined> {
    if (req.options.serverId() !== undefined && req.options.serverId() !== this.settings.serverAddress) return this.ignore('other-server', req, client, 'DECLINE');
    const ip = req.options.requestedIp() ?? req.ciaddr;
    const declined = this.pool.decline(who, ip);
    // Someone else answers ARP for this address: an operator wants to know.
    this.ctx.log.warn({ mac: client.mac, ip, quarantined: declined }, declined ? `address ${ip} declined (in use by another host): quarantined` : `DECLINE of ${ip} ignored: held by another client or not ours`);
    if (declined) await this.leases.commit().catch((err: unknown) => this.ctx.log.error({ err, leaseFile: this.leases.file }, 'lease file write failed'));
    return undefined;
  }

  /** DHCPINFORM: configuration only, no address, no lease (RFC 2131 §3.4). */
  private inform(req: DhcpPacket, client: ClientInfo): Reply | undefined {
    if (req.ciaddr === '0.0.0.0') return this.ignore('no-address', req, client, 'INFORM');
    // Our router, DNS and mask are only right for hosts on our subnet (a relay's giaddr was checked already).
    if (req.giaddr === '0.0.0.0' && !this.onSubnet(req.ciaddr)) return this.ignore('not-ours', req, client, 'INFORM', { ciaddr: req.ciaddr });
    return this.reply(req, client, MessageType.ACK, '0.0.0.0', undefined, 'inform');
  }

  /** Waits until the lease is on disk. On a write failure the client gets nothing and will ask again. */
  private async durable(req: DhcpPacket, client: ClientInfo): Promise<typeof ACKED_OK | undefined> {
    try {
      await this.leases.commit();
      return ACKED_OK;
    } catch (err) {
      this.ctx.metrics.dhcpLeaseWriteFailures.inc();
      this.ctx.log.error({ err, mac: client.mac, xid: req.xid, leaseFile: this.leases.file }, 'lease could not be written: no ACK sent');
      this.ignore('lease-write-failed', req, client, 'REQUEST');
      return undefined;
    }
  }

  private nak(req: DhcpPacket, client: ClientInfo, reason: string, state?: string): Reply {
    const reply = replyTo(req);
    reply.options.setU8(Opt.MESSAGE_TYPE, MessageType.NAK).setIp(Opt.SERVER_ID, this.settings.serverAddress).setString(Opt.MESSAGE, reason.slice(0, 200));
    // A relay must broadcast a NAK (the client's address is the one being refused).
    if (req.giaddr !== '0.0.0.0') reply.flags |= 0x8000;
    const to = replyDestination(req, { nak: true });
    this.sent(client, 'NAK', to, { reason, state });
    return { packet: reply, to };
  }

  private reply(req: DhcpPacket, client: ClientInfo, type: typeof MessageType.OFFER | typeof MessageType.ACK, yiaddr: string, leaseSeconds: number | undefined, state?: string): Reply {
    const reply = replyTo(req);
    reply.yiaddr = yiaddr;
    if (type === MessageType.ACK && req.ciaddr !== '0.0.0.0') reply.ciaddr = req.ciaddr;
    const o = reply.options;
    o.setU8(Opt.MESSAGE_TYPE, type);
    o.setIp(Opt.SERVER_ID, this.settings.serverAddress);
    if (leaseSeconds !== undefined) {
      o.setU32(Opt.LEASE_TIME, leaseSeconds);
      o.setU32(Opt.RENEWAL_TIME, Math.floor(leaseSeconds / 2));
      o.setU32(Opt.REBINDING_TIME, Math.floor((leaseSeconds * 7) / 8));
    }
    o.setIp(Opt.SUBNET_MASK, this.settings.netmask);
    o.setIp(Opt.BROADCAST_ADDRESS, intToIpv4((this.subnet | (~this.mask >>> 0)) >>> 0));
    if (this.settings.router) o.setIp(Opt.ROUTER, this.settings.router);
    if (this.settings.dns.length) o.setIps(Opt.DNS, this.settings.dns);
    const target = resolveBootTarget(client, this.settings.boot);
    const file = this.applyBoot(reply, client, target);
    const to = replyDestination(req);
    this.sent(client, type === MessageType.OFFER ? 'OFFER' : 'ACK', to, { yiaddr, file, state, action: target.action, reason: target.reason });
    return { packet: reply, to };
  }

  /**
   * The boot file, as the proxy gives it, minus option 60 PXEClient: without option 43 it
   * sends OVMF to port 4011 instead of taking the file (wire.md). iPXE also gets 175.176,
   * so it stops waiting ~3 s for ProxyDHCP offers that will never come.
   */
  private applyBoot(reply: DhcpPacket, client: ClientInfo, target: BootTarget): string | undefined {
    if (target.action === 'ignore') return undefined;
    applyBootTarget(reply, client, target, { serverAddress: this.settings.serverAddress, pxeVendorClass: false });
    if (client.ipxe) reply.options.set(Opt.IPXE_ENCAP, this.ipxeNoProxy);
    return bootFileOf(target);
  }

  private sent(client: ClientInfo, type: 'OFFER' | 'ACK' | 'NAK', to: Destination, detail: Record<string, unknown>): void {
    this.ctx.metrics.dhcpReplies.inc({ type, mode: 'full', arch: client.archName });
    if (booting(client)) this.ctx.timeline.record({ step: 'dhcp.reply', mac: client.mac, uuid: client.uuid, ip: typeof detail.yiaddr === 'string' ? detail.yiaddr : undefined, detail: { type, mode: 'full', ...detail, to: `${to.address}:${to.port}` } });
    this.ctx.log.info({ mac: client.mac, type, to: `${to.address}:${to.port}`, via: to.via, ...detail }, `DHCP ${type}`);
  }

  private ignore(reason: FullIgnoreReason, req: DhcpPacket, client: ClientInfo | undefined, type: string, detail: Record<string, unknown> = {}): undefined {
    this.ctx.metrics.dhcpIgnored.inc({ reason });
    if (client && booting(client)) this.ctx.timeline.record({ step: 'dhcp.ignored', mac: client.mac, uuid: client.uuid, detail: { type, mode: 'full', reason, ...detail } });
    if (this.ctx.log.isLevelEnabled('debug')) this.ctx.log.debug({ mac: client?.mac, xid: req.xid, type, reason, ...detail }, `DHCP ${type} not answered: ${reason}`);
    return undefined;
  }

  private onSubnet(ip: string): boolean {
    return ((ipv4ToInt(ip) & this.mask) >>> 0) === this.subnet;
  }

  /** For the operator's view and tests. */
  leaseOf(mac: Mac): Lease | undefined {
    return this.pool.find({ mac });
  }
}

/**
 * Only PXE clients (option 93) get a boot timeline. Laptops, phones and the booted OS's own
 * DHCP client get addresses too, but a timeline for them would show every one as a stalled
 * boot; their address is still tied to the MAC (bindAddress) for later HTTP steps.
 */
function booting(client: ClientInfo): boolean {
  return client.arch !== undefined;
}

function defaultTransport(ctx: AppContext) {
  return async (onPacket: (data: Buffer, from: Peer) => Promise<void>): Promise<DhcpTransport> => {
    const device = ctx.config.iface;
    if (!device) throw new Error('--dhcp full needs --iface');
    const t = await DhcpTransport.open({
      device,
      port: SERVER_PORT,
      onHandlerError: (err, from) => ctx.log.error({ err, from: `${from.address}:${from.port}` }, 'DHCP handler failed (bug): packet dropped'),
    });
    t.onPacket(onPacket);
    return t;
  };
}

/** The settings full mode runs with, from the appliance config. */
export function fullDhcpSettings(ctx: AppContext, boot: BootSettings): FullDhcpSettings {
  const { config } = ctx;
  if (!config.advertisedAddress || !config.netmask) throw new Error('--dhcp full needs --iface with an IPv4 address');
  return { serverAddress: config.advertisedAddress, netmask: config.netmask, router: config.dhcp.router, dns: config.dhcp.dns, leaseTime: config.dhcp.leaseTime, boot };
}
