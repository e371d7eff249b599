/**
 * The one native corner: UDP sockets tied to one network interface with SO_BINDTODEVICE,
 * which Node's dgram cannot set (shared/notes/dependencies.md).
 *
 * The socket is created, tied to the device and bound here through libc (koffi), then
 * handed to dgram with bind({ fd }). Setting the option before bind() matters twice:
 * no packet that arrived on another interface can sit in the queue from before the
 * option took effect, and the kernel lets us share the port with a server bound to a
 * different device (dnsmasq on another NIC) instead of failing with EADDRINUSE.
 * It also avoids reaching into dgram's private handle (DEP0112) for the fd.
 */
import dgram from 'node:dgram';
import { isIPv4 } from 'node:net';
import { AF_INET, IFNAMSIZ, loadLibc, SO_BINDTODEVICE, SO_REUSEADDR, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOL_SOCKET, sockaddrIn, type Libc } from './libc.ts';

const SO_BROADCAST = 6;

export class BindDeviceError extends Error {}

/** Loaded on first use, so importing this module costs nothing on hosts that never bind a device. */
function load(): Libc {
  try {
    return loadLibc();
  } catch (err) {
    throw new BindDeviceError(`SO_BINDTODEVICE: ${(err as Error).message}`);
  }
}

function fail(c: Libc, fd: number, what: string): never {
  const errno = c.errno();
  if (fd >= 0) c.close(fd);
  throw new BindDeviceError(`${what}: ${c.strerror(errno)} (errno ${errno})`);
}

export interface DeviceSocketOptions {
  /** Interface name, e.g. eth0. */
  device: string;
  port: number;
  /** Local address to bind; 0.0.0.0 receives broadcasts, which DHCP needs. */
  address?: string;
  /** SO_REUSEADDR: lets a second socket bound to the same device share the port. */
  reuseAddr?: boolean;
  /** SO_RCVBUF hint so bursts (a rack powering on, a fuzz flood) queue instead of dropping. */
  recvBufferSize?: number;
}

export interface DeviceSocket {
  socket: dgram.Socket;
  /** The kernel's file descriptor, owned by dgram from now on (closed with the socket). */
  fd: number;
}

/** Opens a UDP/IPv4 socket tied to `device`, bound to address:port, broadcast allowed. Throws BindDeviceError saying why. */
export async function openDeviceSocket(opts: DeviceSocketOptions): Promise<DeviceSocket> {
  const address = opts.address ?? '0.0.0.0';
  if (!isIPv4(address)) throw new BindDeviceError(`${address} is not an IPv4 address`);
  const name = Buffer.from(`${opts.device}\0`, 'latin1');
  if (opts.device.length === 0 || name.length > IFNAMSIZ || opts.device.includes('\0')) throw new BindDeviceError(`"${opts.device}" is not a valid interface name`);
  const c = load();
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(c, -1, 'socket(AF_INET, SOCK_DGRAM)');
  if (c.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, name.length) !== 0) {
    fail(c, fd, `SO_BINDTODEVICE ${opts.device}`);
  }
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  if (opts.reuseAddr && c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) !== 0) fail(c, fd, 'SO_REUSEADDR');
  if (c.setsockopt(fd, SOL_SOCKET, SO_BROADCAST, one, 4) !== 0) fail(c, fd, 'SO_BROADCAST');
  if (c.bind(fd, sockaddrIn(address, opts.port), 16) !== 0) fail(c, fd, `bind ${address}:${opts.port} on ${opts.device}`);

  const socket = dgram.createSocket({ type: 'udp4' });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ fd }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    c.close(fd);
    throw new BindDeviceError(`handing fd ${fd} to dgram: ${(err as Error).message}`);
  }
  socket.setBroadcast(true);
  if (opts.recvBufferSize) {
    try {
      socket.setRecvBufferSize(opts.recvBufferSize);
    } catch {
      // Capped by net.core.rmem_max; the default still works, only bursts drop sooner.
    }
  }
  return { socket, fd };
}

/** The device a socket is tied to, read back from the kernel (empty string when none). */
export function boundDevice(fd: number): string {
  const c = load();
  const buf = Buffer.alloc(IFNAMSIZ);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(IFNAMSIZ);
  if (c.getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, buf, len) !== 0) fail(c, -1, 'getsockopt SO_BINDTODEVICE');
  const n = len.readUInt32LE();
  const s = buf.subarray(0, n).toString('latin1');
  const nul = s.indexOf('\0');
  return nul < 0 ? s : s.slice(0, nul);
}
