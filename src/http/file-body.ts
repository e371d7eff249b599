/**
 * A byte range of a file written to an HTTP response: by sendfile(2) on its own thread
 * (sendfile-engine.ts) wherever that runs, else through two buffers read in turn and
 * reused: while one goes out to the socket the next is read into the other. Without
 * sendfile, serving a kernel is copies and per-chunk work; fs.createReadStream allocates a
 * fresh buffer for every read, and with the large reads that make the copies cheap per MiB
 * that allocation (page faults, GC) costs more than the copies. Reused 1–2 MiB buffers took
 * one 64 MiB download from ~0.7 to ~0.42 ms of CPU per MiB here; 20 at once cost ~0.45–0.5
 * either way (bench/http/README.md).
 */
import { once } from 'node:events';
import { open } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { SendfileEngine } from './sendfile-engine.ts';

/** How image bodies are written: sendfile where it runs (the default), or always through buffers (tests of that path). */
export type BodyWriter = 'sendfile' | 'buffers';

/**
 * A download holds its two buffers until it ends, so they shrink as downloads run at once:
 * together they hold about CHUNK_BUDGET, and never less than MIN_CHUNK each.
 */
const MAX_CHUNK = 2 * 1024 * 1024;
const MIN_CHUNK = 128 * 1024;
const CHUNK_BUDGET = 64 * 1024 * 1024;
let running = 0;

/**
 * Bodies shorter than this are written from the event loop even with sendfile on: handing a
 * few kilobytes (a range probe, a small file) to the thread costs two messages and two
 * descriptors, more than copying them; and the response then ends before the client can
 * have read it, as it always did.
 */
const SENDFILE_MIN = 256 * 1024;

/**
 * The last bytes of a sendfile body are written from the event loop: the response then ends,
 * and its `http.image` step is recorded, before the client can have read its last byte, as
 * with buffers. Were the thread to send them, a client could finish and ask /api/machines
 * before the event loop heard the body was done.
 */
const TAIL = 64 * 1024;

function chunkSize(length: number): number {
  const share = Math.floor(CHUNK_BUDGET / 2 / Math.max(1, running));
  return Math.min(length, Math.max(MIN_CHUNK, Math.min(MAX_CHUNK, share)));
}

/**
 * Starts what `writer` needs now rather than with the first body: the sendfile thread takes a
 * moment to start (under tsx, its modules are compiled then), and the first bodies are those of
 * a rack that just powered on. Returns why sendfile cannot run here, when it cannot: bodies
 * then go through buffers. `onFailure` hears of the thread failing later, which also sends
 * bodies back to buffers.
 */
export function startBodyWriter(writer: BodyWriter, onFailure?: (err: Error) => void): string | undefined {
  if (writer !== 'sendfile') return undefined;
  SendfileEngine.onFailure(onFailure);
  return SendfileEngine.problem();
}

/**
 * Writes `length` bytes of `path` from `start` and ends the response; says how it wrote them
 * (undefined when it wrote nothing: an error before the first byte, or the client left).
 * Resolves when done or when the client went away (the response closed). An error before the
 * first byte (the file vanished since send's stat) goes to `beforeFirstByte`, so the request can
 * still be answered with a status; a later one destroys the response, its headers being out.
 */
export async function writeFileBody(
  res: ServerResponse,
  path: string,
  start: number,
  length: number,
  beforeFirstByte: (err: Error) => void,
  writer: BodyWriter = 'sendfile',
): Promise<BodyWriter | undefined> {
  running += 1;
  const closed = new Promise<void>((resolve) => res.once('close', resolve));
  let file: Awaited<ReturnType<typeof open>> | undefined;
  try {
    file = await open(path, 'r');
    const engine = writer === 'sendfile' && length >= SENDFILE_MIN ? SendfileEngine.get() : undefined;
    const socket = res.socket;
    if (engine && socket) {
      // The headers go out first and alone: the thread writes to the socket behind Node's back.
      res.flushHeaders();
      if (socket.writableLength > 0) await Promise.race([once(socket, 'drain'), closed]);
      if (res.destroyed) return undefined;
      const head = length - TAIL;
      const sending = engine.send(socket, file.fd, start, head, closed);
      if (sending) {
        const { sent, error } = await sending;
        if (error !== undefined || sent < head) {
          res.destroy(new Error(`${path}: ${error ?? `${sent} of ${head} bytes sent`}`));
          return 'sendfile';
        }
        const tail = Buffer.allocUnsafe(TAIL);
        const { bytesRead } = await file.read(tail, 0, TAIL, start + head);
        if (bytesRead < TAIL) res.destroy(new Error(`${path} ended at byte ${start + head + bytesRead} of ${start + length}`));
        else res.end(tail);
        return 'sendfile';
      }
    }
    const end = start + length;
    const size = chunkSize(length);
    const buffers = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
    const written: (Promise<void> | undefined)[] = [undefined, undefined];
    let position = start;
    for (let turn = 0; position < end; turn ^= 1) {
      // The buffer is free again once the socket took what was written from it.
      if (written[turn]) await Promise.race([written[turn], closed]);
      if (res.destroyed) return 'buffers';
      const buffer = buffers[turn]!;
      const { bytesRead } = await file.read(buffer, 0, Math.min(size, end - position), position);
      // A file cut short while it is served: the response stays short and the client sees it.
      if (bytesRead === 0) throw new Error(`${path} ended at byte ${position} of ${end}`);
      position += bytesRead;
      // Settles, never rejects: a write failing because the client left is seen as the closed response.
      written[turn] = new Promise<void>((resolve) => res.write(bytesRead === size ? buffer : buffer.subarray(0, bytesRead), () => resolve()));
    }
    await Promise.race([Promise.all(written), closed]);
    if (!res.destroyed) res.end();
    return 'buffers';
  } catch (err) {
    if (res.headersSent) res.destroy(err as Error);
    else beforeFirstByte(err as Error);
    return undefined;
  } finally {
    running -= 1;
    await file?.close().catch(() => undefined);
  }
}
