// Rule `socket-conflict`: two listeners on one socket, among the components and the control
// interface. A wildcard address conflicts with every address of its family on the same
// port; `[::]` also with every IPv4 address, since Node listens on it dual-stack (and
// Linux then answers EADDRINUSE); an IPv4-mapped IPv6 address is its IPv4 address. Port 0
// (ephemeral) never conflicts.
import type { Location } from '../ast.js';
import type { SocketAddress } from '../model.js';
import { mappedIPv4 } from '../../acl/peer.js';
import type { Check } from './check.js';
import { locationOf } from './undefined-reference.js';

interface Listener {
  /** `component "web"` or `the control socket`. */
  readonly who: string;
  readonly socket: SocketAddress;
  readonly location: Location;
}

export const checkSocketConflict: Check = (config, diags) => {
  const listeners: Listener[] = [];
  const control = config.control;
  if (control?.socket) listeners.push({ who: 'the control interface', socket: control.socket, location: control.socketLocation ?? control.location });
  for (const c of config.components) {
    if (c.socket) listeners.push({ who: `component "${c.tag}"`, socket: c.socket, location: locationOf(c, 'socket') });
  }
  for (const [i, l] of listeners.entries()) {
    const other = listeners.slice(0, i).find((o) => overlaps(o.socket, l.socket));
    if (other) {
      diags.error('socket-conflict', `${l.who}: socket ${l.socket.url} is already used by ${other.who}`, l.location, [
        { message: `${other.who} listens here`, location: other.location },
      ]);
    }
  }
};

function overlaps(a: SocketAddress, b: SocketAddress): boolean {
  if (a.kind === 'unix' || b.kind === 'unix') return a.kind === 'unix' && b.kind === 'unix' && a.path === b.path;
  if (a.port === 0 || a.port !== b.port) return false;
  const x = bound(a);
  const y = bound(b);
  if (x.family !== y.family) return (x.family === 6 && x.host === '::') || (y.family === 6 && y.host === '::');
  return x.host === y.host || wildcard(x.host) || wildcard(y.host);
}

const wildcard = (host: string): boolean => host === '0.0.0.0' || host === '::';

// The address as the kernel binds it: IPv6 text in one canonical form, and IPv4-mapped IPv6
// addresses as IPv4 (`[::ffff:127.0.0.1]` and `127.0.0.1` are one socket).
function bound(a: Extract<SocketAddress, { kind: 'inet' }>): { family: 4 | 6; host: string } {
  if (a.family === 4) return { family: 4, host: a.host };
  const v4 = mappedIPv4(a.host);
  if (v4 !== undefined) return { family: 4, host: v4 };
  let host = a.host;
  try {
    host = new URL(`http://[${a.host}]/`).hostname.slice(1, -1);
  } catch {
    // not an IPv6 literal (the parser only lets those through); compare as written
  }
  return { family: 6, host };
}
