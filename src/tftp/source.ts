import type { FileHandle } from 'node:fs/promises';
import { isShared } from '../util/shared-bytes.ts';

/** Where the bytes of one transfer come from. */
export interface Source {
  readonly size: number;
  /** The bytes at [offset, offset+length) when already in memory, else undefined. */
  peek(offset: number, length: number): Buffer | undefined;
  /** Brings [offset, offset+length) into memory so the next peek of that range succeeds. */
  load(offset: number, length: number): Promise<void>;
  close(): Promise<void>;
  /**
   * The bytes as another thread can read them without this object (the worker engine,
   * native-pump.ts): a copy of what is in memory, or the open file's descriptor, valid
   * until close(). Absent where bytes are made on the way (netascii).
   */
  direct?(): DirectBytes;
}

export type DirectBytes = { kind: 'bytes'; data: Uint8Array } | { kind: 'fd'; fd: number };

/** Verified firmware: served from the bytes that were checksummed. */
export class MemorySource implements Source {
  constructor(private readonly data: Buffer) {}
  get size(): number {
    return this.data.length;
  }
  peek(offset: number, length: number): Buffer {
    return this.data.subarray(offset, offset + length);
  }
  async load(): Promise<void> {}
  async close(): Promise<void> {}
  direct(): DirectBytes {
    // Firmware is in shared memory (firmware/catalog.ts): the worker reads it in place. Anything
    // else is copied, and the post moves the copy rather than cloning it (and its whole backing buffer).
    if (isShared(this.data)) return { kind: 'bytes', data: this.data };
    const { buffer, byteOffset, byteLength } = this.data;
    return { kind: 'bytes', data: new Uint8Array(buffer.slice(byteOffset, byteOffset + byteLength)) };
  }
}

/**
 * Reads a file in chunks so a 64 MiB transfer costs a few hundred reads, not one per block,
 * and keeps the next chunk reading in the background while the current one is sent: a
 * lock-step transfer then never stops at a chunk's end to wait for the disk (and, with the
 * server on one busy core, for a thread-pool thread to be scheduled).
 *
 * The chunk before the current one stays too, so a window that began in it (a retransmit,
 * or a window whose last block reached into the next chunk first) is still in memory. A
 * window (at most 64 KiB, options.ts) never spans more than two chunks.
 */
export class FileSource implements Source {
  /** Contiguous, oldest first: the previous chunk and the current one. */
  private chunks: { start: number; buf: Buffer }[] = [];
  /** The chunk after the last of `chunks`, being read (`buf` set once read); never more than one. */
  private ahead: { start: number; read: Promise<Buffer>; buf: Buffer | undefined } | undefined;

  constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    // Three chunks per transfer in memory (previous, current, next): 384 KiB, against 256 KiB in one chunk before read-ahead.
    private readonly chunk = 128 * 1024,
  ) {}

  peek(offset: number, length: number): Buffer | undefined {
    const end = Math.min(offset + length, this.size);
    if (offset >= this.size) return Buffer.alloc(0);
    const ahead = this.ahead;
    // Asking for bytes of the read-ahead makes it the current chunk, and the next read starts.
    if (ahead?.buf && end > ahead.start && end <= ahead.start + ahead.buf.length && offset >= (this.chunks[0]?.start ?? ahead.start)) this.advance(ahead.start, ahead.buf);
    return this.slice(offset, end);
  }

  /** [offset, end) from the chunks in memory: a view into one, or a copy of a block across two (blksize 1468 divides no chunk). */
  private slice(offset: number, end: number): Buffer | undefined {
    const i = this.chunks.findIndex((c) => offset >= c.start && offset < c.start + c.buf.length);
    if (i < 0) return undefined;
    const first = this.chunks[i]!;
    if (end <= first.start + first.buf.length) return first.buf.subarray(offset - first.start, end - first.start);
    const next = this.chunks[i + 1];
    if (!next || end > next.start + next.buf.length) return undefined;
    return Buffer.concat([first.buf.subarray(offset - first.start), next.buf.subarray(0, end - next.start)]);
  }

  async load(offset: number, length: number): Promise<void> {
    const end = Math.min(offset + length, this.size);
    const ahead = this.ahead;
    if (ahead) {
      // The read-ahead may be all that is missing; and a read is never left running behind a new one.
      const buf = await ahead.read;
      if (this.ahead === ahead && offset >= (this.chunks[0]?.start ?? ahead.start) && end <= ahead.start + buf.length) {
        this.advance(ahead.start, buf);
        return;
      }
    }
    const want = Math.min(Math.max(length, this.chunk), this.size - offset);
    if (want <= 0) return;
    const buf = await this.read(offset, want);
    // Short of what was asked: the file shrank under the transfer. Said once, or every later peek
    // would miss and load again, a busy loop until the retransmission budget ran out.
    if (offset + buf.length < end) throw new Error(`the file ends at byte ${offset + buf.length} of ${this.size}: it shrank while being served`);
    this.chunks = [];
    this.advance(offset, buf);
  }

  /** Appends `buf` as the current chunk (dropping the one before the previous) and starts reading the one after it. */
  private advance(start: number, buf: Buffer): void {
    this.chunks.push({ start, buf });
    if (this.chunks.length > 2) this.chunks.shift();
    this.ahead = undefined;
    const next = start + buf.length;
    // A chunk shorter than asked means the file shrank under us (or this is its end): nothing to read ahead.
    if (buf.length < this.chunk || next >= this.size) return;
    const ahead: NonNullable<FileSource['ahead']> = { start: next, read: this.read(next, Math.min(this.chunk, this.size - next)), buf: undefined };
    ahead.read.then(
      (b) => {
        ahead.buf = b;
      },
      // A failed read-ahead is reported by the load() that awaits it.
      () => undefined,
    );
    this.ahead = ahead;
  }

  private async read(offset: number, want: number): Promise<Buffer> {
    // A fresh buffer each time: DATA packets still queued in the socket may point into an old one.
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await this.handle.read(buf, got, want - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    // A file that shrank under us: the missing tail reads as short and the transfer ends early
    // rather than sending stale bytes.
    return buf.subarray(0, got);
  }

  direct(): DirectBytes {
    return { kind: 'fd', fd: this.handle.fd };
  }

  async close(): Promise<void> {
    // A read still in flight would otherwise meet a closed descriptor.
    await this.ahead?.read.catch(() => undefined);
    this.ahead = undefined;
    return this.handle.close();
  }
}
