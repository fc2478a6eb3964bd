// One listening socket for a `socket` URL: bound with pauseOnConnect (the parent never reads
// a byte meant for a child), errors handled (a failed bind is logged and retried, EMFILE on
// accept is logged and survived), unix sockets with stale-file handling and permissions.
import { chmodSync, chownSync } from 'node:fs';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { clearStaleSocket, listenOn, removeSocketFile } from './socket-file.js';
import type { SocketAddress } from '../config/model.js';
import { describeBound, formatSocketAddress } from './socket-address.js';
import type { Logger } from '../log/logger.js';
import { detach } from '../log/detach.js';
import { lookupGroup, lookupUser } from '../supervisor/users.js';

export type ConnectionHandler = (socket: Socket) => void;

export interface ListenerOptions {
  readonly address: SocketAddress;
  readonly log: Logger;
  readonly onConnection: ConnectionHandler;
  /** Delay before retrying a failed bind; doubles up to a minute. */
  readonly retryMs?: number;
  /** A socket already bound and listening, inherited from systemd (socket activation). */
  readonly fd?: number;
}

const MAX_RETRY_MS = 60_000;
const LISTEN_BACKLOG = 511;

export class Listener {
  readonly address: SocketAddress;
  readonly #log: Logger;
  #handler: ConnectionHandler;
  #server: Server | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryMs: number;
  #closed = false;
  readonly #fd: number | undefined;
  #lastAcceptError = 0;
  /** Connections still held by the parent (not yet handed to a child, or served in-process). */
  readonly #open = new Set<Socket>();

  constructor(options: ListenerOptions) {
    this.address = options.address;
    this.#log = options.log;
    this.#handler = options.onConnection;
    this.#retryMs = options.retryMs ?? 5_000;
    this.#fd = options.fd;
  }

  /** Replace what happens with new connections (reload keeps the bound socket). */
  setHandler(handler: ConnectionHandler): void {
    this.#handler = handler;
  }

  /** Bind and listen; on failure log, schedule a retry and resolve false. */
  async start(): Promise<boolean> {
    if (this.#closed) return false;
    if (this.#server) return true;
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
      // An unhandled socket error would kill the daemon; the handler may add its own.
      socket.on('error', () => socket.destroy());
      this.#open.add(socket);
      socket.once('close', () => this.#open.delete(socket));
      this.#handler(socket);
    });
    server.on('error', (error: NodeJS.ErrnoException) => this.#onServerError(error));
    try {
      await this.#listen(server);
      // close() ran while we were binding: do not keep what nobody owns any more.
      if (this.#closed) {
        server.close();
        if (this.address.kind === 'unix' && this.#fd === undefined) removeSocketFile(this.address.path);
        return false;
      }
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      this.#log.error({ socket: this.address.url, code: e.code, reason: e.message, retryMs: this.#retryMs }, 'listen failed');
      server.close();
      this.#scheduleRetry();
      return false;
    }
    this.#server = server;
    this.#log.info({ socket: formatSocketAddress(this.address), bound: this.describe() }, 'listening');
    return true;
  }

  /** Where the socket is bound (the kernel's port for port 0), or undefined if not bound. */
  bound(): AddressInfo | string | undefined {
    return this.#server?.address() ?? undefined;
  }

  /** True for a socket inherited from systemd. */
  get inherited(): boolean {
    return this.#fd !== undefined;
  }

  get server(): Server | undefined {
    return this.#server;
  }

  describe(): string {
    return describeBound(this.bound());
  }

  /** Stop listening; connections already handed to children are not touched. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Children keep their own copies; what the parent still holds would keep close() waiting.
    for (const socket of this.#open) socket.destroy();
    await closed;
    // An inherited socket's file belongs to systemd, which keeps it across our restarts.
    if (this.address.kind === 'unix' && this.#fd === undefined) removeSocketFile(this.address.path);
  }

  #scheduleRetry(): void {
    const delay = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      detach(this.start(), this.#log, 'listen retry');
    }, delay);
    this.#retryTimer.unref();
  }

  #onServerError(error: NodeJS.ErrnoException): void {
    // EMFILE/ENFILE on accept: the listener stays up; say so at most once a second.
    const now = Date.now();
    if (now - this.#lastAcceptError < 1000) return;
    this.#lastAcceptError = now;
    this.#log.error({ socket: this.address.url, code: error.code, reason: error.message }, 'accept failed');
  }

  async #listen(server: Server): Promise<void> {
    const a = this.address;
    if (this.#fd !== undefined) {
      await listenOn(server, { fd: this.#fd });
      return;
    }
    if (a.kind === 'inet') {
      await listenOn(server, { host: a.host, port: a.port, backlog: LISTEN_BACKLOG, ...(a.family === 6 ? { ipv6Only: false } : {}) });
      return;
    }
    const problem = await clearStaleSocket(a.path);
    if (problem === 'not-a-socket') throw Object.assign(new Error(`${a.path} exists and is not a socket`), { code: 'EEXIST' });
    if (problem === 'in-use') throw Object.assign(new Error(`${a.path} is in use by another process`), { code: 'EADDRINUSE' });
    // The socket file is created by bind(), synchronously inside listen(): umask applies there.
    const previous = a.umask !== undefined ? process.umask(a.umask) : undefined;
    try {
      await listenOn(server, { path: a.path, backlog: LISTEN_BACKLOG });
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
    if (a.mode !== undefined) chmodSync(a.path, a.mode);
    if (a.user !== undefined || a.group !== undefined) {
      const user = a.user !== undefined ? lookupUser(a.user) : undefined;
      const group = a.group !== undefined ? lookupGroup(a.group) : undefined;
      if (a.user !== undefined && !user) throw Object.assign(new Error(`unknown user "${a.user}" for ${a.url}`), { code: 'EINVAL' });
      if (a.group !== undefined && !group) throw Object.assign(new Error(`unknown group "${a.group}" for ${a.url}`), { code: 'EINVAL' });
      chownSync(a.path, user?.uid ?? -1, group?.gid ?? user?.gid ?? -1);
    }
  }
}
