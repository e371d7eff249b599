/**
 * The PXE boot server on port 4011 (shared/notes/wire.md). OVMF sends its REQUEST from its
 * own address:4011 after finishing DHCP with the site's server; EFI iPXE sends from port 68.
 * The ACK goes back where the request came from, ciaddr echoed, with the boot info the
 * ProxyDHCP offer would carry.
 */
import { applyBootTarget } from './boot-reply.ts';
import { encodeEncapsulated, MessageType, Opt, PxeSubOpt, u8 } from './options.ts';
import { replyTo, type DhcpPacket } from './packet.ts';
import { noise, notable, type DhcpPolicy, type Exchange, type PolicyAnswer } from './policy.ts';
import { bootServerDestination, PXE_PORT } from './transport.ts';

/** Option 53 = ACK, made once (a reply keeps the Buffer it is given; nothing changes it). */
const ACK = u8(MessageType.ACK);

export class PxeBootServerPolicy implements DhcpPolicy {
  readonly mode = 'bootserver';
  readonly port = PXE_PORT;

  constructor(private readonly serverAddress: string) {}

  /** The client has its address by now: ciaddr, or the address it sent from. */
  clientAddress({ request, from }: Exchange): string | undefined {
    const ip = request.ciaddr !== '0.0.0.0' ? request.ciaddr : from.address;
    return ip === '0.0.0.0' ? undefined : ip;
  }

  answer(ex: Exchange): PolicyAnswer {
    const { request, target } = ex;
    const msgType = request.options.messageType();
    if (msgType !== MessageType.REQUEST && msgType !== MessageType.INFORM) return noise('unhandled-type', `the boot server answers REQUEST and INFORM, not ${ex.type}`);
    if (target.action === 'ignore') return target.code === 'not-pxe' ? noise(target.code, target.reason) : notable(target.code, target.reason);
    const reply = replyTo(request);
    reply.options.set(Opt.MESSAGE_TYPE, ACK);
    reply.ciaddr = request.ciaddr;
    applyBootTarget(reply, ex.client, target, { serverAddress: this.serverAddress, pxeVendorClass: true });
    echoBootItem(reply, request);
    return { kind: 'reply', type: 'ACK', packet: reply, to: bootServerDestination(request, ex.from) };
  }
}

/**
 * The boot item (43.71: type and layer) the client asked for, echoed in the ACK as the PXE
 * spec (2.1, §2.2.6) requires: a client doing boot server discovery matches the answer to its
 * request by it. Kept beside whatever 43 the boot target put there.
 */
function echoBootItem(reply: DhcpPacket, request: DhcpPacket): void {
  const item = request.options.pxeVendorOptions()?.get(PxeSubOpt.BOOT_ITEM);
  if (!item) return;
  const sub = reply.options.pxeVendorOptions() ?? new Map<number, Buffer>();
  sub.set(PxeSubOpt.BOOT_ITEM, item);
  reply.options.set(Opt.VENDOR_SPECIFIC, encodeEncapsulated(sub));
}
