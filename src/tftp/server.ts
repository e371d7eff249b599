import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { FirmwareCatalog } from '../boot/firmware.ts';
import type { BootTimeline } from '../events/timeline.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { resolveRequest } from './files.ts';
import { negotiate, type OptionLimits } from './options.ts';
import { encodeError, ERR, parsePacket, type TftpOptions } from './packet.ts';
import { DEFAULT_RETRANSMIT, Session, type Outcome, type RetransmitPolicy } from './session.ts';

export interface TftpServerOptions {
  host: string;
  port: number;
  /** The folder served: the firmware folder. */
  root: string;
  catalog: FirmwareCatalog;
  /** Serve files under the root that SHA256SUMS does not list (see files.ts). */
  serveOtherFiles: boolean;
  /** Transfers in flight at once; a request beyond gets ERROR 0 "server busy". */
  maxTransfers: number;
  limits: OptionLimits;
  retransmit: RetransmitPolicy;
  log: Logger;
  metrics: Metrics;
  timeline: BootTimeline;
}

export const DEFAULT_LIMITS: OptionLimits = { maxBlksize: 8192, maxWindowsize: 64, maxWindowBytes: 64 * 1024 };
export const DEFAULT_MAX_TRANSFERS = 1000;

/** Malformed datagrams are logged at most this often; the counter has the total. */
const MALFORMED_LOG_INTERVAL_MS = 5000;

interface Active {
  request: Buffer;
  session: Session | undefined;
}

/**
 * The TFTP listener: parses requests on the well-known port, refuses what it must
 * (writes, unsafe names, missing or unverified files, more transfers than the cap) with an
 * immediate ERROR from that port, and hands each accepted read to its own Session.
 */
export class TftpServer {
  private socket: Socket | undefined;
  /** Keyed by client address:port, so a retransmitted RRQ does not start a second transfer. */
  private readonly active = new Map<string, Active>();
  private lastMalformedLog = 0;
  private malformedSinceLog = 0;

  constructor(private readonly opts: TftpServerOptions) {}

  async start(): Promise<void> {
    const socket = createSocket({ type: isIPv6(this.opts.host) ? 'udp6' : 'udp4' });
    socket.on('message', (msg, rinfo) => this.onRequest(msg, rinfo));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: this.opts.host, port: this.opts.port, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    // Errors after bind (an ICMP for an ERROR we sent) concern one client, never the listener.
    socket.on('error', (err) => this.opts.log.debug({ err }, 'tftp listener socket error'));
    this.socket = socket;
  }

  address(): AddressInfo {
    const a = this.socket?.address();
    if (!a) throw new Error('tftp server not started');
    return a;
  }

  get transfers(): number {
    return this.active.size;
  }

