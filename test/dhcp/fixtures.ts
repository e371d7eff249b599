/**
 * Requests shaped like the ones real firmware sends (option sets and order as seen in
 * captures of OVMF, SeaBIOS+iPXE, AAVMF, OVMF HTTP Boot, ISC dhclient and busybox udhcpc;
 * see shared/notes/wire.md). Shared by the codec, decision and namespace tests, the
 * scripted clients and the benchmark generator.
 */
import { encodePacket, emptyRequest, FLAG_BROADCAST, type DhcpPacket } from '../../src/dhcp/packet.ts';
import { encodeEncapsulated, encodeTlv, IpxeSubOpt, MessageType, Opt, RelayAgentSubOpt, u16, u8 } from '../../src/dhcp/options.ts';
import { ipv4Bytes } from '../../src/net/ipv4.ts';
import { macToBytes, type Mac } from '../../src/net/mac.ts';

export type ClientKind = 'bios' | 'uefi7' | 'uefi9' | 'ia32' | 'arm64' | 'httpboot16' | 'httpboot19' | 'ipxe-bios' | 'ipxe-efi' | 'ipxe-175-only' | 'udhcpc' | 'dhclient';

export const ALL_KINDS: ClientKind[] = ['bios', 'uefi7', 'uefi9', 'ia32', 'arm64', 'httpboot16', 'httpboot19', 'ipxe-bios', 'ipxe-efi', 'ipxe-175-only', 'udhcpc', 'dhclient'];

/** SMBIOS UUID 8e8d6c3f-2a1b-4c5d-9e0f-112233445566 as option 97 carries it (first three fields little-endian). */
export const GUID_97 = Buffer.from('00' + '3f6c8d8e' + '1b2a' + '5d4c' + '9e0f112233445566', 'hex');
export const GUID_UUID = '8e8d6c3f-2a1b-4c5d-9e0f-112233445566';

export interface RequestInit {
  kind: ClientKind;
  mac: Mac;
  xid: number;
  type?: number;
  ciaddr?: string;
  giaddr?: string;
  serverId?: string;
  requestedIp?: string;
  /** Option 82 as a relay appends it (last); only meaningful with giaddr. */
  relayInfo?: Buffer;
}

/** Option 82 as a switch's relay agent sends it: circuit id, remote id and, when given, the client's link (82.5, RFC 3527). */
export function relayAgentInfo(circuit: string, remote: string, link?: string): Buffer {
  const sub: [number, Uint8Array][] = [
    [RelayAgentSubOpt.CIRCUIT_ID, Buffer.from(circuit, 'latin1')],
    [RelayAgentSubOpt.REMOTE_ID, Buffer.from(remote, 'latin1')],
  ];
  if (link) sub.push([RelayAgentSubOpt.LINK_SELECTION, ipv4Bytes(link)]);
  return encodeTlv(sub, false);
}

const EFI_PRL = [1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135];
const IPXE_PRL = [1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203];

function ipxeFeatures(): Buffer {
  return encodeEncapsulated([
    [IpxeSubOpt.PXEEXT, u8(2)],
    [IpxeSubOpt.ISCSI, u8(1)],
    [IpxeSubOpt.AOE, u8(1)],
    [IpxeSubOpt.HTTP, u8(1)],
    [IpxeSubOpt.TFTP, u8(1)],
    [IpxeSubOpt.DNS, u8(1)],
    [IpxeSubOpt.BZIMAGE, u8(1)],
    [IpxeSubOpt.MENU, u8(1)],
  ]).subarray(0, -1); // iPXE sends no End inside 175
}

