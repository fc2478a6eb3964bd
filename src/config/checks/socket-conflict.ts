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
  // Only listeners on one port (or one unix path) can overlap, so each is compared with the
  // earlier ones in its group only, in order: the first that overlaps is reported, as a
  // comparison with every earlier listener would find. Port 0 never conflicts.
  const groups = new Map<string, { readonly listener: Listener; readonly bound: Bound | null }[]>();
  for (const l of listeners) {
    const s = l.socket;
    if (s.kind === 'inet' && s.port === 0) continue;
    const key = s.kind === 'unix' ? `unix:${s.path}` : `inet:${s.port}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = []));
    const b = s.kind === 'inet' ? bound(s) : null;
    // In a unix group every earlier listener has the same path.
    const other = group.find((o) => b === null || (o.bound !== null && overlapsBound(o.bound, b)))?.listener;
    if (other) {
      diags.error('socket-conflict', `${l.who}: socket ${s.url} is already used by ${other.who}`, l.location, [
        { message: `${other.who} listens here`, location: other.location },
      ]);
    }
    group.push({ listener: l, bound: b });
  }
};

type Bound = { readonly family: 4 | 6; readonly host: string };

// Two inet listeners on one port.
function overlapsBound(x: Bound, y: Bound): boolean {
  if (x.family !== y.family) return (x.family === 6 && x.host === '::') || (y.family === 6 && y.host === '::');
  return x.host === y.host || wildcard(x.host) || wildcard(y.host);
}

const wildcard = (host: string): boolean => host === '0.0.0.0' || host === '::';

// The address as the kernel binds it: IPv6 text in one canonical form, and IPv4-mapped IPv6
// addresses as IPv4 (`[::ffff:127.0.0.1]` and `127.0.0.1` are one socket).
function bound(a: Extract<SocketAddress, { kind: 'inet' }>): Bound {
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
