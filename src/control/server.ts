// The control socket: HTTP + JSON (pies' control API) on a private unix socket by default, or
// on inet only behind `control { acl …; }`. Wiring only: who may connect and do what (the
// control ACLs), body and time limits, JSON in and out. The answers come from routes.ts.
import { chmodSync, chownSync, lstatSync, mkdirSync } from 'node:fs';
import { type IncomingMessage, STATUS_CODES, type ServerResponse, createServer as createHttpServer } from 'node:http';
import { type Server, type Socket, createServer } from 'node:net';
import { type CompiledAcl, compileAcl, decideChain, denyAllAcl } from '../acl/acl.js';
import { type Peer, peerFromAddress } from '../acl/peer.js';
import type { Acl, AclRef, Config, SocketAddress } from '../config/model.js';
import { PiesError } from '../errors.js';
import { formatSocketAddress } from '../inetd/socket-address.js';
import { clearStaleSocket, listenOn, removeSocketFile } from '../inetd/socket-file.js';
import { detach } from '../log/detach.js';
import type { Logger } from '../log/logger.js';
import { lookupGroup, lookupUser } from '../supervisor/users.js';
import { type ControlPeer, type ControlResponse, type ControlTarget, errorResponse, handleRequest } from './routes.js';
import { type DefaultSocketPath, defaultControlSocket } from './socket-path.js';

export const MAX_BODY_BYTES = 64 * 1024;
export const REQUEST_TIMEOUT_MS = 10_000;
// Headers of a request (node's default is 16 KiB); nothing we serve needs more.
const MAX_HEADER_BYTES = 8 * 1024;
const MAX_CONNECTIONS = 64;
const DEFAULT_MODE = 0o600;

/** The `control` block's ACLs, plus the components' own list-acl and admin-acl. */
export interface ControlAcls {
  /** Who may connect at all. Required for an inet socket. */
  readonly acl?: AclRef | undefined;
  /** Who may use the modifying methods; absent: unix peers may, inet peers may not. */
  readonly adminAcl?: AclRef | undefined;
  /** Who may use the read-only methods; absent: whoever may connect. */
  readonly userAcl?: AclRef | undefined;
  readonly defacls: ReadonlyMap<string, Acl>;
  readonly components?: ReadonlyMap<string, { readonly listAcl?: AclRef | undefined; readonly adminAcl?: AclRef | undefined }>;
}

export interface ControlServerOptions {
  /** Where to listen; default: the unix socket of control/socket-path.ts. */
  readonly socket?: SocketAddress;
  /** A function is called for every connection and request, so a reload's ACLs apply at once. */
  readonly acls?: ControlAcls | (() => ControlAcls);
  readonly log: Logger;
  readonly maxBodyBytes?: number;
  /** A request must arrive (headers and body) without a pause longer than this. */
  readonly requestTimeoutMs?: number;
  /** Requests wait for this before reaching the target (the socket is bound before the
   * daemon has finished starting, so that nothing listens before it). */
  readonly targetReady?: Promise<unknown>;
}

export interface ControlServer {
  /** The socket URL as bound: `unix:///run/tpies/tpies.ctl`, `inet://127.0.0.1:8073`. */
  readonly url: string;
  /** The unix socket path, for unix sockets. */
  readonly path?: string;
  /** The bound port, for inet sockets. */
  readonly port?: number;
  /** Stop accepting, drop open connections, remove the socket file. */
  close(): Promise<void>;
}

const NO_ACLS: ControlAcls = { defacls: new Map() };

// The ACL part of a config, for `acls: () => controlAclsOf(daemon.config)`.
export function controlAclsOf(config: Config): ControlAcls {
  const components = new Map(config.components.filter((c) => c.listAcl !== undefined || c.adminAcl !== undefined).map((c) => [c.tag, { listAcl: c.listAcl, adminAcl: c.adminAcl }]));
  return { acl: config.control?.acl, adminAcl: config.control?.adminAcl, userAcl: config.control?.userAcl, defacls: config.defacls, components };
}

