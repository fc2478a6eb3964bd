// One accepted connection of an inetd-style component: ACLs (global, then the component's),
// connection limits, then a built-in service, the TCPMUX master, or a program that gets the
// connection as fd 0 and 1 while the parent lets go of its handle. One audit event each.
import type { Socket } from 'node:net';
import type { Component, Config } from '../config/model.js';
import { type CompiledAcl, type AclDecision, decideChain, describeDecision } from '../acl/acl.js';
import { type Peer, peerFromAddress } from '../acl/peer.js';
import type { Logger } from '../log/logger.js';
import { detach } from '../log/detach.js';
import { closeAfter } from './linger.js';
import { negativeReply } from '../tcpmux/protocol.js';
import type { Launcher } from '../supervisor/launch.js';
import type { Child } from '../supervisor/spawn.js';
import { type BuiltinService, serveBuiltin } from './builtins.js';
import type { ConnectionLimits, LimitHit } from './limits.js';
import { resolvedNames, sockenvVariables } from './sockenv.js';
import { forwardConnection } from './forward-connection.js';
import { writeAll } from './write-all.js';

/** What connection handling needs from the network layer. */
export interface ConnectionEnv {
  readonly config: Config;
  readonly log: Logger;
  readonly launcher: Launcher;
  /** The compiled global ACL and each component's own (undefined: no ACL). */
  acl(component?: Component): CompiledAcl | undefined;
  limits(component: Component): ConnectionLimits;
  /** Register a live child so stop can reach it and status can count it. */
  track(tag: string, child: Child): void;
  /** The TCPMUX master serves the connection (tcpmux/master.ts). */
  serveTcpmux(socket: Socket, master: Component, connection: Connection): void;
}

/** What is known about one connection; it grows into the audit event. */
export interface Connection {
  readonly peer: Peer;
  /** The listener's unix socket path, for unix peers. */
  readonly unixPath?: string;
  readonly startedAt: number;
  readonly fields: Record<string, string | number | boolean>;
  /** Called once when the connection's last resource is released. */
  finish(outcome: string, extra?: Record<string, string | number | boolean | undefined>): void;
}

// Handle a connection accepted (paused) on `component`'s listener.
export function acceptConnection(socket: Socket, component: Component, env: ConnectionEnv, unixPath?: string): void {
  const connection = openConnection(socket, component, env, unixPath);
  const denied = checkAcls(connection.peer, [env.acl(), env.acl(component)]);
  if (denied) {
    refuse(socket, component.accessDeniedMessage);
    connection.finish('denied', aclFields(denied));
    return;
  }
  const limits = env.limits(component);
  const ip = ipOf(connection.peer);
  const hit = limits.admit(ip, performance.now());
  if (hit) {
    refuse(socket, limitMessage(component, hit));
    connection.finish('refused', { limit: hit });
    return;
  }
  const release = once(() => limits.release(ip));
  const finish = connection.finish;
  const admitted: Connection = { ...connection, finish: (outcome, extra) => (release(), finish(outcome, extra)) };
  if (component.internal === 'tcpmux') env.serveTcpmux(socket, component, admitted);
  else if (component.internal) serveInternal(socket, component.internal, env, admitted);
  else detach(deliver(socket, component, env, admitted), env.log, 'hand-off');
}

// The audit event's common part, and the single place it is logged.
export function openConnection(socket: Socket, component: Component, env: ConnectionEnv, unixPath?: string): Connection {
  const peer: Peer = unixPath !== undefined ? { kind: 'unix', path: unixPath } : peerFromAddress(socket.remoteAddress, socket.remoteFamily, socket.remotePort);
  const fields: Record<string, string | number | boolean> = {
    component: component.tag,
    peer: describePeer(peer),
    local: unixPath ?? describePeer(peerFromAddress(socket.localAddress, socket.localFamily, socket.localPort)),
  };
  const startedAt = Date.now();
  let finished = false;
  return {
    peer,
    ...(unixPath !== undefined ? { unixPath } : {}),
    startedAt,
    fields,
    finish(outcome, extra = {}) {
      if (finished) return;
      finished = true;
      const defined = Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined));
      env.log.info({ ...fields, outcome, durationMs: Date.now() - startedAt, ...defined }, 'connection');
    },
  };
}

// First deny of the chain (global → … → own), or undefined when every level allows.
export function checkAcls(peer: Peer, acls: readonly (CompiledAcl | undefined)[]): AclDecision | undefined {
  const chain = acls.filter((a): a is CompiledAcl => a !== undefined);
  const verdict = decideChain(chain, peer);
  if (verdict.decision === 'allow') return undefined;
  return verdict.results[verdict.level ?? verdict.results.length - 1] ?? { decision: 'deny', path: [], trail: [] };
}

