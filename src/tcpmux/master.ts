// The TCPMUX master (RFC 1078; pies manual, TCPMUX Services): read the service line without
// over-reading, answer `help`, look the name up among this master's subordinates (case-
// insensitively), check the subordinate's ACL and limits, reply, and hand the connection on.
// A master whose subordinates have `match` rules sniffs first (src/sniff/): it peeks at the
// client's bytes and either finds an RFC 1078 line naming a service or picks a rule.
import type { Socket } from 'node:net';
import type { Component } from '../config/model.js';
import { type Connection, type ConnectionEnv, aclFields, checkAcls, deliver, ipOf, limitMessage, refuse } from '../inetd/accept.js';
import { detach } from '../log/detach.js';
import { closeAfter } from '../inetd/linger.js';
import { destroyPaced } from '../inetd/paced-close.js';
import { type SniffTable, compileSniffTable, sniffs } from '../sniff/rules.js';
import { sniffConnection } from '../sniff/sniffer.js';
import { DEFAULT_TCPMUX_SETTINGS } from '../config/model.js';
import { classifyServiceName, formatHelpListing, formatPositiveReply, negativeReply, serviceKey } from './protocol.js';
import { readServiceLine, takeBytes } from './read-line.js';

/** One master's subordinates: by lower-cased service name, and compiled sniffing rules. */
export interface MasterTable {
  readonly services: ReadonlyMap<string, Component>;
  readonly sniff: SniffTable;
}

/** Each master's table, by master tag. */
export type SubordinateTable = ReadonlyMap<string, MasterTable>;

// Index the config's subordinates by master tag, in config order (rules are tried in it).
export function subordinateTable(components: readonly Component[]): SubordinateTable {
  const byMaster = new Map<string, Component[]>();
  for (const c of components) {
    if (c.tcpmuxMaster === undefined) continue;
    const list = byMaster.get(c.tcpmuxMaster) ?? [];
    byMaster.set(c.tcpmuxMaster, list);
    list.push(c);
  }
  const table = new Map<string, MasterTable>();
  for (const [tag, subordinates] of byMaster) {
    const services = new Map<string, Component>();
    for (const c of subordinates) if (c.service !== undefined && !services.has(serviceKey(c.service))) services.set(serviceKey(c.service), c);
    const master = components.find((c) => c.tag === tag);
    const maxLineBytes = (master?.tcpmux ?? DEFAULT_TCPMUX_SETTINGS).maxLineBytes;
    table.set(tag, { services, sniff: compileSniffTable(subordinates, maxLineBytes) });
  }
  return table;
}

// Serve one connection already admitted by the global and master ACLs and master limits.
export function serveTcpmux(socket: Socket, master: Component, env: ConnectionEnv, table: SubordinateTable, connection: Connection): void {
  const entry = table.get(master.tag) ?? { services: new Map(), sniff: compileSniffTable([], DEFAULT_TCPMUX_SETTINGS.maxLineBytes) };
  detach(sniffs(entry.sniff) ? serveSniffed(socket, master, env, entry, connection) : serve(socket, master, env, entry, connection), env.log, 'tcpmux');
}

async function serve(socket: Socket, master: Component, env: ConnectionEnv, entry: MasterTable, connection: Connection): Promise<void> {
  const settings = master.tcpmux ?? env.config.tcpmux;
  const read = readServiceLine(socket, { maxLineBytes: settings.maxLineBytes, timeoutMs: settings.timeoutMs });
  const onClose = (): void => read.cancel();
  socket.once('close', onClose);
  const result = await read.result;
  socket.off('close', onClose);
  if (result.state !== 'line') {
    const outcome = result.state === 'too-long' ? 'line-too-long' : result.state === 'eof' ? 'closed-by-client' : result.state;
    if (result.state !== 'too-long') return destroyPaced(socket, () => connection.finish(outcome));
    reply(socket, negativeReply('line-too-long'));
    connection.finish(outcome);
    return;
  }
  await serveLine(socket, master, env, entry, connection, result.line);
}

