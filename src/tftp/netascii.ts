/**
 * netascii (RFC 1350, the Telnet NVT form of RFC 764): the file's bytes as they go on the
 * wire, converted while the transfer runs. Every LF becomes CR LF and every CR becomes
 * CR NUL, as tftp-hpa's server does, so a client that converts back (tftp-hpa's default
 * mode) gets exactly the file, bare CRs and existing CR LF pairs included.
 *
 * The converted size is known only once the whole file has been read, and reading it all
 * before the first block would let one spoofed request cost a full read of the largest
 * file. So the size starts as a lower bound and becomes exact at the end of the input;
 * the session asks for the size again after each load (session.ts).
 */
import type { Source } from './source.ts';

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;

/** Input read per load: a few hundred blocks of text, and far below a burst of windows. */
const INPUT_CHUNK = 64 * 1024;

/** The netascii form of `input`; a CR or LF at the end of one chunk needs nothing from the next. */
export function toNetascii(input: Buffer): Buffer {
  let specials = 0;
  for (let i = 0; i < input.length; i++) {
    const b = input[i]!;
    if (b === LF || b === CR) specials++;
  }
  if (specials === 0) return input;
  const out = Buffer.allocUnsafe(input.length + specials);
  let o = 0;
  for (let i = 0; i < input.length; i++) {
    const b = input[i]!;
    if (b === LF) {
      out[o++] = CR;
      out[o++] = LF;
    } else if (b === CR) {
      out[o++] = CR;
      out[o++] = NUL;
    } else out[o++] = b;
  }
  return out;
}

/**
 * A Source whose offsets are those of the converted stream. It reads its inner source
 * forward only: a session asks for ranges starting at its lowest unacknowledged block,
 * which never moves back, so converted bytes before the last load's start are dropped.
 */
export class NetasciiSource implements Source {
  /** Converted bytes [outStart, outStart + out.length); a fresh buffer per load, as queued DATA points into the old one. */
  private out: Buffer = Buffer.alloc(0);
  private outStart = 0;
  /** Input bytes consumed so far; their conversion ends at outStart + out.length. */
  private inPos = 0;

  constructor(private readonly inner: Source) {}

  private get outEnd(): number {
    return this.outStart + this.out.length;
  }

  private get exhausted(): boolean {
    return this.inPos >= this.inner.size;
  }

  /**
   * Exact once the input is all converted; before that a lower bound (what is converted,
   * plus one byte for each input byte not read yet), so a session never takes a block
   * short of that bound for the last one.
   */
  get size(): number {
    return this.outEnd + (this.inner.size - this.inPos);
  }

  peek(offset: number, length: number): Buffer | undefined {
    const end = Math.min(offset + length, this.size);
    if (offset < this.outStart) return undefined;
    // Until the input is exhausted, size is only a bound: serve what is converted, never a guess at the end.
    if (end <= this.outEnd) return this.out.subarray(offset - this.outStart, end - this.outStart);
    if (this.exhausted && offset >= this.outEnd) return Buffer.alloc(0);
    return undefined;
  }

  async load(offset: number, length: number): Promise<void> {
    if (offset < this.outStart) throw new Error('netascii stream asked to go back before its last load');
    const want = offset + length;
    const parts: Buffer[] = [this.out.subarray(Math.min(offset, this.outEnd) - this.outStart)];
    let end = this.outEnd;
    while (end < want && !this.exhausted) {
      const n = Math.min(Math.max(want - end, INPUT_CHUNK), this.inner.size - this.inPos);
      let chunk = this.inner.peek(this.inPos, n);
      if (!chunk || chunk.length < n) {
        await this.inner.load(this.inPos, n);
        chunk = this.inner.peek(this.inPos, n);
      }
      // A file that shrank under us: end the transfer rather than send a stream of another length.
      if (!chunk || chunk.length < n) throw new Error('file changed while being sent');
      const converted = toNetascii(chunk);
      parts.push(converted);
      this.inPos += n;
      end += converted.length;
    }
    this.outStart = Math.min(offset, this.outEnd);
    // concat copies: the inner source's buffer and the old one stay untouched for DATA still queued.
    this.out = Buffer.concat(parts);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