export function aclFields(d: AclDecision): Record<string, string> {
  return { acl: 'deny', aclRule: describeDecision(d) };
}

// Serve an admitted connection the component's way: proxy it (`forward`) or start its program.
export function deliver(socket: Socket, component: Component, env: ConnectionEnv, connection: Connection, options: { reply?: Buffer; master?: Component } = {}): Promise<void> {
  if (component.forward) return forwardConnection(socket, component, env, connection, options.reply ? { reply: options.reply } : {});
  return handOff(socket, component, env, connection, options);
}

// Start `component`'s program on the connection. For TCPMUX, `reply` ("+\r\n") goes first
// and `master` supplies the middle layer of settings.
export async function handOff(socket: Socket, component: Component, env: ConnectionEnv, connection: Connection, options: { reply?: Buffer; master?: Component } = {}): Promise<void> {
  let extraEnv: Record<string, string> | undefined;
  if (component.flags.has('sockenv')) {
    extraEnv = sockenvVariables(socket, connection.unixPath);
    if (component.flags.has('resolve')) extraEnv = { ...extraEnv, ...(await resolvedNames(extraEnv)) };
  }
  // Say "+" only for a program that can start: a missing one gets "-" instead.
  const problem = env.launcher.check(component);
  if (problem !== undefined) {
    env.log.error({ component: component.tag, reason: problem }, 'component failed to start');
    if (options.reply) closeAfter(socket, negativeReply('spawn-failed'));
    else socket.destroy();
    connection.finish('error', { reason: problem });
    return;
  }
  if (options.reply) await writeAll(socket, options.reply);
  if (socket.destroyed) {
    connection.finish('closed-by-client');
    return;
  }
  let child: Child;
  try {
    child = await env.launcher.launchAsync(component, {
      stdin: socket,
      stdout: socket,
      ...(extraEnv ? { env: extraEnv } : {}),
      ...(options.master ? { master: options.master } : {}),
    });
  } catch (error) {
    env.log.error({ component: component.tag, reason: (error as Error).message }, 'component failed to start');
    socket.destroy();
    connection.finish('error', { reason: (error as Error).message });
    return;
  }
  // The socket is paused, so only the daemon closes it while the spawn is in flight: a stop
  // or a reload that dropped the listener, after it signalled the children it knew of. This
  // one started too late to be among them and must not outlive them.
  if (socket.destroyed && child.pid !== undefined) {
    child.kill('SIGKILL', true);
    await child.exited;
    connection.finish('cancelled', { childPid: child.pid });
    return;
  }
  // The child has its own copy of the connection now; the parent's must go, or the client
  // would not see EOF when the child exits. destroy(), never end(): end() sends a FIN.
  socket.destroy();
  if (child.pid === undefined) {
    const exit = await child.exited;
    env.log.error({ component: component.tag, reason: exit.spawnError }, 'component failed to start');
    connection.finish('error', { reason: exit.spawnError });
    return;
  }
  env.track(component.tag, child);
  const exit = await child.exited;
  connection.finish('served', { childPid: child.pid, exitCode: exit.exitCode, signal: exit.signal });
}

function serveInternal(socket: Socket, service: Exclude<Component['internal'], undefined>, env: ConnectionEnv, connection: Connection): void {
  socket.on('error', () => socket.destroy());
  detach(
    serveBuiltin(service as BuiltinService, socket, qotdOptions(env.config)).then(() => connection.finish('served')),
    env.log,
    'builtin service',
  );
}

// pies: the qotd text is `qotd-file`, else INSTANCE.qotd in the state directory.
function qotdOptions(config: Config): { qotdFile?: string } {
  if (config.qotdFile !== undefined) return { qotdFile: config.qotdFile };
  return config.stateDirectory !== undefined ? { qotdFile: `${config.stateDirectory}/tpies.qotd` } : {};
}

// Say why (when configured) and close.
export function refuse(socket: Socket, message: string | undefined): void {
  closeAfter(socket, message);
}

export function limitMessage(component: Component, hit: LimitHit): string | undefined {
  return hit === 'max-ip-connections' ? component.maxIpConnectionsMessage : component.maxInstancesMessage;
}

export function ipOf(peer: Peer): string | undefined {
  return peer.kind === 'inet' ? peer.address : undefined;
}

function describePeer(peer: Peer): string {
  if (peer.kind === 'inet') return peer.family === 6 ? `[${peer.address}]:${peer.port}` : `${peer.address}:${peer.port}`;
  if (peer.kind === 'unix') return `unix:${peer.path}`;
  return 'unknown';
}


function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}
