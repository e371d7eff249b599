/**
 * A raw ICMPv6 socket tied to one interface, for the RA quench (--ipv6-ra-quench): it
 * receives Router Solicitations and Advertisements, sends Router Advertisements to ff02::1
 * and (to find a real router at start) one Router Solicitation to ff02::2, nothing else.
 * Node has no raw sockets, so this is libc through koffi, like bind-device.ts.
 *
 * Receiving never blocks: the fd is non-blocking and recv() returns undefined when nothing
 * is queued, so the owner polls it on a timer (ra-quench.ts). A blocking read on a worker
 * would hold a libuv pool thread (the one file I/O uses) for the appliance's lifetime.
 *
 * Every option is set before anything is sent, and the kernel is told to pass up only types
 * 133 and 134 (ICMP6_FILTER), so the queue never fills with the segment's other ICMPv6 (ND, MLD).
 */
import { IFNAMSIZ, loadLibc, SO_BINDTODEVICE, SOCK_CLOEXEC, SOCK_NONBLOCK, SOL_SOCKET, type Libc } from './libc.ts';

const AF_INET6 = 10;
const SOCK_RAW = 3;
const IPPROTO_IPV6 = 41;
const IPPROTO_ICMPV6 = 58;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MULTICAST_IF = 17;
const IPV6_MULTICAST_HOPS = 18;
const IPV6_MULTICAST_LOOP = 19;
const IPV6_ADD_MEMBERSHIP = 20;
const ICMP6_FILTER = 1;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const EPERM = 1;
const EACCES = 13;
const SOCKADDR_IN6 = 28;

/** RFC 4861 §6.1.2: a host drops any ND message whose hop limit is not 255 (it proves on-link origin). */
export const ND_HOP_LIMIT = 255;
const ALL_NODES = 'ff020000000000000000000000000001';
/** Solicitations go to all-routers; the IPv6 stack delivers them only if the interface has joined it. */
const ALL_ROUTERS = 'ff020000000000000000000000000002';

export class RawIcmpv6Error extends Error {
  constructor(
    message: string,
    /** True when the process lacks CAP_NET_RAW (EPERM/EACCES on socket()). */
    readonly notPermitted = false,
  ) {
    super(message);
  }
}

function load(): Libc {
  try {
    return loadLibc();
  } catch (err) {
    throw new RawIcmpv6Error(`raw ICMPv6 socket: ${(err as Error).message}`);
  }
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
}

function sockaddrIn6(addrHex: string, scopeId: number): Buffer {
  const b = Buffer.alloc(SOCKADDR_IN6);
  b.writeUInt16LE(AF_INET6, 0); // sa_family_t in host order; port 0 = the socket's protocol
  Buffer.from(addrHex, 'hex').copy(b, 8);
  b.writeUInt32LE(scopeId, 24);
  return b;
}

/** Only router solicitations (133) and advertisements (134) pass: struct icmp6_filter is 256 bits, a set bit blocks that type. */
function routerDiscoveryFilter(): Buffer {
  const b = Buffer.alloc(32, 0xff);
  for (const type of [133, 134]) b[type >> 3]! &= ~(1 << (type & 7));
  return b;
}

export function formatIpv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // RFC 5952: the longest run of two or more zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export interface ReceivedIcmpv6 {
  data: Buffer;
  /** Source IPv6 (link-local for a real solicitation, :: from a host without an address yet). */
  from: string;
}

export class RawIcmpv6Socket {
  private closed = false;
  private readonly recvBuf = Buffer.alloc(1500);
  private readonly fromBuf = Buffer.alloc(SOCKADDR_IN6);
  private readonly fromLen = Buffer.alloc(4);
  private readonly allNodes: Buffer;
  private readonly allRouters: Buffer;

  private constructor(
    private readonly c: Libc,
    readonly fd: number,
    readonly device: string,
    readonly ifindex: number,
  ) {
    this.allNodes = sockaddrIn6(ALL_NODES, ifindex);
    this.allRouters = sockaddrIn6(ALL_ROUTERS, ifindex);
  }

