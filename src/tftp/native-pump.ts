/**
 * The TFTP worker engine's thread: it runs every octet transfer's data phase over the
 * transfers' own descriptors with epoll, recv and send through libc, as dnsmasq does in C,
 * instead of through Node's datagram wrappers (about 5 µs per block of receive buffers,
 * callbacks and send requests: bench/tftp/README.md). The protocol is TransferWindow's,
 * the same as the event-loop Session's. Each transfer's two sockets are opened and closed
 * here too: the connected one and its stray catcher (as stray-catcher.ts explains), which
 * answers other ports ERROR 5. The main thread (native-engine.ts) keeps the log, the
 * events and the metrics.
 *
 * The loop itself (epoll, messages, deadlines) is net/poll-loop.ts's.
 */
import { readSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { ConnectedUdpError, closeFd, openConnectedUdp4, openUdp4 } from '../net/connected-udp.ts';
import { ipv4FromBytes } from '../net/ipv4.ts';
import { ECONNREFUSED, EINTR, EPOLLIN, EWOULDBLOCK, loadLibc, MSG_DONTWAIT } from '../net/libc.ts';
import { PollLoop } from '../net/poll-loop.ts';
import type { PollThreadData } from '../net/poll-thread.ts';
import type { Negotiated } from './options.ts';
import { encodeError, encodeOack, ERR, MAX_DATA_PAYLOAD, parsePacket, writeDataHeader } from './packet.ts';
import type { Outcome } from './session.ts';
import type { DirectBytes } from './source.ts';
import { READ_ERROR, type RetransmitPolicy, TransferWindow } from './transfer-window.ts';

export type ToPump =
  | { type: 'start'; id: number; local: string; client: { address: string; port: number }; size: number; bytes: DirectBytes; terms: Negotiated; policy: RetransmitPolicy }
  /** Ends a transfer with an ERROR to the client (`message` set) or silently (`message` undefined: superseded). */
  | { type: 'end'; id: number; outcome: Outcome; detail: string; message: string | undefined }
  | { type: 'stop' };

export type FromPump =
  | { type: 'done'; id: number; outcome: Outcome; detail: string | undefined; bytes: number; blocks: number; retransmissions: number }
  | { type: 'malformed'; id: number; reason: string }
  | { type: 'stray'; id: number; address: string; port: number }
  | { type: 'retransmitted'; id: number; packets: number };

/**
 * Datagrams read per readiness report. One: lock-step has one ACK in flight, so a second
 * recv would only say EAGAIN (a syscall per block), and the poll is level-triggered, so
 * anything left is reported again on the next turn after every other transfer's.
 */
const RECV_BURST = 1;
/** File bytes read per readSync: a few hundred reads for 64 MiB, never more than a window (64 KiB) short. */
const FILE_CHUNK = 256 * 1024;

const c = loadLibc();
const recvBuf = Buffer.allocUnsafe(65536);
/**
 * Sends are synchronous (the kernel copies the datagram), so one packet area serves every
 * transfer, seen through eight views that start one byte apart. Firmware comes in shared
 * memory (firmware/catalog.ts), and V8 copies out of shared memory with relaxed atomics: a
 * word at a time only where source and destination have the same alignment, byte by byte
 * otherwise. A block's data lands 4 bytes into its packet, so without a view of matching
 * alignment every block of a firmware transfer was copied byte by byte (~0.8 µs for 1468
 * bytes, 7 % of the thread's time under perf in 200 concurrent transfers; ~0.4 µs aligned).
 * Backing stores start 8-aligned, so a view's alignment is its offset's.
 */
const sendArea = Buffer.allocUnsafeSlow(8 + 4 + MAX_DATA_PAYLOAD);
const sendBufs = Array.from({ length: 8 }, (_, k) => sendArea.subarray(k, k + 4 + MAX_DATA_PAYLOAD));

interface ByteReader {
  /** A packet buffer holding the file's bytes at [offset, offset+length) from its byte 4; undefined when the file ended before them (it shrank). */
  packet(offset: number, length: number): Buffer | undefined;
}

function memoryReader(data: Uint8Array): ByteReader {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return {
    packet(offset, length) {
      if (offset + length > buf.length) return undefined;
      const out = sendBufs[(buf.byteOffset + offset - 4) & 7]!;
      buf.copy(out, 4, offset, offset + length);
      return out;
    },
  };
}

/** Reads ahead in chunks, synchronously: the page cache answers in microseconds, and a window never spans more than one re-read. */
function fileReader(fd: number): ByteReader {
  const chunk = Buffer.allocUnsafe(FILE_CHUNK);
  let start = 0;
  let filled = 0;
  return {
    packet(offset, length) {
      if (offset < start || offset + length > start + filled) {
        start = offset;
        filled = 0;
        while (filled < chunk.length) {
          const n = readSync(fd, chunk, filled, chunk.length - filled, offset + filled);
          if (n === 0) break;
          filled += n;
        }
      }
      if (offset + length > start + filled) return undefined;
      // Not shared memory: any alignment copies at full speed.
      const out = sendBufs[0]!;
      chunk.copy(out, 4, offset - start, offset - start + length);
      return out;
    },
  };
}

const UNKNOWN_TID = encodeError(ERR.UNKNOWN_TID, 'Unknown transfer ID');
const fromAddr = Buffer.alloc(16);
const fromLen = Buffer.alloc(4);

class PumpTransfer {
  readonly win: TransferWindow;
  private ended = false;
  private readonly reader: ByteReader;

  constructor(
    readonly id: number,
    readonly fd: number,
    /** Unconnected, on the same port: hears only datagrams from other sources. */
    readonly strays: number,
    private readonly size: number,
    bytes: DirectBytes,
    private readonly terms: Negotiated,
    policy: RetransmitPolicy,
  ) {
    this.win = new TransferWindow(size, terms, policy);
    this.reader = bytes.kind === 'bytes' ? memoryReader(bytes.data) : fileReader(bytes.fd);
  }

  begin(now: number): void {
    if (this.win.phase === 'oack') this.sendOack(now);
    else this.pump(false, now);
  }

  /** Reads what the client sent (RECV_BURST datagrams at most). */
  readable(now: number): void {
    for (let i = 0; i < RECV_BURST && !this.ended; i++) {
      const n = c.recv(this.fd, recvBuf, recvBuf.length, MSG_DONTWAIT);
      if (n < 0) {
        const errno = c.errno();
        if (errno === EWOULDBLOCK) return;
        if (errno === EINTR) continue;
        // On a connected socket the kernel reports the client's ICMP port unreachable here.
        if (errno === ECONNREFUSED) this.finish('client-gone', 'port unreachable');
        else this.finish('error', c.strerror(errno));
        return;
      }
      this.onDatagram(n, now);
    }
  }

  /** RFC 1350 section 4: answer the source of the wrong packet, and leave the transfer alone. */
  stray(): void {
    fromLen.writeUInt32LE(16);
    const n = c.recvfrom(this.strays, recvBuf, recvBuf.length, MSG_DONTWAIT, fromAddr, fromLen);
    if (n < 0) return;
    const parsed = parsePacket(recvBuf.subarray(0, n));
    if (!parsed.ok) {
      post({ type: 'malformed', id: this.id, reason: parsed.reason });
      return;
    }
    // Never answer an ERROR with one: two servers doing that would bounce them for ever.
    if (parsed.packet.op === 'error') return;
    c.sendto(this.strays, UNKNOWN_TID, UNKNOWN_TID.length, 0, fromAddr, 16);
    post({ type: 'stray', id: this.id, address: ipv4FromBytes(fromAddr, 4), port: fromAddr.readUInt16BE(2) });
  }

  private onDatagram(n: number, now: number): void {
    const d = this.win.read(recvBuf.subarray(0, n));
    if (d.kind === 'ack') this.onAck(d.block, now);
    else if (d.kind === 'stop') this.finish(d.outcome, d.detail);
    else if (d.kind === 'malformed') post({ type: 'malformed', id: this.id, reason: d.reason });
  }

  private onAck(block: number, now: number): void {
    const verdict = this.win.onAck(block, now);
    if (verdict === 'complete') this.finish('ok');
    else if (verdict !== 'ignore') this.pump(verdict === 'resend', now);
  }

  timeout(now: number): void {
    const verdict = this.win.onTimeout();
    if (verdict === 'give-up') {
      this.finish('timeout', this.win.giveUpDetail);
    } else if (verdict === 'resend-oack') {
      post({ type: 'retransmitted', id: this.id, packets: 1 });
      this.sendOack(now);
    } else {
      this.pump(true, now);
    }
  }

  private sendOack(now: number): void {
    this.send(encodeOack(this.terms.oack), undefined);
    this.win.oackSent(now);
    armed(this.win.deadline);
  }

  private pump(retransmit: boolean, now: number): void {
    const { blksize } = this.terms;
    const { from, to } = this.win.window();
    for (let n = from; n <= to; n++) {
      const off = (n - 1) * blksize;
      const length = Math.max(0, Math.min(blksize, this.size - off));
      const packet = this.reader.packet(off, length);
      if (packet === undefined) {
        // The client hears of it at once (it would otherwise wait out its timeouts); the log gets the reason.
        this.send(READ_ERROR, undefined);
        this.finish('error', `reading the file: it ends before block ${n}: it shrank while being served`);
        return;
      }
      writeDataHeader(packet, n & 0xffff);
      if (!this.send(packet, 4 + length)) return;
    }
    const resent = this.win.windowSent(from, to, retransmit, now);
    if (resent > 0) post({ type: 'retransmitted', id: this.id, packets: resent });
    armed(this.win.deadline);
  }

  /** False when the send ended the transfer. A full send buffer loses the datagram as the wire would: the timer resends it. */
  private send(buf: Buffer, length: number | undefined): boolean {
    if (c.send(this.fd, buf, length ?? buf.length, 0) >= 0) return true;
    const errno = c.errno();
    if (errno === EWOULDBLOCK || errno === EINTR) return true;
    this.finish(errno === ECONNREFUSED ? 'client-gone' : 'error', errno === ECONNREFUSED ? 'port unreachable' : c.strerror(errno));
    return false;
  }

  end(outcome: Outcome, detail: string, message: string | undefined): void {
    if (this.ended) return;
    if (message !== undefined) this.send(encodeError(ERR.NOT_DEFINED, message), undefined);
    this.finish(outcome, detail);
  }

  /** Both sockets close together, so a late packet from the client never meets the catcher alone. */
  private finish(outcome: Outcome, detail?: string): void {
    if (this.ended) return;
    this.ended = true;
    // Closing a descriptor takes it out of the poll set.
    closeFd(this.fd);
    closeFd(this.strays);
    byFd.delete(this.fd);
    byFd.delete(this.strays);
    byId.delete(this.id);
    post({ type: 'done', id: this.id, outcome, detail, ...this.win.delivered(this.size), retransmissions: this.win.retransmissions });
  }
}

const loop = new PollLoop<ToPump>(workerData as PollThreadData);
/** Both descriptors of each transfer: its own socket and its stray catcher. */
const byFd = new Map<number, PumpTransfer>();
const byId = new Map<number, PumpTransfer>();
/** The earliest deadline any transfer may have; the transfers are only looked over when it passes. */
let nextCheck = Number.POSITIVE_INFINITY;

function post(msg: FromPump): void {
  loop.post(msg);
}

function armed(deadline: number): void {
  if (deadline < nextCheck) nextCheck = deadline;
}

/** A transfer's two sockets, watched; undefined (and `done` posted) when they cannot be opened. */
function open(msg: Extract<ToPump, { type: 'start' }>): PumpTransfer | undefined {
  let fd = -1;
  let strays = -1;
  try {
    const own = openConnectedUdp4(msg.local, msg.client);
    fd = own.fd;
    // Two transfers may share a port (SO_REUSEADDR lets the kernel hand one out twice): harmless,
    // as each connected socket still gets only its own client, and every catcher answers alike.
    strays = openUdp4(msg.local, own.port).fd;
    if (!loop.watch(fd, EPOLLIN) || !loop.watch(strays, EPOLLIN)) throw new ConnectedUdpError(`epoll_ctl: ${c.strerror(c.errno())}`);
  } catch (err) {
    if (fd >= 0) closeFd(fd);
    if (strays >= 0) closeFd(strays);
    post({ type: 'done', id: msg.id, outcome: 'error', detail: `could not open a transfer port: ${(err as Error).message}`, bytes: 0, blocks: 0, retransmissions: 0 });
    return undefined;
  }
  const t = new PumpTransfer(msg.id, fd, strays, msg.size, msg.bytes, msg.terms, msg.policy);
  byFd.set(fd, t);
  byFd.set(strays, t);
  byId.set(msg.id, t);
  return t;
}

loop.run({
  onMessage(msg, now) {
    if (msg.type === 'start') open(msg)?.begin(now);
    else if (msg.type === 'end') byId.get(msg.id)?.end(msg.outcome, msg.detail, msg.message);
    else {
      loop.stop();
      // Main ended every transfer first; any still here (a start that crossed the stop) ends now.
      for (const t of byId.values()) t.end('shutdown', 'server stopping', 'Server shutting down');
    }
  },
  onReady(fd, _events, now) {
    const t = byFd.get(fd);
    if (t?.fd === fd) t.readable(now);
    else t?.stray();
  },
  nextDeadline: () => nextCheck,
  onDeadline(now) {
    nextCheck = Number.POSITIVE_INFINITY;
    for (const t of byId.values()) {
      if (t.win.deadline - now < 1) t.timeout(now);
      if (byId.get(t.id) === t && t.win.deadline < nextCheck) nextCheck = t.win.deadline;
    }
  },
  drained: () => byId.size === 0,
});
