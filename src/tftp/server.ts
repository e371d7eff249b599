/**
 * A read-only TFTP server that knows nothing of booting: a resolver turns a requested name
 * into bytes (or an error to send), and callbacks hear about every transfer. It parses
 * requests on the well-known port, refuses what it must (writes, the mail mode, more
 * transfers than the caps allow) with an immediate ERROR from that port, and hands each
 * accepted read to its own Session, in octet or netascii (converted by netascii.ts).
 * tftp/service.ts gives it the appliance's files, metrics, log and timeline.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6, type AddressInfo } from 'node:net';
import { NativeEngine } from './native-engine.ts';
import { NetasciiSource } from './netascii.ts';
import { negotiate, type OptionLimits } from './options.ts';
import { encodeError, ERR, parsePacket, type TftpOptions } from './packet.ts';
import { Session, type Outcome, type RetransmitPolicy, type Transfer } from './session.ts';
import type { Source } from './source.ts';

/** SO_RCVBUF of the request port (the default, ~208 KiB, holds ~200 requests). */
const REQUEST_QUEUE_BYTES = 4 * 1024 * 1024;

export interface Peer {
  address: string;
  port: number;
}

/** What a requested name resolves to: a source of bytes, or the ERROR to answer with (and why, for the log). */
export type TftpResolution = { ok: true; name: string; source: Source } | { ok: false; name: string; code: number; message: string; reason: string };

export type TftpResolver = (filename: string, peer: Peer) => Promise<TftpResolution>;

/** How one request ended, refused ones included. */
export interface TransferReport {
  peer: Peer;
  /** The resolved name when the file was found, else the name as requested. */
  file: string;
  requested: TftpOptions;
  /** The mode as requested (lower case): octet, netascii, or what was refused. */
  mode: string;
  outcome: Outcome;
  bytes: number;
  ms: number;
  detail?: string | undefined;
  /** Bytes on the wire: for netascii the converted size. */
  size?: number | undefined;
  /** The options acknowledged in the OACK. */
  granted?: TftpOptions | undefined;
  retransmissions?: number | undefined;
}

/** What the server tells its owner. None of these may throw. */
export interface TftpServerEvents {
  /** A read request was accepted for serving (before its file is looked up). */
  started(peer: Peer, file: string, requested: TftpOptions): void;
  finished(report: TransferReport): void;
  malformed(reason: string, peer: Peer): void;
  retransmitted(packets: number): void;
  /** A datagram reached the port of the transfer to `transfer` from another source (`from`); it got ERROR 5. */
  stray(from: Peer, transfer: Peer): void;
  /** A bug or a socket fault, never a client's doing. */
  failed(what: string, err: unknown, peer: Peer | undefined): void;
  /** The worker engine's thread stopped serving: the event loop sends every block from now on. */
  engineFailed(err: Error): void;
}

export interface TftpServerOptions {
  host: string;
  port: number;
  resolve: TftpResolver;
  /** Transfers in flight at once; a request beyond gets ERROR 0 "server busy". */
  maxTransfers: number;
  /**
   * Transfers in flight at once from one IP address, so RRQs spoofed from one address cannot
   * take every slot; a request beyond gets ERROR 0 (TOO_MANY_FROM_CLIENT) and the outcome
   * `per-client-limit`. Firmware reads one file at a time; 8 leaves room for retries.
   */
  maxTransfersPerClient: number;
  limits: OptionLimits;
  retransmit: RetransmitPolicy;
  events: TftpServerEvents;
  /**
   * Who sends the blocks: `worker` (the default) runs octet transfers over IPv4 on a thread
   * of their own through libc (native-engine.ts), falling back to `event-loop` (Node's
   * dgram, session.ts) where that thread cannot run; netascii and IPv6 always take the
   * event loop.
   */
  engine?: TftpEngine;
}

export type TftpEngine = 'worker' | 'event-loop';

export const DEFAULT_LIMITS: OptionLimits = { maxBlksize: 8192, maxWindowsize: 64, maxWindowBytes: 64 * 1024 };
export const DEFAULT_MAX_TRANSFERS = 1000;
export const DEFAULT_MAX_TRANSFERS_PER_CLIENT = 8;
/** The ERROR message over the per-client cap (code 0: RFC 1350 has no code for "quota", and 3 reads as a full disk). */
export const TOO_MANY_FROM_CLIENT = 'Too many transfers from your address, try again later';