// The options for a daemon's control server: the socket from an override (--control-socket),
// else `control { socket }`, else the default; the ACLs re-read from the live config, so a
// reload's new ACLs apply at once (a changed `socket` needs a restart).
export function daemonControlOptions(daemon: { readonly config: Config }, log: Logger, override?: SocketAddress): ControlServerOptions {
  const socket = override ?? daemon.config.control?.socket;
  return { ...(socket !== undefined ? { socket } : {}), acls: () => controlAclsOf(daemon.config), log: log.child({ subsystem: 'control' }) };
}

// Bind the control socket and serve the API of `target`. Throws PiesError ERR_CONTROL when
// the socket cannot be made, and for an inet socket without `control { acl …; }`.
export async function startControlServer(target: ControlTarget, options: ControlServerOptions): Promise<ControlServer> {
  const { log } = options;
  const fallback = options.socket === undefined ? defaultControlSocket() : undefined;
  const address: SocketAddress = options.socket ?? { kind: 'unix', path: fallback!.path, url: `unix://${fallback!.path}` };
  const aclsNow = (): ControlAcls => (typeof options.acls === 'function' ? options.acls() : (options.acls ?? NO_ACLS));
  const url = formatSocketAddress(address);
  // Fail closed: over TCP anyone who can reach the port could run commands (supervisord's
  // CVE-2017-11610 and CVE-2019-12105 are what happens without this).
  if (address.kind === 'inet' && aclsNow().acl === undefined) {
    throw new PiesError('ERR_CONTROL', `control socket ${url}: an inet control socket needs \`control { acl …; }\` saying who may connect (or use a unix socket)`);
  }
  const maxBody = options.maxBodyBytes ?? MAX_BODY_BYTES;
  const timeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const unixPath = address.kind === 'unix' ? address.path : undefined;
  const decider = new AclDecider();
  const peers = new WeakMap<Socket, Peer>();
  const sockets = new Set<Socket>();

  // A whole request (head and body) must arrive within the limit even while bytes keep
  // trickling in (slowloris): the inactivity timeout never fires for such a client, and
  // MAX_CONNECTIONS of them would lock everybody else out. (Node's own headersTimeout is
  // only enforced for servers that listen() themselves.) Armed when a connection opens and
  // after each answer; cleared once a request has arrived.
  const deadlines = new WeakMap<Socket, NodeJS.Timeout>();
  const lateRequests = new WeakMap<Socket, () => void>();
  const armDeadline = (socket: Socket): void => {
    clearTimeout(deadlines.get(socket));
    const timer = setTimeout(() => {
      const late = lateRequests.get(socket);
      if (late) return late();
      socket.end(rawResponse(errorResponse('ERR_TIMEOUT', `request not received within ${timeoutMs} ms`)));
      setTimeout(() => socket.destroy(), 1000).unref();
    }, timeoutMs);
    timer.unref();
    deadlines.set(socket, timer);
  };

  const http = createHttpServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: 0, keepAliveTimeout: timeoutMs }, (req, res) => {
    detach(serve(req, res), log, 'control request');
  });
  http.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const message = error.code === 'HPE_HEADER_OVERFLOW' ? `request headers over ${MAX_HEADER_BYTES} bytes` : `malformed HTTP request (${error.code ?? error.message})`;
    socket.end(rawResponse(errorResponse('ERR_BAD_REQUEST', message)));
    socket.destroySoon();
  });

  // Accept here rather than in the HTTP server, so a client the `acl` refuses gets one 403
  // and is never parsed at all.
  const server: Server = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const peer: Peer = unixPath !== undefined ? { kind: 'unix', path: unixPath } : peerFromAddress(socket.remoteAddress, socket.remoteFamily, socket.remotePort);
    const refusal = connectRefusal(peer, aclsNow(), decider);
    if (refusal !== undefined) {
      log.warn({ peer: describePeer(peer), reason: refusal }, 'control connection denied');
      socket.resume();
      socket.end(rawResponse(errorResponse('ERR_FORBIDDEN', refusal)));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    peers.set(socket, peer);
    // Inactivity limit while a request arrives; lifted while the daemon works on one.
    socket.setTimeout(timeoutMs);
    armDeadline(socket);
    socket.once('close', () => clearTimeout(deadlines.get(socket)));
    http.emit('connection', socket);
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.on('error', (error: NodeJS.ErrnoException) => log.error({ socket: url, code: error.code, reason: error.message }, 'control accept failed'));

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const socket = req.socket;
    const peer = peers.get(socket) ?? { kind: 'unknown' as const };
    let answered = false;
    const send = (response: ControlResponse, close = false): void => {
      if (answered) return;
      answered = true;
      writeResponse(res, response, close);
      res.once('finish', () => {
        if (socket.destroyed) return;
        socket.setTimeout(timeoutMs);
        armDeadline(socket);
      });
      // 'close' follows 'finish', and also comes when the client hung up first: a shutdown
      // that was answered (or tried to be) still happens.
      const after = response.after;
      if (after) res.once('close', () => detach(after(), log, 'control action'));
      if (response.error !== undefined) log.error({ method: req.method, path: req.url, err: response.error instanceof Error ? (response.error.stack ?? response.error.message) : String(response.error) }, 'control request failed');
    };
    // Node emits 'timeout' on the request when the socket idles mid-body.
    const late = (): void => send(errorResponse('ERR_TIMEOUT', `request not received within ${timeoutMs} ms`), true);
    req.on('timeout', late);
    lateRequests.set(socket, late);
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBody) {
      send(errorResponse('ERR_BODY_TOO_LARGE', `request body of ${declared} bytes is over the ${maxBody} byte limit`), true);
      return;
    }
    const received = await readBody(req, maxBody);
    clearTimeout(deadlines.get(socket));
    lateRequests.delete(socket);
    if (received.kind === 'too-large') {
      send(errorResponse('ERR_BODY_TOO_LARGE', `request body is over the ${maxBody} byte limit`), true);
      return;
    }
    if (received.kind === 'aborted' || answered) return;
    socket.setTimeout(0);
    let body: unknown;
    const { text } = received;
    if (text.trim() !== '') {
      try {
        body = JSON.parse(text);
      } catch (error) {
        send(errorResponse('ERR_BAD_REQUEST', `request body is not JSON: ${(error as Error).message}`));
        return;
      }
    }
    const parsed = parseTarget(req.url ?? '/');
    await options.targetReady;
    const response = parsed
      ? await handleRequest(target, { method: req.method ?? 'GET', path: parsed.path, query: parsed.query, body, peer: accessOf(peer, unixPath !== undefined ? 'unix' : 'inet', aclsNow(), decider) })
      : errorResponse('ERR_BAD_REQUEST', `bad request target "${String(req.url).slice(0, 80)}"`);
    const fields = { method: req.method, path: parsed?.path ?? req.url, status: response.status, peer: describePeer(peer) };
    if (req.method === 'GET') log.debug(fields, 'control request');
    else log.info(fields, 'control request');
    send(response);
  }

  let bound: { path?: string; port?: number; url: string };
  try {
    bound = await listen(server, address, fallback, log);
  } catch (error) {
    if (error instanceof PiesError) throw error;
    const e = error as NodeJS.ErrnoException;
    throw new PiesError('ERR_CONTROL', `cannot listen on control socket ${url}: ${e.message}`, { cause: error });
  }
  const acls = aclsNow();
  if (address.kind === 'unix' && acls.adminAcl === undefined && ((address.mode ?? DEFAULT_MODE) & 0o077) !== 0) {
    log.warn({ socket: bound.url, mode: (address.mode ?? DEFAULT_MODE).toString(8) }, 'control socket is open to other users and every user who can connect may administer tpies (set control admin-acl)');
  }
  log.info({ socket: bound.url }, 'control socket listening');

  let closing: Promise<void> | undefined;
  return {
    ...bound,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await closed;
        if (bound.path !== undefined) removeSocketFile(bound.path);
      })();
      return closing;
    },
  };
}

