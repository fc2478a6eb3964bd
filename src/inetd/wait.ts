// `flags wait` (inetd's "wait"): tpies holds the listening socket without accepting on it and,
// when a connection is pending, starts the program with the listening socket on stdin and
// stdout; the program accepts by itself, and tpies watches the socket again once it exits.
// Node cannot hold a socket without accepting on it, so the socket is made and polled through
// libc (src/native/libc.ts); poll(2) runs on koffi's worker thread, never on the event loop.
import { chmodSync, chownSync, lstatSync, unlinkSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { SocketAddress } from '../config/model.js';
import type { Logger } from '../log/logger.js';
import { detach } from '../log/detach.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  type Libc,
  POLLIN,
  SOCK_CLOEXEC,
  SOCK_STREAM,
  SOL_SOCKET,
  SO_REUSEADDR,
  SUN_PATH_MAX,
  errnoName,
  loadLibc,
  writeFamily,
} from '../native/libc.js';
import { lookupGroup, lookupUser } from '../supervisor/users.js';
import { describeBound } from './socket-address.js';

/** Runs the program on the listening fd; resolves when it has exited. */
export type ServeListening = (fd: number) => Promise<void>;

const BACKLOG = 511;
// How often the poll loop wakes to notice close(); a pending connection wakes it at once.
const POLL_SLICE_MS = 500;
// Failed polls in a row taken as interruptions before retries are slowed down.
const EINTR_RUN = 100;

export class WaitListener {
  readonly address: SocketAddress;
  readonly inherited = false;
  readonly #log: Logger;
  #serve: ServeListening;
  #fd: number | undefined;
  #port: number | undefined;
  #closed = false;
  #loop: Promise<void> | undefined;

  constructor(options: { address: SocketAddress; log: Logger; serve: ServeListening }) {
    this.address = options.address;
    this.#log = options.log;
    this.#serve = options.serve;
  }

  /** Replace the program that serves the socket (reload keeps the bound socket). */
  setServe(serve: ServeListening): void {
    this.#serve = serve;
  }

