/**
 * The main thread's half of sendfile bodies (sendfile-pump.ts does the sending): one thread
 * for the process, started with the first image body and shared by every HTTP app in it.
 * Where it cannot run (not Linux, no koffi) or a socket has no descriptor of its own, the
 * caller falls back to reused buffers (file-body.ts).
 */
import type { Socket } from 'node:net';
import { F_DUPFD_CLOEXEC, loadLibc } from '../net/libc.ts';
import { PollThread, siblingModule } from '../net/poll-thread.ts';
import type { FromSendfile, ToSendfile } from './sendfile-pump.ts';

export interface SentBody {
  sent: number;
  /** Why the body stopped short, when it did. */
  error: string | undefined;
}

/** The kernel descriptor of a plain TCP socket (Node keeps it on a private handle; a TLS socket has none). */
function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

export class SendfileEngine {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: SentBody) => void>();
  private readonly thread: PollThread<ToSendfile, FromSendfile>;

  private constructor() {
    this.thread = PollThread.start<ToSendfile, FromSendfile>(
      siblingModule(import.meta.url, 'sendfile-pump'),
      (msg) => this.settle(msg.id, { sent: msg.sent, error: msg.error }),
      (err) => {
        for (const id of [...this.waiting.keys()]) this.settle(id, { sent: 0, error: `sendfile thread failed: ${err.message}` });
        SendfileEngine.failureListener?.(err);
      },
    );
  }

  private static shared: SendfileEngine | null | undefined;
  private static failure: string | undefined;
  private static failureListener: ((err: Error) => void) | undefined;

  /**
   * Who hears of the thread failing after it started (its bodies and every later one then go
   * through buffers): one listener per process, as there is one thread; a later call replaces it.
   */
  static onFailure(listener: ((err: Error) => void) | undefined): void {
    SendfileEngine.failureListener = listener;
  }

  /** The process's engine, started on first use; undefined where it cannot run. */
  static get(): SendfileEngine | undefined {
    if (SendfileEngine.shared === undefined) {
      try {
        SendfileEngine.shared = new SendfileEngine();
      } catch (err) {
        SendfileEngine.shared = null;
        SendfileEngine.failure = err instanceof Error ? err.message : String(err);
      }
    }
    return SendfileEngine.shared && !SendfileEngine.shared.thread.broken ? SendfileEngine.shared : undefined;
  }

  /** Starts the engine if it has not started; why get() has none to give (it could not start, or its thread failed), undefined while it serves. */
  static problem(): string | undefined {
    if (SendfileEngine.get()) return undefined;
    return SendfileEngine.failure ?? SendfileEngine.shared?.thread.broken?.message ?? 'unknown';
  }

  private settle(id: number, result: SentBody): void {
    const resolve = this.waiting.get(id);
    this.waiting.delete(id);
    resolve?.(result);
  }

  /**
   * Sends `length` bytes of the open file `fileFd` from `offset` to the socket, whose
   * headers must already be out (nothing left in its write queue). Undefined when this
   * socket cannot be handed over: the caller writes the body itself. `closed` settles when
   * the response closes (the client left), which stops the sending.
   */
  send(socket: Socket, fileFd: number, offset: number, length: number, closed: Promise<void>): Promise<SentBody> | undefined {
    const fd = socketFd(socket);
    if (fd === undefined) return undefined;
    const c = loadLibc();
    // Duplicates: the thread's own references, so a socket the main thread closes meanwhile is never a reused number there.
    const sock = c.fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (sock < 0) return undefined;
    const file = c.fcntl(fileFd, F_DUPFD_CLOEXEC, 0);
    if (file < 0) {
      c.close(sock);
      return undefined;
    }
    const id = this.nextId++;
    const done = new Promise<SentBody>((resolve) => this.waiting.set(id, resolve));
    this.thread.post({ type: 'start', id, sock, file, offset, length });
    void closed.then(() => {
      if (this.waiting.has(id)) this.thread.post({ type: 'cancel', id });
    });
    return done;
  }
}