type Body = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'too-large' } | { readonly kind: 'aborted' };

// The request body, up to `max` bytes. Past the limit the rest is read and dropped, so the
// client still gets to read the 413 before the connection closes.
function readBody(req: IncomingMessage, max: number): Promise<Body> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        chunks.length = 0;
        resolve({ kind: 'too-large' });
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(size > max ? { kind: 'too-large' } : { kind: 'text', text: Buffer.concat(chunks).toString('utf8') }));
    req.on('error', () => resolve({ kind: 'aborted' }));
    req.on('close', () => resolve({ kind: 'aborted' }));
  });
}

// "/programs/web?x=1" (or an absolute URL) → path and query; undefined when unparseable.
function parseTarget(url: string): { path: string; query: URLSearchParams } | undefined {
  try {
    const parsed = new URL(url, 'http://tpies.invalid');
    return { path: parsed.pathname, query: parsed.searchParams };
  } catch {
    return undefined;
  }
}

function writeResponse(res: ServerResponse, response: ControlResponse, close: boolean): void {
  const text = `${JSON.stringify(response.body)}\n`;
  res.statusCode = response.status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.setHeader('Cache-Control', 'no-store');
  for (const [name, value] of Object.entries(response.headers ?? {})) res.setHeader(name, value);
  if (close) res.setHeader('Connection', 'close');
  res.end(text);
}

