/**
 * The main thread's end of a poll thread (poll-loop.ts runs the other): a worker thread that
 * blocks in epoll_wait over descriptors it serves through libc, away from the event loop.
 * Messages go both ways on a MessagePort; since the worker is blocked in the kernel rather
 * than in its own event loop, each message to it also rings an eventfd it polls.
 *
 * Both ends send what one turn produced as one batch (an array): a rack's 200 TFTP requests
 * arrive in a burst, and a postMessage and an eventfd write each, which also wakes the thread
 * on the core the event loop runs on, cost more than the transfer's own start (bench/tftp).
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { EFD_CLOEXEC, EFD_NONBLOCK, loadLibc } from './libc.ts';

/** What the worker's module receives as workerData. */
export interface PollThreadData {
  port: MessagePort;
  /** An eventfd the main thread writes to after each message. */
  wakeFd: number;
}

const RING = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

/**
 * `entry` is the worker module as this module's own extension says: .ts in a checkout (run
 * through tsx, which a worker only has once registered in it), .js when built.
 */
function spawn(entry: URL, data: PollThreadData): Worker {
  const options = { workerData: data, transferList: [data.port] };
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(boot, { ...options, eval: true });
}

/** The module beside `self` (an import.meta.url) named `name`, with the caller's extension. */
export function siblingModule(self: string, name: string): URL {
  return new URL(`./${name}${self.endsWith('.ts') ? '.ts' : '.js'}`, self);
}

export class PollThread<In, Out> {
  private readonly exited: Promise<void>;
  private failure: Error | undefined;
  private queued: In[] = [];
  private transfers: ArrayBuffer[] = [];
  private flushing: NodeJS.Immediate | undefined;
  private stopping = false;

  private constructor(
    private readonly worker: Worker,
    private readonly port: MessagePort,
    private readonly wakeFd: number,
    onMessage: (msg: Out) => void,
    onFailure: (err: Error) => void,
  ) {
    port.on('message', (batch: Out[]) => {
      for (const msg of batch) onMessage(msg);
    });
    // Neither keeps the process alive: stop() ends the thread, and a process that exits without it loses nothing.
    port.unref();
    worker.unref();
    const fail = (err: Error) => {
      if (this.failure) return;
      this.failure = err;
      onFailure(err);
    };
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        // A thread that ends before stop() asked it to serves nothing from then on, whatever its exit code says.
        if (!this.stopping) fail(new Error(`the thread exited (code ${code}) without being asked to stop`));
        resolve();
      });
    });
    worker.on('error', fail);
  }

  /** Starts the worker thread running `entry`; throws saying why it cannot run here. */
  static start<In, Out>(entry: URL, onMessage: (msg: Out) => void, onFailure: (err: Error) => void): PollThread<In, Out> {
    if (process.platform !== 'linux') throw new Error(`needs Linux; this is ${process.platform}`);
    const c = loadLibc();
    const wakeFd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeFd < 0) throw new Error(`eventfd: ${c.strerror(c.errno())}`);
    const { port1, port2 } = new MessageChannel();
    try {
      return new PollThread<In, Out>(spawn(entry, { port: port2, wakeFd }), port1, wakeFd, onMessage, onFailure);
    } catch (err) {
      c.close(wakeFd);
      throw err;
    }
  }

  /** Why the thread stopped serving, if it did. */
  get broken(): Error | undefined {
    return this.failure;
  }

  /** Queued with whatever else this turn of the event loop posts, and sent when the turn ends. */
  post(msg: In, transfer: ArrayBuffer[] = []): void {
    this.queued.push(msg);
    for (const t of transfer) this.transfers.push(t);
    this.flushing ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    clearImmediate(this.flushing);
    this.flushing = undefined;
    if (this.queued.length === 0) return;
    this.port.postMessage(this.queued, this.transfers);
    this.queued = [];
    this.transfers = [];
    loadLibc().write(this.wakeFd, RING, 8);
  }

  /** Sends `stop` and waits for the thread to end (it ends once what it serves has ended). */
  async stop(stop: In): Promise<void> {
    this.stopping = true;
    // Held while it winds down, or a process with nothing else to do would exit before `exit` arrives.
    this.worker.ref();
    if (!this.failure) {
      this.post(stop);
      this.flush();
    }
    await this.exited;
    this.port.close();
    loadLibc().close(this.wakeFd);
  }
}
