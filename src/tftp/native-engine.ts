/**
 * The main thread's half of the TFTP worker engine: it owns the worker (native-pump.ts),
 * hands each transfer over (the worker opens its sockets), and turns the worker's reports
 * back into a Transfer's `done` and hooks. What the worker
 * cannot serve (netascii, IPv6) stays with the event-loop Session (server.ts chooses).
 */
import { PollThread, siblingModule } from '../net/poll-thread.ts';
import type { FromPump, ToPump } from './native-pump.ts';
import type { Negotiated } from './options.ts';
import type { Outcome, SessionHooks, SessionResult, Transfer } from './session.ts';
import type { DirectBytes, Source } from './source.ts';
import type { RetransmitPolicy } from './transfer-window.ts';
import { isShared } from '../util/shared-bytes.ts';

export class NativeEngine {
  private nextId = 1;
  private readonly live = new Map<number, NativeTransfer>();
  private readonly thread: PollThread<ToPump, FromPump>;

  private constructor(failed: (err: Error) => void) {
    this.thread = PollThread.start<ToPump, FromPump>(
      siblingModule(import.meta.url, 'native-pump'),
      (msg) => this.live.get(msg.id)?.report(msg),
      (err) => {
        failed(err);
        for (const t of this.live.values()) t.report({ type: 'done', id: t.id, outcome: 'error', detail: `tftp worker failed: ${err.message}`, bytes: 0, blocks: 0, retransmissions: 0 });
      },
    );
  }

  /**
   * Starts the worker thread; throws saying why it cannot run here (then the event loop serves
   * every transfer). `failed` hears of the thread dying later: its transfers end as errors, and
   * the event loop serves the next ones.
   */
  static start(failed: (err: Error) => void): NativeEngine {
    return new NativeEngine(failed);
  }

  /** Why the worker stopped serving, if it did: transfers then go to the event loop. */
  get broken(): Error | undefined {
    return this.thread.broken;
  }

  post(msg: ToPump, transfer: ArrayBuffer[] = []): void {
    this.thread.post(msg, transfer);
  }

  transfer(client: { address: string; port: number }, localHost: string, source: Source, bytes: DirectBytes, terms: Negotiated, policy: RetransmitPolicy, hooks: SessionHooks): Transfer {
    const t = new NativeTransfer(this, this.nextId++, client, localHost, source, bytes, terms, policy, hooks);
    this.live.set(t.id, t);
    void t.done.then(() => this.live.delete(t.id));
    return t;
  }

  /** Every transfer must have ended (server.ts aborts them first). */
  stop(): Promise<void> {
    return this.thread.stop({ type: 'stop' });
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
