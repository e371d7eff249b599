import type { TftpOptions } from './packet.ts';

/** What the server is willing to grant, whatever a client asks. */
export interface OptionLimits {
  /** Largest blksize granted (RFC 2348 allows up to 65464); requests above get this value. */
  maxBlksize: number;
  /** Largest windowsize granted (RFC 7440). */
  maxWindowsize: number;
  /**
   * Largest window in bytes: the window is sent as one burst, and a burst bigger than the
   * receiver's socket buffer (or a firmware's few receive descriptors) is partly dropped
   * and must be sent again. With blksize 8192, windowsize 16 is cut to 8.
   */
  maxWindowBytes: number;
}

/** The terms of one transfer, after negotiation. */
export interface Negotiated {
  blksize: number;
  windowsize: number;
  /** Retransmission timeout the client asked for (RFC 2349), in ms; undefined when it did not. */
  timeoutMs: number | undefined;
  /** The options to put in the OACK; empty means answer with DATA 1 straight away (RFC 2347). */
  oack: TftpOptions;
}

export const DEFAULT_BLKSIZE = 512;
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;

/** A decimal value, and nothing else: `parseInt` would take "1468abc" or " 12". */
function decimal(v: string | undefined): number | undefined {
  if (v === undefined || !/^[0-9]{1,10}$/.test(v)) return undefined;
  return Number(v);
}

/**
 * Decides each option of an RRQ (RFC 2347/2348/2349/7440). An option with a value out of
 * its RFC range is left out of the OACK, so the client falls back to the RFC 1350
 * default instead of the transfer failing; unknown options are ignored the same way.
 */
export function negotiate(requested: TftpOptions, fileSize: number, limits: OptionLimits): Negotiated {
  const oack: TftpOptions = {};
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeoutMs: number | undefined;

  const b = decimal(requested.blksize);
  if (b !== undefined && b >= MIN_BLKSIZE && b <= MAX_BLKSIZE) {
    blksize = Math.min(b, limits.maxBlksize);
    oack.blksize = String(blksize);
  }
  const t = decimal(requested.timeout);
  if (t !== undefined && t >= 1 && t <= 255) {
    timeoutMs = t * 1000;
    oack.timeout = String(t);
  }
  // RFC 2349: in an RRQ the client sends 0 and the server answers with the size.
  if (decimal(requested.tsize) !== undefined) oack.tsize = String(fileSize);
  const w = decimal(requested.windowsize);
  if (w !== undefined && w >= 1 && w <= 65535) {
    windowsize = Math.max(1, Math.min(w, limits.maxWindowsize, Math.floor(limits.maxWindowBytes / blksize)));
    oack.windowsize = String(windowsize);
  }
  return { blksize, windowsize, timeoutMs, oack };
}
