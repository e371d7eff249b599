/**
 * A byte range of a file written to an HTTP response through two buffers read in turn and
 * reused: while one goes out to the socket the next is read into the other. Node has no
 * sendfile, so serving a kernel is copies and per-chunk work; fs.createReadStream allocates a
 * fresh buffer for every read, and with the large reads that make the copies cheap per MiB
 * that allocation (page faults, GC) costs more than the copies. Reused 1–2 MiB buffers took
 * one 64 MiB download from ~0.7 to ~0.42 ms of CPU per MiB here; 20 at once cost ~0.45–0.5
 * either way (bench/http/README.md).
 */
import { open } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

/**
 * A download holds its two buffers until it ends, so they shrink as downloads run at once:
 * together they hold about CHUNK_BUDGET, and never less than MIN_CHUNK each.
 */
const MAX_CHUNK = 2 * 1024 * 1024;
const MIN_CHUNK = 128 * 1024;
const CHUNK_BUDGET = 64 * 1024 * 1024;
let running = 0;

function chunkSize(length: number): number {
  const share = Math.floor(CHUNK_BUDGET / 2 / Math.max(1, running));
  return Math.min(length, Math.max(MIN_CHUNK, Math.min(MAX_CHUNK, share)));
}

/**
 * Writes `length` bytes of `path` from `start` and ends the response.
 * Resolves when done or when the client went away (the response closed). An error before the
 * first byte (the file vanished since send's stat) goes to `beforeFirstByte`, so the request can
 * still be answered with a status; a later one destroys the response, its headers being out.
 */
export async function writeFileBody(res: ServerResponse, path: string, start: number, length: number, beforeFirstByte: (err: Error) => void): Promise<void> {
  running += 1;
  const closed = new Promise<void>((resolve) => res.once('close', resolve));
  let file: Awaited<ReturnType<typeof open>> | undefined;
  try {
    file = await open(path, 'r');
    const end = start + length;
    const size = chunkSize(length);
    const buffers = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
    const written: (Promise<void> | undefined)[] = [undefined, undefined];
    let position = start;
    for (let turn = 0; position < end; turn ^= 1) {
      // The buffer is free again once the socket took what was written from it.
      if (written[turn]) await Promise.race([written[turn], closed]);
      if (res.destroyed) return;
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
  } catch (err) {
    if (res.headersSent) res.destroy(err as Error);
    else beforeFirstByte(err as Error);
  } finally {
    running -= 1;
    await file?.close().catch(() => undefined);
  }
}