  /** Bind and listen through libc, then watch for connections; false (logged) on failure. */
  async start(): Promise<boolean> {
    if (this.#closed) return false;
    if (this.#fd !== undefined) return true;
    const libc = loadLibc();
    if (libc instanceof Error) {
      this.#log.error({ socket: this.address.url, reason: `flags wait needs koffi: ${libc.message}` }, 'listen failed');
      return false;
    }
    const bound = await bindListening(libc, this.address).catch((error: Error) => error);
    if (bound instanceof Error) {
      this.#log.error({ socket: this.address.url, reason: bound.message }, 'listen failed');
      return false;
    }
    this.#fd = bound.fd;
    this.#port = bound.port;
    this.#log.info({ socket: this.address.url, bound: this.describe(), wait: true }, 'listening');
    this.#loop = this.#watch(libc, bound.fd);
    detach(this.#loop, this.#log, 'wait listener');
    return true;
  }

  bound(): { address: string; family: string; port: number } | string | undefined {
    if (this.#fd === undefined) return undefined;
    if (this.address.kind === 'unix') return this.address.path;
    return { address: this.address.host, family: this.address.family === 6 ? 'IPv6' : 'IPv4', port: this.#port ?? this.address.port };
  }

  describe(): string {
    return describeBound(this.bound());
  }

  /** Stop watching and close the socket (a running program keeps its own copy). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#loop;
  }

  async #watch(libc: Libc, fd: number): Promise<void> {
    const pollfd = Buffer.alloc(8);
    let failures = 0;
    try {
      while (!this.#closed) {
        pollfd.writeInt32LE(fd, 0);
        pollfd.writeInt16LE(POLLIN, 4);
        pollfd.writeInt16LE(0, 6);
        const ready = await libc.pollAsync(pollfd, 1, POLL_SLICE_MS);
        if (this.#closed) break;
        // A signal landing on the pool thread interrupts the poll (EINTR), and with children
        // exiting all the time (SIGCHLD) that can happen many times in a row: poll again.
        // koffi cannot tell us errno from that thread, so a poll that keeps failing for some
        // other reason is retried too, but slowed down, until the listener is closed.
        if (ready < 0) {
          if (++failures > EINTR_RUN) await new Promise((resolve) => setTimeout(resolve, Math.min(failures, 100) * 10));
          continue;
        }
        failures = 0;
        if (ready > 0) await this.#serve(fd);
      }
    } finally {
      libc.close(fd);
      this.#fd = undefined;
      if (this.address.kind === 'unix') removeFile(this.address.path);
    }
  }
}

async function bindListening(libc: Libc, address: SocketAddress): Promise<{ fd: number; port: number | undefined }> {
  const sa = address.kind === 'unix' ? sockaddrUn(address.path) : await sockaddrIn(address);
  if (address.kind === 'unix') clearStale(address.path);
  const family = address.kind === 'unix' ? AF_UNIX : sa.length === 16 ? AF_INET : AF_INET6;
  const fd = libc.socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket: ${errnoName(libc.errno())}`);
  const fail = (what: string): never => {
    const reason = errnoName(libc.errno());
    libc.close(fd);
    throw new Error(`${what} ${address.url}: ${reason}`);
  };
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  if (address.kind !== 'unix' && libc.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) < 0) fail('setsockopt');
  const previous = address.kind === 'unix' && address.umask !== undefined ? process.umask(address.umask) : undefined;
  const bound = libc.bind(fd, sa, sa.length);
  if (previous !== undefined) process.umask(previous);
  if (bound < 0) fail('bind');
  if (libc.listen(fd, BACKLOG) < 0) fail('listen');
  if (address.kind === 'unix') {
    if (address.mode !== undefined) chmodSync(address.path, address.mode);
    const user = address.user !== undefined ? lookupUser(address.user) : undefined;
    const group = address.group !== undefined ? lookupGroup(address.group) : undefined;
    if (user || group) chownSync(address.path, user?.uid ?? -1, group?.gid ?? user?.gid ?? -1);
    return { fd, port: undefined };
  }
  const name = Buffer.alloc(28);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(name.length);
  if (libc.getsockname(fd, name, len) < 0) fail('getsockname');
  return { fd, port: name.readUInt16BE(2) };
}

// struct sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes); host names resolved first.
async function sockaddrIn(address: Extract<SocketAddress, { kind: 'inet' }>): Promise<Buffer> {
  const host = isIP(address.host) ? address.host : (await lookup(address.host, { family: address.family })).address;
  if (isIP(host) === 4) {
    const sa = Buffer.alloc(16);
    writeFamily(sa, AF_INET);
    sa.writeUInt16BE(address.port, 2);
    host.split('.').forEach((octet, i) => sa.writeUInt8(Number(octet), 4 + i));
    return sa;
  }
  const sa = Buffer.alloc(28);
  writeFamily(sa, AF_INET6);
  sa.writeUInt16BE(address.port, 2);
  ipv6Bytes(host).copy(sa, 8);
  return sa;
}

function ipv6Bytes(address: string): Buffer {
  // A trailing dotted quad (::ffff:10.0.0.1) is two 16-bit groups.
  const text = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`);
  const [head = '', tail] = text.split('::');
  const parts = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const left = parts(head);
  const right = tail === undefined ? [] : parts(tail);
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(Number.parseInt(g, 16), i * 2));
  return out;
}

function sockaddrUn(path: string): Buffer {
  const bytes = Buffer.from(path);
  if (bytes.length + 1 > SUN_PATH_MAX) throw new Error(`unix socket path ${path} is too long`);
  const sa = Buffer.alloc(2 + bytes.length + 1);
  writeFamily(sa, AF_UNIX);
  bytes.copy(sa, 2);
  return sa;
}

// A socket file left behind is removed; anything else in the way is an error.
function clearStale(path: string): void {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket`);
  removeFile(path);
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
