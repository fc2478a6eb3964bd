// Node's read path into a caller's buffer (the mechanism behind the public `onread` option of
// net.connect), attached to an accepted socket after the fact: the byte-exact TCPMUX line
// reader gives it a 1-byte buffer, `forward` its relay buffers. net.js keeps the buffer and
// its callback under symbols of its own, the same for every socket, looked up once.
import type { Socket } from 'node:net';

export interface UserBufferSymbols {
  readonly kBuffer: symbol;
  readonly kBufferCb: symbol;
  readonly kBufferGen: symbol;
}

interface UserBufferHandle {
  _handle?: { useUserBuffer?: (buf: Uint8Array) => void } | null;
}

let cache: UserBufferSymbols | undefined;

/** The symbols, when this Node has them and `socket` can still take a user buffer. */
export function userBufferSymbols(socket: Socket): UserBufferSymbols | undefined {
  if (typeof (socket as unknown as UserBufferHandle)._handle?.useUserBuffer !== 'function') return undefined;
  if (cache && Object.hasOwn(socket, cache.kBuffer)) return cache;
  const symbols = Object.getOwnPropertySymbols(socket);
  const find = (name: string): symbol | undefined => symbols.find((s) => s.description === name);
  const kBuffer = find('kBuffer');
  const kBufferCb = find('kBufferCb');
  const kBufferGen = find('kBufferGen');
  if (!kBuffer || !kBufferCb || !kBufferGen) return undefined;
  return (cache = { kBuffer, kBufferCb, kBufferGen });
}

/** Read into `buffer` (then what `next` gives, if set); `callback(nread, buf)` returning false stops reading. */
export function useUserBuffer(socket: Socket, symbols: UserBufferSymbols, buffer: Uint8Array, callback: (nread: number, buffer: Uint8Array) => boolean, next?: () => Uint8Array): void {
  const target = socket as unknown as Record<symbol, unknown>;
  if (next) target[symbols.kBufferGen] = next;
  target[symbols.kBufferCb] = callback;
  target[symbols.kBuffer] = buffer;
  (socket as unknown as UserBufferHandle)._handle?.useUserBuffer?.(buffer);
}
