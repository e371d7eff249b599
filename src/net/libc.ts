/**
 * The libc calls Node does not expose (SO_BINDTODEVICE before bind, raw ICMPv6 sockets,
 * flock for the lease file), through koffi. Loaded on first use, so hosts that never bind a device or send an RA
 * never load it.
 */
import koffi, { type LibraryHandle } from 'koffi';
import { writeIpv4 } from './ipv4.ts';

/** Linux constants both native callers need (x86-64 and arm64 share these values). */
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_BINDTODEVICE = 25;
/** Linux IFNAMSIZ includes the NUL. */
export const IFNAMSIZ = 16;
/** flock(2) operations (asm-generic: the same on every Linux architecture). */
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
/** EWOULDBLOCK (= EAGAIN) on Linux: flock with LOCK_NB found the lock held. */
export const EWOULDBLOCK = 11;
export const EINTR = 4;
export const ECONNREFUSED = 111;
export const AF_INET = 2;
export const SOCK_DGRAM = 2;
export const SO_REUSEADDR = 2;
export const MSG_DONTWAIT = 0x40;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x1;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLHUP = 0x10;
export const F_DUPFD_CLOEXEC = 1030;
export const EPIPE = 32;
/** struct epoll_event is packed on x86-64 (12 bytes), naturally aligned elsewhere (16). */
export const EPOLL_EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
export const EPOLL_EVENT_DATA_OFFSET = process.arch === 'x64' ? 4 : 8;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;
export const EPOLL_CLOEXEC = 0o2000000;

export interface Libc {
  socket: (domain: number, type: number, protocol: number) => number;
  setsockopt: (fd: number, level: number, name: number, value: Buffer, len: number) => number;
  getsockopt: (fd: number, level: number, name: number, value: Buffer, len: Buffer) => number;
  bind: (fd: number, addr: Buffer, len: number) => number;
  sendto: (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number) => number;
  recvfrom: (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: Buffer) => number;
  close: (fd: number) => number;
  if_nametoindex: (name: string) => number;
  flock: (fd: number, operation: number) => number;
  connect: (fd: number, addr: Buffer, len: number) => number;
  getsockname: (fd: number, addr: Buffer, len: Buffer) => number;
  send: (fd: number, buf: Buffer, len: number, flags: number) => number;
  recv: (fd: number, buf: Buffer, len: number, flags: number) => number;
  read: (fd: number, buf: Buffer, len: number) => number;
  write: (fd: number, buf: Buffer, len: number) => number;
  eventfd: (initval: number, flags: number) => number;
  epoll_create1: (flags: number) => number;
  epoll_ctl: (epfd: number, op: number, fd: number, event: Buffer | null) => number;
  epoll_wait: (epfd: number, events: Buffer, maxevents: number, timeoutMs: number) => number;
  /** `offset` is an off_t (int64) in a Buffer, advanced by the kernel. */
  sendfile: (outFd: number, inFd: number, offset: Buffer, count: number) => number;
  fcntl: (fd: number, cmd: number, arg: number) => number;
  strerror: (errnum: number) => string;
  /** errno of the last call made through koffi on this thread. */
  errno: () => number;
}

let libc: Libc | undefined;

/** Throws an Error saying why libc cannot be used here; callers wrap it in their own error type. */
export function loadLibc(): Libc {
  if (libc) return libc;
  if (process.platform !== 'linux') throw new Error(`needs Linux; this is ${process.platform}`);
  let lib: LibraryHandle;
  try {
    lib = koffi.load('libc.so.6');
  } catch (err) {
    throw new Error(`cannot load libc.so.6: ${(err as Error).message}`);
  }
  libc = {
    socket: lib.func('int socket(int, int, int)') as Libc['socket'],
    setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)') as Libc['setsockopt'],
    getsockopt: lib.func('int getsockopt(int, int, int, _Out_ void *, _Inout_ void *)') as Libc['getsockopt'],
    bind: lib.func('int bind(int, const void *, uint32_t)') as Libc['bind'],
    sendto: lib.func('long sendto(int, const void *, size_t, int, const void *, uint32_t)') as Libc['sendto'],
    recvfrom: lib.func('long recvfrom(int, _Out_ void *, size_t, int, _Out_ void *, _Inout_ void *)') as Libc['recvfrom'],
    close: lib.func('int close(int)') as Libc['close'],
    if_nametoindex: lib.func('unsigned int if_nametoindex(const char *)') as Libc['if_nametoindex'],
    flock: lib.func('int flock(int, int)') as Libc['flock'],
    connect: lib.func('int connect(int, const void *, uint32_t)') as Libc['connect'],
    getsockname: lib.func('int getsockname(int, void *, void *)') as Libc['getsockname'],
    // Plain `void *` (not _Out_): koffi then hands the Buffer's own memory to the call, no copies.
    send: lib.func('long send(int, const void *, size_t, int)') as Libc['send'],
    recv: lib.func('long recv(int, void *, size_t, int)') as Libc['recv'],
    read: lib.func('long read(int, void *, size_t)') as Libc['read'],
    write: lib.func('long write(int, const void *, size_t)') as Libc['write'],
    eventfd: lib.func('int eventfd(unsigned int, int)') as Libc['eventfd'],
    epoll_create1: lib.func('int epoll_create1(int)') as Libc['epoll_create1'],
    epoll_ctl: lib.func('int epoll_ctl(int, int, int, void *)') as Libc['epoll_ctl'],
    epoll_wait: lib.func('int epoll_wait(int, void *, int, int)') as Libc['epoll_wait'],
    sendfile: lib.func('long sendfile(int, int, void *, size_t)') as Libc['sendfile'],
    fcntl: lib.func('int fcntl(int, int, int)') as Libc['fcntl'],
    strerror: lib.func('const char *strerror(int)') as Libc['strerror'],
    errno: () => koffi.errno(),
  };
  return libc;
}

/**
 * Takes an exclusive advisory lock on `fd` without waiting: true when taken, false when another
 * open file (in any process) holds it. The kernel drops the lock when the fd closes or the
 * process dies, however it dies.
 */
export function tryLockExclusive(fd: number): boolean {
  const c = loadLibc();
  if (c.flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const errno = c.errno();
  if (errno === EWOULDBLOCK) return false;
  throw new Error(`flock: ${c.strerror(errno)}`);
}

/** A struct sockaddr_in for an IPv4 address and port. */
export function sockaddrIn(address: string, port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0); // sa_family_t is host order (little-endian on every Linux we run on)
  b.writeUInt16BE(port, 2);
  writeIpv4(address, b, 4);
  return b;
}
