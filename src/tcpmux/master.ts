// The TCPMUX master (RFC 1078; pies manual, TCPMUX Services): read the service line without
// over-reading, answer `help`, look the name up among this master's subordinates (case-
// insensitively), check the subordinate's ACL and limits, reply, and hand the connection on.
import type { Socket } from 'node:net';
import type { Component } from '../config/model.js';
import { type Connection, type ConnectionEnv, aclFields, checkAcls, handOff, ipOf } from '../inetd/accept.js';
import { detach } from '../log/detach.js';
import { closeAfter } from '../inetd/linger.js';
import { classifyServiceName, formatHelpListing, formatPositiveReply, negativeReply, serviceKey } from './protocol.js';
import { readServiceLine } from './read-line.js';

/** The subordinates of each master, by lower-cased service name, in config order. */
export type SubordinateTable = ReadonlyMap<string, ReadonlyMap<string, Component>>;

// Index the config's subordinates by master tag and service key.
export function subordinateTable(components: readonly Component[]): SubordinateTable {
  const table = new Map<string, Map<string, Component>>();
  for (const c of components) {
    if (c.tcpmuxMaster === undefined || c.service === undefined) continue;
    const services = table.get(c.tcpmuxMaster) ?? new Map<string, Component>();
    table.set(c.tcpmuxMaster, services);
    if (!services.has(serviceKey(c.service))) services.set(serviceKey(c.service), c);
  }
  return table;
}

// Serve one connection already admitted by the global and master ACLs and master limits.
export function serveTcpmux(socket: Socket, master: Component, env: ConnectionEnv, table: SubordinateTable, connection: Connection): void {
  detach(serve(socket, master, env, table, connection), env.log, 'tcpmux');
}

async function serve(socket: Socket, master: Component, env: ConnectionEnv, table: SubordinateTable, connection: Connection): Promise<void> {
  const settings = master.tcpmux ?? env.config.tcpmux;
  const read = readServiceLine(socket, { maxLineBytes: settings.maxLineBytes, timeoutMs: settings.timeoutMs });
  const onClose = (): void => read.cancel();
  socket.once('close', onClose);
  const result = await read.result;
  socket.off('close', onClose);
  if (result.state !== 'line') {
    if (result.state === 'too-long') reply(socket, negativeReply('line-too-long'));
    else socket.destroy();
    connection.finish(result.state === 'too-long' ? 'line-too-long' : result.state === 'eof' ? 'closed-by-client' : result.state);
    return;
  }
  const services = table.get(master.tag) ?? new Map<string, Component>();
  const request = classifyServiceName(result.line);
  if (request.kind === 'help') {
    // RFC 1078 help lists the services; only those this client could actually use.
    const visible = [...services.values()].filter((c) => !c.flags.has('disable') && !checkAcls(connection.peer, [env.acl(c)]));
    reply(socket, formatHelpListing(visible.map((c) => c.service ?? '')));
    connection.finish('help', { service: 'help' });
    return;
  }
  const sub = request.kind === 'service' ? services.get(request.key) : undefined;
  const service = result.name.replace(/[^\x20-\x7e]/g, '?');
  if (!sub || sub.flags.has('disable')) {
    reply(socket, negativeReply('unknown-service'));
    connection.finish('miss', { service });
    return;
  }
  connection.fields.service = sub.service ?? service;
  connection.fields.subordinate = sub.tag;
  const denied = checkAcls(connection.peer, [env.acl(sub)]);
  if (denied) {
    reply(socket, negativeReply('access-denied', sub.accessDeniedMessage));
    connection.finish('denied', aclFields(denied));
    return;
  }
  const limits = env.limits(sub);
  const ip = ipOf(connection.peer);
  const hit = limits.admit(ip, performance.now());
  if (hit) {
    reply(socket, negativeReply('too-many-instances', hit === 'max-ip-connections' ? sub.maxIpConnectionsMessage : sub.maxInstancesMessage));
    connection.finish('refused', { limit: hit });
    return;
  }
  const finish = connection.finish;
  const admitted: Connection = { ...connection, finish: (outcome, extra) => (limits.release(ip), finish(outcome, extra)) };
  // tcpmuxplus: we say "+"; tcpmux ("dedicated"): the program says it itself.
  await handOff(socket, sub, env, admitted, { master, ...(sub.flags.has('tcpmuxplus') ? { reply: formatPositiveReply() } : {}) });
}

function reply(socket: Socket, bytes: Buffer): void {
  closeAfter(socket, bytes);
}
