/**
 * The last step of every reply, whatever the mode: what it echoes from the request (option 61
 * always, RFC 6842; option 82 through a relay, RFC 3046) and its bytes within the size the
 * client accepts (RFC 2131 §2), shedding optional options and overloading file/sname before a
 * reply is ever dropped.
 */
import { Opt } from './options.ts';
import { DEFAULT_MAX_MESSAGE_SIZE, encodePacket, type DhcpPacket } from './packet.ts';

/** IPv4 (20) and UDP (8) headers: option 57 counts the whole datagram, as dnsmasq and ISC dhcpd read it. */
export const IP_UDP_HEADERS = 28;
/** A larger datagram is fragmented on Ethernet, and PXE ROMs reassemble no fragments. */
const ETHERNET_MTU = 1500;

/**
 * Options a reply keeps whatever its size: what makes it this reply (53, 54, 56 in a NAK), the
 * lease (51, 1), the boot (60, 43, 67, 97, 175) and the echoes relays and clients check (61, 82).
 */
const ESSENTIAL: ReadonlySet<number> = new Set<number>([
  Opt.MESSAGE_TYPE,
  Opt.SERVER_ID,
  Opt.MESSAGE,
  Opt.LEASE_TIME,
  Opt.SUBNET_MASK,
  Opt.VENDOR_CLASS,
  Opt.VENDOR_SPECIFIC,
  Opt.BOOTFILE_NAME,
  Opt.CLIENT_GUID,
  Opt.IPXE_ENCAP,
  Opt.CLIENT_ID,
  Opt.RELAY_AGENT_INFO,
]);

/** Adds to `reply` (built by a policy) what every reply to `request` must carry back unchanged. */
export function echoRequestOptions(reply: DhcpPacket, request: DhcpPacket): void {
  const clientId = request.options.get(Opt.CLIENT_ID);
  if (clientId) reply.options.set(Opt.CLIENT_ID, clientId);
  // Only a relay's 82 is echoed: one a client sent itself is not to be trusted (RFC 3046 §2.1).
  if (request.giaddr !== '0.0.0.0') {
    const relayInfo = request.options.relayAgentInfo();
    if (relayInfo) reply.options.set(Opt.RELAY_AGENT_INFO, relayInfo);
  }
}

/** The largest reply `request`'s client takes, as a DHCP message: its option 57 (else 576) minus the IP and UDP headers. */
export function replyLimit(request: DhcpPacket): number {
  return Math.min(request.options.maxMessageSize() ?? DEFAULT_MAX_MESSAGE_SIZE, ETHERNET_MTU) - IP_UDP_HEADERS;
}

export interface FittedReply {
  bytes: Buffer;
  /** What was given up to fit, for the log line. */
  how: string;
}

function encodeWithin(reply: DhcpPacket, limit: number, overload: boolean): Buffer | undefined {
  try {
    return encodePacket(reply, { maxLength: limit, overload });
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}

/**
 * A reply too big for its client, made to fit, least loss first: options the client did not
 * ask for (55) are shed; then sname (our name, which siaddr and 54 also say) and then `file`
 * (the boot file also rides in 67) carry options (52); then the optional options it asked for
 * go too. Changes `reply`. Throws a RangeError when even that does not fit.
 */
export function fitReply(reply: DhcpPacket, request: DhcpPacket, limit: number): FittedReply {
  const requested = new Set(request.options.parameterRequestList() ?? []);
  const shed: number[] = [];
  const shedOptional = (keepRequested: boolean) => {
    for (const code of reply.options.codes()) {
      if (ESSENTIAL.has(code) || (keepRequested && requested.has(code))) continue;
      reply.options.delete(code);
      shed.push(code);
    }
  };
  const said = (steps: string) => `fitted into ${limit} bytes: ${shed.length ? `shed options ${shed.join(',')}` : 'nothing shed'}${steps}`;

  shedOptional(true);
  let bytes = encodeWithin(reply, limit, false);
  if (bytes) return { bytes, how: said('') };
  reply.sname = '';
  bytes = encodeWithin(reply, limit, true);
  if (bytes) return { bytes, how: said('; options overloaded into the empty file/sname fields (52)') };
  if (reply.file !== '' && reply.options.bootfileName() === reply.file) reply.file = '';
  bytes = encodeWithin(reply, limit, true);
  if (bytes) return { bytes, how: said('; options overloaded into file and sname (52), the boot file in 67 only') };
  shedOptional(false);
  bytes = encodeWithin(reply, limit, true);
  if (bytes) return { bytes, how: said('; options overloaded into file and sname (52), the boot file in 67 only') };
  throw new RangeError(`reply does not fit the ${limit} bytes the client accepts, even with every optional option shed and file/sname overloaded`);
}
