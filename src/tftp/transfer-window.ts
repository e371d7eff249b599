import type { Negotiated } from './options.ts';
import { encodeError, ERR, OP, parsePacket } from './packet.ts';

/** What a client is told when the file cannot be read to its end (the log says why). */
export const READ_ERROR = encodeError(ERR.NOT_DEFINED, 'Error reading the file');

export interface RetransmitPolicy {
  /** Floor of the adaptive timeout: LAN round trips are well under a millisecond, firmware is slow to answer only rarely. */
  minRtoMs: number;
  /** Used before the first round trip is measured. */
  initialRtoMs: number;
  /** Ceiling of the backed-off timeout when the client asked for none. */
  maxRtoMs: number;
  /** Consecutive timeouts without progress before the transfer is abandoned. */
  maxRetries: number;
}

/**
 * The backoff must be allowed to grow past the clients' own timeouts (1-5 s): atftp, with a
 * window, ignores duplicate DATA without re-ACKing and restarts its timer on each one, so
 * when both of its ACKs for a window are lost it only speaks again after a silence longer
 * than its timeout. 100 ms doubling to 8 s, 8 tries: about 21 s without progress before
 * a transfer is abandoned.
 */
export const DEFAULT_RETRANSMIT: RetransmitPolicy = { minRtoMs: 100, initialRtoMs: 300, maxRtoMs: 8000, maxRetries: 8 };

/** What an ACK asks of the sender. */
export type AckVerdict =
  /** Old, bogus, or a repeat inside one round trip: send nothing. */
  | 'ignore'
  /** Progress (or the OACK acknowledged): send the window after the acknowledged block. */
  | 'next'
  /** A repeat after a round trip: the window we sent was lost, send it again. */
  | 'resend'
  /** The last block is acknowledged: the transfer is done. */
  | 'complete';

/** A datagram from the client, as TransferWindow.read sees it. */
export type ClientDatagram = { kind: 'ack'; block: number } | { kind: 'stop'; outcome: 'probe-aborted' | 'aborted'; detail: string } | { kind: 'malformed'; reason: string } | { kind: 'ignore' };

/** What a retransmission timeout asks of the sender. */
export type TimeoutVerdict = 'resend-oack' | 'resend' | 'give-up';

/**
 * The sliding window of one read transfer (RFC 1350 lock-step, RFC 7440 windows) and its
 * retransmission clock (RFC 6298), with no socket, timer or file: the event-loop Session and
 * the worker's transfers (native-pump.ts) feed it ACKs and timeouts with the time, and send
 * what it says. Time is performance.now() milliseconds.
 *
 * Only an ACK that moves forward sends anything at once; a repeated ACK resends the window
 * only when a round trip has passed since it went out, which is what prevents the Sorcerer's
 * Apprentice syndrome (RFC 1123 4.2.3.1). An ACK inside the window that was sent means the
 * client saw a gap, so the next window starts right after it. A timeout resends the whole
 * unacknowledged window, with exponential backoff and a bounded number of tries. Block
 * numbers wrap from 65535 to 0, as tftp-hpa, curl and iPXE expect.
 */
export class TransferWindow {
  phase: 'oack' | 'data';
  /** Absolute block numbers (not wrapped): highest acknowledged and highest sent. */
  acked = 0;
  sent = 0;
  /** Fixed for octet; a netascii source's size is a lower bound until its input is read, so its driver calls resize(). */
  lastBlock: number;
  retransmissions = 0;
  /** When the window (or OACK) in flight times out. */
  deadline = 0;
  private retries = 0;
  private srtt: number | undefined;
  private rttvar = 0;
  private rto: number;
  private windowSentAt = 0;
  private windowIsRetransmit = false;

  constructor(
    size: number,
    private readonly terms: Negotiated,
    private readonly policy: RetransmitPolicy,
  ) {
    this.lastBlock = Math.floor(size / terms.blksize) + 1;
    this.rto = this.clampRto(policy.initialRtoMs);
    this.phase = Object.keys(terms.oack).length > 0 ? 'oack' : 'data';
  }

  resize(size: number): void {
    this.lastBlock = Math.floor(size / this.terms.blksize) + 1;
  }

  /** Blocks the client acknowledged, and their file bytes. */
  delivered(size: number): { blocks: number; bytes: number } {
    const blocks = Math.min(this.acked, this.lastBlock);
    return { blocks, bytes: Math.min(blocks * this.terms.blksize, size) };
  }

