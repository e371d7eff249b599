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

export function macFromBytes(bytes: Uint8Array): Mac {
  if (bytes.length !== 6) throw new RangeError(`a MAC has 6 bytes, got ${bytes.length}`);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':') as Mac;
}

export function macToBytes(mac: Mac): Buffer {
  return Buffer.from(mac.replaceAll(':', ''), 'hex');
}
