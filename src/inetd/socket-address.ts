// `socket` URLs (pies manual, Inetd-Style Components): inet://HOST:PORT, inet6://[ADDR]:PORT
// and unix:///PATH;user=…;group=…;mode=…;umask=… ↔ SocketAddress. Pure: no lookups here.
import { isIPv4, isIPv6 } from 'node:net';
import type { SocketAddress } from '../config/model.js';

/** `unsupported` marks what pies has and tpies refuses on purpose (udp), as opposed to a mistake. */
export type ParsedSocketAddress = { readonly address: SocketAddress } | { readonly error: string; readonly unsupported?: true };

const UNIX_SCHEMES = new Set(['unix', 'local', 'file']);
const UNIX_ARGS = new Set(['user', 'group', 'mode', 'umask']);

// Parse a socket URL; `services` maps service names (e.g. from /etc/services) to ports.
export function parseSocketAddress(url: string, services: ReadonlyMap<string, number> = new Map()): ParsedSocketAddress {
  const m = /^([a-z0-9]+)(?:\+([a-z0-9]+))?:\/\/(.*)$/i.exec(url);
  if (!m) return { error: `"${url}" is not a socket URL (expected inet://HOST:PORT, inet6://[ADDR]:PORT or unix:///PATH)` };
  const scheme = m[1]!.toLowerCase();
  const proto = m[2]?.toLowerCase();
  const rest = m[3]!;
  if (proto !== undefined && proto !== 'tcp') return { error: `protocol "${proto}" is not supported: tpies serves stream (tcp) sockets only`, unsupported: true };
  if (scheme === 'inet' || scheme === 'inet6') return parseInet(url, scheme === 'inet6' ? 6 : 4, rest, services);
  if (UNIX_SCHEMES.has(scheme)) return parseUnix(url, rest);
  return { error: `unknown socket scheme "${scheme}" (expected inet, inet6 or unix)` };
}

function parseInet(url: string, family: 4 | 6, rest: string, services: ReadonlyMap<string, number>): ParsedSocketAddress {
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(rest);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2] ?? '';
    if (!isIPv6(host)) return { error: `"${host}" in ${url} is not an IPv6 address` };
    family = 6;
  } else {
    // An IPv6 address has colons of its own, so where it ends and the port begins is a
    // guess ("::1:7000" is itself an address): refuse rather than split at the last colon.
    if (rest.indexOf(':') !== rest.lastIndexOf(':')) return { error: `IPv6 addresses go in brackets: inet6://[ADDR]:PORT, not ${url}` };
    const colon = rest.indexOf(':');
    host = colon === -1 ? rest : rest.slice(0, colon);
    portText = colon === -1 ? '' : rest.slice(colon + 1);
    if (family === 6 && host !== '' && !isIPv6(host)) return { error: `"${host}" in ${url} is not an IPv6 address (IPv6 addresses go in brackets: inet6://[ADDR]:PORT)` };
  }
  if (host === '') host = family === 6 ? '::' : '0.0.0.0';
  else if (/^[0-9.]+$/.test(host) && !isIPv4(host)) return { error: `"${host}" in ${url} is not a valid IPv4 address` };
  else if (family === 4 && !isIPv4(host) && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    return { error: `"${host}" in ${url} is neither an IPv4 address nor a host name` };
  }
  if (portText === '') return { error: `${url} has no port (inet://HOST:PORT)` };
  if (/^[0-9]+$/.test(portText)) {
    const port = Number(portText);
    if (port > 65535) return { error: `port ${port} in ${url} is out of range (0-65535)` };
    return { address: { kind: 'inet', family, host, port, url } };
  }
  const port = services.get(portText);
  if (port === undefined) return { error: `unknown service name "${portText}" in ${url} (not in /etc/services)` };
  return { address: { kind: 'inet', family, host, port, portName: portText, url } };
}

function parseUnix(url: string, rest: string): ParsedSocketAddress {
  const [path = '', ...args] = rest.split(';');
  if (path === '') return { error: `${url} names no socket file` };
  const result: { kind: 'unix'; path: string; url: string; user?: string; group?: string; mode?: number; umask?: number } = { kind: 'unix', path, url };
  for (const arg of args) {
    if (arg === '') continue;
    const eq = arg.indexOf('=');
    const key = eq === -1 ? arg : arg.slice(0, eq);
    const value = eq === -1 ? '' : arg.slice(eq + 1);
    if (!UNIX_ARGS.has(key)) return { error: `unknown unix socket argument "${key}" in ${url} (expected user, group, mode or umask)` };
    if (value === '') return { error: `unix socket argument "${key}" in ${url} has no value` };
    if (key === 'mode' || key === 'umask') {
      if (!/^[0-7]{1,4}$/.test(value) || Number.parseInt(value, 8) > 0o777) return { error: `${key}=${value} in ${url} is not an octal mode up to 777` };
      result[key] = Number.parseInt(value, 8);
    } else {
      result[key as 'user' | 'group'] = value;
    }
  }
  return { address: result };
}

// The canonical URL of an address, for logs and for comparing listeners across reloads
// (`--dump-config` prints `url`, as written, instead).
export function formatSocketAddress(address: SocketAddress): string {
  if (address.kind === 'unix') {
    const args = [
      address.user !== undefined ? `user=${address.user}` : '',
      address.group !== undefined ? `group=${address.group}` : '',
      address.mode !== undefined ? `mode=${address.mode.toString(8).padStart(3, '0')}` : '',
      address.umask !== undefined ? `umask=${address.umask.toString(8).padStart(3, '0')}` : '',
    ].filter(Boolean);
    return [`unix://${address.path}`, ...args].join(';');
  }
  const port = address.portName ?? String(address.port);
  return address.family === 6 ? `inet6://[${address.host}]:${port}` : `inet://${address.host}:${port}`;
}

// /etc/services as name → TCP port (aliases included); missing file → empty map.
export function parseServicesFile(text: string): Map<string, number> {
  const services = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [name, portProto, ...aliases] = line.split(/\s+/);
    const m = /^(\d+)\/tcp$/.exec(portProto ?? '');
    if (!name || !m) continue;
    for (const n of [name, ...aliases]) if (!services.has(n)) services.set(n, Number(m[1]));
  }
  return services;
}

// Where a listener is bound, as logs and `tpiesctl list` show it: a path, `a.b.c.d:P` or `[v6]:P`.
export function describeBound(bound: { readonly address: string; readonly family: string; readonly port: number } | string | undefined): string {
  if (bound === undefined) return 'not bound';
  if (typeof bound === 'string') return bound;
  return bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
}
