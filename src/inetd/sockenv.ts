// `flags sockenv` variables (pies manual, sockenv): PROTO, SOCKTYPE, LOCALIP, LOCALPORT,
// REMOTEIP, REMOTEPORT (+ LOCALHOST/REMOTEHOST with `resolve`), and the UCSPI TCP* names
// (tcp-environ(5)) so programs written for tcpserver or inetutils' inetd work unchanged.
import { lookupService } from 'node:dns/promises';
import { mappedIPv4 } from '../acl/peer.js';

export interface SocketEnds {
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}

// The variables for one accepted connection (IPv4-mapped addresses shown as IPv4).
export function sockenvVariables(ends: SocketEnds, unixPath?: string): Record<string, string> {
  if (unixPath !== undefined) return { PROTO: 'unix', SOCKTYPE: 'stream' };
  const local = ends.localAddress !== undefined ? (mappedIPv4(ends.localAddress) ?? ends.localAddress) : undefined;
  const remote = ends.remoteAddress !== undefined ? (mappedIPv4(ends.remoteAddress) ?? ends.remoteAddress) : undefined;
  const env: Record<string, string> = { PROTO: 'tcp', SOCKTYPE: 'stream' };
  const set = (names: readonly string[], value: string | number | undefined): void => {
    if (value !== undefined) for (const n of names) env[n] = String(value);
  };
  set(['LOCALIP', 'TCPLOCALIP'], local);
  set(['LOCALPORT', 'TCPLOCALPORT'], ends.localPort);
  set(['REMOTEIP', 'TCPREMOTEIP'], remote);
  set(['REMOTEPORT', 'TCPREMOTEPORT'], ends.remotePort);
  return env;
}

// `flags resolve`: reverse lookups, bounded so a slow resolver cannot hold a connection.
export async function resolvedNames(env: Readonly<Record<string, string>>, timeoutMs = 2000): Promise<Record<string, string>> {
  const lookup = async (ip: string | undefined): Promise<string | undefined> => {
    if (ip === undefined) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
    // getnameinfo(3), as pies does: /etc/hosts and nsswitch first, like every other program.
    const name = await Promise.race([lookupService(ip, 0).then((r) => r.hostname, () => undefined), timeout]);
    clearTimeout(timer);
    return name;
  };
  const [localHost, remoteHost] = await Promise.all([lookup(env.LOCALIP), lookup(env.REMOTEIP)]);
  return {
    ...(localHost !== undefined ? { LOCALHOST: localHost, TCPLOCALHOST: localHost } : {}),
    ...(remoteHost !== undefined ? { REMOTEHOST: remoteHost, TCPREMOTEHOST: remoteHost } : {}),
  };
}
