/** Two lowercase hex digits per byte value: MACs and UUIDs of every DHCP packet are formatted from it. */
const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Byte `i` of `bytes` as two lowercase hex digits. A function of its own rather than a closure
 * made per call: tsx wraps every closure it sees made in a naming helper, per call.
 */
export function hexByte(bytes: Uint8Array, i: number): string {
  return HEX_BYTE[bytes[i]!]!;
}
