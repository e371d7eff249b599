/**
 * DHCP sockets: one per port, each tied to --iface, and the rule for where a reply goes.
 * The handler wrapper is the last line of defence: nothing a packet does can throw out
 * of the socket's 'message' event (an uncaught exception there ends the process).
 */
import type dgram from 'node:dgram';
import { BindDeviceError, openDeviceSocket } from '../net/bind-device.ts';
import type { DhcpPacket } from './packet.ts';

export const SERVER_PORT = 67;
export const CLIENT_PORT = 68;
export const PXE_PORT = 4011;
export const BROADCAST = '255.255.255.255';

export interface Peer {
  address: string;
  port: number;
}

export interface Destination extends Peer {
  /** How the address was chosen, for the log line. */
  via: 'broadcast' | 'relay' | 'unicast';
}

/** Raised when a DHCP socket cannot be tied to the interface: DHCP must not start then. */
export class DhcpBindError extends Error {}

/**
 * Where a reply to a request that arrived on port 67 goes (RFC 2131 §4.1), minus the
 * one case we cannot do: unicast to yiaddr/chaddr before the client has an address
 * needs an ARP entry Node cannot write, so that case is a broadcast, which every
 * firmware we know accepts (wire.md).
 */
export function replyDestination(request: Pick<DhcpPacket, 'giaddr' | 'ciaddr'>, opts: { nak?: boolean } = {}): Destination {
  if (request.giaddr !== '0.0.0.0') return { address: request.giaddr, port: SERVER_PORT, via: 'relay' };
  if (request.ciaddr !== '0.0.0.0' && !opts.nak) return { address: request.ciaddr, port: CLIENT_PORT, via: 'unicast' };
  return { address: BROADCAST, port: CLIENT_PORT, via: 'broadcast' };
}

/**
 * A relayed request (giaddr set) must come from a relay agent, which sends from port 67 and
 * takes the reply there (RFC 1542 §4.1; dhcrelay, dnsmasq, perfdhcp do). Anything else with a
 * giaddr is a forged or broken packet, and answering it costs every client: a reply to an
 * address nobody answers ARP for waits in the socket's send queue, ahead of theirs.
 */
export function fromRelayAgent(request: Pick<DhcpPacket, 'giaddr'>, from: Peer): boolean {
  return request.giaddr === '0.0.0.0' || from.port === SERVER_PORT;
}

/**
 * Where a PXE boot server (port 4011) reply goes: back to the address and port the
 * request came from — OVMF sends from 4011 and listens there, EFI iPXE sends from 68.
 */
export function bootServerDestination(request: Pick<DhcpPacket, 'ciaddr'>, from: Peer): Destination {
  const address = request.ciaddr !== '0.0.0.0' ? request.ciaddr : from.address;
  if (address === '0.0.0.0') return { address: BROADCAST, port: from.port, via: 'broadcast' };
  return { address, port: from.port, via: 'unicast' };
}

export type PacketHandler = (data: Buffer, from: Peer) => void | Promise<void>;

export interface TransportOptions {
  device: string;
  port: number;
  /** Called when a handler throws or rejects: a bug, logged, never fatal. */
  onHandlerError: (err: unknown, from: Peer) => void;
}

/** What a responder needs of its socket; tests hand in their own to drive the pipeline without one. */
export interface PacketTransport {
  onPacket(handler: PacketHandler): void;
  send(bytes: Buffer, to: Peer): Promise<void>;
  close(): Promise<void>;
}

export type OpenTransport = (opts: TransportOptions) => Promise<PacketTransport>;

/** A UDP socket on one port of one interface, with a handler that cannot crash it. */
export class DhcpTransport implements PacketTransport {
  private handler: PacketHandler | undefined;

  private constructor(
    readonly device: string,
    readonly port: number,
    private readonly socket: dgram.Socket,
    private readonly onHandlerError: TransportOptions['onHandlerError'],
  ) {
    socket.on('message', (data, rinfo) => this.dispatch(data, { address: rinfo.address, port: rinfo.port }));
    // A send error surfaces on the socket too; it must not become an uncaught 'error'.
    socket.on('error', (err) => this.onHandlerError(err, { address: '', port: 0 }));
  }

  /** Opens 0.0.0.0:port tied to the device. Throws DhcpBindError saying why when it cannot. */
  static async open(opts: TransportOptions): Promise<DhcpTransport> {
    try {
      const { socket } = await openDeviceSocket({ device: opts.device, port: opts.port, recvBufferSize: 4 * 1024 * 1024 });
      return new DhcpTransport(opts.device, opts.port, socket, opts.onHandlerError);
    } catch (err) {
      const why = err instanceof BindDeviceError ? err.message : String(err);
      throw new DhcpBindError(`cannot bind UDP port ${opts.port} to interface ${opts.device} (${why}); refusing to serve DHCP on an unbound socket, which could answer on another network`);
    }
  }

  onPacket(handler: PacketHandler): void {
    this.handler = handler;
  }

  private dispatch(data: Buffer, from: Peer): void {
    const handler = this.handler;
    if (!handler) return;
    try {
      const r = handler(data, from);
      if (r) r.catch((err: unknown) => this.onHandlerError(err, from));
    } catch (err) {
      this.onHandlerError(err, from);
    }
  }

  send(bytes: Buffer, to: Peer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.send(bytes, to.port, to.address, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
  }
}
