import { hexByte } from '../util/hex-byte.ts';

/** SMBIOS UUIDs are compared lowercase in the 8-4-4-4-12 form; iPXE's ${uuid} already prints that. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type Uuid = string & { readonly __brand: 'Uuid' };

export function parseUuid(input: string): Uuid | undefined {
  const s = input.trim().toLowerCase();
  if (UUID.test(s)) return s as Uuid;
  // Accept the 32-hex-digit form without dashes too.
  if (/^[0-9a-f]{32}$/.test(s)) {
    return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}` as Uuid;
  }
  return undefined;
}

/** A UUID from a request or a CLI flag; the reason names the field, as parseMacInput's does. */
export function parseUuidInput(text: string, field: string): { ok: true; uuid: Uuid } | { ok: false; reason: string } {
  const uuid = parseUuid(text);
  return uuid ? { ok: true, uuid } : { ok: false, reason: `${field}: "${text.slice(0, 64)}" is not a UUID (e.g. 1cff2cd8-f00a-42c8-9426-f55e6a1847f6)` };
}

/**
 * DHCP option 97 carries the SMBIOS UUID as 16 bytes after a type byte of 0, with the
 * first three fields little-endian (OVMF and iPXE both do this, see shared/notes/wire.md).
 */
export function uuidFromClientGuid(guid: Uint8Array): Uuid | undefined {
  if (guid.length !== 17 || guid[0] !== 0) return undefined;
  // Every DHCP request from PXE firmware carries one: formatted from a table, no buffers or regexes.
  const h = hexByte;
  return `${h(guid, 4)}${h(guid, 3)}${h(guid, 2)}${h(guid, 1)}-${h(guid, 6)}${h(guid, 5)}-${h(guid, 8)}${h(guid, 7)}-${h(guid, 9)}${h(guid, 10)}-${h(guid, 11)}${h(guid, 12)}${h(guid, 13)}${h(guid, 14)}${h(guid, 15)}${h(guid, 16)}` as Uuid;
}
