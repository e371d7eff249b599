/**
 * MAC addresses arrive as `aa:bb:cc:dd:ee:ff`, `aa-bb-…`, `aabb.ccdd.eeff` or bare hex,
 * in any case (iPXE's ${mac:hexhyp}, Cisco dot form, operators typing). Everything inside
 * the appliance uses one canonical form: lowercase, colon-separated.
 */
const SEPARATED = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/;
const DOTTED = /^([0-9a-f]{4})\.([0-9a-f]{4})\.([0-9a-f]{4})$/;
const BARE = /^[0-9a-f]{12}$/;

export type Mac = string & { readonly __brand: 'Mac' };

/** Returns the canonical form, or undefined when the input is not a MAC in any accepted form. */
export function parseMac(input: string): Mac | undefined {
  const s = input.trim().toLowerCase();
  let hex: string | undefined;
  const sep = SEPARATED.exec(s);
  if (sep) hex = [sep[1], sep[3], sep[4], sep[5], sep[6], sep[7]].join('');
  else {
    const dot = DOTTED.exec(s);
    if (dot) hex = `${dot[1]}${dot[2]}${dot[3]}`;
    else if (BARE.test(s)) hex = s;
  }
  if (hex === undefined) return undefined;
  return hex.match(/../g)!.join(':') as Mac;
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
  const h = (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, 6)).toString('hex', 0, 6);
  return `${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}:${h.slice(8, 10)}:${h.slice(10, 12)}` as Mac;
}

export function macToBytes(mac: Mac): Buffer {
  return Buffer.from(mac.replaceAll(':', ''), 'hex');
}