interface Active {
  request: Buffer;
  session: Transfer | undefined;
}

export class TftpServer {
  private socket: Socket | undefined;
  /** Keyed by client address:port, so a retransmitted RRQ does not start a second transfer. */
  private readonly active = new Map<string, Active>();
  /** Entries of `active` per client IP address; an address with none has no key. */
  private readonly perAddress = new Map<string, number>();
  private native: NativeEngine | undefined;
  /** Why the worker engine is not serving, when it was asked for and is not. */
  engineProblem: string | undefined;

  constructor(private readonly opts: TftpServerOptions) {}

  /** The engine that sends octet blocks over IPv4. */
  get engine(): TftpEngine {
    return this.native && !this.native.broken ? 'worker' : 'event-loop';
  }

  async start(): Promise<void> {
    if ((this.opts.engine ?? 'worker') === 'worker' && !isIPv6(this.opts.host)) {
      try {
        this.native = NativeEngine.start((err) => this.opts.events.engineFailed(err));
      } catch (err) {
        this.engineProblem = (err as Error).message;
      }
    }
    // A rack's requests arrive at once (two per machine: the size probe, then the transfer) while
    // the event loop may be busy with its DHCP: queued, not dropped (the kernel caps it at rmem_max), as DHCP's are.
    const socket = createSocket({ type: isIPv6(this.opts.host) ? 'udp6' : 'udp4', recvBufferSize: REQUEST_QUEUE_BYTES });
    socket.on('message', (msg, rinfo) => this.onRequest(msg, rinfo));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ address: this.opts.host, port: this.opts.port, exclusive: true }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      // Nothing will serve: the worker thread (which has no transfer yet) ends with the start.
      try {
        socket.close();
      } catch {
        // Already closed by the failed bind.
      }
      await this.native?.stop();
      this.native = undefined;
      throw err;
    }
    // Errors after bind (an ICMP for an ERROR we sent) concern one client, never the listener.
    socket.on('error', (err) => this.opts.events.failed('listener socket error', err, undefined));
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
    await this.native?.stop();
    this.native = undefined;
  }

  private track(key: string, entry: Active, address: string): void {
    if (!this.active.has(key)) this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    this.active.set(key, entry);
  }

  /** Drops `entry` unless a newer request from the same port took its place. */
  private untrack(key: string, entry: Active, address: string): void {
    if (this.active.get(key) !== entry) return;
    this.active.delete(key);
    const n = (this.perAddress.get(address) ?? 1) - 1;
    if (n > 0) this.perAddress.set(address, n);
    else this.perAddress.delete(address);
  }

  private reply(buf: Buffer, to: Peer): void {
    this.socket?.send(buf, to.port, to.address);
  }

  private onRequest(msg: Buffer, rinfo: RemoteInfo): void {
    if (!this.socket) return; // stopping
    const peer: Peer = { address: rinfo.address, port: rinfo.port };
    const parsed = parsePacket(msg);
    if (!parsed.ok) {
      this.opts.events.malformed(parsed.reason, peer);
      return;
    }
    const p = parsed.packet;
    if (p.op === 'wrq') {
      this.reply(encodeError(ERR.ACCESS_VIOLATION, 'Read-only server'), peer);
      this.opts.events.finished({ peer, file: p.filename, requested: p.options, mode: p.mode, outcome: 'write-refused', bytes: 0, ms: 0, detail: 'write request' });
      return;
    }
    // DATA/ACK/ERROR/OACK belong on a transfer's own port; on this one they are noise.
    if (p.op !== 'rrq') {
      this.opts.events.malformed(`${p.op} on the request port`, peer);
      return;
    }

    const key = `${peer.address}:${peer.port}`;
    const existing = this.active.get(key);
    if (existing) {
      // The same request again: our OACK or DATA 1 is on its way or lost, and the session's timer resends it.
      if (existing.request.equals(msg)) return;
      // A new request from the same port (a size probe whose ERROR 8 was lost, firmware
      // retrying): the old transfer ends without an ERROR, which would reach the client's
      // port, where the new one now lives, and could end it before its first packet.
      existing.session?.abandon('aborted', 'superseded by a new request');
    } else {
      const fromAddress = this.perAddress.get(peer.address) ?? 0;
      if (fromAddress >= this.opts.maxTransfersPerClient) {
        this.reply(encodeError(ERR.NOT_DEFINED, TOO_MANY_FROM_CLIENT), peer);
        const detail = `${fromAddress} transfers in flight from ${peer.address}`;
        this.opts.events.finished({ peer, file: p.filename, requested: p.options, mode: p.mode, outcome: 'per-client-limit', bytes: 0, ms: 0, detail });
        return;
      }
      if (this.active.size >= this.opts.maxTransfers) {
        this.reply(encodeError(ERR.NOT_DEFINED, 'Server busy, try again'), peer);
        this.opts.events.finished({ peer, file: p.filename, requested: p.options, mode: p.mode, outcome: 'busy', bytes: 0, ms: 0, detail: `${this.active.size} transfers in flight` });
        return;
      }
    }
    const entry: Active = { request: Buffer.from(msg), session: undefined };
    this.track(key, entry, peer.address);
    void this.serve(key, entry, peer, p.filename, p.mode, p.options).catch((err: unknown) => {
      this.opts.events.failed('transfer failed unexpectedly', err, peer);
      this.untrack(key, entry, peer.address);
    });
  }

  private async serve(key: string, entry: Active, peer: Peer, filename: string, mode: string, requested: TftpOptions): Promise<void> {
    const started = performance.now();
    const finish = (report: Omit<TransferReport, 'peer' | 'requested' | 'mode' | 'ms'>) => {
      this.untrack(key, entry, peer.address);
      this.opts.events.finished({ peer, requested, mode, ms: performance.now() - started, ...report });
    };
    this.opts.events.started(peer, filename, requested);

    if (mode !== 'octet' && mode !== 'netascii') {
      // "mail" (RFC 1350) delivers to a user, which a read-only boot server has no business doing.
      this.reply(encodeError(ERR.ILLEGAL_OPERATION, 'Only octet and netascii modes are served'), peer);
      return finish({ file: filename, outcome: 'refused', bytes: 0, detail: `mode ${mode}` });
    }
    const resolution = await this.opts.resolve(filename, peer);
    if (this.active.get(key) !== entry || !this.socket) {
      // Superseded, or the server stopped, while we looked the file up: nothing was sent yet, and nothing is.
      if (resolution.ok) await resolution.source.close();
      return finish({ file: filename, outcome: this.socket ? 'aborted' : 'shutdown', bytes: 0, detail: this.socket ? 'superseded by a new request' : 'server stopping' });
    }
    if (!resolution.ok) {
      this.reply(encodeError(resolution.code, resolution.message), peer);
      return finish({ file: filename, outcome: resolution.code === ERR.FILE_NOT_FOUND ? 'not-found' : 'refused', bytes: 0, detail: resolution.reason });
    }
    // Chosen once per transfer, so octet blocks go out exactly as before.
    const source = mode === 'netascii' ? new NetasciiSource(resolution.source) : resolution.source;
    // tsize is left out of a netascii OACK, as tftp-hpa does: RFC 2349's "size of the file"
    // is not the converted size, which is unknown until the whole file is read.
    const { tsize: _unknownInNetascii, ...withoutTsize } = requested;
    const terms = negotiate(mode === 'netascii' ? withoutTsize : requested, source.size, this.opts.limits);
    const hooks = {
      malformed: (reason: string) => this.opts.events.malformed(reason, peer),
      retransmitted: (n: number) => this.opts.events.retransmitted(n),
      stray: (from: Peer) => this.opts.events.stray(from, peer),
    };
    const direct = this.engine === 'worker' && mode === 'octet' ? resolution.source.direct?.() : undefined;
    const session: Transfer =
      this.native && direct
        ? this.native.transfer(peer, this.opts.host, source, direct, terms, this.opts.retransmit, hooks)
        : new Session(peer, this.opts.host, source, terms, this.opts.retransmit, hooks);
    entry.session = session;
    try {
      await session.start();
    } catch (err) {
      session.abort('error', 'Internal error');
      this.opts.events.failed('could not open a transfer port', err, peer);
    }
    const result = await session.done;
    finish({
      file: resolution.name,
      outcome: result.outcome,
      bytes: result.bytes,
      detail: result.detail,
      size: source.size,
      granted: terms.oack,
      retransmissions: result.retransmissions,
    });
  }
}
