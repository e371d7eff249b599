/**
 * Full DHCP (--dhcp full): we hand out the addresses of --dhcp-range, and the boot file per
 * client as ProxyDHCP does (boot-reply.ts), so a segment with no other DHCP server boots
 * with nothing else running. A relayed request is served from the subnet of its link
 * (subnets.ts): the --iface segment or a subnet of <data>/dhcp/subnets (site.ts).
 *
 * Fixed hosts (<data>/dhcp/hosts): a client whose MAC has a fixed address on the subnet of
 * its link is offered and ACKed that address (and its option 12 host name), nothing else;
 * nothing is written, the address is its by declaration. A fixed address is never another
 * client's: the pools skip it, and a REQUEST for it from another MAC (a lease it held before
 * the address was fixed) is NAKed, so that client starts over and gets a pool address.
 *
 * Policy lives here, the subnets in subnets.ts, addresses in leases.ts, durability in
 * lease-file.ts. An ACK leaves only after its lease is on disk (group commit), so a crash
 * never forgets an address a client uses.
 */
import type { ClientInfo } from '../boot/client.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { intToIpv4 } from '../net/ipv4.ts';
import { applyBootTarget } from './boot-reply.ts';
import type { SharedLedger } from './lease-ledger.ts';
import { normalizeClientId, type Lease, type LeaseClient, type LeasePool } from './leases.ts';
import { encodeEncapsulated, IpxeSubOpt, MessageType, Opt, u8 } from './options.ts';
import { FLAG_BROADCAST, replyTo, type DhcpPacket } from './packet.ts';
import { HANDLED, recorded, type DhcpHandled, type DhcpPolicy, type DhcpReply, type DhcpSilence, type Exchange, type PolicyAnswer } from './policy.ts';
import type { FixedHost } from '../store/dhcp-files.ts';
import type { FixedHosts } from './site.ts';
import { contains, type ServedSubnet, type SubnetDirectory } from './subnets.ts';
import { fromRelayAgent, replyDestination, SERVER_PORT } from './transport.ts';

export interface FullDhcpOptions {
  /** Our address on the interface: option 54, siaddr. */
  serverAddress: string;
}

export interface FullDhcpDeps {
  subnets: SubnetDirectory;
  /** The fixed addresses of <data>/dhcp/hosts; none when absent. */
  hosts?: FixedHosts | undefined;
  log: Logger;
  metrics: Pick<Metrics, 'dhcpLeaseWriteFailures'>;
}

type RequestState = 'selecting' | 'init-reboot' | 'renewing';

/** Offers tried per DISCOVER on a shared pool before giving up (the client asks again). */
const SHARED_OFFER_TRIES = 4;

/** iPXE stops waiting ~3 s for ProxyDHCP offers that will never come (wire.md). */
const IPXE_NO_PROXY = encodeEncapsulated([[IpxeSubOpt.NO_PXEDHCP, u8(1)]]);

/** One request with the subnet of its link. */
interface Asked {
  ex: Exchange;
  who: LeaseClient;
  subnet: ServedSubnet;
  /** The client's fixed address, when it has one on this subnet. */
  fixed: FixedHost | undefined;
}

function rangeOf(pool: LeasePool): string {
  return `${intToIpv4(pool.startInt)}-${intToIpv4(pool.endInt)}`;
}

export class FullDhcpPolicy implements DhcpPolicy {
  readonly mode = 'full';
  readonly port = SERVER_PORT;

  constructor(
    private readonly options: FullDhcpOptions,
    private readonly deps: FullDhcpDeps,
  ) {}

  clientAddress({ request }: Exchange): string | undefined {
    return request.ciaddr !== '0.0.0.0' ? request.ciaddr : undefined;
  }

  /**
   * The client's link: a relay's link-selection sub-option (82.5, RFC 3527) when it sends one,
   * else giaddr (RFC 2131 §4.3.1), else our own segment. 82 in a packet no relay forwarded is
   * the client's own and is not trusted.
   */
  private linkOf(req: DhcpPacket): string {
    if (req.giaddr === '0.0.0.0') return this.options.serverAddress;
    return req.options.linkSelection() ?? req.giaddr;
  }

