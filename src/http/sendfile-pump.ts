/**
 * The thread that writes image bodies with sendfile(2): the kernel moves the file's pages
 * to the socket, which Node cannot ask for (file-body.ts's reused buffers still copy every
 * byte into user space and out again: bench/http/README.md). The main thread
 * (sendfile-engine.ts) has written the headers and hands over duplicates of the socket's
 * and the file's descriptors; this thread waits for the socket to take more (EPOLLOUT),
 * sends, and reports how it ended. The loop is net/poll-loop.ts's.
 */
import { workerData } from 'node:worker_threads';
import { EINTR, EPOLLOUT, EWOULDBLOCK, loadLibc } from '../net/libc.ts';
import { PollLoop } from '../net/poll-loop.ts';
import type { PollThreadData } from '../net/poll-thread.ts';

export type ToSendfile =
  /** `sock` and `file` are this thread's own duplicates: it closes them when the body ends. */
  | { type: 'start'; id: number; sock: number; file: number; offset: number; length: number }
  /** The response closed on the main thread (the client left): stop sending. */
  | { type: 'cancel'; id: number }
  | { type: 'stop' };

export type FromSendfile = { type: 'done'; id: number; sent: number; error: string | undefined };

/** Bytes per sendfile call, and per turn for one body: 20 downloads at once take turns. */
const CALL_BYTES = 1024 * 1024;
const TURN_BYTES = 4 * 1024 * 1024;

const c = loadLibc();
const loop = new PollLoop<ToSendfile>(workerData as PollThreadData);

class Body {
  /** The file offset, an off_t the kernel advances. */
  private readonly offset = Buffer.alloc(8);
  private sent = 0;

  constructor(
    readonly id: number,
    readonly sock: number,
    private readonly file: number,
    start: number,
    private readonly length: number,
  ) {
    this.offset.writeBigInt64LE(BigInt(start));
  }

  writable(): void {
    let turn = 0;
    while (this.sent < this.length && turn < TURN_BYTES) {
      const n = c.sendfile(this.sock, this.file, this.offset, Math.min(CALL_BYTES, this.length - this.sent));
      if (n > 0) {
        this.sent += n;
        turn += n;
      } else if (n === 0) {
        // A file cut short while it is served: the response stays short and the client sees it.
        this.finish(`the file ended ${this.length - this.sent} bytes early`);
        return;
      } else {
        const errno = c.errno();
        if (errno === EWOULDBLOCK) return;
        if (errno !== EINTR) {
          this.finish(c.strerror(errno));
          return;
        }
      }
    }
    if (this.sent >= this.length) this.finish(undefined);
  }

  /** The socket stays open on the main thread, so it must leave the poll set before this duplicate closes. */
  finish(error: string | undefined): void {
    if (!byId.delete(this.id)) return;
    bodies.delete(this.sock);
    loop.unwatch(this.sock);
    c.close(this.sock);
    c.close(this.file);
    loop.post({ type: 'done', id: this.id, sent: this.sent, error } satisfies FromSendfile);
  }
}

/** By socket descriptor (this thread's duplicate). */
const bodies = new Map<number, Body>();
const byId = new Map<number, Body>();

loop.run({
  onMessage(msg) {
    if (msg.type === 'start') {
      const body = new Body(msg.id, msg.sock, msg.file, msg.offset, msg.length);
      bodies.set(msg.sock, body);
      byId.set(msg.id, body);
      if (!loop.watch(msg.sock, EPOLLOUT)) body.finish(`epoll_ctl: ${c.strerror(c.errno())}`);
    } else if (msg.type === 'cancel') {
      byId.get(msg.id)?.finish('cancelled: the response closed');
    } else {
      loop.stop();
      for (const body of bodies.values()) body.finish('cancelled: stopping');
    }
  },
  onReady(fd) {
    bodies.get(fd)?.writable();
  },
  nextDeadline: () => Number.POSITIVE_INFINITY,
  onDeadline() {},
  drained: () => bodies.size === 0,
});
