/**
 * A UDP/IPv4 socket as a bare descriptor, bound and connected through libc, for a thread
 * that polls it itself (the TFTP worker engine) instead of through Node's event loop.
 */
import { AF_INET, loadLibc, SO_REUSEADDR, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOL_SOCKET, sockaddrIn } from './libc.ts';

export class ConnectedUdpError extends Error {}

/**
 * Binds `local`:0 with SO_REUSEADDR (so a second, unconnected socket can share the port)
 * and connects to `remote`: the kernel then delivers only that peer's datagrams here, and
 * its ICMP port unreachable as ECONNREFUSED. Returns the descriptor and the port the
 * kernel chose; the caller closes it with closeFd.
 */
export function openConnectedUdp4(local: string, remote: { address: string; port: number }): { fd: number; port: number } {
  const c = loadLibc();
  const { fd, port } = openUdp4(local, 0);
  if (c.connect(fd, sockaddrIn(remote.address, remote.port), 16) !== 0) fail(fd, `connect ${remote.address}:${remote.port}`);
  return { fd, port };
}

/** Binds `local`:`port` (0: the kernel picks) with SO_REUSEADDR, unconnected; returns the descriptor and the bound port. */
export function openUdp4(local: string, port: number): { fd: number; port: number } {
  const c = loadLibc();
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(-1, 'socket(AF_INET, SOCK_DGRAM)');
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  if (c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) !== 0) fail(fd, 'SO_REUSEADDR');
  if (c.bind(fd, sockaddrIn(local, port), 16) !== 0) fail(fd, `bind ${local}:${port}`);
  if (port !== 0) return { fd, port };
  const addr = Buffer.alloc(16);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(16);
  if (c.getsockname(fd, addr, len) !== 0) fail(fd, 'getsockname');
  return { fd, port: addr.readUInt16BE(2) };
}

function fail(fd: number, what: string): never {
  const c = loadLibc();
  const errno = c.errno();
  if (fd >= 0) c.close(fd);
  throw new ConnectedUdpError(`${what}: ${c.strerror(errno)} (errno ${errno})`);
}

export function closeFd(fd: number): void {
  loadLibc().close(fd);
}