  /** The blocks of the next window: from the one after the last acknowledged. */
  window(): { from: number; to: number } {
    const from = this.acked + 1;
    return { from, to: Math.min(from + this.terms.windowsize - 1, this.lastBlock) };
  }

  oackSent(now: number): void {
    this.windowSentAt = now;
    this.deadline = now + this.rto;
  }

  /** The window ending at `to` went out; returns how many of its packets were retransmissions. */
  windowSent(from: number, to: number, retransmit: boolean, now: number): number {
    const resent = retransmit ? to - from + 1 : 0;
    this.retransmissions += resent;
    this.sent = to;
    this.windowSentAt = now;
    this.deadline = now + this.rto;
    return resent;
  }

  onAck(block: number, now: number): AckVerdict {
    if (this.phase === 'oack') {
      if (block !== 0) return 'ignore';
      if (this.retries === 0) this.sampleRtt(now);
      else this.rto = this.clampRto(this.policy.initialRtoMs);
      this.phase = 'data';
      this.retries = 0;
      return 'next';
    }
    // Map the 16-bit ACK onto the window we sent; anything outside it is old or bogus.
    const delta = (block - (this.acked & 0xffff)) & 0xffff;
    if (delta === 0) return this.onRepeatedAck(now);
    if (delta > this.sent - this.acked) return 'ignore';
    this.acked += delta;
    this.retries = 0;
    // Progress proves the client alive: drop the backoff (as TCP does on new data), or a
    // lossy link ratchets the timeout up window after window.
    if (this.acked === this.sent && !this.windowIsRetransmit) this.sampleRtt(now);
    else this.rto = this.clampRto(this.srtt === undefined ? this.policy.initialRtoMs : this.srtt + 4 * this.rttvar);
    if (this.acked >= this.lastBlock) return 'complete';
    this.windowIsRetransmit = false;
    return 'next';
  }

  /**
   * A client that timed out repeats its last ACK: the window we sent after it never
   * arrived. Waiting for our own backed-off timer (up to 8 s) outlasts clients such as
   * atftp, which give up after a few of their own timeouts, so answer with the window
   * now — but at most once per round trip, so duplicates made by the network or a burst
   * of repeats never multiply the traffic.
   */
  private onRepeatedAck(now: number): AckVerdict {
    if (this.sent <= this.acked) return 'ignore';
    const roundTrip = Math.max(this.policy.minRtoMs, this.srtt ?? this.policy.initialRtoMs);
    if (now - this.windowSentAt < roundTrip) return 'ignore';
    this.windowIsRetransmit = true;
    return 'resend';
  }

  /**
   * What a datagram from the client means for the transfer. The hot path, one ACK per window,
   * is read in place. A client's ERROR ends it: a size probe asks for tsize and stops at the
   * OACK (a normal end); any other stop is the client giving up. A client never sends anything
   * else mid-transfer, so anything else is ignored.
   */
  read(msg: Buffer): ClientDatagram {
    if (this.phase === 'data' && msg.length === 4 && msg[0] === 0 && msg[1] === OP.ACK) return { kind: 'ack', block: msg.readUInt16BE(2) };
    const parsed = parsePacket(msg);
    if (!parsed.ok) return { kind: 'malformed', reason: parsed.reason };
    const p = parsed.packet;
    if (p.op === 'ack') return { kind: 'ack', block: p.block };
    if (p.op !== 'error') return { kind: 'ignore' };
    const probe = this.phase === 'oack' && this.terms.oack.tsize !== undefined;
    return { kind: 'stop', outcome: probe ? 'probe-aborted' : 'aborted', detail: `client error ${p.code}: ${p.message}` };
  }

  onTimeout(): TimeoutVerdict {
    if (++this.retries > this.policy.maxRetries) return 'give-up';
    this.rto = this.clampRto(this.rto * 2);
    if (this.phase === 'oack') {
      this.retransmissions++;
      return 'resend-oack';
    }
    this.windowIsRetransmit = true;
    return 'resend';
  }

  /** RFC 6298 estimator; fed only windows that were not retransmitted (Karn). */
  private sampleRtt(now: number): void {
    const r = now - this.windowSentAt;
    if (this.srtt === undefined) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.rto = this.clampRto(this.srtt + 4 * this.rttvar);
  }

  private clampRto(ms: number): number {
    const cap = this.terms.timeoutMs ?? this.policy.maxRtoMs;
    return Math.min(Math.max(ms, Math.min(this.policy.minRtoMs, cap)), cap);
  }

  /** The give-up detail, in the words the transfer log has always used. */
  get giveUpDetail(): string {
    return `no answer after ${this.policy.maxRetries} retransmissions`;
  }
}
