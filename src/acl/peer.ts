// Who is on the other end of a connection, as ACLs see it: a pure value built from the
// strings a socket reports, with IPv4-mapped IPv6 addresses turned back into IPv4.
import { isIP } from 'node:net';

/** A connection's peer. `unknown` is an address we could not read; ACLs fail closed on it. */
export type Peer =
  | { readonly kind: 'inet'; readonly address: string; readonly family: 4 | 6; readonly port?: number | undefined }
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'unknown'; readonly raw?: string | undefined };

// Build a Peer from `socket.remoteAddress`, `socket.remoteFamily` and `socket.remotePort`.
// A unix-socket listener has no remote address: use `{kind: 'unix', path: listenerPath}` there.
// Dual-stack listeners report IPv4 clients as `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2); they
// become IPv4 here so that `allow from 10.0.0.0/8` matches them and IPv6 rules never do.
// A family that disagrees with the address makes the peer unknown rather than guessed.
export function peerFromAddress(address: string | undefined, family: string | number | undefined, port: number | undefined): Peer {
  if (address === undefined || address === '') return { kind: 'unknown', raw: address };
  // A zone (`fe80::1%eth0`) names an interface, not an address; rules cannot carry one.
  const percent = address.indexOf('%');
  const bare = percent === -1 ? address : address.slice(0, percent);
  const detected = isIP(bare);
  const declared = familyOf(family);
  if (detected === 0 || declared === 0 || (declared !== undefined && declared !== detected) || (percent !== -1 && detected !== 6)) {
    return { kind: 'unknown', raw: address };
  }
  if (detected === 6) {
    const v4 = mappedIPv4(bare);
    if (v4 !== undefined) return { kind: 'inet', address: v4, family: 4, port };
    return { kind: 'inet', address: bare, family: 6, port };
  }
  return { kind: 'inet', address: bare, family: 4, port };
}

// Re-normalise a Peer that may have been written by hand (tests, `tpiesctl acl test`).
export function normalizePeer(peer: Peer): Peer {
  if (peer.kind !== 'inet') return peer;
  return peerFromAddress(peer.address, peer.family, peer.port);
}

// Node says 'IPv4'/'IPv6' (Node 18.0–18.3 said 4/6); undefined means "trust the address";
// 0 means a family we do not know.
function familyOf(family: string | number | undefined): 4 | 6 | 0 | undefined {
  if (family === undefined) return undefined;
  switch (String(family).toLowerCase()) {
    case 'ipv4':
    case '4':
      return 4;
    case 'ipv6':
    case '6':
      return 6;
    default:
      return 0;
  }
}

// `::ffff:a.b.c.d` in any spelling (`::ffff:7f00:1`, `0:0:0:0:0:ffff:…`) → `a.b.c.d`;
// undefined for any other address. The text must already satisfy isIP(text) === 6.
export function mappedIPv4(text: string): string | undefined {
  if (!/ffff/i.test(text)) return undefined;
  const h = ipv6Hextets(text);
  if (h === undefined) return undefined;
  if (h[0] !== 0 || h[1] !== 0 || h[2] !== 0 || h[3] !== 0 || h[4] !== 0 || h[5] !== 0xffff) return undefined;
  const hi = h[6]!;
  const lo = h[7]!;
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

// Eight 16-bit groups of a valid IPv6 text address (with an optional dotted IPv4 tail).
function ipv6Hextets(text: string): number[] | undefined {
  let s = text;
  const tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    const octets = s.slice(lastColon + 1).split('.').map(Number);
    tail.push((octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!);
    // `::ffff:1.2.3.4` → `::ffff` + tail; `::1.2.3.4` → `::` + tail.
    const head = s.slice(0, lastColon + 1);
    s = head.endsWith('::') ? head : head.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const part = (p: string | undefined): number[] => (p === undefined || p === '' ? [] : p.split(':').map((g) => parseInt(g, 16)));
  const head = part(halves[0]);
  const rest = part(halves[1]);
  const missing = 8 - tail.length - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  return [...head, ...new Array<number>(halves.length === 1 ? 0 : missing).fill(0), ...rest, ...tail];
}
