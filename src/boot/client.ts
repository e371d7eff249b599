/**
 * Who is asking: the facts about a booting machine, as dhcp/classify.ts reads them from one
 * request. The boot decision reads these, never packets or raw options.
 */
import type { Mac } from '../net/mac.ts';
import type { Uuid } from '../net/uuid.ts';

/** Option 93 values we know (RFC 4578 and the IANA registry), by what they boot. */
export type ArchName = 'bios' | 'efi-ia32' | 'efi-x64' | 'efi-arm32' | 'efi-arm64' | 'http-ia32' | 'http-x64' | 'http-arm32' | 'http-arm64' | 'unknown' | 'none';

const ARCH_NAMES: Record<number, ArchName> = {
  0: 'bios',
  6: 'efi-ia32',
  7: 'efi-x64',
  // 9 is "EFI BC", which every firmware that sends it means as x64; answering it
  // differently from 7 sends clients into a loop (wire.md).
  9: 'efi-x64',
  10: 'efi-arm32',
  11: 'efi-arm64',
  15: 'http-ia32',
  16: 'http-x64',
  18: 'http-arm32',
  19: 'http-arm64',
};

export function archName(code: number | undefined): ArchName {
  if (code === undefined) return 'none';
  return ARCH_NAMES[code] ?? 'unknown';
}

export interface ClientInfo {
  mac: Mac;
  /** SMBIOS UUID from option 97, when it has the 17-byte type-0 form. */
  uuid: Uuid | undefined;
  /** Option 97 as sent, echoed unchanged in replies. */
  guid: Buffer | undefined;
  /** First value of option 93; undefined means "not a PXE client". */
  arch: number | undefined;
  archName: ArchName;
  /** iPXE, known by option 77 "iPXE" or by option 175; never by option 60 (it also says PXEClient). */
  ipxe: boolean;
  /** UEFI HTTP Boot: option 60 starts with HTTPClient, or an HTTP Boot architecture. */
  httpBoot: boolean;
  vendorClass: string | undefined;
  /**
   * What iPXE announced in option 175 (undefined when it sent none, e.g. 77 only): the
   * decision checks HTTPS support before sending it to an https:// boot script.
   */
  ipxeFeatures: { http: boolean; https: boolean } | undefined;
  hostname: string | undefined;
}
