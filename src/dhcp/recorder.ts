/**
 * What the DHCP side says about each packet, in one place for every mode: the log line, the
 * counters and the machine's timeline step. Only machines that boot (option 93) get timeline
 * steps: laptops, phones and the booted OS's own DHCP client would all look like stalled boots.
 */
import { bootFileOf } from '../boot/decide.ts';
import type { BootTimeline } from '../events/timeline.ts';
import { type Logger, logFlat } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { RateLimiter } from '../util/rate-limiter.ts';
import type { DhcpPacket } from './packet.ts';
import type { DhcpPolicy, DhcpReply, DhcpSilence, Exchange } from './policy.ts';
import type { Destination, Peer } from './transport.ts';

/** Malformed packets logged one by one per second, at most; the counter has them all. */
const MALFORMED_LOGS_PER_SECOND = 5;

export interface DhcpRecorderDeps {
  log: Logger;
  metrics: Pick<Metrics, 'dhcpRequests' | 'dhcpReplies' | 'dhcpIgnored' | 'malformedPackets'>;
  timeline: Pick<BootTimeline, 'record' | 'bindAddress'>;
}

/** One log line's fields: the request's, then what the line adds. */
type LogFields = Record<string, string | number | boolean | undefined>;

const hex32 = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
const peer = (p: Peer) => `${p.address}:${p.port}`;

export class DhcpRecorder {
  private readonly malformedLog = new RateLimiter(MALFORMED_LOGS_PER_SECOND, 1000);
  /** The exchange the last log line described, with its xid and peer as logged. */
  private described: Exchange | undefined;
  private xidText = '';
  private fromText = '';
  /** Full DHCP logs `DHCP ACK`; ProxyDHCP and the boot server their mode. */
  private readonly label: string;

  constructor(
    private readonly policy: Pick<DhcpPolicy, 'mode' | 'port'>,
    private readonly deps: DhcpRecorderDeps,
  ) {
    this.label = policy.mode === 'full' ? 'DHCP' : policy.mode;
  }

  /** A datagram that does not parse: always counted, logged within the rate limit. */
  malformed(reason: string, from: Peer, length: number): void {
    const { log, metrics } = this.deps;
    metrics.malformedPackets.inc({ protocol: 'dhcp' });
    const held = this.malformedLog.take();
    if (held === undefined) return;
    if (held > 0) log.warn({ suppressed: held }, `dhcp: ${held} more malformed packets dropped in the last second (not logged one by one)`);
    log.debug({ from: peer(from), port: this.policy.port, length, reason }, `dhcp: dropped malformed packet from ${peer(from)}: ${reason}`);
  }

  /** A packet that parses but is no client request we can key on (a BOOTREPLY, a non-Ethernet client). */
  unusable(reason: 'not-request' | 'not-ethernet', request: DhcpPacket, type: string, from: Peer, why: string): void {
    const { log, metrics } = this.deps;
    // The counters as each mode always kept them: full DHCP counts a non-Ethernet client as a
    // request (arch none) and drops a stray BOOTREPLY uncounted; ProxyDHCP and 4011 count both as ignored.
    if (this.policy.mode === 'full') {
      if (reason === 'not-request') return;
      metrics.dhcpRequests.inc({ type, mode: 'full', arch: 'none' });
    }
    metrics.dhcpIgnored.inc({ reason });
    if (log.isLevelEnabled('debug')) log.debug({ from: peer(from), port: this.policy.port, xid: hex32(request.xid), reason }, `${this.label}: not answering: ${why}`);
  }

  request(ex: Exchange, ip: string | undefined): void {
    const { log, metrics, timeline } = this.deps;
    const { client, request, type } = ex;
    const { mode, port } = this.policy;
    metrics.dhcpRequests.inc({ type, mode, arch: client.archName });
    // Port 4011 is asked only by PXE firmware; on 67 a request without option 93 is not a boot.
    const booting = client.arch !== undefined || mode === 'bootserver';
    if (mode === 'full') {
      // Full DHCP answers every host on the segment: its requests are debug lines, its replies info.
      if (log.isLevelEnabled('debug')) {
        const fields: LogFields = this.fields(ex);
        fields.ciaddr = request.ciaddr;
        fields.requested = request.options.requestedIp();
        fields.serverId = request.options.serverId();
        logFlat(log, 'debug', fields, `DHCP ${type}`);
      }
    } else if (!booting) {
      if (log.isLevelEnabled('debug')) log.debug(this.fields(ex), `${this.label}: ${type} from ${client.mac} (not PXE)`);
    } else {
      const fields: LogFields = this.fields(ex);
      fields.ip = ip;
      logFlat(log, 'info', fields, `${this.label}: ${type} from ${client.mac} (${this.who(ex)})${mode === 'bootserver' ? ` at ${ip ?? 'no address'}` : ''}`);
    }
    if (!booting) return;
    if (mode === 'bootserver') {
      timeline.record({ step: 'pxe.request', mac: client.mac, uuid: client.uuid, ip, detail: { type, arch: client.archName, ipxe: client.ipxe, xid: request.xid, port, from: peer(ex.from) } });
    } else {
      timeline.record({
        step: 'dhcp.request',
        mac: client.mac,
        uuid: client.uuid,
        ip,
        detail: { type, mode, arch: client.archName, ipxe: client.ipxe, xid: request.xid, port, hostname: client.hostname },
      });
    }
  }

