/**
 * DHCP options as bytes, with typed accessors for the ones the appliance reads or writes.
 * Values stay raw so an option we do not understand is carried unchanged; accessors return
 * undefined for a value of the wrong shape instead of throwing, so one odd option never
 * costs a client its answer.
 */
import { ipv4Bytes, ipv4FromBytes } from '../net/ipv4.ts';

export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  BROADCAST_ADDRESS: 28,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER_NAME: 66,
  BOOTFILE_NAME: 67,
  USER_CLASS: 77,
  RELAY_AGENT_INFO: 82,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_GUID: 97,
  IPXE_ENCAP: 175,
  END: 255,
} as const;

export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

const MESSAGE_TYPE_NAMES: Record<number, string> = {
  1: 'DISCOVER',
  2: 'OFFER',
  3: 'REQUEST',
  4: 'DECLINE',
  5: 'ACK',
  6: 'NAK',
  7: 'RELEASE',
  8: 'INFORM',
};

/** 'DISCOVER', 'ACK', …; 'none' for BOOTP (no option 53), 'type-N' for codes we do not know. Used as a metrics label. */
export function messageTypeName(code: number | undefined): string {
  if (code === undefined) return 'none';
  return MESSAGE_TYPE_NAMES[code] ?? `type-${code}`;
}

/** PXE sub-options carried inside option 43 (PXE spec 2.1, table 2-1). */
export const PxeSubOpt = {
  DISCOVERY_CONTROL: 6,
  BOOT_SERVERS: 8,
  BOOT_MENU: 9,
  MENU_PROMPT: 10,
  BOOT_ITEM: 71,
} as const;

/** Relay agent sub-options carried inside option 82 (RFC 3046, RFC 3527). */
export const RelayAgentSubOpt = {
  CIRCUIT_ID: 1,
  REMOTE_ID: 2,
  /** The client's link when giaddr is not on it (RFC 3527). */
  LINK_SELECTION: 5,
} as const;

/** iPXE feature sub-options carried inside option 175 (iPXE's include/ipxe/dhcp.h). */
export const IpxeSubOpt = {
  PRIORITY: 1,
  PXEEXT: 16,
  ISCSI: 17,
  AOE: 18,
  HTTP: 19,
  HTTPS: 20,
  TFTP: 21,
  FTP: 22,
  DNS: 23,
  BZIMAGE: 24,
  MULTIBOOT: 25,
  SLAM: 26,
  SRP: 27,
  NBI: 32,
  PXE: 33,
  ELF: 34,
  COMBOOT: 35,
  EFI: 36,
  FCOE: 37,
  VLAN: 38,
  MENU: 39,
  SDI: 40,
  NFS: 41,
  /** "no-pxedhcp": tells iPXE not to wait for ProxyDHCP offers. */
  NO_PXEDHCP: 176,
} as const;

export class OptionError extends Error {}

/**
 * Parses a code/length/value run as used by the options field and by encapsulated
 * options (43, 175). Pad is skipped, End stops. A value running past the end of the
 * buffer is an error. A repeated code is concatenated (RFC 3396), in order.
 * `sawEnd` tells whether an End option was seen.
 */
export function parseTlv(buf: Buffer, into: Map<number, Buffer> = new Map(), what = 'options'): { options: Map<number, Buffer>; sawEnd: boolean } {
  let i = 0;
  while (i < buf.length) {
    const code = buf[i]!;
    if (code === Opt.PAD) {
      i += 1;
      continue;
    }
    if (code === Opt.END) return { options: into, sawEnd: true };
    if (i + 1 >= buf.length) throw new OptionError(`${what}: option ${code} at offset ${i} has no length byte`);
    const len = buf[i + 1]!;
    const start = i + 2;
    const end = start + len;
    if (end > buf.length) throw new OptionError(`${what}: option ${code} at offset ${i} claims ${len} bytes, ${buf.length - start} left`);
    // A view, not a copy: parsePacket copies the datagram once and every value points into it.
    const value = buf.subarray(start, end);
    const prev = into.get(code);
    into.set(code, prev ? Buffer.concat([prev, value]) : value);
    i = end;
  }
  return { options: into, sawEnd: false };
}

