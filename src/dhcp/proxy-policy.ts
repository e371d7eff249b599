/**
 * ProxyDHCP on port 67 (shared/notes/wire.md): another server hands out addresses; we tell
 * PXE firmware and iPXE what to boot. OFFER to a PXE DISCOVER, ACK to a PXE REQUEST
 * addressed to us (or, before the client has an address, to no server); never an address in
 * yiaddr, never an answer to a REQUEST meant for another server.
 */
import { applyBootTarget } from './boot-reply.ts';
import { MessageType, Opt, u8 } from './options.ts';
import { FLAG_BROADCAST, replyTo } from './packet.ts';
import { noise, notable, type DhcpPolicy, type Exchange, type PolicyAnswer } from './policy.ts';
import { fromRelayAgent, replyDestination, SERVER_PORT } from './transport.ts';

/** Option 53's values, made once (a reply keeps the Buffer it is given; nothing changes it). */
const OFFER = u8(MessageType.OFFER);
const ACK = u8(MessageType.ACK);

export class ProxyDhcpPolicy implements DhcpPolicy {
  readonly mode = 'proxy';
  readonly port = SERVER_PORT;

  /** Our IPv4 on --iface: option 54, siaddr, sname. */
  constructor(private readonly serverAddress: string) {}

  /**
   * The site's server hands out the address; the REQUEST names it (option 50, or ciaddr when
   * renewing). Binding it ties the TFTP and HTTP steps that follow, which carry no MAC, to this machine.
   */
  clientAddress({ request }: Exchange): string | undefined {
    return request.options.requestedIp() ?? (request.ciaddr !== '0.0.0.0' ? request.ciaddr : undefined);
  }

  answer(ex: Exchange): PolicyAnswer {
    const { request, target } = ex;
    if (!fromRelayAgent(request, ex.from)) return noise('relay-bad-port', `giaddr ${request.giaddr} set, but sent from port ${ex.from.port}, not a relay agent's 67`);
    const msgType = request.options.messageType();
    let type: 'OFFER' | 'ACK';
    if (msgType === MessageType.DISCOVER) type = 'OFFER';
    else if (msgType === MessageType.REQUEST) {
      // Some Intel ROMs want their REQUEST answered (Pixiecore issue 21): a PXE client's
      // REQUEST naming us, or naming no server, gets an ACK with the boot info and no
      // address. One naming another server is that server's: never an ACK or NAK from us.
      const sid = request.options.serverId();
      if (sid !== undefined && sid !== this.serverAddress) return noise('other-server', `REQUEST is for server ${sid}`);
      // The rule for a REQUEST without option 54 (INIT-REBOOT, RENEWING, REBINDING): we ACK it
      // only when a PXE client (option 93, checked below) sends it in its boot phase, i.e.
      // before it has an address (ciaddr 0): that is the Intel ROM's REQUEST after its DHCP.
      // With ciaddr set the client runs on a lease of the site's server and is renewing or
      // rebinding it; only that server may answer, and an ACK from us (with our option 54)
      // would make it renew with us and lose the site server's configuration.
      if (sid === undefined && request.ciaddr !== '0.0.0.0') return noise('not-boot-phase', `REQUEST without option 54 from ${request.ciaddr} renews or rebinds the site server's lease`);
      type = 'ACK';
    } else return noise('unhandled-type', `ProxyDHCP does not answer ${ex.type}`);

    // Every laptop and phone on the segment is not-pxe here: a debug line, no timeline.
    if (target.action === 'ignore') return target.code === 'not-pxe' ? noise(target.code, target.reason) : notable(target.code, target.reason);
    const reply = replyTo(request);
    // Through a relay a client without an address can only be reached by broadcast, whatever
    // flag it set: the relay sends the reply to chaddr's unicast otherwise (dnsmasq and Pixiecore do the same).
    if (request.giaddr !== '0.0.0.0' && request.ciaddr === '0.0.0.0') reply.flags |= FLAG_BROADCAST;
    reply.options.set(Opt.MESSAGE_TYPE, type === 'OFFER' ? OFFER : ACK);
    applyBootTarget(reply, ex.client, target, { serverAddress: this.serverAddress, pxeVendorClass: true });
    return { kind: 'reply', type, packet: reply, to: replyDestination(request) };
  }
}
