// A connection served by `forward`: proxied to the component's target (src/sniff/forward.ts)
// instead of handed to a program. The audit event says where to and how many bytes went each
// way; an unreachable backend is logged, and the client gets a clean close.
import type { Socket } from 'node:net';
import type { Component } from '../config/model.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../config/model.js';
import type { Peer } from '../acl/peer.js';
import { peerFromAddress } from '../acl/peer.js';
import { forward } from '../sniff/forward.js';
import type { Endpoint } from '../sniff/proxy-header.js';
import type { Connection, ConnectionEnv } from './accept.js';
import { writeAll } from './write-all.js';

export async function forwardConnection(socket: Socket, component: Component, env: ConnectionEnv, connection: Connection, options: { reply?: Buffer } = {}): Promise<void> {
  const target = component.forward;
  if (!target) throw new Error(`component ${component.tag} has no forward target`);
  if (options.reply) await writeAll(socket, options.reply);
  const source = endpointOf(connection.peer);
  const destination = endpointOf(peerFromAddress(socket.localAddress, socket.localFamily, socket.localPort));
  const result = await forward(socket, {
    target,
    connectTimeoutMs: component.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    ...(component.proxyProtocol !== undefined ? { proxyProtocol: component.proxyProtocol } : {}),
    ...(source ? { source } : {}),
    ...(destination ? { destination } : {}),
  });
  const fields = { forward: target.url, bytesFromClient: result.bytesFromClient, bytesFromBackend: result.bytesFromBackend, reason: result.reason };
  if (result.outcome === 'backend-unreachable') env.log.warn({ component: component.tag, forward: target.url, reason: result.reason }, 'forward target unreachable');
  connection.finish(result.outcome === 'forwarded' ? 'forwarded' : result.outcome, fields);
}

function endpointOf(peer: Peer): Endpoint | undefined {
  return peer.kind === 'inet' && peer.port !== undefined ? { address: peer.address, port: peer.port, family: peer.family } : undefined;
}
