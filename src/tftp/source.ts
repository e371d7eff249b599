import type { FileHandle } from 'node:fs/promises';

/** Where the bytes of one transfer come from. */
export interface Source {
  readonly size: number;
  /** The bytes at [offset, offset+length) when already in memory, else undefined. */
  peek(offset: number, length: number): Buffer | undefined;
  /** Brings [offset, offset+length) into memory so the next peek of that range succeeds. */
  load(offset: number, length: number): Promise<void>;
  close(): Promise<void>;
}

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
}

/** Reads ahead in chunks so a 64 MiB transfer costs a few thousand reads, not one per block. */
export class FileSource implements Source {
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0;

  constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    private readonly chunk = 256 * 1024,
  ) {}

  peek(offset: number, length: number): Buffer | undefined {
    const end = Math.min(offset + length, this.size);
    if (offset >= this.bufStart && end <= this.bufStart + this.buf.length) return this.buf.subarray(offset - this.bufStart, end - this.bufStart);
    if (offset >= this.size) return Buffer.alloc(0);
    return undefined;
  }

  async load(offset: number, length: number): Promise<void> {
    const want = Math.min(Math.max(length, this.chunk), this.size - offset);
    if (want <= 0) return;
    // A fresh buffer each time: DATA packets still queued in the socket point into the old one.
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await this.handle.read(buf, got, want - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    // A file that shrank under us: the missing tail reads as short and the transfer ends early
    // rather than sending stale bytes.
    this.buf = buf.subarray(0, got);
    this.bufStart = offset;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