  /** `fitted`: how the reply was cut down to the client's size limit, when it had to be. */
  replied(ex: Exchange, reply: DhcpReply, ip: string | undefined, fitted?: string): void {
    const { log, metrics, timeline } = this.deps;
    const { client, target } = ex;
    const to = peer(reply.to);
    metrics.dhcpReplies.inc({ type: reply.type, mode: this.policy.mode, arch: client.archName });
    // A NAK carries no boot fields; an address-only reply (full DHCP, not a PXE client) says why it has none.
    const action = reply.type === 'NAK' ? undefined : target.action;
    const file = reply.type === 'NAK' || target.action === 'ignore' ? undefined : bootFileOf(target);
    const reason = reply.nakReason ?? (reply.type === 'NAK' ? undefined : target.reason);
    const config = target.machine.kind === 'config' ? target.machine.key : undefined;
    const fields: LogFields = this.fields(ex);
    if (this.policy.mode === 'full') {
      // Full DHCP's lines always said the reply's type in `type`; the request's is `request`.
      fields.request = fields.type;
      fields.type = reply.type;
    }
    fields.reply = reply.type;
    fields.yiaddr = reply.yiaddr;
    fields.state = reply.state;
    fields.action = action;
    fields.file = file;
    fields.reason = reason;
    fields.config = config;
    fields.to = to;
    fields.via = reply.to.via;
    fields.fitted = fitted;
    // Scripts match full DHCP's lines exactly (`DHCP ACK`); its fields say the rest.
    logFlat(log, 'info', fields, this.policy.mode === 'full' ? `DHCP ${reply.type}` : `${this.label}: ${reply.type} to ${client.mac} (${this.who(ex)}): ${file ?? 'no boot file'} — ${reason ?? ''}`);
    // An ACKed address belongs to the client now: its later TFTP and HTTP steps carry only the address.
    if (reply.type === 'ACK' && reply.yiaddr) timeline.bindAddress(reply.yiaddr, client.mac);
    if (client.arch === undefined) return;
    if (this.policy.mode === 'bootserver') {
      if (reply.type === 'ACK' && target.action !== 'ignore')
        timeline.record({ step: 'pxe.reply', mac: client.mac, uuid: client.uuid, ip, detail: { type: 'ACK', to, action: target.action, file: bootFileOf(target), reason: target.reason, config } });
      return;
    }
    timeline.record({
      step: 'dhcp.reply',
      mac: client.mac,
      uuid: client.uuid,
      ip: reply.yiaddr,
      detail: { type: reply.type, mode: this.policy.mode, to, yiaddr: reply.yiaddr, state: reply.state, action, file, reason, config },
    });
  }

  ignored(ex: Exchange, silence: DhcpSilence): void {
    const { log, metrics, timeline } = this.deps;
    const { client, type } = ex;
    metrics.dhcpIgnored.inc({ reason: silence.reason });
    const booting = client.arch !== undefined;
    const level = booting ? silence.level : 'debug';
    if (log.isLevelEnabled(level)) {
      const fields: LogFields = this.fields(ex);
      fields.reason = silence.reason;
      fields.detail = silence.why;
      // A rack whose boot loader is missing logs this for every packet, as fast as offers.
      logFlat(log, level, fields, `${this.label}: not answering ${client.mac} (${this.who(ex)}): ${silence.why}`);
    }
    if (silence.timeline && booting) {
      timeline.record({
        step: 'dhcp.ignored',
        mac: client.mac,
        uuid: client.uuid,
        detail: { type, mode: this.policy.mode, reason: silence.reason, detail: silence.why, arch: client.archName, port: this.policy.port },
      });
    }
  }

  /** The reply could not be encoded for this client (too big for its option 57, a field too long). */
  unbuildable(ex: Exchange, err: unknown): void {
    this.deps.log.error({ ...this.fields(ex), err }, `${this.label}: cannot build reply for ${ex.client.mac}: ${(err as Error).message}`);
  }

  sendFailed(ex: Exchange, type: string, to: Destination, err: unknown): void {
    this.deps.log.warn({ ...this.fields(ex), err, to: peer(to) }, `${this.label}: sending ${type} to ${peer(to)} failed: ${(err as Error).message}`);
  }

  private who(ex: Exchange): string {
    return `${ex.client.archName}${ex.client.ipxe ? ', iPXE' : ''}`;
  }

  /** A fresh object each call: callers add their fields to it (one allocation per log line, on the hot path). */
  private fields(ex: Exchange): LogFields {
    const { client, request, type, from } = ex;
    // The request's line and the reply's describe one exchange: its strings are made once.
    if (ex !== this.described) {
      this.described = ex;
      this.xidText = hex32(request.xid);
      this.fromText = peer(from);
    }
    return {
      mac: client.mac,
      uuid: client.uuid,
      arch: client.archName,
      archCode: client.arch,
      ipxe: client.ipxe,
      mode: this.policy.mode,
      type,
      xid: this.xidText,
      from: this.fromText,
      port: this.policy.port,
      giaddr: request.giaddr !== '0.0.0.0' ? request.giaddr : undefined,
    };
  }
}