/** Builds the DhcpPacket a client of `kind` would send. */
export function request(init: RequestInit): DhcpPacket {
  const p = emptyRequest();
  const type = init.type ?? MessageType.DISCOVER;
  p.xid = init.xid >>> 0;
  macToBytes(init.mac).copy(p.chaddr);
  p.ciaddr = init.ciaddr ?? '0.0.0.0';
  p.giaddr = init.giaddr ?? '0.0.0.0';
  if (p.giaddr !== '0.0.0.0') p.hops = 1;
  const o = p.options;
  o.setU8(Opt.MESSAGE_TYPE, type);
  const efi = (arch: number, vc: string) => {
    p.flags = FLAG_BROADCAST;
    p.secs = 0x0100; // OVMF's little-endian "1 second"
    o.setU16(Opt.MAX_MESSAGE_SIZE, type === MessageType.REQUEST ? 65280 : 1472);
    if (init.serverId) o.setIp(Opt.SERVER_ID, init.serverId);
    if (init.requestedIp) o.setIp(Opt.REQUESTED_IP, init.requestedIp);
    o.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from(EFI_PRL));
    o.set(Opt.CLIENT_GUID, GUID_97);
    o.set(Opt.CLIENT_NDI, Buffer.from([1, 3, 0]));
    o.set(Opt.CLIENT_ARCH, u16(arch));
    o.setString(Opt.VENDOR_CLASS, `${vc}:Arch:${String(arch).padStart(5, '0')}:UNDI:003000`);
  };
  const ipxe = (arch: number, with77: boolean) => {
    o.setU16(Opt.MAX_MESSAGE_SIZE, 1472);
    if (init.serverId) o.setIp(Opt.SERVER_ID, init.serverId);
    if (init.requestedIp) o.setIp(Opt.REQUESTED_IP, init.requestedIp);
    o.set(Opt.CLIENT_ARCH, u16(arch));
    o.set(Opt.CLIENT_NDI, Buffer.from([1, 2, 1]));
    o.setString(Opt.VENDOR_CLASS, `PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:002001`);
    if (with77) o.setString(Opt.USER_CLASS, 'iPXE');
    o.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from(IPXE_PRL));
    o.set(Opt.IPXE_ENCAP, ipxeFeatures());
    o.set(Opt.CLIENT_ID, Buffer.concat([Buffer.from([1]), macToBytes(init.mac)]));
    o.set(Opt.CLIENT_GUID, GUID_97);
  };
  switch (init.kind) {
    case 'bios':
      // Legacy PXE ROM (Intel UNDI 2.1): asks for broadcast replies, having no IP stack to take a unicast.
      p.flags = FLAG_BROADCAST;
      o.setU16(Opt.MAX_MESSAGE_SIZE, 1260);
      if (init.serverId) o.setIp(Opt.SERVER_ID, init.serverId);
      if (init.requestedIp) o.setIp(Opt.REQUESTED_IP, init.requestedIp);
      o.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from([1, 2, 3, 5, 6, 11, 12, 13, 15, 16, 17, 18, 43, 54, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135]));
      o.set(Opt.CLIENT_GUID, GUID_97);
      o.set(Opt.CLIENT_NDI, Buffer.from([1, 2, 1]));
      o.set(Opt.CLIENT_ARCH, u16(0));
      o.setString(Opt.VENDOR_CLASS, 'PXEClient:Arch:00000:UNDI:002001');
      break;
    case 'uefi7':
      efi(7, 'PXEClient');
      break;
    case 'uefi9':
      efi(9, 'PXEClient');
      break;
    case 'ia32':
      efi(6, 'PXEClient');
      break;
    case 'arm64':
      efi(11, 'PXEClient');
      break;
    case 'httpboot16':
      efi(16, 'HTTPClient');
      break;
    case 'httpboot19':
      efi(19, 'HTTPClient');
      break;
    case 'ipxe-bios':
      ipxe(0, true);
      break;
    case 'ipxe-efi':
      ipxe(7, true);
      break;
    case 'ipxe-175-only':
      ipxe(7, false);
      break;
    case 'udhcpc':
      o.set(Opt.CLIENT_ID, Buffer.concat([Buffer.from([1]), macToBytes(init.mac)]));
      if (init.serverId) o.setIp(Opt.SERVER_ID, init.serverId);
      if (init.requestedIp) o.setIp(Opt.REQUESTED_IP, init.requestedIp);
      o.setString(Opt.VENDOR_CLASS, 'udhcp 1.35.0');
      o.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from([1, 3, 6, 12, 15, 28, 42]));
      break;
    case 'dhclient':
      if (init.serverId) o.setIp(Opt.SERVER_ID, init.serverId);
      if (init.requestedIp) o.setIp(Opt.REQUESTED_IP, init.requestedIp);
      o.setString(Opt.HOSTNAME, 'client1');
      o.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from([1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]));
      break;
  }
  if (init.relayInfo) o.set(Opt.RELAY_AGENT_INFO, init.relayInfo);
  return p;
}

export function requestBytes(init: RequestInit): Buffer {
  return encodePacket(request(init));
}

/**
 * One of each kind, as bytes, sent directly and through a relay with option 82 (circuit and
 * remote id, and link selection on every other one): the seed corpus the fuzz tests mutate.
 */
export function seedCorpus(): Buffer[] {
  return ALL_KINDS.flatMap((kind, i) => {
    const n = i.toString(16).padStart(2, '0');
    const relayInfo = relayAgentInfo(`ge-0/0/${i}.100`, `switch-${n}`, i % 2 ? '10.0.0.0' : undefined);
    return [
      requestBytes({ kind, mac: `52:54:00:00:00:${n}` as Mac, xid: 0x1000 + i }),
      requestBytes({ kind, mac: `52:54:00:00:01:${n}` as Mac, xid: 0x2000 + i, type: MessageType.REQUEST, serverId: '10.0.0.1', requestedIp: '10.0.0.50' }),
      requestBytes({ kind, mac: `52:54:00:00:02:${n}` as Mac, xid: 0x3000 + i, giaddr: '10.9.0.1', relayInfo }),
      requestBytes({ kind, mac: `52:54:00:00:03:${n}` as Mac, xid: 0x4000 + i, type: MessageType.REQUEST, giaddr: '10.9.0.1', serverId: '10.0.0.1', requestedIp: '10.9.0.50', relayInfo }),
    ];
  });
}