async function serveSniffed(socket: Socket, master: Component, env: ConnectionEnv, entry: MasterTable, connection: Connection): Promise<void> {
  const settings = master.tcpmux ?? env.config.tcpmux;
  const outcome = await sniffConnection(socket, entry.sniff, settings);
  switch (outcome.kind) {
    case 'tcpmux': {
      const bytes = takeBytes(socket, outcome.lineBytes);
      if (bytes instanceof Error) {
        socket.destroy();
        return connection.finish('error', { reason: bytes.message });
      }
      const end = bytes.length >= 2 && bytes[bytes.length - 2] === 0x0d ? bytes.length - 2 : bytes.length - 1;
      return serveLine(socket, master, env, entry, connection, bytes.subarray(0, end));
    }
    case 'rule':
      connection.fields.match = outcome.match;
      return serveSubordinate(socket, outcome.component, master, env, connection, { sniffed: true });
    case 'none':
      // A line that names nothing is an RFC 1078 miss; anything else is not ours to answer.
      reply(socket, master.noMatchMessage ?? (outcome.line ? negativeReply('unknown-service') : undefined));
      return connection.finish('no-match');
    case 'closed':
      socket.destroy();
      return connection.finish('closed-by-client');
    case 'cancelled':
      return connection.finish('cancelled');
    case 'error':
      env.log.error({ component: master.tag, reason: outcome.code }, 'sniffing failed');
      socket.destroy();
      return connection.finish('error', { reason: outcome.code });
  }
}

// An RFC 1078 request line (terminator removed): help, or a subordinate by name.
async function serveLine(socket: Socket, master: Component, env: ConnectionEnv, entry: MasterTable, connection: Connection, line: Buffer): Promise<void> {
  const request = classifyServiceName(line);
  if (request.kind === 'help') {
    // RFC 1078 help lists the services; only those this client could actually use.
    const visible = [...entry.services.values()].filter((c) => !c.flags.has('disable') && !checkAcls(connection.peer, [env.acl(c)]));
    reply(socket, formatHelpListing(visible.map((c) => c.service ?? '')));
    connection.finish('help', { service: 'help' });
    return;
  }
  const sub = request.kind === 'service' ? entry.services.get(request.key) : undefined;
  const service = line.toString('latin1').replace(/[^\x20-\x7e]/g, '?');
  if (!sub || sub.flags.has('disable')) {
    reply(socket, negativeReply('unknown-service'));
    connection.finish('miss', { service });
    return;
  }
  connection.fields.service = sub.service ?? service;
  await serveSubordinate(socket, sub, master, env, connection, { sniffed: false });
}

// The subordinate's own ACL and limits, then its program or its forward target. A client
// that spoke RFC 1078 is refused with a `-` reply; a sniffed one (TLS, HTTP…) would not
// understand one, so it gets the component's configured message, if any, and a close.
async function serveSubordinate(socket: Socket, sub: Component, master: Component, env: ConnectionEnv, connection: Connection, how: { sniffed: boolean }): Promise<void> {
  connection.fields.subordinate = sub.tag;
  const denied = checkAcls(connection.peer, [env.acl(sub)]);
  if (denied) {
    if (how.sniffed) refuse(socket, sub.accessDeniedMessage);
    else reply(socket, negativeReply('access-denied', sub.accessDeniedMessage));
    connection.finish('denied', aclFields(denied));
    return;
  }
  const limits = env.limits(sub);
  const ip = ipOf(connection.peer);
  const hit = limits.admit(ip, performance.now());
  if (hit) {
    if (how.sniffed) refuse(socket, limitMessage(sub, hit));
    else reply(socket, negativeReply('too-many-instances', limitMessage(sub, hit)));
    connection.finish('refused', { limit: hit });
    return;
  }
  const finish = connection.finish;
  const admitted: Connection = { ...connection, finish: (outcome, extra) => (limits.release(ip), finish(outcome, extra)) };
  // tcpmuxplus: we say "+"; tcpmux ("dedicated"): the program says it itself.
  const plus = !how.sniffed && sub.flags.has('tcpmuxplus');
  await deliver(socket, sub, env, admitted, { master, ...(plus ? { reply: formatPositiveReply() } : {}) });
}

function reply(socket: Socket, bytes: Buffer | string | undefined): void {
  closeAfter(socket, bytes);
}