  async answer(ex: Exchange): Promise<PolicyAnswer> {
    const { request: req } = ex;
    if (!fromRelayAgent(req, ex.from)) return recorded('relay-bad-port', `giaddr ${req.giaddr} set, but sent from port ${ex.from.port}, not a relay agent's 67`);
    const link = this.linkOf(req);
    const subnet = this.deps.subnets.subnetFor(link);
    if (!subnet) return recorded('relay-other-subnet', `relayed from ${req.giaddr}${link !== req.giaddr ? ` for link ${link}` : ''}, which is on no subnet we serve`);
    const host = this.deps.hosts?.hostFor(ex.client.mac);
    // A fixed address on another network is no use on this link: the client is served from the pool here.
    const fixed = host && contains(subnet, host.ip) ? host : undefined;
    const asked: Asked = { ex, who: { mac: ex.client.mac, clientId: normalizeClientId(req.options.clientId(), ex.client.mac) }, subnet, fixed };
    switch (req.options.messageType()) {
      case MessageType.DISCOVER:
        return this.discover(asked);
      case MessageType.REQUEST:
        return this.request(asked);
      case MessageType.RELEASE:
        return this.release(asked);
      case MessageType.DECLINE:
        return this.decline(asked);
      case MessageType.INFORM:
        return this.inform(asked);
      default:
        return recorded('not-request', `full DHCP does not answer ${ex.type}`);
    }
  }

  private discover({ ex, who, subnet, fixed }: Asked): PolicyAnswer | Promise<PolicyAnswer> {
    if (fixed) return this.reply(ex, subnet, 'OFFER', fixed.ip, subnet.leaseTime, undefined, fixed.hostname);
    const { pool } = subnet;
    if (!pool) return recorded('no-pool', `subnet ${subnet.name} has no range: only its fixed hosts get addresses`);
    const lease = pool.offer(who, ex.request.options.requestedIp(), ex.client.hostname);
    if (!lease) return this.exhausted(ex, subnet, pool);
    if (subnet.shared) return this.sharedOffer({ ex, who, subnet, fixed }, pool, subnet.shared, lease);
    return this.offerReply(ex, subnet, lease);
  }

  private offerReply(ex: Exchange, subnet: ServedSubnet, lease: Lease): DhcpReply {
    // A lease already bound is offered for what is left of it, a new one for the full time.
    const seconds = lease.state === 'bound' ? Math.max(60, Math.floor((lease.expires - Date.now()) / 1000)) : subnet.leaseTime;
    return this.reply(ex, subnet, 'OFFER', lease.ip, seconds);
  }

  private exhausted(ex: Exchange, subnet: ServedSubnet, pool: LeasePool): DhcpSilence {
    this.deps.log.warn({ mac: ex.client.mac, xid: ex.request.xid, subnet: subnet.name, range: rangeOf(pool) }, 'no free address to offer: pool exhausted');
    return recorded('pool-exhausted', `no free address in ${rangeOf(pool)}`);
  }

  /**
   * A pool other appliances hand out too: the address is taken in etcd before the OFFER
   * leaves. Losing it means the other appliance took it first; the pool then knows, so the
   * next choice is another address (a few tries: both appliances walk the range alike).
   */
  private async sharedOffer({ ex, who, subnet }: Asked, pool: LeasePool, shared: SharedLedger, first: Lease): Promise<PolicyAnswer> {
    let lease: Lease | undefined = first;
    for (let attempt = 0; lease; attempt++) {
      const lost = await this.claimed(ex, subnet, shared, lease.ip);
      if (!lost) return this.offerReply(ex, subnet, lease);
      if (lost.reason !== 'lease-taken' || attempt >= SHARED_OFFER_TRIES - 1) return lost;
      lease = pool.offer(who, ex.request.options.requestedIp(), ex.client.hostname);
    }
    return this.exhausted(ex, subnet, pool);
  }

  /** Takes `ip` in the shared store; undefined once it is ours, else why nothing may be sent. */
  private async claimed(ex: Exchange, subnet: ServedSubnet, shared: SharedLedger, ip: string): Promise<DhcpSilence | undefined> {
    try {
      if (await shared.claim(ip)) return undefined;
      return recorded('lease-taken', `${ip} was changed by another appliance first`);
    } catch (err) {
      this.deps.metrics.dhcpLeaseWriteFailures.inc();
      this.deps.log.error({ err, mac: ex.client.mac, xid: ex.request.xid, leases: subnet.leaseFile }, 'lease could not be written to the shared store: nothing sent');
      return recorded('lease-write-failed', 'the lease could not be written to the shared store');
    }
  }

