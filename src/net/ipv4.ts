/**
 * IPv4 addresses as the appliance handles them: dotted quads at the edges (config, logs,
 * packets), 32-bit unsigned integers for arithmetic (pools, subnets). The one place that
 * converts between the two and writes them into bytes.
 */

/** A dotted quad as an unsigned 32-bit integer. The caller has checked the text (isIPv4 or writeIpv4). */
export function ipv4ToInt(ip: string): number {
  let value = 0;
  let octet = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      value = (value << 8) + octet;
      octet = 0;
    } else octet = octet * 10 + (c - 48);
  }
  return ((value << 8) + octet) >>> 0;
}

export function intToIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Writes a dotted quad into `out` at `offset`; throws RangeError when the text is not one. */
export function writeIpv4(ip: string, out: Uint8Array, offset: number): void {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || part > 3) throw new RangeError(`not an IPv4 address: "${ip}"`);
      out[offset + part] = value;
      part += 1;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      value = value * 10 + (c - 48);
      digits += 1;
      if (value > 255) throw new RangeError(`not an IPv4 address: "${ip}"`);
    } else {
      throw new RangeError(`not an IPv4 address: "${ip}"`);
    }
  }
  if (part !== 4) throw new RangeError(`not an IPv4 address: "${ip}"`);
}

export function ipv4Bytes(ip: string): Buffer {
  const out = Buffer.alloc(4);
  writeIpv4(ip, out, 0);
  return out;
}

export function ipv4FromBytes(b: Uint8Array, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

/** The network part of `ip` under `mask`. */
export function networkOf(ip: string, mask: string): number {
  return (ipv4ToInt(ip) & ipv4ToInt(mask)) >>> 0;
}

export function sameSubnet(a: string, b: string, mask: string): boolean {
  return networkOf(a, mask) === networkOf(b, mask);
}

/** The subnet's broadcast address (option 28). */
export function broadcastOf(ip: string, mask: string): string {
  return intToIpv4((networkOf(ip, mask) | (~ipv4ToInt(mask) >>> 0)) >>> 0);
}
