/**
 * MAC addresses arrive as `aa:bb:cc:dd:ee:ff`, `aa-bb-…`, `aabb.ccdd.eeff` or bare hex,
 * in any case (iPXE's ${mac:hexhyp}, Cisco dot form, operators typing). Everything inside
 * the appliance uses one canonical form: lowercase, colon-separated.
 */
import { hexByte } from '../util/hex-byte.ts';

const SEPARATED = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/;
const DOTTED = /^([0-9a-f]{4})\.([0-9a-f]{4})\.([0-9a-f]{4})$/;
const BARE = /^[0-9a-f]{12}$/;

export type Mac = string & { readonly __brand: 'Mac' };

/** Returns the canonical form, or undefined when the input is not a MAC in any accepted form. */
export function parseMac(input: string): Mac | undefined {
  const separated = lowerSeparated(input);
  if (separated !== undefined) return separated;
  const s = input.trim().toLowerCase();
  let hex: string | undefined;
  const sep = SEPARATED.exec(s);
  // Upper case or padded: the separated forms still need no rebuilding.
  if (sep) return (sep[2] === ':' ? s : s.replaceAll('-', ':')) as Mac;
  const dot = DOTTED.exec(s);
  if (dot) hex = `${dot[1]}${dot[2]}${dot[3]}`;
  else if (BARE.test(s)) hex = s;
  if (hex === undefined) return undefined;
  return `${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:${hex.slice(6, 8)}:${hex.slice(8, 10)}:${hex.slice(10, 12)}` as Mac;
}

/** 0-9 and a-f. */
function isLowerHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
}

/**
 * The form every /ipxe request carries (iPXE's ${mac:hexhyp}, or colons) checked by character
 * code: no trim, no lowercase copy, no regex (each was a share of a request, bench/http).
 */
function lowerSeparated(s: string): Mac | undefined {
  if (s.length !== 17) return undefined;
  const sep = s.charCodeAt(2);
  if (sep !== 58 && sep !== 45) return undefined;
  for (let i = 0; i < 17; i++) {
    const c = s.charCodeAt(i);
    if (i % 3 === 2 ? c !== sep : !isLowerHex(c)) return undefined;
  }
  return (sep === 58 ? s : s.replaceAll('-', ':')) as Mac;
}

/** The forms parseMac accepts, for error messages. */
export const MAC_FORMS = '52:54:00:12:34:56, 52-54-00-12-34-56, 5254.0012.3456 or 525400123456';

/**
 * A MAC typed by a person or sent in a request (query string, URL, CLI flag). The reason
 * names the field (`mac`, `--mac`) so every edge words the same mistake the same way.
 */
export function parseMacInput(text: string, field: string): { ok: true; mac: Mac } | { ok: false; reason: string } {
  const mac = parseMac(text);
  return mac ? { ok: true, mac } : { ok: false, reason: `${field}: "${text.slice(0, 64)}" is not a MAC address (accepted forms: ${MAC_FORMS})` };
}

/** Lowercase colon form straight from the bytes: DHCP runs this for every packet on the segment. */
export function macFromBytes(bytes: Uint8Array): Mac {
  if (bytes.length < 6) throw new RangeError(`a MAC has 6 bytes, got ${bytes.length}`);
  return `${hexByte(bytes, 0)}:${hexByte(bytes, 1)}:${hexByte(bytes, 2)}:${hexByte(bytes, 3)}:${hexByte(bytes, 4)}:${hexByte(bytes, 5)}` as Mac;
}

export function macToBytes(mac: Mac): Buffer {
  return Buffer.from(mac.replaceAll(':', ''), 'hex');
}
