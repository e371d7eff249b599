/**
 * The two ICMPv6 messages the RA quench needs (RFC 4861): Router Solicitations (we receive
 * the clients' and send one of our own to find a real router) and Router Advertisements (we
 * send the quench and listen for a real router's). Bytes only; the socket is router-advert.ts.
 *
 * The checksum field is left zero: on a raw ICMPv6 socket the kernel computes it over the
 * IPv6 pseudo-header (RFC 3542 §3.1), which we cannot see from here anyway.
 */
import { macFromBytes, macToBytes, type Mac } from './mac.ts';

export const ICMPV6_ROUTER_SOLICITATION = 133;
export const ICMPV6_ROUTER_ADVERTISEMENT = 134;
/** Neighbor Discovery option types (RFC 4861 §4.6). */
const OPT_SOURCE_LINK_LAYER = 1;

const RA_HEADER = 16;
const RS_HEADER = 8;

export interface RouterAdvertisement {
  curHopLimit: number;
  managed: boolean;
  other: boolean;
  /** Seconds; 0 = "not a default router" (RFC 4861 §4.2), which is the whole point of the quench. */
  routerLifetime: number;
  reachableTime: number;
  retransTimer: number;
  sourceMac: Mac | undefined;
  /** Option types present, in order (a quench RA carries no prefix information, type 3). */
  optionTypes: number[];
}

/**
 * The quench RA: hop limit/flags/timers all "unspecified" (0), router lifetime 0, no prefix.
 * A host takes nothing from it except "a router answered", which ends iPXE's IPv6 wait.
 */
export function buildQuenchAdvertisement(sourceMac?: Mac): Buffer {
  return buildRouterAdvertisement(0, sourceMac);
}

/** An RA with the given router lifetime (seconds) and nothing else; lifetime 0 is the quench, >0 what a real router says (tests play one). */
export function buildRouterAdvertisement(routerLifetime: number, sourceMac?: Mac): Buffer {
  const b = Buffer.alloc(RA_HEADER + (sourceMac ? 8 : 0));
  b[0] = ICMPV6_ROUTER_ADVERTISEMENT;
  // code 0, checksum 0 (kernel), cur hop limit 0, M/O flags 0, reachable 0, retrans 0
  b.writeUInt16BE(routerLifetime, 6);
  if (sourceMac) writeSourceLinkLayer(b, RA_HEADER, sourceMac);
  return b;
}

/** The solicitation --ipv6-ra-quench auto sends at start: any router on the link answers it at once instead of at its next periodic RA (minutes away). */
export function buildRouterSolicitation(sourceMac?: Mac): Buffer {
  const b = Buffer.alloc(RS_HEADER + (sourceMac ? 8 : 0));
  b[0] = ICMPV6_ROUTER_SOLICITATION;
  if (sourceMac) writeSourceLinkLayer(b, RS_HEADER, sourceMac);
  return b;
}

function writeSourceLinkLayer(b: Buffer, offset: number, mac: Mac): void {
  b[offset] = OPT_SOURCE_LINK_LAYER;
  b[offset + 1] = 1; // length in units of 8 octets
  macToBytes(mac).copy(b, offset + 2);
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

interface NdOption {
  type: number;
  body: Buffer;
}

/** RFC 4861 §4.6: options are type, length in 8-octet units (0 is invalid), body. */
function parseOptions(b: Buffer, offset: number): ParseResult<NdOption[]> {
  const out: NdOption[] = [];
  let i = offset;
  while (i < b.length) {
    if (i + 2 > b.length) return { ok: false, reason: 'truncated option header' };
    const len = b[i + 1]! * 8;
    if (len === 0) return { ok: false, reason: 'option with length 0' };
    if (i + len > b.length) return { ok: false, reason: 'option runs past the end' };
    out.push({ type: b[i]!, body: b.subarray(i + 2, i + len) });
    i += len;
  }
  return { ok: true, value: out };
}

function sourceMacOf(options: NdOption[]): Mac | undefined {
  const sll = options.find((o) => o.type === OPT_SOURCE_LINK_LAYER);
  if (!sll || sll.body.length < 6) return undefined;
  return macFromBytes(sll.body.subarray(0, 6));
}

export interface RouterSolicitation {
  /** From the source link-layer address option, when the host sent one (it must not from ::). */
  sourceMac: Mac | undefined;
}

/** Validates a Router Solicitation as RFC 4861 §6.1.1 asks of what we can see (no IPv6 header here). */
export function parseRouterSolicitation(b: Buffer): ParseResult<RouterSolicitation> {
  if (b.length < RS_HEADER) return { ok: false, reason: `too short (${b.length} bytes)` };
  if (b[0] !== ICMPV6_ROUTER_SOLICITATION) return { ok: false, reason: `type ${b[0]} is not a router solicitation` };
  if (b[1] !== 0) return { ok: false, reason: `code ${b[1]} is not 0` };
  const options = parseOptions(b, RS_HEADER);
  if (!options.ok) return options;
  return { ok: true, value: { sourceMac: sourceMacOf(options.value) } };
}

/** For tests and diagnostics: reads back an RA (ours or a captured one). */
export function parseRouterAdvertisement(b: Buffer): ParseResult<RouterAdvertisement> {
  if (b.length < RA_HEADER) return { ok: false, reason: `too short (${b.length} bytes)` };
  if (b[0] !== ICMPV6_ROUTER_ADVERTISEMENT) return { ok: false, reason: `type ${b[0]} is not a router advertisement` };
  if (b[1] !== 0) return { ok: false, reason: `code ${b[1]} is not 0` };
  const options = parseOptions(b, RA_HEADER);
  if (!options.ok) return options;
  return {
    ok: true,
    value: {
      curHopLimit: b[4]!,
      managed: (b[5]! & 0x80) !== 0,
      other: (b[5]! & 0x40) !== 0,
      routerLifetime: b.readUInt16BE(6),
      reachableTime: b.readUInt32BE(8),
      retransTimer: b.readUInt32BE(12),
      sourceMac: sourceMacOf(options.value),
      optionTypes: options.value.map((o) => o.type),
    },
  };
}