  /** Opens the socket on `device` with every option set. Throws RawIcmpv6Error saying why (notPermitted without CAP_NET_RAW). */
  static open(device: string): RawIcmpv6Socket {
    const name = Buffer.from(`${device}\0`, 'latin1');
    if (device.length === 0 || name.length > IFNAMSIZ || device.includes('\0')) throw new RawIcmpv6Error(`"${device}" is not a valid interface name`);
    const c = load();
    const ifindex = c.if_nametoindex(device);
    if (!ifindex) throw new RawIcmpv6Error(`interface ${device}: ${c.strerror(c.errno())}`);
    const fd = c.socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6);
    if (fd < 0) {
      const errno = c.errno();
      throw new RawIcmpv6Error(`socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6): ${c.strerror(errno)} (errno ${errno})`, errno === EPERM || errno === EACCES);
    }
    const set = (level: number, opt: number, value: Buffer, what: string) => {
      if (c.setsockopt(fd, level, opt, value, value.length) === 0) return;
      const errno = c.errno();
      c.close(fd);
      throw new RawIcmpv6Error(`${what}: ${c.strerror(errno)} (errno ${errno})`, errno === EPERM);
    };
    set(SOL_SOCKET, SO_BINDTODEVICE, name, `SO_BINDTODEVICE ${device}`);
    set(IPPROTO_ICMPV6, ICMP6_FILTER, routerDiscoveryFilter(), 'ICMP6_FILTER');
    set(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, int32(ND_HOP_LIMIT), 'IPV6_MULTICAST_HOPS');
    set(IPPROTO_IPV6, IPV6_UNICAST_HOPS, int32(ND_HOP_LIMIT), 'IPV6_UNICAST_HOPS');
    set(IPPROTO_IPV6, IPV6_MULTICAST_IF, int32(ifindex), 'IPV6_MULTICAST_IF');
    set(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, int32(0), 'IPV6_MULTICAST_LOOP');
    const mreq = Buffer.alloc(20);
    Buffer.from(ALL_ROUTERS, 'hex').copy(mreq, 0);
    mreq.writeInt32LE(ifindex, 16);
    set(IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, mreq, `joining ff02::2 on ${device} (is IPv6 disabled on it?)`);
    return new RawIcmpv6Socket(c, fd, device, ifindex);
  }

  /** The next queued message, or undefined when none is waiting (never blocks). */
  recv(): ReceivedIcmpv6 | undefined {
    if (this.closed) return undefined;
    this.fromLen.writeUInt32LE(SOCKADDR_IN6);
    const n = this.c.recvfrom(this.fd, this.recvBuf, this.recvBuf.length, MSG_DONTWAIT, this.fromBuf, this.fromLen);
    if (n < 0) {
      const errno = this.c.errno();
      if (errno === EAGAIN) return undefined;
      throw new RawIcmpv6Error(`recvfrom on ${this.device}: ${this.c.strerror(errno)} (errno ${errno})`);
    }
    return { data: Buffer.from(this.recvBuf.subarray(0, n)), from: formatIpv6(this.fromBuf.subarray(8, 24)) };
  }

  /** Sends one ICMPv6 message to ff02::1 on the device; the kernel picks our link-local source and fills the checksum. */
  sendToAllNodes(message: Buffer): void {
    this.sendTo(this.allNodes, 'ff02::1', message);
  }

  /** Sends one ICMPv6 message (our router solicitation) to ff02::2 on the device. */
  sendToAllRouters(message: Buffer): void {
    this.sendTo(this.allRouters, 'ff02::2', message);
  }

  private sendTo(addr: Buffer, name: string, message: Buffer): void {
    if (this.closed) throw new RawIcmpv6Error('socket is closed');
    const n = this.c.sendto(this.fd, message, message.length, 0, addr, SOCKADDR_IN6);
    if (n < 0) {
      const errno = this.c.errno();
      throw new RawIcmpv6Error(`sendto ${name}%${this.device}: ${this.c.strerror(errno)} (errno ${errno})`);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.c.close(this.fd);
  }
}