  async stop(): Promise<void> {
    const socket = this.socket;
    // From here no request is read and no new transfer starts (serve() checks this.socket).
    this.socket = undefined;
    const pending = [...this.active.values()].map((a) => {
      a.session?.abort('shutdown', 'Server shutting down');
      return a.session?.done;
    });
    await Promise.all(pending);
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private malformed(reason: string, from: RemoteInfo | undefined): void {
    this.opts.metrics.malformedPackets.inc({ protocol: 'tftp' });
    this.malformedSinceLog++;
    const now = Date.now();
    if (now - this.lastMalformedLog >= MALFORMED_LOG_INTERVAL_MS) {
      this.opts.log.debug({ client: from ? `${from.address}:${from.port}` : undefined, reason, dropped: this.malformedSinceLog }, 'tftp: malformed packet dropped');
      this.lastMalformedLog = now;
      this.malformedSinceLog = 0;
    }
  }

  private reply(buf: Buffer, to: RemoteInfo): void {
    this.socket?.send(buf, to.port, to.address);
  }

  private onRequest(msg: Buffer, rinfo: RemoteInfo): void {
    if (!this.socket) return; // stopping
    const parsed = parsePacket(msg);
    if (!parsed.ok) return this.malformed(parsed.reason, rinfo);
    const p = parsed.packet;
    if (p.op === 'wrq') {
      this.reply(encodeError(ERR.ACCESS_VIOLATION, 'Read-only server'), rinfo);
      this.record(rinfo, p.filename, p.options, { outcome: 'write-refused', bytes: 0, ms: 0, detail: 'write request' });
      return;
    }
    // DATA/ACK/ERROR/OACK belong on a transfer's own port; on this one they are noise.
    if (p.op !== 'rrq') return this.malformed(`${p.op} on the request port`, rinfo);

    const key = `${rinfo.address}:${rinfo.port}`;
    const existing = this.active.get(key);
    if (existing) {
      // The same request again: our OACK or DATA 1 is on its way or lost, and the session's timer resends it.
      if (existing.request.equals(msg)) return;
      // A new request from the same port (a size probe whose ERROR 8 was lost, then the real read).
      existing.session?.abort('aborted', 'Superseded by a new request');
    }
    if (this.active.size >= this.opts.maxTransfers && !existing) {
      this.reply(encodeError(ERR.NOT_DEFINED, 'Server busy, try again'), rinfo);
      this.record(rinfo, p.filename, p.options, { outcome: 'busy', bytes: 0, ms: 0, detail: `${this.active.size} transfers in flight` });
      return;
    }
    const entry: Active = { request: Buffer.from(msg), session: undefined };
    this.active.set(key, entry);
    void this.serve(key, entry, rinfo, p.filename, p.mode, p.options).catch((err: unknown) => {
      this.opts.log.error({ err, client: key, file: p.filename }, 'tftp: transfer failed unexpectedly');
      if (this.active.get(key) === entry) this.active.delete(key);
    });
  }

  private async serve(key: string, entry: Active, rinfo: RemoteInfo, filename: string, mode: string, requested: TftpOptions): Promise<void> {
    const started = performance.now();
    const release = () => {
      if (this.active.get(key) === entry) this.active.delete(key);
    };
    this.opts.timeline.record({ step: 'tftp.start', ip: rinfo.address, detail: { file: filename, options: { ...requested } } });

    if (mode !== 'octet') {
      // netascii would need CR/LF rewriting; boot firmware only ever asks for octet.
      this.reply(encodeError(ERR.ILLEGAL_OPERATION, 'Only octet (binary) mode is served'), rinfo);
      release();
      this.record(rinfo, filename, requested, { outcome: 'refused', bytes: 0, ms: performance.now() - started, detail: `mode ${mode}` });
      return;
    }
    const resolution = await resolveRequest(filename, { root: this.opts.root, catalog: this.opts.catalog, serveOtherFiles: this.opts.serveOtherFiles });
    if (this.active.get(key) !== entry || !this.socket) {
      // Superseded, or the server stopped, while we looked the file up.
      if (resolution.kind !== 'refused') await resolution.source.close();
      release();
      return;
    }
    if (resolution.kind === 'refused') {
      this.reply(encodeError(resolution.code, resolution.message), rinfo);
      release();
      const outcome: Outcome = resolution.code === ERR.FILE_NOT_FOUND ? 'not-found' : 'refused';
      this.record(rinfo, filename, requested, { outcome, bytes: 0, ms: performance.now() - started, detail: resolution.reason });
      return;
    }
    const terms = negotiate(requested, resolution.source.size, this.opts.limits);
    const session = new Session(rinfo, this.opts.host, resolution.source, terms, this.opts.retransmit, {
      malformed: (reason) => this.malformed(reason, rinfo),
      retransmitted: (n) => this.opts.metrics.tftpRetransmissions.inc(n),
    });
    entry.session = session;
    try {
      await session.start();
    } catch (err) {
      session.abort('error', 'Internal error');
      this.opts.log.error({ err, client: key }, 'tftp: could not open a transfer port');
    }
    const result = await session.done;
    release();
    this.record(rinfo, resolution.name, requested, {
      outcome: result.outcome,
      bytes: result.bytes,
      ms: performance.now() - started,
      detail: result.detail,
      size: resolution.source.size,
      granted: terms.oack,
      blksize: terms.blksize,
      windowsize: terms.windowsize,
      retransmissions: result.retransmissions,
      firmware: resolution.kind === 'firmware',
    });
  }

  private record(
    rinfo: RemoteInfo,
    file: string,
    requested: TftpOptions,
    r: { outcome: Outcome; bytes: number; ms: number; detail?: string | undefined; size?: number; granted?: TftpOptions; blksize?: number; windowsize?: number; retransmissions?: number; firmware?: boolean },
  ): void {
    const { metrics, log, timeline } = this.opts;
    metrics.tftpTransfers.inc({ outcome: r.outcome });
    if (r.bytes > 0) metrics.tftpBytes.inc(r.bytes);
    const ms = Math.round(r.ms * 10) / 10;
    const line = {
      // TFTP carries no MAC; the timeline knows which machine holds the address (DHCP bound it).
      mac: timeline.macForAddress(rinfo.address),
      client: `${rinfo.address}:${rinfo.port}`,
      file,
      options: { ...requested },
      ...(r.granted ? { granted: r.granted } : {}),
      outcome: r.outcome,
      bytes: r.bytes,
      ...(r.size !== undefined ? { size: r.size } : {}),
      ms,
      ...(r.retransmissions ? { retransmissions: r.retransmissions } : {}),
      ...(r.detail ? { detail: r.detail } : {}),
    };
    // A size probe and a refused write are normal; an abandoned or failed read is worth a warning.
    const level = r.outcome === 'timeout' || r.outcome === 'error' ? 'warn' : 'info';
    log[level](line, `tftp ${file} to ${rinfo.address}: ${r.outcome}${r.outcome === 'ok' ? ` (${r.bytes} bytes in ${ms} ms)` : r.detail ? ` (${r.detail})` : ''}`);
    timeline.record({ step: 'tftp.end', ip: rinfo.address, detail: { file, outcome: r.outcome, bytes: r.bytes, ms } });
  }
}