  /** RFC 2131 §4.3.2: SELECTING (54 + 50), INIT-REBOOT (50 only), RENEWING/REBINDING (ciaddr only). */
  private async request(asked: Asked): Promise<PolicyAnswer> {
    const { ex, who, subnet, fixed } = asked;
    const { request: req } = ex;
    const { pool } = subnet;
    const serverId = req.options.serverId();
    const requested = req.options.requestedIp();
    let ip: string;
    let state: RequestState;
    if (serverId !== undefined) {
      if (serverId !== this.options.serverAddress) {
        // The client took another server's offer: release our hold, say nothing.
        pool?.forgetOffer(who);
        return recorded('other-server', `REQUEST is for server ${serverId}`);
      }
      state = 'selecting';
      ip = requested ?? req.ciaddr;
    } else if (requested !== undefined) {
      state = 'init-reboot';
      ip = requested;
      if (!contains(subnet, ip)) return this.nak(ex, `${ip} is not on this network`);
    } else if (req.ciaddr !== '0.0.0.0') {
      state = 'renewing';
      ip = req.ciaddr;
    } else {
      return recorded('no-address', 'REQUEST names no address (no option 50, no ciaddr)');
    }
    if (ip === '0.0.0.0') return recorded('no-address', 'REQUEST names no address');
    if (fixed) {
      if (ip !== fixed.ip) return this.nak(ex, `${ip} is not this host's: its fixed address is ${fixed.ip}`, state);
      return this.reply(ex, subnet, 'ACK', ip, subnet.leaseTime, state, fixed.hostname);
    }
    // Held since before it was fixed: not renewed, so the client starts over with a pool address.
    if (this.deps.hosts?.ownerOf(ip) !== undefined) return this.nak(ex, `${ip} is reserved for a fixed host`, state);
    if (!pool) return recorded('not-ours', `subnet ${subnet.name} has no pool`);
    // An address of this subnet outside our pool may be another server's (or static): only
    // a client we know is told no.
    if (state === 'init-reboot' && !pool.inPool(ip) && !pool.find(who)) return recorded('not-ours', `${ip} is outside our pool and the client is not ours`);
    if (state === 'renewing' && !pool.inPool(ip)) return recorded('not-ours', `${ip} is outside our pool`);
    const bound = pool.bind(who, ip, ex.client.hostname);
    if (!bound.ok) return this.nak(ex, bound.reason, state);
    if (subnet.shared) {
      const lost = await this.claimed(ex, subnet, subnet.shared, ip);
      // Lost to the other appliance binding the same client to the same address (a broadcast REQUEST both heard): that lease is stored too.
      const theirs = pool.get(ip);
      if (lost && !(lost.reason === 'lease-taken' && theirs?.state === 'bound' && pool.isActive(theirs) && pool.find(who) === theirs)) return lost;
    } else {
      const failure = await this.durable(ex, subnet);
      if (failure) return failure;
    }
    return this.reply(ex, subnet, 'ACK', bound.lease.ip, subnet.leaseTime, state);
  }

  private async release({ ex, who, subnet, fixed }: Asked): Promise<DhcpSilence | DhcpHandled> {
    const { request: req, client } = ex;
    const { log } = this.deps;
    if (this.forOtherServer(req)) return recorded('other-server', `RELEASE is for server ${req.options.serverId()}`);
    if (fixed) log.info({ mac: client.mac, ip: req.ciaddr, fixed: fixed.ip }, 'RELEASE of a fixed address: nothing to free');
    if (fixed || !subnet.pool) return HANDLED;
    const released = subnet.pool.release(who, req.ciaddr);
    log.info({ mac: client.mac, ip: req.ciaddr, released }, released ? 'lease released' : 'RELEASE for an address this client does not hold: ignored');
    if (released) await subnet.commit().catch((err: unknown) => log.error({ err, leaseFile: subnet.leaseFile }, 'lease file write failed'));
    return HANDLED;
  }

  private async decline({ ex, who, subnet, fixed }: Asked): Promise<DhcpSilence | DhcpHandled> {
    const { request: req, client } = ex;
    const { log } = this.deps;
    if (this.forOtherServer(req)) return recorded('other-server', `DECLINE is for server ${req.options.serverId()}`);
    const ip = req.options.requestedIp() ?? req.ciaddr;
    // Nothing to quarantine: the address is this host's by declaration; a person must find the other one.
    if (fixed) log.warn({ mac: client.mac, ip, fixed: fixed.ip }, `fixed address ${ip} declined: another host answers ARP for it`);
    if (fixed || !subnet.pool) return HANDLED;
    const declined = subnet.pool.decline(who, ip);
    // Someone else answers ARP for this address: an operator wants to know.
    log.warn(
      { mac: client.mac, ip, quarantined: declined },
      declined ? `address ${ip} declined (in use by another host): quarantined` : `DECLINE of ${ip} ignored: held by another client or not ours`,
    );
    if (declined) await subnet.commit().catch((err: unknown) => log.error({ err, leaseFile: subnet.leaseFile }, 'lease file write failed'));
    return HANDLED;
  }

