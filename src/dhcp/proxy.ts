/**
 * ProxyDHCP on port 67 and the PXE boot server on port 4011 (shared/notes/wire.md).
 * Another server hands out addresses; we only tell PXE firmware and iPXE what to boot.
 * We never put an address in yiaddr and never answer a REQUEST meant for another server.
 */
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { BootTimeline } from '../events/timeline.ts';
import { classifyClient, type ClientInfo } from '../boot/client.ts';
import { resolveBootTarget, type BootSettings, type BootTarget } from '../boot/decide.ts';
import { applyBootTarget, bootFileOf, type BootableTarget } from './boot-reply.ts';
import { BOOTREQUEST, DEFAULT_MAX_MESSAGE_SIZE, encodePacket, replyTo, tryParsePacket, type DhcpPacket } from './packet.ts';
import { MessageType, messageTypeName, Opt } from './options.ts';
import { MalformedReporter } from './drops.ts';
import { bootServerDestination, PXE_PORT, replyDestination, SERVER_PORT, type Destination, type Peer } from './transport.ts';

export interface ResponderDeps {
  log: Logger;
  metrics: Metrics;
  timeline: BootTimeline;
  /** Our IPv4 on --iface: option 54, siaddr, sname. */
  serverAddress: string;
  settings: BootSettings;
  send: (bytes: Buffer, to: Destination) => Promise<void>;
}

/** Reasons a well-formed packet gets no answer besides the boot decision's; a bounded label set. */
export type ProtocolIgnoreReason = 'not-request' | 'not-ethernet' | 'other-server' | 'unhandled-type';

interface Exchange {
  request: DhcpPacket;
  client: ClientInfo;
  type: string;
  from: Peer;
}

/** What both responders share: parse, classify, decide, reply, and say so in logs, metrics and the timeline. */
abstract class BootResponder {
  protected readonly malformed: MalformedReporter;

  constructor(
    protected readonly deps: ResponderDeps,
    /** dhcpRequests/dhcpReplies{mode} label. */
    protected readonly mode: 'proxy' | 'bootserver',
    protected readonly port: number,
  ) {
    this.malformed = new MalformedReporter(deps.log, deps.metrics);
  }

  /** The socket handler: never throws for anything a packet contains. */
  async handle(data: Buffer, from: Peer): Promise<void> {
    const parsed = tryParsePacket(data);
    if (!parsed.ok) {
      this.malformed.report(parsed.reason, from, this.port, data.length);
      return;
    }
    const request = parsed.packet;
    if (request.op !== BOOTREQUEST) {
      this.ignore('not-request', undefined, `op ${request.op} is a reply, not a request`, from);
      return;
    }
    const client = classifyClient(request);
    if (!client) {
      this.ignore('not-ethernet', undefined, `hardware type ${request.htype}/length ${request.hlen} is not Ethernet`, from);
      return;
    }
    const type = messageTypeName(request.options.messageType());
    this.deps.metrics.dhcpRequests.inc({ type, mode: this.mode, arch: client.archName });
    const ex: Exchange = { request, client, type, from };
    this.recordRequest(ex);
    await this.respond(ex);
  }

  protected abstract respond(ex: Exchange): Promise<void>;
  protected abstract recordRequest(ex: Exchange): void;

  protected logFields(ex: Exchange): Record<string, unknown> {
    const { client, request, type, from } = ex;
    return {
      mac: client.mac,
      uuid: client.uuid,
      arch: client.archName,
      archCode: client.arch,
      ipxe: client.ipxe,
      type,
      xid: `0x${request.xid.toString(16).padStart(8, '0')}`,
      from: `${from.address}:${from.port}`,
      port: this.port,
      ...(request.giaddr !== '0.0.0.0' ? { giaddr: request.giaddr } : {}),
    };
  }

  /** A packet left unanswered for a protocol reason (wrong server, wrong type). */
  protected ignore(reason: ProtocolIgnoreReason, ex: Exchange | undefined, why: string, from: Peer): void {
    this.deps.metrics.dhcpIgnored.inc({ reason });
    if (!this.deps.log.isLevelEnabled('debug')) return;
    this.deps.log.debug({ ...(ex ? this.logFields(ex) : { from: `${from.address}:${from.port}`, port: this.port }), reason }, `${this.mode}: not answering: ${why}`);
  }

