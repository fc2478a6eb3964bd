// Reads the TCPMUX service line from an accepted (paused) socket without taking one byte
// past the LF from the kernel: whatever the client sent after it stays queued for the child,
// which gets the very same socket (node-on-this-machine.md §3). By default, a line already
// queued whole is taken with one peek (recv MSG_PEEK) and one read of exactly its length;
// otherwise, two ways, same result:
// * `buffer`: Node's own read path into a 1-byte user buffer (the mechanism behind the
//   public `onread` option, attached after accept), stopping at the LF; event-driven.
// * `poll`: non-blocking readSync on the fd with a short backoff; public API only, used
//   when this Node lacks the user-buffer internals.
// Naming a strategy skips the peek (tests use it to exercise each way).
import { readSync } from 'node:fs';
import type { Socket } from 'node:net';
import { handleFd } from '../inetd/handle-fd.js';
import { errnoName } from '../native/libc.js';
import { loadRecv } from '../native/recv.js';
import { type UserBufferSymbols, userBufferSymbols, useUserBuffer } from '../inetd/user-buffer.js';
import { type LineResult, createLineReader } from './protocol.js';

export interface ReadLineOptions {
  readonly maxLineBytes: number;
  readonly timeoutMs: number;
  readonly strategy?: 'buffer' | 'poll';
}

export type ReadLineResult = LineResult | { readonly state: 'timeout' } | { readonly state: 'error'; readonly code: string };

export interface LineRead {
  readonly result: Promise<ReadLineResult>;
  /** Stop reading (daemon stopping); resolves `result` with a timeout. */
  cancel(): void;
}

// Read the line; the socket must have been accepted paused and must not be read elsewhere.
export function readServiceLine(socket: Socket, options: ReadLineOptions): LineRead {
  // Most clients send the line with the handshake: when it is all there, one peek and one
  // read of exactly its length replace a read per byte.
  const whole = options.strategy === undefined ? takeQueuedLine(socket, options.maxLineBytes) : undefined;
  if (whole) return { result: Promise.resolve(whole), cancel: () => undefined };
  const symbols = userBufferSymbols(socket);
  if ((options.strategy ?? 'buffer') === 'buffer' && symbols) return readWithUserBuffer(socket, symbols, options);
  return readByPolling(socket, options);
}

let scratch = Buffer.alloc(0);
const SHARED_BYTE = Buffer.alloc(1);

// The line, if the kernel already holds all of it (taken, nothing after it); else undefined
// with nothing taken.
function takeQueuedLine(socket: Socket, maxLineBytes: number): ReadLineResult | undefined {
  const recv = loadRecv();
  const fd = handleFd(socket);
  if (recv instanceof Error || fd === undefined) return undefined;
  if (scratch.length < maxLineBytes) scratch = Buffer.alloc(maxLineBytes);
  const seen = recv.peek(fd, scratch.subarray(0, maxLineBytes));
  if (typeof seen !== 'number' || seen === 0) return undefined;
  const lf = scratch.subarray(0, seen).indexOf(0x0a);
  if (lf === -1) return undefined;
  const line = takeBytes(socket, lf + 1);
  if (line instanceof Error) return { state: 'error', code: line.message };
  const result = createLineReader({ maxLineBytes }).push(line);
  return result.state === 'more' ? undefined : result;
}

/** Take exactly `count` queued bytes: a TCPMUX line seen whole by a peek. */
export function takeBytes(socket: Socket, count: number): Buffer | Error {
  const recv = loadRecv();
  const fd = handleFd(socket);
  if (recv instanceof Error) return recv;
  if (fd === undefined) return new Error('EBADF');
  const buf = Buffer.alloc(count);
  const r = recv.take(fd, buf, count);
  if (typeof r === 'object') return new Error(errnoName(r.errno));
  // The bytes were seen queued, and only this process reads the socket.
  if (r !== count) return new Error(`short read of the request line (${r === 'again' ? 0 : r} of ${count} bytes)`);
  return buf;
}

/** True when this Node has the internals the `buffer` strategy uses. */
export function hasUserBuffer(socket: Socket): boolean {
  return userBufferSymbols(socket) !== undefined;
}

function readWithUserBuffer(socket: Socket, symbols: UserBufferSymbols, options: ReadLineOptions): LineRead {
  const reader = createLineReader({ maxLineBytes: options.maxLineBytes });
  // One byte buffer for every connection: Node fills it and calls back before reading any
  // other socket, so sharing it is safe, and 10,000 idle clients hold no buffer each.
  const one = SHARED_BYTE;
  let settle!: (r: ReadLineResult) => void;
  let done = false;
  const result = new Promise<ReadLineResult>((resolve) => {
    settle = (r) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // No more reads until the socket is handed off (or closed).
      socket.pause();
      socket.off('end', onEnd);
      socket.off('error', onError);
      resolve(r);
    };
  });
  const onEnd = (): void => settle(reader.end());
  const onError = (error: NodeJS.ErrnoException): void => settle({ state: 'error', code: error.code ?? 'EIO' });
  const timer = setTimeout(() => settle({ state: 'timeout' }), options.timeoutMs);
  // Returning false makes Node stop reading (readStop) right after this byte.
  useUserBuffer(socket, symbols, one, (nread) => {
    if (done || nread <= 0) return false;
    const r = reader.push(one);
    if (r.state === 'more') return true;
    settle(r);
    return false;
  });
  socket.on('end', onEnd);
  socket.on('error', onError);
  socket.resume();
  return {
    result,
    cancel: () => settle({ state: 'timeout' }),
  };
}

function readByPolling(socket: Socket, options: ReadLineOptions): LineRead {
  const fd = handleFd(socket);
  if (fd === undefined) return { result: Promise.resolve({ state: 'error', code: 'EBADF' }), cancel: () => undefined };
  const reader = createLineReader({ maxLineBytes: options.maxLineBytes });
  const byte = Buffer.alloc(1);
  const deadline = Date.now() + options.timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  let done = false;
  let settle!: (r: ReadLineResult) => void;
  const result = new Promise<ReadLineResult>((resolve) => {
    settle = (r) => {
      if (done) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      resolve(r);
    };
  });
  let delay = 1;
  const attempt = (): void => {
    timer = undefined;
    for (let n = 0; !done; ) {
      try {
        n = readSync(fd, byte, 0, 1, null);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
        if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') return settle({ state: 'error', code });
        if (Date.now() >= deadline) return settle({ state: 'timeout' });
        // Most clients send the line with the handshake: short waits first, then 50 ms.
        timer = setTimeout(attempt, delay);
        delay = Math.min(delay * 2, 50);
        return;
      }
      const r = n === 0 ? reader.end() : reader.push(byte);
      if (r.state !== 'more') return settle(r);
      delay = 1;
    }
  };
  attempt();
  return { result, cancel: () => settle({ state: 'timeout' }) };
}

// Read and drop whatever the client still sends (lingering close), whichever way the line
// was read; after `maxBytes` the socket is destroyed. The caller watches 'end'/'close'.
export function discardInput(socket: Socket, maxBytes: number): void {
  let seen = 0;
  const symbols = userBufferSymbols(socket);
  const target = socket as unknown as Record<symbol, unknown>;
  // A user buffer is in place (null is the constructor's "none"): keep reading into it.
  if (symbols && target[symbols.kBuffer]) {
    target[symbols.kBufferCb] = (nread: number): boolean => {
      seen += Math.max(0, nread);
      if (seen <= maxBytes) return true;
      socket.destroy();
      return false;
    };
  } else {
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > maxBytes) socket.destroy();
    });
  }
  socket.resume();
}
