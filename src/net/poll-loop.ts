/**
 * The worker's end of a poll thread (poll-thread.ts): one epoll set over the descriptors it
 * serves and the eventfd the main thread rings after each message, and the loop that waits
 * on it until the next deadline. What it serves (TFTP transfers, file bodies) plugs in as
 * handlers; timing is performance.now() milliseconds.
 */
import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { EINTR, EPOLL_CLOEXEC, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, EPOLL_EVENT_DATA_OFFSET, EPOLL_EVENT_SIZE, EPOLLIN, loadLibc } from './libc.ts';
import type { PollThreadData } from './poll-thread.ts';

export interface PollHandlers<In> {
  onMessage(msg: In, now: number): void;
  /** `fd` is ready for what it was watched for (`events`: the EPOLL* bits reported). */
  onReady(fd: number, events: number, now: number): void;
  /** When onDeadline should next run (Infinity: never). */
  nextDeadline(): number;
  onDeadline(now: number): void;
  /** Checked after each turn once `stop()` was called: the loop ends when it says so. */
  drained(): boolean;
}

const MAX_EVENTS = 256;
/**
 * The longest the thread stays in the kernel: a process that exits without stopping it
 * (an uncaught error, process.exit) waits for the thread to come back to JavaScript, where
 * Node can end it; blocked without a timeout, the process would hang on its way out.
 */
const MAX_WAIT_MS = 500;

export class PollLoop<In> {
  private readonly c = loadLibc();
  private readonly ep: number;
  private readonly port: MessagePort;
  private readonly wakeFd: number;
  private readonly ev = Buffer.alloc(EPOLL_EVENT_SIZE);
  private readonly wakeBuf = Buffer.alloc(8);
  private stopping = false;
  private outbox: unknown[] = [];

  constructor(data: PollThreadData) {
    this.port = data.port;
    this.wakeFd = data.wakeFd;
    this.ep = this.c.epoll_create1(EPOLL_CLOEXEC);
    if (this.ep < 0) throw new Error(`epoll_create1: ${this.c.strerror(this.c.errno())}`);
    if (!this.watch(this.wakeFd, EPOLLIN)) throw new Error(`epoll_ctl on the wake eventfd: ${this.c.strerror(this.c.errno())}`);
  }

  /** Adds `fd` for `events` (EPOLLIN, EPOLLOUT); false when the kernel refuses (errno says why). */
  watch(fd: number, events: number): boolean {
    return this.ctl(EPOLL_CTL_ADD, fd, events);
  }

  modify(fd: number, events: number): boolean {
    return this.ctl(EPOLL_CTL_MOD, fd, events);
  }

  /** Closing a descriptor also drops it; this is for one that stays open. */
  unwatch(fd: number): void {
    this.c.epoll_ctl(this.ep, EPOLL_CTL_DEL, fd, null);
  }

  private ctl(op: number, fd: number, events: number): boolean {
    this.ev.writeUInt32LE(events, 0);
    this.ev.writeInt32LE(fd, EPOLL_EVENT_DATA_OFFSET);
    return this.c.epoll_ctl(this.ep, op, fd, this.ev) === 0;
  }

  /** Sent to the main thread with the rest of this turn's messages, as one batch (poll-thread.ts). */
  post(msg: unknown): void {
    this.outbox.push(msg);
  }

  private flush(): void {
    if (this.outbox.length === 0) return;
    this.port.postMessage(this.outbox);
    this.outbox = [];
  }

  /** From now on the loop ends as soon as the handlers are drained. */
  stop(): void {
    this.stopping = true;
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** Runs until stop() and drained(), then ends the thread. */
  run(h: PollHandlers<In>): never {
    const { c } = this;
    const events = Buffer.alloc(EPOLL_EVENT_SIZE * MAX_EVENTS);
    let now = performance.now();
    while (!this.stopping || !h.drained()) {
      // From the turn's start: the turn's own work (microseconds) only makes the wait that much longer, against deadlines of 100 ms and more.
      const wait = Math.min(MAX_WAIT_MS, Math.max(0, Math.ceil(h.nextDeadline() - now)));
      const n = c.epoll_wait(this.ep, events, MAX_EVENTS, wait);
      if (n < 0 && c.errno() !== EINTR) throw new Error(`epoll_wait: ${c.strerror(c.errno())}`);
      now = performance.now();
      for (let i = 0; i < n; i++) {
        const at = i * EPOLL_EVENT_SIZE;
        const fd = events.readInt32LE(at + EPOLL_EVENT_DATA_OFFSET);
        if (fd === this.wakeFd) this.messages(h, now);
        else h.onReady(fd, events.readUInt32LE(at), now);
      }
      // Deadlines within a millisecond are due, as on the event loop, so the poll never spins on a fraction.
      if (now >= h.nextDeadline() - 1) h.onDeadline(now);
      this.flush();
    }
    this.flush();
    c.close(this.ep);
    this.port.close();
    // Ends this thread only; tsx's loader hooks (in a checkout) would otherwise keep it alive.
    process.exit(0);
  }

  private messages(h: PollHandlers<In>, now: number): void {
    this.c.read(this.wakeFd, this.wakeBuf, 8);
    for (let m = receiveMessageOnPort(this.port); m; m = receiveMessageOnPort(this.port)) for (const msg of m.message as In[]) h.onMessage(msg, now);
  }
}