/** Encodes code/length/value entries, splitting values longer than 255 bytes into consecutive instances (RFC 3396). */
export function encodeTlv(entries: Iterable<[number, Uint8Array]>, withEnd: boolean): Buffer {
  // Read twice (sizes, then bytes): an array already is, other iterables are copied once.
  const list = Array.isArray(entries) ? (entries as readonly [number, Uint8Array][]) : [...entries];
  let size = withEnd ? 1 : 0;
  for (const [code, value] of list) {
    if (!Number.isInteger(code) || code <= Opt.PAD || code >= Opt.END) throw new OptionError(`option code ${code} cannot carry a value`);
    size += value.length === 0 ? 2 : value.length + 2 * Math.ceil(value.length / 255);
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const [code, value] of list) {
    if (value.length === 0) {
      out[at++] = code;
      out[at++] = 0;
      continue;
    }
    for (let off = 0; off < value.length; off += 255) {
      const n = Math.min(255, value.length - off);
      out[at++] = code;
      out[at++] = n;
      out.set(value.subarray(off, off + n), at);
      at += n;
    }
  }
  if (withEnd) out[at++] = Opt.END;
  return out;
}

export function u8(n: number): Buffer {
  return Buffer.from([n & 0xff]);
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** Option strings are ASCII on the wire; latin1 keeps every byte one character, so nothing is lost or replaced. */
function text(b: Buffer): string {
  // Some clients count a trailing NUL into the length (old ROMs do for 60 and 67).
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end -= 1;
  return b.subarray(0, end).toString('latin1');
}

export interface ClientNdi {
  type: number;
  major: number;
  minor: number;
}

/**
 * The options of one packet: code → raw bytes (repeated codes already concatenated),
 * in first-seen order. Setting keeps insertion order; the packet encoder puts option 53
 * first whatever the order here.
 */
export class DhcpOptions {
  private map: Map<number, Buffer>;

  constructor(entries?: Iterable<[number, Uint8Array]>) {
    this.map = new Map();
    if (entries) for (const [code, value] of entries) this.set(code, value);
  }

  /** Takes `map` as it is, not a copy (the parser's own map, one per packet: copying it showed in the offer's profile). */
  static fromMap(map: Map<number, Buffer>): DhcpOptions {
    const o = new DhcpOptions();
    o.map = map;
    return o;
  }

  get(code: number): Buffer | undefined {
    return this.map.get(code);
  }

  has(code: number): boolean {
    return this.map.has(code);
  }

  /** Takes the value as given (a Buffer is not copied: do not change it afterwards). */
  set(code: number, value: Uint8Array): this {
    if (!Number.isInteger(code) || code <= Opt.PAD || code >= Opt.END) throw new OptionError(`option code ${code} cannot carry a value`);
    this.map.set(code, Buffer.isBuffer(value) ? value : Buffer.from(value));
    return this;
  }

  delete(code: number): boolean {
    return this.map.delete(code);
  }

  codes(): number[] {
    return [...this.map.keys()];
  }

  entries(): [number, Buffer][] {
    return [...this.map.entries()];
  }

  get size(): number {
    return this.map.size;
  }

  setU8(code: number, n: number): this {
    return this.set(code, u8(n));
  }
  setU16(code: number, n: number): this {
    return this.set(code, u16(n));
  }
  setU32(code: number, n: number): this {
    return this.set(code, u32(n));
  }
  setIp(code: number, ip: string): this {
    return this.set(code, ipv4Bytes(ip));
  }
  setIps(code: number, ips: string[]): this {
    return this.set(code, Buffer.concat(ips.map(ipv4Bytes)));
  }
  setString(code: number, s: string): this {
    return this.set(code, Buffer.from(s, 'latin1'));
  }

  private fixed(code: number, len: number): Buffer | undefined {
    const v = this.map.get(code);
    return v && v.length === len ? v : undefined;
  }
  private ip(code: number): string | undefined {
    const v = this.fixed(code, 4);
    return v ? ipv4FromBytes(v) : undefined;
  }
  private str(code: number): string | undefined {
    const v = this.map.get(code);
    return v ? text(v) : undefined;
  }

  /** 53 */
  messageType(): number | undefined {
    return this.fixed(Opt.MESSAGE_TYPE, 1)?.[0];
  }
  /** 12 */
  hostname(): string | undefined {
    return this.str(Opt.HOSTNAME);
  }
  /** 50 */
  requestedIp(): string | undefined {
    return this.ip(Opt.REQUESTED_IP);
  }
  /** 51, seconds */
  leaseTime(): number | undefined {
    return this.fixed(Opt.LEASE_TIME, 4)?.readUInt32BE(0);
  }
  /** 52: 1 = file holds options, 2 = sname does, 3 = both. */
  overload(): number | undefined {
    const v = this.fixed(Opt.OVERLOAD, 1)?.[0];
    return v !== undefined && v >= 1 && v <= 3 ? v : undefined;
  }
  /** 54 */
  serverId(): string | undefined {
    return this.ip(Opt.SERVER_ID);
  }
  /** 55 */
  parameterRequestList(): number[] | undefined {
    const v = this.map.get(Opt.PARAMETER_REQUEST_LIST);
    return v ? [...v] : undefined;
  }
  /** 57; RFC 2132 says at least 576, smaller values are treated as absent. */
  maxMessageSize(): number | undefined {
    const n = this.fixed(Opt.MAX_MESSAGE_SIZE, 2)?.readUInt16BE(0);
    return n !== undefined && n >= 576 ? n : undefined;
  }
  /** 60 */
  vendorClass(): string | undefined {
    return this.str(Opt.VENDOR_CLASS);
  }
  /** 61 */
  clientId(): Buffer | undefined {
    const v = this.map.get(Opt.CLIENT_ID);
    return v && v.length >= 2 ? v : undefined;
  }
  /** 66 */
  tftpServerName(): string | undefined {
    return this.str(Opt.TFTP_SERVER_NAME);
  }
  /** 67 */
  bootfileName(): string | undefined {
    return this.str(Opt.BOOTFILE_NAME);
  }
  /**
   * 77 as raw bytes. iPXE sends the plain string `iPXE`, not the RFC 3004
   * length-prefixed form, so callers compare bytes rather than decoding classes.
   */
  userClass(): Buffer | undefined {
    return this.map.get(Opt.USER_CLASS);
  }
  /** 77 decoded both ways: the plain string and, when it parses as RFC 3004, each class. */
  userClasses(): string[] {
    const v = this.map.get(Opt.USER_CLASS);
    if (!v || v.length === 0) return [];
    const out = new Set<string>([text(v)]);
    const rfc: string[] = [];
    let i = 0;
    while (i < v.length) {
      const len = v[i]!;
      if (len === 0 || i + 1 + len > v.length) return [...out];
      rfc.push(v.subarray(i + 1, i + 1 + len).toString('latin1'));
      i += 1 + len;
    }
    for (const c of rfc) out.add(c);
    return [...out];
  }
  /** 93: every architecture type listed (RFC 4578 allows several); undefined when absent or of odd length. */
  clientArchitectures(): number[] | undefined {
    const v = this.map.get(Opt.CLIENT_ARCH);
    if (!v || v.length < 2 || v.length % 2 !== 0) return undefined;
    const out: number[] = [];
    for (let i = 0; i < v.length; i += 2) out.push(v.readUInt16BE(i));
    return out;
  }
  /** 94 */
  clientNdi(): ClientNdi | undefined {
    const v = this.fixed(Opt.CLIENT_NDI, 3);
    return v ? { type: v[0]!, major: v[1]!, minor: v[2]! } : undefined;
  }
  /** 97: the raw bytes (type byte + GUID), echoed unchanged in replies. */
  clientGuid(): Buffer | undefined {
    return this.map.get(Opt.CLIENT_GUID);
  }
  /** 82: the raw bytes, echoed unchanged in replies to a relayed request. */
  relayAgentInfo(): Buffer | undefined {
    return this.map.get(Opt.RELAY_AGENT_INFO);
  }
  /** 82.5 (RFC 3527): the address of the client's link; undefined when absent or not 4 bytes. */
  linkSelection(): string | undefined {
    const v = this.encapsulated(Opt.RELAY_AGENT_INFO)?.get(RelayAgentSubOpt.LINK_SELECTION);
    return v && v.length === 4 ? ipv4FromBytes(v) : undefined;
  }
  /** 43 read as PXE sub-options; undefined when absent or not a valid sub-option run. */
  pxeVendorOptions(): Map<number, Buffer> | undefined {
    return this.encapsulated(Opt.VENDOR_SPECIFIC);
  }
  /** 175 read as iPXE feature sub-options; undefined when absent or malformed. */
  ipxeOptions(): Map<number, Buffer> | undefined {
    return this.encapsulated(Opt.IPXE_ENCAP);
  }

  private encapsulated(code: number): Map<number, Buffer> | undefined {
    const v = this.map.get(code);
    if (!v) return undefined;
    try {
      return parseTlv(v, new Map(), `option ${code}`).options;
    } catch {
      return undefined;
    }
  }
}

/** Option 43 for a BIOS PXE client: discovery control 8 = "take the boot file from this offer, skip boot server discovery". */
export function pxeDiscoveryControl(bits: number): Buffer {
  return encodeTlv([[PxeSubOpt.DISCOVERY_CONTROL, u8(bits)]], true);
}

/** Encodes sub-options for 43 or 175 (with the End byte PXE expects). */
export function encodeEncapsulated(entries: Iterable<[number, Uint8Array]>): Buffer {
  return encodeTlv(entries, true);
}
