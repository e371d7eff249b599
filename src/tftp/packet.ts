/**
 * TFTP wire format (RFC 1350, options per RFC 2347). Bounds-checked both ways: parse never
 * throws, it returns a reason; encoders refuse values the wire cannot carry.
 */

export const OP = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** RFC 1350 error codes, plus 8 (option negotiation refused, RFC 2347). */
export const ERR = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;

export type TftpOptions = Record<string, string>;

export type TftpPacket =
  | { op: 'rrq' | 'wrq'; filename: string; mode: string; options: TftpOptions }
  | { op: 'data'; block: number; data: Buffer }
  | { op: 'ack'; block: number }
  | { op: 'error'; code: number; message: string }
  | { op: 'oack'; options: TftpOptions };

export type ParseResult = { ok: true; packet: TftpPacket } | { ok: false; reason: string };

/** A request carries at most a path and a handful of options; anything longer is not a boot client. */
export const MAX_REQUEST_BYTES = 1024;
/** The largest DATA a peer may send: blksize 65464 plus the header (RFC 2348). */
export const MAX_DATA_PAYLOAD = 65464;

function fail(reason: string): ParseResult {
  return { ok: false, reason };
}

/**
 * Splits NUL-terminated strings starting at `offset`. `complete` is false when bytes
 * follow the last NUL (a truncated packet, or one padded with garbage).
 */
function cstrings(buf: Buffer, offset: number): { fields: string[]; complete: boolean } {
  const fields: string[] = [];
  let start = offset;
  while (start < buf.length) {
    const end = buf.indexOf(0, start);
    if (end < 0) return { fields, complete: false };
    // latin1 keeps every byte as one char, so a filename is judged on exactly what was sent.
    fields.push(buf.toString('latin1', start, end));
    start = end + 1;
  }
  return { fields, complete: true };
}

/**
 * Options are read leniently, as tftp-hpa does: PXE ROMs are known to pad requests with
 * NULs, so parsing stops at an empty name or a name without a value instead of
 * rejecting a request whose filename and mode are fine.
 */
function parseOptions(fields: string[]): TftpOptions {
  const options: TftpOptions = Object.create(null) as TftpOptions;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toLowerCase();
    if (name === '') break;
    // RFC 2347 does not say; the first occurrence wins, as in tftp-hpa.
    if (!(name in options)) options[name] = fields[i + 1]!;
  }
  return options;
}

export function parsePacket(buf: Buffer): ParseResult {
  if (buf.length < 4) return fail(`${buf.length} bytes is shorter than any TFTP packet`);
  const op = buf.readUInt16BE(0);
  switch (op) {
    case OP.RRQ:
    case OP.WRQ: {
      if (buf.length > MAX_REQUEST_BYTES) return fail(`request of ${buf.length} bytes`);
      const { fields } = cstrings(buf, 2);
      if (fields.length < 2) return fail('request without NUL-terminated filename and mode');
      const [filename, mode, ...rest] = fields as [string, string, ...string[]];
      if (filename === '') return fail('empty filename');
      if (mode === '') return fail('empty mode');
      const options = parseOptions(rest);
      return { ok: true, packet: { op: op === OP.RRQ ? 'rrq' : 'wrq', filename, mode: mode.toLowerCase(), options } };
    }
    case OP.DATA:
      if (buf.length > 4 + MAX_DATA_PAYLOAD) return fail(`DATA of ${buf.length} bytes`);
      return { ok: true, packet: { op: 'data', block: buf.readUInt16BE(2), data: buf.subarray(4) } };
    case OP.ACK:
      // Tolerate a few trailing bytes (some ROMs pad); a long "ACK" is not one.
      if (buf.length > 32) return fail(`ACK of ${buf.length} bytes`);
      return { ok: true, packet: { op: 'ack', block: buf.readUInt16BE(2) } };
    case OP.ERROR: {
      if (buf.length > MAX_REQUEST_BYTES) return fail(`ERROR of ${buf.length} bytes`);
      const code = buf.readUInt16BE(2);
      // Some clients omit the terminating NUL of the message; the code is what matters.
      const end = buf.indexOf(0, 4);
      return { ok: true, packet: { op: 'error', code, message: buf.toString('latin1', 4, end < 0 ? buf.length : end) } };
    }
    case OP.OACK: {
      if (buf.length > MAX_REQUEST_BYTES) return fail(`OACK of ${buf.length} bytes`);
      const { fields, complete } = cstrings(buf, 2);
      if (!complete || fields.length % 2 !== 0) return fail('OACK with an unterminated or unpaired option');
      const options = parseOptions(fields);
      return { ok: true, packet: { op: 'oack', options } };
    }
    default:
      return fail(`unknown opcode ${op}`);
  }
}

function u16(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`${what} ${n} does not fit in 16 bits`);
  return n;
}

function cstring(s: string, what: string): Buffer {
  if (s.includes('\0')) throw new RangeError(`${what} contains NUL`);
  return Buffer.from(`${s}\0`, 'latin1');
}

/** Opcode and one 16-bit field: the whole of an ACK, the head of DATA and ERROR. */
function head(op: number, value: number, what: string): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt16BE(op, 0);
  b.writeUInt16BE(u16(value, what), 2);
  return b;
}

/** The 4-byte DATA header. */
export function dataHeader(block: number): Buffer {
  return head(OP.DATA, block, 'block');
}

/** Writes the DATA header into the first 4 bytes of `packet`, which a session reuses block after block. */
export function writeDataHeader(packet: Buffer, block: number): void {
  packet.writeUInt16BE(OP.DATA, 0);
  packet.writeUInt16BE(u16(block, 'block'), 2);
}

export function encodeData(block: number, data: Buffer): Buffer {
  if (data.length > MAX_DATA_PAYLOAD) throw new RangeError(`DATA payload of ${data.length} bytes`);
  return Buffer.concat([dataHeader(block), data]);
}

export function encodeAck(block: number): Buffer {
  return head(OP.ACK, block, 'block');
}

export function encodeError(code: number, message: string): Buffer {
  // Messages are for people; keep them short enough to fit any path MTU.
  return Buffer.concat([head(OP.ERROR, code, 'error code'), cstring(message.slice(0, 200), 'message')]);
}

export function encodeOack(options: TftpOptions): Buffer {
  const parts: Buffer[] = [Buffer.from([0, OP.OACK])];
  for (const [k, v] of Object.entries(options)) parts.push(cstring(k, 'option name'), cstring(v, 'option value'));
  return Buffer.concat(parts);
}

export function encodeRequest(op: 'rrq' | 'wrq', filename: string, mode = 'octet', options: TftpOptions = {}): Buffer {
  const parts: Buffer[] = [Buffer.from([0, op === 'rrq' ? OP.RRQ : OP.WRQ]), cstring(filename, 'filename'), cstring(mode, 'mode')];
  for (const [k, v] of Object.entries(options)) parts.push(cstring(k, 'option name'), cstring(v, 'option value'));
  return Buffer.concat(parts);
}
