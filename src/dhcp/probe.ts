/**
 * Who else answers DHCP on a segment: one DISCOVER as a BIOS PXE client sends it (so a server
 * that answers PXE says so), from port 68 on --iface, and every OFFER that comes back within
 * the wait. `doctor` prints it; `--dhcp auto` picks the mode from it.
 */
import { randomBytes } from 'node:crypto';
import type { RemoteInfo } from 'node:dgram';
import { openDeviceSocket } from '../net/bind-device.ts';
import { ipv4FromBytes } from '../net/ipv4.ts';
import { MessageType, Opt, u16 } from './options.ts';
import { BOOTREPLY, emptyRequest, encodePacket, FLAG_BROADCAST, tryParsePacket } from './packet.ts';

export interface ProbedServer {
  /** Option 54, else the source address. */
  server: string;
  /** The address it offered; 0.0.0.0 from a ProxyDHCP server. */
  yiaddr: string;
  /** It answered the PXE client as one: option 60 PXEClient, or a boot file or next-server. */
  answersPxe: boolean;
  bootFile: string | undefined;
  nextServer: string | undefined;
}

export interface ProbeResult {
  servers: ProbedServer[];
  /** The mode to run in, and why in words. */
  advice: { mode: 'full' | 'proxy'; why: string; warning: string | undefined };
}

/** A locally administered MAC, so no real machine's lease is touched. */
function probeMac(): Buffer {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfc) | 0x02;
  return b;
}

/** The advice from what answered (pure; table-tested). */
export function adviseMode(servers: readonly ProbedServer[], hasRange: boolean): ProbeResult['advice'] {
  const dhcp = servers.filter((s) => s.yiaddr !== '0.0.0.0');
  const pxe = servers.filter((s) => s.answersPxe);
  const warning = pxe.length
    ? `${pxe.map((s) => s.server).join(', ')} already answer${pxe.length === 1 ? 's' : ''} PXE on this segment: machines would take either answer. Turn PXE off there, or run --dhcp off and have it point machines here`
    : undefined;
  if (dhcp.length) return { mode: 'proxy', why: `a DHCP server hands out addresses here (${dhcp.map((s) => s.server).join(', ')}): ProxyDHCP beside it`, warning };
  if (hasRange) return { mode: 'full', why: 'no DHCP server answered: serving addresses from --dhcp-range', warning };
  return {
    mode: 'proxy',
    why: 'no DHCP server answered, and without --dhcp-range there are no addresses to hand out: ProxyDHCP (machines get no address until a DHCP server or --dhcp-range is there)',
    warning,
  };
}

export async function probeDhcp(opts: { iface: string; waitMs?: number; hasRange: boolean }): Promise<ProbeResult> {
  const { socket } = await openDeviceSocket({ device: opts.iface, port: 68, reuseAddr: true });
  const mac = probeMac();
  const xid = randomBytes(4).readUInt32BE();
  const req = emptyRequest();
  req.xid = xid;
  req.flags = FLAG_BROADCAST;
  mac.copy(req.chaddr);
  req.options.set(Opt.MESSAGE_TYPE, Buffer.from([MessageType.DISCOVER]));
  req.options.set(Opt.CLIENT_ARCH, u16(0));
  req.options.set(Opt.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00000:UNDI:002001'));
  req.options.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from([1, 3, 6, 43, 54, 60, 66, 67]));
  const servers = new Map<string, ProbedServer>();
  const onMessage = (msg: Buffer, rinfo: RemoteInfo) => {
    const parsed = tryParsePacket(msg);
    if (!parsed.ok) return;
    const p = parsed.packet;
    if (p.op !== BOOTREPLY || p.xid !== xid || !p.chaddr.subarray(0, 6).equals(mac)) return;
    const sid = p.options.get(Opt.SERVER_ID);
    const server = sid?.length === 4 ? ipv4FromBytes(sid) : rinfo.address;
    const vendor = p.options.get(Opt.VENDOR_CLASS)?.toString('latin1');
    // Option 67 often carries a trailing NUL.
    const bootFile = (p.options.get(Opt.BOOTFILE_NAME)?.toString('latin1') ?? p.file).replace(/\0+$/, '') || undefined;
    const nextServer = p.siaddr !== '0.0.0.0' ? p.siaddr : undefined;
    servers.set(server, { server, yiaddr: p.yiaddr, answersPxe: vendor?.startsWith('PXEClient') === true || bootFile !== undefined, bootFile, nextServer });
  };
  socket.on('message', onMessage);
  try {
    const bytes = encodePacket(req);
    await new Promise<void>((resolve, reject) => socket.send(bytes, 67, '255.255.255.255', (err) => (err ? reject(err) : resolve())));
    await new Promise((r) => setTimeout(r, opts.waitMs ?? 3000));
  } finally {
    socket.off('message', onMessage);
    await new Promise<void>((r) => socket.close(() => r()));
  }
  const list = [...servers.values()];
  return { servers: list, advice: adviseMode(list, opts.hasRange) };
}
