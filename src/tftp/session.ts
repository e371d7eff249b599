import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Negotiated } from './options.ts';
import { dataHeader, encodeError, encodeOack, ERR, OP, parsePacket, writeDataHeader } from './packet.ts';
import type { Source } from './source.ts';

/** How a transfer ended; used as the `outcome` label of tftp_transfers_total. */
export type Outcome =
  /** Every block acknowledged. (The ops progress rules read `ok` as success and anything with "abort" as not a failure.) */
  | 'ok'
  /** An ERROR right after our OACK to a request with tsize: OVMF and PXE ROMs asking only for the size. A normal end. */
  | 'probe-aborted'
  | 'aborted'
  | 'timeout'
  | 'client-gone'
  | 'not-found'
  | 'refused'
  | 'write-refused'
  | 'busy'
  /** Refused at once: that IP address already has its cap of transfers in flight (server.ts maxTransfersPerClient). */
  | 'per-client-limit'
  | 'shutdown'
  | 'error';

export interface RetransmitPolicy {
  /** Floor of the adaptive timeout: LAN round trips are well under a millisecond, firmware is slow to answer only rarely. */
  minRtoMs: number;
  /** Used before the first round trip is measured. */
  initialRtoMs: number;
  /** Ceiling of the backed-off timeout when the client asked for none. */
  maxRtoMs: number;
  /** Consecutive timeouts without progress before the transfer is abandoned. */
  maxRetries: number;
}

/**
 * The backoff must be allowed to grow past the clients' own timeouts (1-5 s): atftp, with a
 * window, ignores duplicate DATA without re-ACKing and restarts its timer on each one, so
 * when both of its ACKs for a window are lost it only speaks again after a silence longer
 * than its timeout. 100 ms doubling to 8 s, 8 tries: about 21 s without progress before
 * a transfer is abandoned.
 */
export const DEFAULT_RETRANSMIT: RetransmitPolicy = { minRtoMs: 100, initialRtoMs: 300, maxRtoMs: 8000, maxRetries: 8 };

export interface SessionResult {
  outcome: Outcome;
  /** File bytes the client acknowledged. */
  bytes: number;
  blocks: number;
  retransmissions: number;
  detail?: string;
}

/** Counts what happens on the wire; the server turns it into metrics. */
export interface SessionHooks {
  malformed(reason: string): void;
  retransmitted(packets: number): void;
  /** A datagram reached this transfer's port from another source; it was answered ERROR 5 and changed nothing. */
  stray(from: { address: string; port: number }): void;
}

const UNKNOWN_TID = encodeError(ERR.UNKNOWN_TID, 'Unknown transfer ID');

/**
 * Blocks up to one Ethernet frame are copied into a reused packet; bigger ones go out as a
 * header beside the file's bytes, where copying (and fresh buffers when the socket queues)
 * measured dearer than the second buffer of the send (8192 x 8 windows: 25 % more CPU).
 */
const COPY_MAX_BLKSIZE = 1468;

