import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Negotiated } from './options.ts';
import { dataHeader, encodeError, encodeOack, ERR, writeDataHeader } from './packet.ts';
import type { Source } from './source.ts';
import { bindTo, openStrayCatcher } from './stray-catcher.ts';
import { READ_ERROR, type RetransmitPolicy, TransferWindow } from './transfer-window.ts';

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

export { DEFAULT_RETRANSMIT, type RetransmitPolicy } from './transfer-window.ts';

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

/** One read transfer, whichever engine runs it: server.ts starts it and waits for `done`. */
export interface Transfer {
  start(): Promise<void>;
  /** Ends the transfer from outside with an ERROR to the client (server stopping). */
  abort(outcome: Outcome, message: string): void;
  /**
   * Ends the transfer without a word to the client: it has already started another from
   * the same port, and an ERROR from here could reach it first and end that one too.
   */
  abandon(outcome: Outcome, detail: string): void;
  readonly done: Promise<SessionResult>;
}

/**
 * Blocks up to one Ethernet frame are copied into a reused packet; bigger ones go out as a
 * header beside the file's bytes, where copying (and fresh buffers when the socket queues)
 * measured dearer than the second buffer of the send (8192 x 8 windows: 25 % more CPU).
 */
const COPY_MAX_BLKSIZE = 1468;

/**
 * One read transfer on the event loop, on its own ephemeral port (RFC 1350's transfer ID),
 * connected to the client: sends need no address and the client's ICMP port unreachable
 * ends the transfer. Datagrams from other sources go to a stray catcher on the same port
 * (stray-catcher.ts). The protocol itself (windows, ACKs, retransmissions) is
 * TransferWindow's; this class owns the sockets, the timer and the file's loading. The
 * worker engine (native-pump.ts) runs the same window off the event loop; this one serves
 * what it cannot (netascii, IPv6, hosts without it).
 */
export class Session implements Transfer {
  private socket: Socket | undefined;
  private strays: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private done_ = false;
  private readonly win: TransferWindow;
  private loading = false;
  private pendingRetransmit = false;
  private resolveDone!: (r: SessionResult) => void;
  readonly done: Promise<SessionResult>;

  constructor(
    private readonly client: { address: string; port: number },
    private readonly localHost: string,
    private readonly source: Source,
    private readonly terms: Negotiated,
    policy: RetransmitPolicy,
    private readonly hooks: SessionHooks,
  ) {
    this.win = new TransferWindow(source.size, terms, policy);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  async start(): Promise<void> {
    // A transfer ended while its port was being opened (server stopping) settles start() too.
    await Promise.race([this.open(), this.done]);
    if (this.done_) return;
    if (this.win.phase === 'oack') this.sendOack();
    else this.pump();
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
    if (this.done_) return;
    // Two transfers may share a port (SO_REUSEADDR lets the kernel hand one out twice): harmless,
    // as each connected socket still gets only its own client, and every catcher answers alike.
    const strays = await openStrayCatcher(this.localHost, socket.address().port, this.hooks);
    if (this.done_) {
      strays.close();
      return;
    }
    this.strays = strays;
    await new Promise<void>((resolve) => socket.connect(this.client.port, this.client.address, () => resolve()));
  }

  abort(outcome: Outcome, message: string): void {
    if (this.done_) return;
    this.send(encodeError(ERR.NOT_DEFINED, message));
    this.finish(outcome, message);
  }

  abandon(outcome: Outcome, detail: string): void {
    this.finish(outcome, detail);
  }

  /** The client hears of it at once (it would otherwise wait out its timeouts); the log gets the reason. */
  private readFailed(detail: string): void {
    this.send(READ_ERROR);
    this.finish('error', detail);
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
    this.win.oackSent(performance.now());
    this.arm();
  }

  private timerDue = 0;

  /**
   * Follows the window's deadline. Lock-step moves it once per block, so the timer is not
   * touched per block: it fires at its first due time, finds the deadline moved on and
   * sleeps for the rest. Only a deadline earlier than the timer's (the RTO shrank after a
   * backoff) sets it anew.
   */
  private arm(): void {
    const deadline = this.win.deadline;
    if (this.timer && this.timerDue <= deadline) return;
    if (this.timer) clearTimeout(this.timer);
    this.schedule(deadline - performance.now());
  }

  private schedule(ms: number): void {
    this.timerDue = performance.now() + ms;
    this.timer = setTimeout(this.onTimer, ms);
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.done_) return;
    // Node's timers count whole milliseconds: a deadline within one is due.
    const left = this.win.deadline - performance.now();
    if (left >= 1) {
      this.schedule(left);
      return;
    }
    this.onTimeout();
  };

  private onTimeout(): void {
    const verdict = this.win.onTimeout();
    if (verdict === 'give-up') {
      this.finish('timeout', this.win.giveUpDetail);
    } else if (verdict === 'resend-oack') {
      this.hooks.retransmitted(1);
      this.sendOack();
    } else {
      this.pump(true);
    }
  }

  private onMessage(msg: Buffer): void {
    if (this.done_) return;
    const d = this.win.read(msg);
    if (d.kind === 'ack') this.onAck(d.block);
    else if (d.kind === 'stop') this.finish(d.outcome, d.detail);
    else if (d.kind === 'malformed') this.hooks.malformed(d.reason);
  }

  private onAck(block: number): void {
    const verdict = this.win.onAck(block, performance.now());
    if (verdict === 'complete') this.finish('ok');
    else if (verdict !== 'ignore') this.pump(verdict === 'resend');
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
    const { blksize } = this.terms;
    const { from, to } = this.win.window();
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
          this.win.resize(this.source.size);
          if (!this.done_ && this.win.phase === 'data') this.pump(this.pendingRetransmit);
        },
        (err: Error) => {
          this.loading = false;
          this.readFailed(`reading the file: ${err.message}`);
        },
      );
      return;
    }
    if (this.socket && this.socket.getSendQueueCount() > 0) this.packets = [];
    for (let n = from; n <= to; n++) {
      const off = (n - 1) * blksize;
      const payload = this.source.peek(off, Math.max(0, Math.min(blksize, this.source.size - off)));
      if (!payload) {
        this.readFailed(`block ${n} not loaded`);
        return;
      }
      this.send(blksize <= COPY_MAX_BLKSIZE ? this.packet(n - from, payload, n & 0xffff) : [dataHeader(n & 0xffff), payload]);
    }
    const resent = this.win.windowSent(from, to, retransmit, performance.now());
    if (resent > 0) this.hooks.retransmitted(resent);
    this.arm();
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
    if (this.done_) return;
    this.done_ = true;
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
    this.resolveDone({
      outcome,
      ...this.win.delivered(this.source.size),
      retransmissions: this.win.retransmissions,
      ...(detail ? { detail } : {}),
    });
  }
}
