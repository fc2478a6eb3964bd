// Rule `socket-conflict`: two components listening on one socket. A wildcard address
// conflicts with every address of its family on the same port; port 0 (ephemeral) never does.
import type { Component, SocketAddress } from '../model.js';
import type { Check } from './check.js';
import { locationOf } from './undefined-reference.js';

export const checkSocketConflict: Check = (config, diags) => {
  const listeners = config.components.filter((c): c is Component & { socket: SocketAddress } => c.socket !== undefined);
  for (const [i, c] of listeners.entries()) {
    const other = listeners.slice(0, i).find((o) => overlaps(o.socket, c.socket));
    if (other) {
      diags.error('socket-conflict', `component "${c.tag}": socket ${c.socket.url} is already used by component "${other.tag}"`, locationOf(c, 'socket'), [
        { message: `"${other.tag}" listens here`, location: locationOf(other, 'socket') },
      ]);
    }
  }
};

function overlaps(a: SocketAddress, b: SocketAddress): boolean {
  if (a.kind === 'unix' || b.kind === 'unix') return a.kind === 'unix' && b.kind === 'unix' && a.path === b.path;
  if (a.port === 0 || a.port !== b.port) return false;
  const wildcard = (h: string): boolean => h === '0.0.0.0' || h === '::';
  if (a.family !== b.family) return false;
  return a.host === b.host || wildcard(a.host) || wildcard(b.host);
}
