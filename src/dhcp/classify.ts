/**
 * Reads the boot facts (boot/client.ts) out of one DHCP request: the only place that knows
 * which options say what about a booting machine (shared/notes/wire.md "Who is asking").
 */
import { archName, type ArchName, type ClientInfo } from '../boot/client.ts';
import { macFromBytes } from '../net/mac.ts';
import { uuidFromClientGuid } from '../net/uuid.ts';
import { IpxeSubOpt, Opt } from './options.ts';
import type { DhcpPacket } from './packet.ts';

const IPXE = Buffer.from('iPXE', 'latin1');
const HTTP_ARCHES = new Set<ArchName>(['http-ia32', 'http-x64', 'http-arm32', 'http-arm64']);

/**
 * Undefined when the hardware address is not Ethernet (htype 1, hlen 6): nothing else boots
 * over PXE, and the MAC is our key. iPXE is known by option 77 "iPXE" or by option 175,
 * never by option 60 (it says PXEClient too, and matching it makes a chainload loop).
 */
export function classifyClient(p: DhcpPacket): ClientInfo | undefined {
  if (p.htype !== 1 || p.hlen !== 6) return undefined;
  const o = p.options;
  const guid = o.clientGuid();
  const arch = o.clientArchitectures()?.[0];
  const name = archName(arch);
  const vendorClass = o.vendorClass();
  const userClass = o.userClass();
  const encap = o.has(Opt.IPXE_ENCAP);
  const features = encap ? o.ipxeOptions() : undefined;
  const ipxe = encap || (userClass !== undefined && (userClass.equals(IPXE) || o.userClasses().includes('iPXE')));
  return {
    mac: macFromBytes(p.chaddr),
    uuid: guid ? uuidFromClientGuid(guid) : undefined,
    guid,
    arch,
    archName: name,
    ipxe,
    httpBoot: (vendorClass?.startsWith('HTTPClient') ?? false) || HTTP_ARCHES.has(name),
    vendorClass,
    ipxeFeatures: encap ? { http: features?.has(IpxeSubOpt.HTTP) ?? false, https: features?.has(IpxeSubOpt.HTTPS) ?? false } : undefined,
    hostname: o.hostname(),
  };
}
