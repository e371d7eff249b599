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
import koffi, { type LibraryHandle } from 'koffi';

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_BROADCAST = 6;
const SO_BINDTODEVICE = 25;
/** Linux IFNAMSIZ includes the NUL. */
const IFNAMSIZ = 16;

export class BindDeviceError extends Error {}

interface Libc {
  socket: (domain: number, type: number, protocol: number) => number;
  setsockopt: (fd: number, level: number, name: number, value: Buffer, len: number) => number;
  getsockopt: (fd: number, level: number, name: number, value: Buffer, len: Buffer) => number;
  bind: (fd: number, addr: Buffer, len: number) => number;
  close: (fd: number) => number;
  strerror: (errnum: number) => string;
}

let libc: Libc | undefined;

/** Loaded on first use, so importing this module costs nothing on hosts that never bind a device. */
function load(): Libc {
  if (libc) return libc;
  if (process.platform !== 'linux') throw new BindDeviceError(`SO_BINDTODEVICE is Linux-only; this is ${process.platform}`);
  let lib: LibraryHandle;
  try {
    lib = koffi.load('libc.so.6');
  } catch (err) {
    throw new BindDeviceError(`cannot load libc.so.6 for SO_BINDTODEVICE: ${(err as Error).message}`);
  }
  libc = {
    socket: lib.func('int socket(int, int, int)') as Libc['socket'],
    setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)') as Libc['setsockopt'],
    getsockopt: lib.func('int getsockopt(int, int, int, _Out_ void *, _Inout_ void *)') as Libc['getsockopt'],
    bind: lib.func('int bind(int, const void *, uint32_t)') as Libc['bind'],
    close: lib.func('int close(int)') as Libc['close'],
    strerror: lib.func('const char *strerror(int)') as Libc['strerror'],
  };
  return libc;
}

function fail(c: Libc, fd: number, what: string): never {
  const errno = koffi.errno();
  if (fd >= 0) c.close(fd);
  throw new BindDeviceError(`${what}: ${c.strerror(errno)} (errno ${errno})`);
}

function sockaddrIn(address: string, port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0); // sa_family_t is host order (little-endian on every Linux we run on)
  b.writeUInt16BE(port, 2);
  address.split('.').forEach((o, i) => (b[4 + i] = Number(o)));
  return b;
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
