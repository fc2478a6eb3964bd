// Reading a connected socket's queued bytes without taking them (MSG_PEEK), and taking an
// exact count: protocol sniffing looks at what the client sent, and whatever it does not
// take stays in the kernel for the program that gets the socket next (lossless hand-off).
import { loadNative } from './koffi.js';

const MSG_PEEK = 0x2;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const EINTR = 4;

/** Bytes read; 0 at end of stream; `again` when nothing is queued; or the errno. */
export type RecvResult = number | 'again' | { readonly errno: number };

export interface Recv {
  /** Copy up to `buf.length` queued bytes into `buf`, leaving them queued. */
  peek(fd: number, buf: Buffer): RecvResult;
  /** Take up to `len` queued bytes (into `buf`), never blocking. */
  take(fd: number, buf: Buffer, len: number): RecvResult;
}

let cached: Recv | Error | undefined;

export function loadRecv(): Recv | Error {
  if (cached !== undefined) return cached;
  const native = loadNative();
  if (native instanceof Error) return (cached = native);
  try {
    const { koffi, lib } = native;
    const recv = lib.func('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)');
    const call = (fd: number, buf: Buffer, len: number, flags: number): RecvResult => {
      for (;;) {
        const n = Number(recv(fd, buf, len, flags | MSG_DONTWAIT));
        if (n >= 0) return n;
        const errno = koffi.errno();
        if (errno === EINTR) continue;
        return errno === EAGAIN ? 'again' : { errno };
      }
    };
    cached = {
      peek: (fd, buf) => call(fd, buf, buf.length, MSG_PEEK),
      take: (fd, buf, len) => call(fd, buf, Math.min(len, buf.length), 0),
    };
  } catch (error) {
    cached = error instanceof Error ? error : new Error(String(error));
  }
  return cached;
}
