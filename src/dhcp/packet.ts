/**
 * BOOTP/DHCP codec (RFC 951, 2131, 2132, 3396). Knows bytes only, nothing of booting.
 * Parsing checks every length against the buffer before reading, so a hostile or broken
 * packet becomes a MalformedPacketError, never an out-of-range read or a crash.
 */
import { ipv4FromBytes, writeIpv4 } from '../net/ipv4.ts';
import { DhcpOptions, encodeTlv, Opt, OptionError, parseTlv } from './options.ts';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const MAGIC_COOKIE = 0x63825363;
/** Fixed BOOTP header before the cookie. */
export const HEADER_LENGTH = 236;
export const OPTIONS_OFFSET = HEADER_LENGTH + 4;
/** BOOTP relays and some PXE ROMs drop shorter packets (RFC 1542 §2.1). */
export const MIN_PACKET_LENGTH = 300;
/** What every DHCP client must accept (RFC 2131 §2), unless it announces more in option 57. */
export const DEFAULT_MAX_MESSAGE_SIZE = 576;
/** The largest packet we will take in; anything bigger is not a DHCP message on Ethernet. */
export const MAX_INPUT_LENGTH = 65_507;
export const FLAG_BROADCAST = 0x8000;

const SNAME_OFFSET = 44;
const SNAME_LENGTH = 64;
const FILE_OFFSET = 108;
const FILE_LENGTH = 128;

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  /** Never decide on it: OVMF sends it little-endian (wire.md). */
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** All 16 bytes of the field; the hardware address is the first `hlen`. */
  chaddr: Buffer;
  /** Empty when the field was overloaded with options. */
  sname: string;
  file: string;
  options: DhcpOptions;
}

export class MalformedPacketError extends Error {}

export type ParseResult = { ok: true; packet: DhcpPacket } | { ok: false; reason: string };

function cstring(buf: Buffer, offset: number, length: number): string {
  let end = offset;
  const limit = offset + length;
  while (end < limit && buf[end] !== 0) end += 1;
  return buf.toString('latin1', offset, end);
}

/** Parses one UDP payload. Throws MalformedPacketError with a short reason. */
export function parsePacket(input: Uint8Array): DhcpPacket {
  if (input.length < OPTIONS_OFFSET) throw new MalformedPacketError(`too short: ${input.length} bytes, need at least ${OPTIONS_OFFSET}`);
  if (input.length > MAX_INPUT_LENGTH) throw new MalformedPacketError(`too long: ${input.length} bytes`);
  // One copy of the datagram; option values and chaddr are views into it, so a caller
  // reusing its receive buffer cannot change a parsed packet.
  const buf = Buffer.from(input);
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw new MalformedPacketError(`op ${op} is neither BOOTREQUEST nor BOOTREPLY`);
  const hlen = buf[2]!;
  if (hlen > 16) throw new MalformedPacketError(`hlen ${hlen} exceeds the 16-byte chaddr field`);
  const cookie = buf.readUInt32BE(HEADER_LENGTH);
  if (cookie !== MAGIC_COOKIE) throw new MalformedPacketError(`magic cookie 0x${cookie.toString(16).padStart(8, '0')} is not 0x63825363`);

  const map = new Map<number, Buffer>();
  try {
    parseTlv(buf.subarray(OPTIONS_OFFSET), map, 'options');
  } catch (err) {
    throw new MalformedPacketError((err as Error).message);
  }
  const options = DhcpOptions.fromMap(map);

  // Overloaded fields are read after the options field, file before sname (RFC 2131 §4.1),
  // so concatenated values come out in the order the sender meant.
  let overload = 0;
  const rawOverload = map.get(Opt.OVERLOAD);
  if (rawOverload) {
    const v = options.overload();
    if (v === undefined) throw new MalformedPacketError(`option 52 (overload) has invalid value ${rawOverload.toString('hex')}`);
    overload = v;
  }
  try {
    if (overload & 1) parseTlv(buf.subarray(FILE_OFFSET, FILE_OFFSET + FILE_LENGTH), map, 'file field');
    if (overload & 2) parseTlv(buf.subarray(SNAME_OFFSET, SNAME_OFFSET + SNAME_LENGTH), map, 'sname field');
  } catch (err) {
    if (err instanceof OptionError) throw new MalformedPacketError(err.message);
    throw err;
  }

  return {
    op,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: ipv4FromBytes(buf, 12),
    yiaddr: ipv4FromBytes(buf, 16),
    siaddr: ipv4FromBytes(buf, 20),
    giaddr: ipv4FromBytes(buf, 24),
    chaddr: buf.subarray(28, 44),
    sname: overload & 2 ? '' : cstring(buf, SNAME_OFFSET, SNAME_LENGTH),
    file: overload & 1 ? '' : cstring(buf, FILE_OFFSET, FILE_LENGTH),
    options: overload ? DhcpOptions.fromMap(map) : options,
  };
}