// A whole HTTP response for a socket the HTTP server does not (or no longer) handle.
function rawResponse(response: ControlResponse): string {
  const text = `${JSON.stringify(response.body)}\n`;
  return [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ''}`, 'Content-Type: application/json; charset=utf-8', `Content-Length: ${Buffer.byteLength(text)}`, 'Cache-Control: no-store', 'Connection: close', '', text].join('\r\n');
}

function describePeer(peer: Peer): string {
  switch (peer.kind) {
    case 'unix':
      return `unix:${peer.path}`;
    case 'inet':
      return peer.family === 6 ? `[${peer.address}]:${peer.port ?? 0}` : `${peer.address}:${peer.port ?? 0}`;
    default:
      return `unknown (${peer.raw ?? 'no address'})`;
  }
}

// ---- access ---------------------------------------------------------------------------------

// ACLs compiled once per AclRef (a reload brings new refs, hence new compilations).
class AclDecider {
  readonly #compiled = new WeakMap<AclRef, { defacls: ReadonlyMap<string, Acl>; acl: CompiledAcl }>();

  // On a unix socket a peer no entry matches is allowed (pies' default; the file mode is
  // the gate). Over TCP it is denied: only what an ACL explicitly allows gets through.
  allows(ref: AclRef, defacls: ReadonlyMap<string, Acl>, peer: Peer, socket: 'unix' | 'inet'): boolean {
    let cached = this.#compiled.get(ref);
    if (cached === undefined || cached.defacls !== defacls) {
      const acl = ref.kind === 'inline' ? ref.acl : defacls.get(ref.name);
      cached = { defacls, acl: acl ? compileAcl(acl, defacls) : denyAllAcl(ref.kind === 'named' ? ref.name : undefined, 'undefined-acl') };
      this.#compiled.set(ref, cached);
    }
    return decideChain([cached.acl], peer, socket === 'unix' ? 'allow' : 'deny').decision === 'allow';
  }
}

// Why `peer` may not connect at all, or undefined when it may.
function connectRefusal(peer: Peer, acls: ControlAcls, decider: AclDecider): string | undefined {
  const socket = peer.kind === 'unix' ? 'unix' : 'inet';
  // A reload may have removed the acl an inet socket was started with: refuse everybody.
  if (socket === 'inet' && acls.acl === undefined) return 'the control socket is inet and the configuration has no control acl';
  if (acls.acl !== undefined && !decider.allows(acls.acl, acls.defacls, peer, socket)) return 'the control acl does not allow this client';
  return undefined;
}

// What `peer` may do, for routes.ts.
function accessOf(peer: Peer, socket: 'unix' | 'inet', acls: ControlAcls, decider: AclDecider): ControlPeer {
  const allows = (ref: AclRef | undefined, absent: boolean): boolean => (ref === undefined ? absent : decider.allows(ref, acls.defacls, peer, socket));
  // Checked again per request: a reload may have changed the acl since the connection opened.
  const connects = connectRefusal(peer, acls, decider) === undefined;
  return {
    kind: socket,
    // Unix sockets: the file's permissions already limit who connects, so they administer
    // unless an admin-acl says otherwise; over TCP only an admin-acl grants it.
    admin: connects && allows(acls.adminAcl, socket === 'unix'),
    read: connects && allows(acls.userAcl, true),
    canSee: (tag) => allows(acls.components?.get(tag)?.listAcl, true),
    canAdmin: (tag) => allows(acls.components?.get(tag)?.adminAcl, true),
  };
}

// ---- binding --------------------------------------------------------------------------------

async function listen(server: Server, address: SocketAddress, fallback: DefaultSocketPath | undefined, log: Logger): Promise<{ path?: string; port?: number; url: string }> {
  if (address.kind === 'inet') {
    await listenOn(server, { host: address.host, port: address.port, ...(address.family === 6 ? { ipv6Only: false } : {}) });
    const a = server.address();
    const port = a !== null && typeof a === 'object' ? a.port : address.port;
    return { port, url: formatSocketAddress({ kind: 'inet', family: address.family, host: address.host, port, url: address.url }) };
  }
  const { path } = address;
  if (fallback !== undefined) prepareDefaultDir(fallback, log);
  const problem = await clearStaleSocket(path);
  if (problem === 'not-a-socket') throw new PiesError('ERR_CONTROL', `cannot listen on control socket ${path}: the file exists and is not a socket`);
  if (problem === 'in-use') throw new PiesError('ERR_CONTROL', `cannot listen on control socket ${path}: another process (another tpies?) is answering on it`);
  // bind() creates the file synchronously inside listen(): the umask decides its first mode,
  // so it is never, even briefly, open to others; chmod then sets the final one.
  const previous = process.umask(address.umask ?? 0o177);
  try {
    await listenOn(server, { path });
  } finally {
    process.umask(previous);
  }
  try {
    chmodSync(path, address.mode ?? DEFAULT_MODE);
    if (address.user !== undefined || address.group !== undefined) {
      const user = address.user !== undefined ? lookupUser(address.user) : undefined;
      const group = address.group !== undefined ? lookupGroup(address.group) : undefined;
      if (address.user !== undefined && !user) throw new Error(`unknown user "${address.user}"`);
      if (address.group !== undefined && !group) throw new Error(`unknown group "${address.group}"`);
      chownSync(path, user?.uid ?? -1, group?.gid ?? user?.gid ?? -1);
    }
  } catch (error) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    removeSocketFile(path);
    throw error;
  }
  return { path, url: `unix://${path}` };
}

// /run/tpies is made 0755 (the socket's own mode guards it); /tmp/tpies-UID must be a
// directory of ours that nobody else can write to, or someone else could have placed it.
export function prepareDefaultDir(fallback: DefaultSocketPath, log: Logger): void {
  if (fallback.kind === 'runtime') return;
  try {
    mkdirSync(fallback.dir, { mode: fallback.kind === 'system' ? 0o755 : 0o700 });
    log.debug({ dir: fallback.dir }, 'control socket directory created');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new PiesError('ERR_CONTROL', `cannot create ${fallback.dir} for the control socket: ${(error as Error).message}`, { cause: error });
  }
  const st = lstatSync(fallback.dir);
  const uid = process.getuid?.() ?? 0;
  const unsafe = !st.isDirectory() ? 'not a directory' : st.uid !== uid ? `owned by uid ${st.uid}, not ${uid}` : (st.mode & (fallback.kind === 'private' ? 0o077 : 0o022)) !== 0 ? `mode ${(st.mode & 0o777).toString(8)} lets others in` : undefined;
  if (unsafe !== undefined) throw new PiesError('ERR_CONTROL', `refusing the control socket directory ${fallback.dir}: ${unsafe} (remove it, or choose a socket with --control-socket)`);
}