function bindTo(socket: Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

/**
 * One read transfer on its own ephemeral port (RFC 1350's transfer ID), connected to the
 * client: sends need no address and the client's ICMP port unreachable ends the transfer.
 *
 * A datagram from any other source (right address, wrong port: RFC 1350 section 4) would
 * only draw an ICMP from the kernel, so a second, unconnected socket shares the port and
 * answers each one ERROR 5 without touching the transfer. Both set SO_REUSEADDR; Linux
 * then steers the client's datagrams to the connected socket (its full 4-tuple matches
 * best) and everything else to the catcher, so the transfer's own path gains no work.
 *
 * Sending is window-by-window (RFC 7440; windowsize 1 is plain lock-step). Only an ACK
 * that moves forward sends anything at once; a repeated ACK resends the window only when
 * a round trip has passed since it went out, which is what prevents the Sorcerer's
 * Apprentice syndrome (RFC 1123 4.2.3.1). An ACK inside the window that
 * was sent means the client saw a gap, so the next window starts right after it. A timeout
 * resends the whole unacknowledged window, with exponential backoff and a bounded number
 * of tries. Block numbers wrap from 65535 to 0, as tftp-hpa, curl and iPXE expect.
 */
export class Session {
  private socket: Socket | undefined;
  /** Unconnected, on the same port: hears only datagrams from other sources. */
  private strays: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private state: 'oack' | 'data' | 'done' = 'oack';
  /** Absolute block numbers (not wrapped): highest acknowledged and highest sent. */
  private acked = 0;
  private sent = 0;
  /** Fixed for octet; a netascii source's size is a lower bound until its input is read, so loads refresh it. */
  private lastBlock: number;
  private retries = 0;
  private retransmissions = 0;
  private srtt: number | undefined;
  private rttvar = 0;
  private rto: number;
  private windowSentAt = 0;
  private windowIsRetransmit = false;
  private loading = false;
  private pendingRetransmit = false;
  private resolveDone!: (r: SessionResult) => void;
  readonly done: Promise<SessionResult>;

  constructor(
    private readonly client: { address: string; port: number },
    private readonly localHost: string,
    private readonly source: Source,
    private readonly terms: Negotiated,
    private readonly policy: RetransmitPolicy,
    private readonly hooks: SessionHooks,
  ) {
    this.lastBlock = Math.floor(source.size / terms.blksize) + 1;
    this.rto = this.clampRto(policy.initialRtoMs);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  async start(): Promise<void> {
    // A transfer ended while its port was being opened (server stopping) settles start() too.
    await Promise.race([this.open(), this.done]);
    if (this.state === 'done') return;
    if (Object.keys(this.terms.oack).length > 0) {
      this.sendOack();
    } else {
      this.state = 'data';
      this.pump();
    }
  }

  /** Read through a method: after an await, finish() may have run meanwhile. */
  private get ended(): boolean {
    return this.state === 'done';
  }

  private async open(): Promise<void> {
    const type = isIPv6(this.localHost) ? 'udp6' : 'udp4';
    const socket = createSocket({ type, reuseAddr: true });
    this.socket = socket;
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // On a connected socket the kernel reports the client's ICMP port unreachable here.
      if (err.code === 'ECONNREFUSED') this.finish('client-gone', 'port unreachable');
      else this.finish('error', err.message);
    });
    socket.on('message', (msg) => this.onMessage(msg));
    await bindTo(socket, this.localHost, 0);
    if (this.ended) return;
    // Two transfers may share a port (SO_REUSEADDR lets the kernel hand one out twice): harmless,
    // as each connected socket still gets only its own client, and every catcher answers alike.
    const strays = createSocket({ type, reuseAddr: true });
    this.strays = strays;
    // Unconnected, it gets no ICMP errors; a send to a stray that vanished may still fail. Neither concerns the transfer.
    strays.on('error', () => undefined);
    strays.on('message', (msg, rinfo) => this.onStray(msg, rinfo));
    await bindTo(strays, this.localHost, socket.address().port);
    if (this.ended) return;
    await new Promise<void>((resolve) => socket.connect(this.client.port, this.client.address, () => resolve()));
  }

  /** Ends the transfer from outside with an ERROR to the client (server stopping). */
  abort(outcome: Outcome, message: string): void {
    if (this.state === 'done') return;
    this.send(encodeError(ERR.NOT_DEFINED, message));
    this.finish(outcome, message);
  }

  /**
   * Ends the transfer without a word to the client: it has already started another from
   * the same port, and an ERROR from here could reach it first and end that one too.
   */
  abandon(outcome: Outcome, detail: string): void {
    this.finish(outcome, detail);
  }

  /** RFC 1350 section 4: answer the source of the wrong packet, and leave the transfer alone. */
  private onStray(msg: Buffer, from: RemoteInfo): void {
    const parsed = parsePacket(msg);
    if (!parsed.ok) {
      this.hooks.malformed(parsed.reason);
      return;
    }
    // Never answer an ERROR with one: two servers doing that would bounce them for ever.
    if (parsed.packet.op === 'error') return;
    try {
      this.strays?.send(UNKNOWN_TID, from.port, from.address);
    } catch {
      /* catcher closing: the transfer just ended */
    }
    this.hooks.stray({ address: from.address, port: from.port });
  }

  private clampRto(ms: number): number {
    const cap = this.terms.timeoutMs ?? this.policy.maxRtoMs;
    return Math.min(Math.max(ms, Math.min(this.policy.minRtoMs, cap)), cap);
  }

  private send(buf: Buffer | Buffer[]): void {
    const socket = this.socket;
    if (!socket) return;
    try {
      socket.send(buf);
    } catch {
      /* socket closing: finish() already ran */
    }
  }

  private sendOack(): void {
    this.send(encodeOack(this.terms.oack));
    this.windowSentAt = performance.now();
    this.arm(this.windowSentAt);
  }

  /** When the window in flight times out (performance.now() time), and when the timer is set to fire. */
  private deadline = 0;
  private timerDue = 0;

  /**
   * Moves the retransmission deadline to `now` + RTO. Lock-step sends one window per block,
   * so the timer is not touched per block: it fires at its first due time, finds the
   * deadline moved on and sleeps for the rest. Only a deadline earlier than the timer's
   * (the RTO shrank after a backoff) sets it anew.
   */
  private arm(now: number): void {
    this.deadline = now + this.rto;
    if (this.timer && this.timerDue <= this.deadline) return;
    if (this.timer) clearTimeout(this.timer);
    this.schedule(this.rto);
  }

  private schedule(ms: number): void {
    this.timerDue = performance.now() + ms;
    this.timer = setTimeout(this.onTimer, ms);
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.state === 'done') return;
    // Node's timers count whole milliseconds: a deadline within one is due.
    const left = this.deadline - performance.now();
    if (left >= 1) {
      this.schedule(left);
      return;
    }
    this.onTimeout();
  };

  private onTimeout(): void {
    if (++this.retries > this.policy.maxRetries) {
      this.finish('timeout', `no answer after ${this.policy.maxRetries} retransmissions`);
      return;
    }
    this.rto = this.clampRto(this.rto * 2);
    if (this.state === 'oack') {
      this.retransmissions++;
      this.hooks.retransmitted(1);
      this.sendOack();
      return;
    }
    this.windowIsRetransmit = true;
    this.pump(true);
  }

  private onMessage(msg: Buffer): void {
    if (this.state === 'done') return;
    // The hot path of a transfer: one ACK per window, read in place.
    if (this.state === 'data' && msg.length === 4 && msg[0] === 0 && msg[1] === OP.ACK) {
      this.onAck(msg.readUInt16BE(2));
      return;
    }
    const parsed = parsePacket(msg);
    if (!parsed.ok) {
      this.hooks.malformed(parsed.reason);
      return;
    }
    const p = parsed.packet;
    if (p.op === 'error') {
      // A size probe asks for tsize and stops at the OACK; any other stop is the client giving up.
      const probe = this.state === 'oack' && this.terms.oack.tsize !== undefined;
      this.finish(probe ? 'probe-aborted' : 'aborted', `client error ${p.code}: ${p.message}`);
      return;
    }
    if (p.op !== 'ack') return; // A client never sends us anything else mid-transfer; ignore it.
    if (this.state === 'oack') {
      if (p.block !== 0) return;
      if (this.retries === 0) this.sampleRtt();
      else this.rto = this.clampRto(this.policy.initialRtoMs);
      this.state = 'data';
      this.retries = 0;
      this.pump();
      return;
    }
    this.onAck(p.block);
  }

  private onAck(block: number): void {
    // Map the 16-bit ACK onto the window we sent; anything outside it is old or bogus.
    const delta = (block - (this.acked & 0xffff)) & 0xffff;
    if (delta === 0) {
      this.onRepeatedAck();
      return;
    }
    if (delta > this.sent - this.acked) return;
    this.acked += delta;
    this.retries = 0;
    // Progress proves the client alive: drop the backoff (as TCP does on new data), or a
    // lossy link ratchets the timeout up window after window.
    if (this.acked === this.sent && !this.windowIsRetransmit) this.sampleRtt();
    else this.rto = this.clampRto(this.srtt === undefined ? this.policy.initialRtoMs : this.srtt + 4 * this.rttvar);
    if (this.acked >= this.lastBlock) {
      this.finish('ok');
      return;
    }
    this.windowIsRetransmit = false;
    this.pump();
  }

  /**
   * A client that timed out repeats its last ACK: the window we sent after it never
   * arrived. Waiting for our own backed-off timer (up to 8 s) outlasts clients such as
   * atftp, which give up after a few of their own timeouts, so answer with the window
   * now — but at most once per round trip, so duplicates made by the network or a burst
   * of repeats never multiply the traffic (the Sorcerer's Apprentice syndrome).
   */
  private onRepeatedAck(): void {
    if (this.state !== 'data' || this.sent <= this.acked) return;
    const roundTrip = Math.max(this.policy.minRtoMs, this.srtt ?? this.policy.initialRtoMs);
    if (performance.now() - this.windowSentAt < roundTrip) return;
    this.windowIsRetransmit = true;
    this.pump(true);
  }

  /** RFC 6298 estimator; callers feed it only windows that were not retransmitted (Karn). */
  private sampleRtt(): void {
    const r = performance.now() - this.windowSentAt;
    if (this.srtt === undefined) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.rto = this.clampRto(this.srtt + 4 * this.rttvar);
  }

  /**
   * Sends the window starting after the last acknowledged block. Synchronous while the
   * bytes are in memory (always for firmware); when a file chunk must be read first, the
   * read runs once and the window is sent from wherever the ACKs have got to by then.
   */
  private pump(retransmit = false): void {
    if (this.loading) {
      this.pendingRetransmit ||= retransmit;
      return;
    }
    const { blksize, windowsize } = this.terms;
    const from = this.acked + 1;
    const to = Math.min(from + windowsize - 1, this.lastBlock);
    const start = (from - 1) * blksize;
    const length = Math.min((to - from + 1) * blksize, this.source.size - start);
    // What is in memory is one contiguous range: its first and last block say whether the
    // window is (peeking the window whole could copy it when it spans two file chunks).
    const lastStart = (to - 1) * blksize;
    if (length > 0 && !(this.source.peek(start, Math.min(blksize, length)) && this.source.peek(lastStart, Math.max(0, Math.min(blksize, this.source.size - lastStart))))) {
      this.loading = true;
      this.pendingRetransmit = retransmit;
      this.source.load(start, (to - from + 1) * blksize).then(
        () => {
          this.loading = false;
          this.lastBlock = Math.floor(this.source.size / blksize) + 1;
          if (this.state === 'data') this.pump(this.pendingRetransmit);
        },
        (err: Error) => {
          this.loading = false;
          this.finish('error', `reading the file: ${err.message}`);
        },
      );
      return;
    }
    if (this.socket && this.socket.getSendQueueCount() > 0) this.packets = [];
    for (let n = from; n <= to; n++) {
      const off = (n - 1) * blksize;
      const payload = this.source.peek(off, Math.max(0, Math.min(blksize, this.source.size - off)));
      if (!payload) {
        this.finish('error', `block ${n} not loaded`);
        return;
      }
      this.send(blksize <= COPY_MAX_BLKSIZE ? this.packet(n - from, payload, n & 0xffff) : [dataHeader(n & 0xffff), payload]);
    }
    if (retransmit) {
      this.retransmissions += to - from + 1;
      this.hooks.retransmitted(to - from + 1);
    }
    this.sent = to;
    this.windowSentAt = performance.now();
    this.arm(this.windowSentAt);
  }

  /**
   * The DATA packets of one window, reused window after window: the header is written in
   * place and the payload copied behind it (a few hundred bytes), so a block costs no
   * allocation and goes out as one buffer. A send the kernel could not take at once is
   * queued by Node with the buffer itself; then this window gets fresh buffers.
   */
  private packets: Buffer[] = [];

  private packet(index: number, payload: Buffer, block: number): Buffer {
    let buf = this.packets[index];
    if (!buf) {
      buf = Buffer.allocUnsafe(4 + this.terms.blksize);
      this.packets[index] = buf;
    }
    writeDataHeader(buf, block);
    payload.copy(buf, 4);
    return payload.length === this.terms.blksize ? buf : buf.subarray(0, 4 + payload.length);
  }

  private finish(outcome: Outcome, detail?: string): void {
    if (this.state === 'done') return;
    this.state = 'done';
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const socket = this.socket;
    const strays = this.strays;
    this.socket = undefined;
    this.strays = undefined;
    // Let queued datagrams (an ERROR, the last window) leave before the port closes; both
    // sockets close together, so a late packet from the client never meets the catcher alone.
    if (socket || strays)
      setImmediate(() => {
        strays?.close();
        socket?.close();
      });
    void this.source.close().catch(() => undefined);
    const blocks = Math.min(this.acked, this.lastBlock);
    this.resolveDone({
      outcome,
      bytes: Math.min(blocks * this.terms.blksize, this.source.size),
      blocks,
      retransmissions: this.retransmissions,
      ...(detail ? { detail } : {}),
    });
  }
}