/** parsePacket without exceptions, for socket handlers. */
export function tryParsePacket(input: Uint8Array): ParseResult {
  try {
    return { ok: true, packet: parsePacket(input) };
  } catch (err) {
    if (err instanceof MalformedPacketError) return { ok: false, reason: err.message };
    // Anything else is a bug in the codec; still never let it out of a socket handler.
    return { ok: false, reason: `parser error: ${(err as Error).message}` };
  }
}

/** The client's hardware address: the first hlen bytes of chaddr. */
export function hardwareAddress(p: Pick<DhcpPacket, 'chaddr' | 'hlen'>): Buffer {
  return p.chaddr.subarray(0, Math.min(p.hlen, 16));
}

export interface EncodeOptions {
  /** Largest packet allowed (the client's option 57, else 576). Exceeding it is an error, not a silent cut. */
  maxLength?: number;
  /**
   * Carry the options that do not fit the options field within maxLength in the `file` and
   * `sname` fields (option 52, RFC 2131 §4.1), using only fields the packet leaves empty.
   */
  overload?: boolean;
}

function writeCString(buf: Buffer, offset: number, length: number, value: string, what: string): void {
  if (value.length === 0) return;
  const bytes = Buffer.from(value, 'latin1');
  if (bytes.length >= length) throw new RangeError(`${what} "${value.slice(0, 40)}…" is ${bytes.length} bytes; the field holds ${length - 1}`);
  bytes.copy(buf, offset);
}

/** Option 53 first (some PXE ROMs look only there), the rest in insertion order; 52 is the encoder's own. */
function orderedOptions(p: DhcpPacket): [number, Buffer][] {
  const entries = p.options.entries();
  const ordered: [number, Buffer][] = [];
  for (const e of entries) if (e[0] === Opt.MESSAGE_TYPE) ordered.push(e);
  for (const e of entries) if (e[0] !== Opt.MESSAGE_TYPE && e[0] !== Opt.OVERLOAD) ordered.push(e);
  return ordered;
}

/** Where the options go: the options field, then (overloaded) the file and sname fields, each with its own End. */
interface OptionAreas {
  main: Buffer;
  file: Buffer | undefined;
  sname: Buffer | undefined;
  overload: number;
}

/**
 * Splits the options over the options field (`room` bytes, End included) and the empty file
 * and sname fields, each 255-byte run into the first field with room for it, so no option
 * short enough for one run is split (firmware that knows no RFC 3396 concatenation still reads
 * it), and the runs of a longer one in the order a parser joins them (RFC 2131 §4.1: options,
 * file, sname). Undefined when they do not fit.
 */
