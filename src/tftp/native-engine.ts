/**
 * The main thread's half of the TFTP worker engine: it owns the worker (native-pump.ts),
 * hands each transfer over (the worker opens its sockets), and turns the worker's reports
 * back into a Transfer's `done` and hooks. What the worker
 * cannot serve (netascii, IPv6) stays with the event-loop Session (server.ts chooses).
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { EFD_CLOEXEC, EFD_NONBLOCK, loadLibc } from '../net/libc.ts';
import type { FromPump, PumpData, ToPump } from './native-pump.ts';
import type { Negotiated } from './options.ts';
import type { Outcome, SessionHooks, SessionResult, Transfer } from './session.ts';
import type { DirectBytes, Source } from './source.ts';
import type { RetransmitPolicy } from './transfer-window.ts';
import { isShared } from '../util/shared-bytes.ts';

/** Under tsx (a checkout) the worker is TypeScript, which a worker thread only reads once tsx is registered in it. */
function spawnPump(data: PumpData): Worker {
  const self = import.meta.url;
  const options = { workerData: data, transferList: [data.port] };
  if (!self.endsWith('.ts')) return new Worker(new URL('./native-pump.js', self), options);
  const entry = new URL('./native-pump.ts', self).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { ...options, eval: true });
}

const RING = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

export class NativeEngine {
  private nextId = 1;
  private readonly live = new Map<number, NativeTransfer>();
  private exited: Promise<void>;
  private failure: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly port: MessagePort,
    private readonly wakeFd: number,
  ) {
    port.on('message', (msg: FromPump) => this.onReport(msg));
    // Neither keeps the process alive: stop() ends the thread, and a process that exits without it loses nothing.
    port.unref();
    worker.unref();
    this.exited = new Promise((resolve) => {
      worker.once('exit', () => resolve());
    });
    worker.on('error', (err) => {
      this.failure = err;
      for (const t of this.live.values()) t.report({ type: 'done', id: t.id, outcome: 'error', detail: `tftp worker failed: ${err.message}`, bytes: 0, blocks: 0, retransmissions: 0 });
    });
  }

  /** Starts the worker thread; throws saying why it cannot run here (then the event loop serves every transfer). */
  static start(): NativeEngine {
    if (process.platform !== 'linux') throw new Error(`needs Linux; this is ${process.platform}`);
    const c = loadLibc();
    const wakeFd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeFd < 0) throw new Error(`eventfd: ${c.strerror(c.errno())}`);
    const { port1, port2 } = new MessageChannel();
    try {
      return new NativeEngine(spawnPump({ port: port2, wakeFd }), port1, wakeFd);
    } catch (err) {
      c.close(wakeFd);
      throw err;
    }
  }

  /** Why the worker stopped serving, if it did: transfers then go to the event loop. */
  get broken(): Error | undefined {
    return this.failure;
  }

  post(msg: ToPump, transfer: ArrayBuffer[] = []): void {
    this.port.postMessage(msg, transfer);
    loadLibc().write(this.wakeFd, RING, 8);
  }

  transfer(client: { address: string; port: number }, localHost: string, source: Source, bytes: DirectBytes, terms: Negotiated, policy: RetransmitPolicy, hooks: SessionHooks): Transfer {
    const t = new NativeTransfer(this, this.nextId++, client, localHost, source, bytes, terms, policy, hooks);
    this.live.set(t.id, t);
    void t.done.then(() => this.live.delete(t.id));
    return t;
  }

  private onReport(msg: FromPump): void {
    this.live.get(msg.id)?.report(msg);
  }

  /** Every transfer must have ended (server.ts aborts them first). */
  async stop(): Promise<void> {
    // Held while it winds down, or a process with nothing else to do would exit before `exit` arrives.
    this.worker.ref();
    if (!this.failure) this.post({ type: 'stop' });
    await this.exited;
    this.port.close();
    loadLibc().close(this.wakeFd);
  }
}

class NativeTransfer implements Transfer {
  private settled = false;
  private resolveDone!: (r: SessionResult) => void;
  readonly done: Promise<SessionResult>;

  constructor(
    private readonly engine: NativeEngine,
    readonly id: number,
    private readonly client: { address: string; port: number },
    private readonly localHost: string,
    private readonly source: Source,
    private readonly bytes: DirectBytes,
    private readonly terms: Negotiated,
    private readonly policy: RetransmitPolicy,
    private readonly hooks: SessionHooks,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /** The worker opens the transfer's sockets; a port it cannot open ends the transfer as `error`, saying why. */
  async start(): Promise<void> {
    const { bytes } = this;
    const msg: ToPump = { type: 'start', id: this.id, local: this.localHost, client: this.client, size: this.source.size, bytes, terms: this.terms, policy: this.policy };
    this.engine.post(msg, bytes.kind === 'bytes' && !isShared(bytes.data) ? [bytes.data.buffer as ArrayBuffer] : []);
  }

  abort(outcome: Outcome, message: string): void {
    if (!this.settled) this.engine.post({ type: 'end', id: this.id, outcome, detail: message, message });
  }

  abandon(outcome: Outcome, detail: string): void {
    if (!this.settled) this.engine.post({ type: 'end', id: this.id, outcome, detail, message: undefined });
  }

  report(msg: FromPump): void {
    if (msg.type === 'malformed') this.hooks.malformed(msg.reason);
    else if (msg.type === 'retransmitted') this.hooks.retransmitted(msg.packets);
    else if (msg.type === 'stray') this.hooks.stray({ address: msg.address, port: msg.port });
    else this.settle({ outcome: msg.outcome, bytes: msg.bytes, blocks: msg.blocks, retransmissions: msg.retransmissions, ...(msg.detail ? { detail: msg.detail } : {}) });
  }

  private settle(result: SessionResult): void {
    if (this.settled) return;
    this.settled = true;
    void this.source.close().catch(() => undefined);
    this.resolveDone(result);
  }
}
