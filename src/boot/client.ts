/**
 * Who is asking: the facts about a booting machine that can be read from one DHCP request.
 * Pure; the boot decision and the DHCP responders both read this, never the raw options.
 */
import type { DhcpPacket } from '../dhcp/packet.ts';
import { IpxeSubOpt, Opt } from '../dhcp/options.ts';
import type { Mac } from '../net/mac.ts';
import { uuidFromClientGuid, type Uuid } from '../net/uuid.ts';

/** Option 93 values we know (RFC 4578 and the IANA registry), by what they boot. */
export type ArchName =
  | 'bios'
  | 'efi-ia32'
  | 'efi-x64'
  | 'efi-arm32'
  | 'efi-arm64'
  | 'http-ia32'
  | 'http-x64'
  | 'http-arm32'
  | 'http-arm64'
  | 'unknown'
  | 'none';

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
  /** iPXE's announced features (option 175), so a decision can tell whether it speaks HTTP/HTTPS. */
  ipxeFeatures: { http: boolean; https: boolean } | undefined;
  hostname: string | undefined;
}

const IPXE = Buffer.from('iPXE', 'latin1');

/** Lowercase colon form straight from the bytes: this runs for every packet on the segment. */
function macOf(chaddr: Buffer): Mac {
  const h = chaddr.toString('hex', 0, 6);
  return `${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}:${h.slice(6, 8)}:${h.slice(8, 10)}:${h.slice(10, 12)}` as Mac;
}

const HTTP_ARCHES = new Set<ArchName>(['http-ia32', 'http-x64', 'http-arm32', 'http-arm64']);

/**
 * Reads a client request. Undefined when the hardware address is not Ethernet
 * (htype 1, hlen 6): nothing else boots over PXE, and the MAC is our key.
 */
export function classifyClient(p: DhcpPacket): ClientInfo | undefined {
  if (p.htype !== 1 || p.hlen !== 6) return undefined;
  const mac = macOf(p.chaddr);
  const o = p.options;
  const guid = o.clientGuid();
  const arch = o.clientArchitectures()?.[0];
  const name = archName(arch);
  const vendorClass = o.vendorClass();
  const userClass = o.userClass();
  const encap = o.get(Opt.IPXE_ENCAP);
  const features = o.ipxeOptions();
  const ipxe = encap !== undefined || (userClass !== undefined && (userClass.equals(IPXE) || o.userClasses().includes('iPXE')));
  return {
    mac,
    uuid: guid ? uuidFromClientGuid(guid) : undefined,
    guid,
    arch,
    archName: name,
    ipxe,
    httpBoot: (vendorClass?.startsWith('HTTPClient') ?? false) || HTTP_ARCHES.has(name),
    vendorClass,
    ipxeFeatures: encap !== undefined ? { http: features?.has(IpxeSubOpt.HTTP) ?? false, https: features?.has(IpxeSubOpt.HTTPS) ?? false } : undefined,
    hostname: o.hostname(),
  };
}
