import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { encodeError, ERR, parsePacket } from './packet.ts';

const UNKNOWN_TID = encodeError(ERR.UNKNOWN_TID, 'Unknown transfer ID');

export interface StrayHooks {
  malformed(reason: string): void;
  /** A datagram reached the transfer's port from another source; it was answered ERROR 5. */
  stray(from: { address: string; port: number }): void;
}

export function bindTo(socket: Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

/**
 * A transfer's socket is connected to its client, so a datagram from any other source
 * (right address, wrong port: RFC 1350 section 4) would only draw an ICMP from the kernel.
 * This second, unconnected socket shares the port and answers each one ERROR 5 without
 * touching the transfer. Both set SO_REUSEADDR; Linux then steers the client's datagrams
 * to the connected socket (its full 4-tuple matches best) and everything else here, so
 * the transfer's own path gains no work.
 */
export async function openStrayCatcher(host: string, port: number, hooks: StrayHooks): Promise<Socket> {
  const strays = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: true });
  // Unconnected, it gets no ICMP errors; a send to a stray that vanished may still fail. Neither concerns the transfer.
  strays.on('error', () => undefined);
  strays.on('message', (msg: Buffer, from: RemoteInfo) => {
    const parsed = parsePacket(msg);
    if (!parsed.ok) {
      hooks.malformed(parsed.reason);
      return;
    }
    // Never answer an ERROR with one: two servers doing that would bounce them for ever.
    if (parsed.packet.op === 'error') return;
    try {
      strays.send(UNKNOWN_TID, from.port, from.address);
    } catch {
      /* catcher closing: the transfer just ended */
    }
    hooks.stray({ address: from.address, port: from.port });
  });
  try {
    await bindTo(strays, host, port);
  } catch (err) {
    strays.close();
    throw err;
  }
  return strays;
}
