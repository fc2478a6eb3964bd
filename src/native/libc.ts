// The few socket calls Node has no API for — unix datagrams for sd_notify, and a listening
// socket tpies holds without accepting on it (`flags wait`), watched with poll(2) on koffi's
// worker thread. Bound lazily through native/koffi.ts.
import { endianness } from 'node:os';
import { constants } from 'node:os';
import { loadNative } from './koffi.js';

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number): number;
  bind(fd: number, addr: Buffer, addrlen: number): number;
  listen(fd: number, backlog: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  getsockname(fd: number, addr: Buffer, len: Buffer): number;
  close(fd: number): number;
  /** poll(2) on a worker thread: resolves with poll's return value and fills `fds`. */
  pollAsync(fds: Buffer, nfds: number, timeoutMs: number): Promise<number>;
  errno(): number;
}

// Linux values (x86, arm, riscv, loongarch, ppc).
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const MSG_NOSIGNAL = 0x4000;
export const POLLIN = 0x001;
export const EAGAIN = 11;
export const SUN_PATH_MAX = 108;

let cached: Libc | Error | undefined;

export function loadLibc(): Libc | Error {
  if (cached !== undefined) return cached;
  try {
    const native = loadNative();
    if (native instanceof Error) throw native;
    const { koffi, lib } = native;
    const socket = lib.func('int socket(int domain, int type, int protocol)');
    const sendto = lib.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)');
    const bind = lib.func('int bind(int fd, const void *addr, uint32_t addrlen)');
    const listen = lib.func('int listen(int fd, int backlog)');
    const setsockopt = lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)');
    const getsockname = lib.func('int getsockname(int fd, _Inout_ void *addr, _Inout_ void *len)');
    const close = lib.func('int close(int fd)');
    const poll = lib.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)');
    cached = {
      socket: (domain, type, protocol) => socket(domain, type, protocol) as number,
      sendto: (fd, buf, len, flags, addr, addrlen) => Number(sendto(fd, buf, len, flags, addr, addrlen)),
      bind: (fd, addr, len) => bind(fd, addr, len) as number,
      listen: (fd, backlog) => listen(fd, backlog) as number,
      setsockopt: (fd, level, name, value, len) => setsockopt(fd, level, name, value, len) as number,
      getsockname: (fd, addr, len) => getsockname(fd, addr, len) as number,
      close: (fd) => close(fd) as number,
      pollAsync: (fds, nfds, timeoutMs) =>
        new Promise((resolve, reject) => {
          poll.async(fds, nfds, timeoutMs, (error: unknown, result: unknown) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(result as number)));
        }),
      errno: () => koffi.errno(),
    };
  } catch (error) {
    cached = error instanceof Error ? error : new Error(String(error));
  }
  return cached;
}

// sa_family_t is in host byte order; everything else in a sockaddr is network order.
export function writeFamily(sa: Buffer, family: number): void {
  if (endianness() === 'LE') sa.writeUInt16LE(family, 0);
  else sa.writeUInt16BE(family, 0);
}

// ENOENT rather than 2, for logs.
export function errnoName(errno: number): string {
  return Object.entries(constants.errno).find((e) => e[1] === errno)?.[0] ?? `errno ${errno}`;
}