function overloadAreas(p: DhcpPacket, ordered: [number, Buffer][], room: number): OptionAreas | undefined {
  // The options field keeps 53 and holds 52 (3 bytes); every field ends with End.
  const free = [room - 3 - 1, p.file === '' ? FILE_LENGTH - 1 : 0, p.sname === '' ? SNAME_LENGTH - 1 : 0];
  const areas: [number, Buffer][][] = [[], [], []];
  const lastArea = new Map<number, number>();
  for (const [code, value] of ordered) {
    for (let off = 0; off === 0 || off < value.length; off += 255) {
      const run = value.subarray(off, Math.min(value.length, off + 255));
      let area = lastArea.get(code) ?? 0;
      while (area < 3 && run.length + 2 > free[area]!) area += 1;
      // Option 53 never leaves the options field: PXE ROMs read it only there.
      if (area >= 3 || (area > 0 && code === Opt.MESSAGE_TYPE)) return undefined;
      areas[area]!.push([code, run]);
      free[area]! -= run.length + 2;
      lastArea.set(code, area);
    }
  }
  const overload = (areas[1]!.length ? 1 : 0) | (areas[2]!.length ? 2 : 0);
  const main = areas[0]!;
  // 52 right after 53, so a client sees it before it reads on.
  const at = main.length && main[0]![0] === Opt.MESSAGE_TYPE ? 1 : 0;
  if (overload) main.splice(at, 0, [Opt.OVERLOAD, Buffer.from([overload])]);
  return {
    main: encodeTlv(main, true),
    file: areas[1]!.length ? encodeTlv(areas[1]!, true) : undefined,
    sname: areas[2]!.length ? encodeTlv(areas[2]!, true) : undefined,
    overload,
  };
}

/**
 * Encodes a packet: option 53 first (some PXE ROMs look only there), the rest in
 * insertion order, End, then zero padding up to 300 bytes. With `overload`, options that
 * do not fit maxLength go to the empty file/sname fields instead of failing.
 */
export function encodePacket(p: DhcpPacket, opts: EncodeOptions = {}): Buffer {
  if (p.hlen > 16) throw new RangeError(`hlen ${p.hlen} exceeds 16`);
  const ordered = orderedOptions(p);
  const max = opts.maxLength ?? Number.POSITIVE_INFINITY;
  let areas: OptionAreas = { main: encodeTlv(ordered, true), file: undefined, sname: undefined, overload: 0 };
  if (OPTIONS_OFFSET + areas.main.length > max) {
    const split = opts.overload ? overloadAreas(p, ordered, max - OPTIONS_OFFSET) : undefined;
    if (!split) throw new RangeError(`reply is ${OPTIONS_OFFSET + areas.main.length} bytes, client accepts ${max}`);
    areas = split;
  }
  const length = Math.max(MIN_PACKET_LENGTH, OPTIONS_OFFSET + areas.main.length);
  if (length > max) throw new RangeError(`reply is ${length} bytes, client accepts ${max}`);
  const out = Buffer.alloc(length);
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, 4);
  out.writeUInt16BE(p.secs & 0xffff, 8);
  out.writeUInt16BE(p.flags & 0xffff, 10);
  writeIpv4(p.ciaddr, out, 12);
  writeIpv4(p.yiaddr, out, 16);
  writeIpv4(p.siaddr, out, 20);
  writeIpv4(p.giaddr, out, 24);
  p.chaddr.copy(out, 28, 0, 16);
  if (areas.sname) areas.sname.copy(out, SNAME_OFFSET);
  else writeCString(out, SNAME_OFFSET, SNAME_LENGTH, p.sname, 'sname');
  if (areas.file) areas.file.copy(out, FILE_OFFSET);
  else writeCString(out, FILE_OFFSET, FILE_LENGTH, p.file, 'file');
  out.writeUInt32BE(MAGIC_COOKIE, HEADER_LENGTH);
  areas.main.copy(out, OPTIONS_OFFSET);
  return out;
}

/**
 * A BOOTREPLY skeleton for `request`: xid, flags, giaddr, hardware type and address
 * echoed, every address zero, no options. Callers fill in the rest.
 */
export function replyTo(request: DhcpPacket): DhcpPacket {
  return {
    op: BOOTREPLY,
    htype: request.htype,
    hlen: request.hlen,
    hops: 0,
    xid: request.xid,
    secs: 0,
    flags: request.flags,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: request.giaddr,
    chaddr: Buffer.from(request.chaddr),
    sname: '',
    file: '',
    options: new DhcpOptions(),
  };
}

/** A BOOTREQUEST with every field zero and a fresh options set; tests and scripted clients start here. */
export function emptyRequest(): DhcpPacket {
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: Buffer.alloc(16),
    sname: '',
    file: '',
    options: new DhcpOptions(),
  };
}
