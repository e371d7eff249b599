/**
 * Log lines to a file descriptor, one write(2) per turn of the event loop: pino hands over
 * each line, the lines of one turn are joined and written when the turn's I/O is done
 * (setImmediate). A ProxyDHCP offer logs two lines; written one by one through sonic-boom's
 * asynchronous mode they cost two thread-pool round trips (a worker wakes, writes, wakes the
 * loop again) and sonic-boom measured its whole pending string on every line: more CPU
 * than the rest of the offer (bench/dhcp/proxy.md). One direct write per turn costs a
 * syscall and nothing else, and the lines stay in order.
 *
 * The write is synchronous. On a descriptor that is full and non-blocking (EAGAIN) the rest
 * waits for a timer instead; on a blocking one that is full (a stuck reader of the pipe) the
 * process waits, as it would for any other write to standard output. What waits is bounded
 * (`maxPendingBytes`): past it lines are dropped and counted, and a line saying how many
 * goes out once writing resumes, so a stuck log reader cannot grow the process without end.
 */
import fs from 'node:fs';

/** How long to wait before writing again to a descriptor that said EAGAIN. */
const RETRY_MS = 10;

/** Every writer with lines that may still be held: written out by one exit listener. */
const open = new Set<LineWriter>();
let exitListener = false;

export interface LineWriterOptions {
  /** Characters (UTF-16 units) held while the descriptor does not take them; default 16 Mi. */
  maxPendingBytes?: number;
  /** The line written after drops, as the log's own format wants it (JSON for pino). */
  droppedLine?: (dropped: number) => string;
}

export class LineWriter {
  private pending: string[] = [];
  private pendingBytes = 0;
  /** Bytes of an earlier write the descriptor did not take yet (partial write, EAGAIN). */
  private unwritten: Buffer | undefined;
  private scheduled = false;
  private retry: NodeJS.Timeout | undefined;
  private dropped = 0;
  /** Set once the descriptor refused for good (EPIPE, EBADF): lines are dropped from then on. */
  private broken = false;
  private readonly maxPendingBytes: number;
  private readonly droppedLine: (dropped: number) => string;
  private readonly flushSoon = () => {
    this.scheduled = false;
    this.flushSync();
  };

  constructor(
    readonly fd: number,
    options: LineWriterOptions = {},
  ) {
    this.maxPendingBytes = options.maxPendingBytes ?? 16 * 1024 * 1024;
    this.droppedLine = options.droppedLine ?? ((n) => `${n} log lines dropped: the log's reader did not keep up\n`);
    // Whatever the last turn logged reaches the descriptor, also on process.exit().
    open.add(this);
    if (!exitListener) {
      exitListener = true;
      process.on('exit', () => {
        for (const w of open) w.flushSync();
      });
    }
  }

  /** pino's destination interface: one line, newline included. */
  write(line: string): boolean {
    if (this.broken) return true;
    if (this.pendingBytes + line.length > this.maxPendingBytes) {
      this.dropped += 1;
      return false;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (!this.scheduled && this.retry === undefined) {
      this.scheduled = true;
      setImmediate(this.flushSoon);
    }
    return true;
  }

  /** Writes everything held now (pino calls this from logger.flush(); process exit too). */
  flushSync(): void {
    if (this.retry !== undefined) {
      clearTimeout(this.retry);
      this.retry = undefined;
    }
    if (this.broken) return;
    if (!this.unwritten && this.pending.length === 0 && this.dropped === 0) return;
    if (!this.unwritten) {
      let text = this.pending.length === 1 ? this.pending[0]! : this.pending.join('');
      if (this.dropped > 0) {
        text += this.droppedLine(this.dropped);
        this.dropped = 0;
      }
      this.pending = [];
      this.pendingBytes = 0;
      // The common case, all of it taken at once, without a Buffer of its own.
      if (this.writeText(text)) return;
    } else this.writeUnwritten();
    // Lines that came while an earlier buffer waited go out now, in order.
    if (!this.unwritten && this.pending.length > 0) this.flushSync();
  }

  /** pino's logger.flush(cb). */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }

  /** Writes what is held; the writer is not flushed at exit any more (tests make many). */
  end(): void {
    this.flushSync();
    open.delete(this);
  }

  /** True when the descriptor took all of `text`; otherwise what is left waits in `unwritten`. */
  private writeText(text: string): boolean {
    let n: number;
    try {
      n = fs.writeSync(this.fd, text);
    } catch (err) {
      this.unwritten = Buffer.from(text, 'utf8');
      this.failed(err);
      return false;
    }
    if (n === Buffer.byteLength(text)) return true;
    this.unwritten = Buffer.from(text, 'utf8').subarray(n);
    this.writeUnwritten();
    return false;
  }

  private writeUnwritten(): void {
    let buf = this.unwritten!;
    while (buf.length > 0) {
      let n: number;
      try {
        n = fs.writeSync(this.fd, buf);
      } catch (err) {
        this.unwritten = buf;
        if ((err as NodeJS.ErrnoException).code === 'EINTR') continue;
        this.failed(err);
        return;
      }
      buf = buf.subarray(n);
    }
    this.unwritten = undefined;
  }

  /** A write failed with `unwritten` still to go: try again later (EAGAIN), or give up for good. */
  private failed(err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EBUSY' || code === 'EINTR') {
      this.retry ??= setTimeout(() => {
        this.retry = undefined;
        this.flushSync();
      }, RETRY_MS);
      return;
    }
    // The reader is gone (EPIPE) or the descriptor closed: there is nowhere to say anything.
    this.broken = true;
    this.unwritten = undefined;
    this.pending = [];
    this.pendingBytes = 0;
  }
}