  /** DHCPINFORM: configuration only, no address, no lease (RFC 2131 §3.4). */
  private inform({ ex, subnet }: Asked): PolicyAnswer {
    const { request: req } = ex;
    if (req.ciaddr === '0.0.0.0') return recorded('no-address', 'INFORM without ciaddr');
    // The subnet's router, DNS and mask are only right for hosts on it.
    if (!contains(subnet, req.ciaddr)) return recorded('not-ours', `INFORM from ${req.ciaddr}, not on subnet ${subnet.name}`);
    return this.reply(ex, subnet, 'ACK', '0.0.0.0', undefined, 'inform');
  }

  /** Waits until the lease is on disk. On a write failure the client gets nothing and will ask again. */
  private async durable(ex: Exchange, subnet: ServedSubnet): Promise<DhcpSilence | undefined> {
    try {
      await subnet.commit();
      return undefined;
    } catch (err) {
      this.deps.metrics.dhcpLeaseWriteFailures.inc();
      this.deps.log.error({ err, mac: ex.client.mac, xid: ex.request.xid, leaseFile: subnet.leaseFile }, 'lease could not be written: no ACK sent');
      return recorded('lease-write-failed', 'the lease could not be written to the lease file');
    }
  }

  private nak(ex: Exchange, reason: string, state?: RequestState): DhcpReply {
    const { request: req } = ex;
    const reply = replyTo(req);
    reply.options.setU8(Opt.MESSAGE_TYPE, MessageType.NAK).setIp(Opt.SERVER_ID, this.options.serverAddress).setString(Opt.MESSAGE, reason.slice(0, 200));
    // A relay must broadcast a NAK (the client's address is the one being refused).
    if (req.giaddr !== '0.0.0.0') reply.flags |= FLAG_BROADCAST;
    return { kind: 'reply', type: 'NAK', packet: reply, to: replyDestination(req, { nak: true }), state, nakReason: reason };
  }

  private reply(ex: Exchange, subnet: ServedSubnet, type: 'OFFER' | 'ACK', yiaddr: string, leaseSeconds: number | undefined, state?: RequestState | 'inform', hostname?: string): DhcpReply {
    const { request: req, client, target } = ex;
    const reply = replyTo(req);
    reply.yiaddr = yiaddr;
    if (type === 'ACK' && req.ciaddr !== '0.0.0.0') reply.ciaddr = req.ciaddr;
    const o = reply.options;
    o.setU8(Opt.MESSAGE_TYPE, type === 'OFFER' ? MessageType.OFFER : MessageType.ACK);
    o.setIp(Opt.SERVER_ID, this.options.serverAddress);
    if (leaseSeconds !== undefined) {
      o.setU32(Opt.LEASE_TIME, leaseSeconds);
      o.setU32(Opt.RENEWAL_TIME, Math.floor(leaseSeconds / 2));
      o.setU32(Opt.REBINDING_TIME, Math.floor((leaseSeconds * 7) / 8));
    }
    o.setIp(Opt.SUBNET_MASK, subnet.netmask);
    o.setIp(Opt.BROADCAST_ADDRESS, subnet.broadcast);
    if (subnet.router) o.setIp(Opt.ROUTER, subnet.router);
    if (subnet.dns.length) o.setIps(Opt.DNS, subnet.dns);
    if (hostname) o.setString(Opt.HOSTNAME, hostname);
    if (target.action !== 'ignore') this.applyBoot(reply, client, target);
    return { kind: 'reply', type, packet: reply, to: replyDestination(req), yiaddr, state };
  }

  /**
   * The boot file, as the proxy gives it, minus option 60 PXEClient: without option 43 it
   * sends OVMF to port 4011 instead of taking the file (wire.md). iPXE also gets 175.176.
   */
  private applyBoot(reply: DhcpPacket, client: ClientInfo, target: Exclude<Exchange['target'], { action: 'ignore' }>): void {
    applyBootTarget(reply, client, target, { serverAddress: this.options.serverAddress, pxeVendorClass: false });
    if (client.ipxe) reply.options.set(Opt.IPXE_ENCAP, IPXE_NO_PROXY);
  }

  private forOtherServer(req: DhcpPacket): boolean {
    const sid = req.options.serverId();
    return sid !== undefined && sid !== this.options.serverAddress;
  }
}