  /** The boot decision, or undefined after accounting for an ignore. */
  protected decide(ex: Exchange): BootableTarget | undefined {
    const target: BootTarget = resolveBootTarget(ex.client, this.deps.settings);
    if (target.action !== 'ignore') return target;
    this.deps.metrics.dhcpIgnored.inc({ reason: target.code });
    if (target.code === 'not-pxe') {
      // Every laptop and phone on the segment lands here in proxy mode: not worth an info line or a timeline.
      if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ ...this.logFields(ex), reason: target.code, detail: target.reason }, `${this.mode}: not answering ${ex.client.mac}: ${target.reason}`);
      return undefined;
    }
    const fields = { ...this.logFields(ex), reason: target.code, detail: target.reason };
    this.deps.log.info(fields, `${this.mode}: not answering ${ex.client.mac} (${ex.client.archName}${ex.client.ipxe ? ', iPXE' : ''}): ${target.reason}`);
    this.deps.timeline.record({ step: 'dhcp.ignored', mac: ex.client.mac, uuid: ex.client.uuid, detail: { reason: target.code, detail: target.reason, arch: ex.client.archName, port: this.port } });
    return undefined;
  }

  /** Builds the OFFER/ACK carrying the boot target; undefined (logged) when it cannot be encoded for this client. */
  protected build(ex: Exchange, replyType: number, target: BootableTarget): Buffer | undefined {
    const reply = replyTo(ex.request);
    reply.options.setU8(Opt.MESSAGE_TYPE, replyType);
    this.shape(reply, ex);
    applyBootTarget(reply, ex.client, target, { serverAddress: this.deps.serverAddress, pxeVendorClass: true });
    try {
      return encodePacket(reply, { maxLength: Math.max(DEFAULT_MAX_MESSAGE_SIZE, ex.request.options.maxMessageSize() ?? 0) });
    } catch (err) {
      this.deps.log.error({ ...this.logFields(ex), err }, `${this.mode}: cannot build reply for ${ex.client.mac}: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Header tweaks particular to this responder (ciaddr echo on 4011). */
  protected shape(_reply: DhcpPacket, _ex: Exchange): void {}

  protected async sendReply(ex: Exchange, bytes: Buffer, to: Destination, replyType: number, target: BootableTarget): Promise<void> {
    const { client } = ex;
    const typeName = messageTypeName(replyType);
    const file = bootFileOf(target);
    try {
      await this.deps.send(bytes, to);
    } catch (err) {
      this.deps.log.warn({ ...this.logFields(ex), err, to: `${to.address}:${to.port}` }, `${this.mode}: sending ${typeName} to ${to.address}:${to.port} failed: ${(err as Error).message}`);
      return;
    }
    this.deps.metrics.dhcpReplies.inc({ type: typeName, mode: this.mode, arch: client.archName });
    this.deps.log.info(
      { ...this.logFields(ex), reply: typeName, action: target.action, file, reason: target.reason, to: `${to.address}:${to.port}`, via: to.via },
      `${this.mode}: ${typeName} to ${client.mac} (${client.archName}${client.ipxe ? ', iPXE' : ''}): ${file} — ${target.reason}`,
    );
    this.recordReply(ex, typeName, target, file, to);
  }

  protected abstract recordReply(ex: Exchange, typeName: string, target: BootableTarget, file: string, to: Destination): void;
}

/** ProxyDHCP on port 67: OFFER to a PXE DISCOVER, ACK to a PXE REQUEST addressed to us. */
export class ProxyDhcpResponder extends BootResponder {
  constructor(deps: ResponderDeps) {
    super(deps, 'proxy', SERVER_PORT);
  }

  protected recordRequest(ex: Exchange): void {
    const { client, request, type } = ex;
    if (client.arch === undefined) {
      // Not a PXE client (every laptop on the segment in proxy mode): a debug line, no timeline.
      if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug(this.logFields(ex), `proxy: ${type} from ${client.mac} (not PXE)`);
      return;
    }
    this.deps.log.info(this.logFields(ex), `proxy: ${type} from ${client.mac} (${client.archName}${client.ipxe ? ', iPXE' : ''})`);
    // The site's server hands out the address; the REQUEST names it (option 50, or ciaddr when
    // renewing). Binding it ties the TFTP and HTTP steps that follow, which carry no MAC, to this machine.
    const requested = request.options.requestedIp() ?? (request.ciaddr !== '0.0.0.0' ? request.ciaddr : undefined);
    this.deps.timeline.record({ step: 'dhcp.request', mac: client.mac, uuid: client.uuid, ip: requested, detail: { type, arch: client.archName, ipxe: client.ipxe, xid: request.xid, port: SERVER_PORT } });
  }

  protected async respond(ex: Exchange): Promise<void> {
    const { request } = ex;
    const msgType = request.options.messageType();
    let replyType: number;
    if (msgType === MessageType.DISCOVER) {
      replyType = MessageType.OFFER;
    } else if (msgType === MessageType.REQUEST) {
      // Some Intel ROMs want their REQUEST answered (Pixiecore issue 21): a PXE client's
      // REQUEST naming us, or naming no server, gets an ACK with the boot info and no
      // address. One naming another server is that server's: never an ACK or NAK from us.
      const sid = request.options.serverId();
      if (sid !== undefined && sid !== this.deps.serverAddress) {
        this.ignore('other-server', ex, `REQUEST is for server ${sid}`, ex.from);
        return;
      }
      replyType = MessageType.ACK;
    } else {
      this.ignore('unhandled-type', ex, `ProxyDHCP does not answer ${ex.type}`, ex.from);
      return;
    }
    const target = this.decide(ex);
    if (!target) return;
    const bytes = this.build(ex, replyType, target);
    if (!bytes) return;
    await this.sendReply(ex, bytes, replyDestination(request), replyType, target);
  }

  protected recordReply(ex: Exchange, typeName: string, target: BootableTarget, file: string, to: Destination): void {
    this.deps.timeline.record({ step: 'dhcp.reply', mac: ex.client.mac, uuid: ex.client.uuid, detail: { type: typeName, mode: 'proxy', action: target.action, file, reason: target.reason, to: `${to.address}:${to.port}` } });
  }
}

/**
 * The PXE boot server on port 4011. OVMF sends its REQUEST from its own address:4011
 * after finishing DHCP with the site's server; EFI iPXE sends from port 68. The ACK goes
 * back to where the request came from, ciaddr echoed, with the same boot info as the offer.
 */
export class PxeBootServer extends BootResponder {
  constructor(deps: ResponderDeps) {
    super(deps, 'bootserver', PXE_PORT);
  }

  private clientIp(ex: Exchange): string | undefined {
    const ip = ex.request.ciaddr !== '0.0.0.0' ? ex.request.ciaddr : ex.from.address;
    return ip === '0.0.0.0' ? undefined : ip;
  }

  protected recordRequest(ex: Exchange): void {
    const { client, request, type } = ex;
    const ip = this.clientIp(ex);
    this.deps.log.info({ ...this.logFields(ex), ip }, `bootserver: ${type} from ${client.mac} (${client.archName}${client.ipxe ? ', iPXE' : ''}) at ${ip ?? 'no address'}`);
    if (ip) this.deps.timeline.bindAddress(ip, client.mac);
    this.deps.timeline.record({ step: 'pxe.request', mac: client.mac, uuid: client.uuid, ip, detail: { type, arch: client.archName, ipxe: client.ipxe, xid: request.xid, port: PXE_PORT, from: `${ex.from.address}:${ex.from.port}` } });
  }

  protected async respond(ex: Exchange): Promise<void> {
    const msgType = ex.request.options.messageType();
    if (msgType !== MessageType.REQUEST && msgType !== MessageType.INFORM) {
      this.ignore('unhandled-type', ex, `the boot server answers REQUEST and INFORM, not ${ex.type}`, ex.from);
      return;
    }
    const target = this.decide(ex);
    if (!target) return;
    const bytes = this.build(ex, MessageType.ACK, target);
    if (!bytes) return;
    await this.sendReply(ex, bytes, bootServerDestination(ex.request, ex.from), MessageType.ACK, target);
  }

  protected override shape(reply: DhcpPacket, ex: Exchange): void {
    reply.ciaddr = ex.request.ciaddr;
  }

  protected recordReply(ex: Exchange, typeName: string, target: BootableTarget, file: string, to: Destination): void {
    this.deps.timeline.record({ step: 'pxe.reply', mac: ex.client.mac, uuid: ex.client.uuid, ip: this.clientIp(ex), detail: { type: typeName, action: target.action, file, reason: target.reason, to: `${to.address}:${to.port}` } });
  }
}
