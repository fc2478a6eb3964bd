// The HAProxy PROXY protocol header a `forward` backend may ask for: who the client is
// (source) and which address it reached (destination), sent before the client's own bytes.
// Pure: bytes out of two endpoints, nothing else.
//
// * v1 is one text line, `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n`; v2 is the binary block
//   (12-byte signature, version/command, family/transport, length, addresses).
// * IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack listener reports for an
//   IPv4 client) are presented as IPv4 when both ends are IPv4 or mapped, as the ACLs treat
//   them. When one end is IPv4 and the other real IPv6, the IPv4 end is written mapped, so
//   both ends share the one family the header has room for.
// * An end we do not know (a unix-socket client, an unparsable address, a port out of range)
//   gives `PROXY UNKNOWN\r\n` in v1. In v2 it gives command LOCAL with family AF_UNSPEC and
//   no addresses: the spec says a receiver *must* accept LOCAL and use the real endpoints,
//   which is what v1's UNKNOWN asks for, while PROXY+UNSPEC lets the receiver reject the
//   connection. HAProxy itself sends LOCAL+UNSPEC for non-inet clients.
import { isIPv4, isIPv6 } from 'node:net';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

const V2_LOCAL = 0x20;
const V2_PROXY = 0x21;
const V2_UNSPEC = 0x00;
const V2_TCP4 = 0x11;
const V2_TCP6 = 0x21;

export function proxyHeader(version: 1 | 2, source: Endpoint | undefined, destination: Endpoint | undefined): Buffer {
  const ends = headerEnds(source, destination);
  return version === 1 ? v1(ends) : v2(ends);
}

/** Both ends as bytes of one family, or undefined when either is unknown. */
interface Ends {
  readonly family: 4 | 6;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly sport: number;
  readonly dport: number;
}

function headerEnds(source: Endpoint | undefined, destination: Endpoint | undefined): Ends | undefined {
  const s = source && addressBytes(source);
  const d = destination && addressBytes(destination);
  if (!s || !d || !validPort(source.port) || !validPort(destination.port)) return undefined;
  const v4s = asIPv4(s);
  const v4d = asIPv4(d);
  if (v4s && v4d) return { family: 4, src: v4s, dst: v4d, sport: source.port, dport: destination.port };
  return { family: 6, src: asIPv6(s), dst: asIPv6(d), sport: source.port, dport: destination.port };
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535;
}

// 4 or 16 bytes; the declared family must agree with the text (else the end is unknown).
function addressBytes(end: Endpoint): Uint8Array | undefined {
  if (end.family === 4) return isIPv4(end.address) ? Uint8Array.from(end.address.split('.').map(Number)) : undefined;
  // A zone (`fe80::1%eth0`) names an interface of this host; the header has no room for it.
  const percent = end.address.indexOf('%');
  const bare = percent === -1 ? end.address : end.address.slice(0, percent);
  return isIPv6(bare) ? ipv6Bytes(bare) : undefined;
}

function asIPv4(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length === 4) return bytes;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return undefined;
  return bytes[10] === 0xff && bytes[11] === 0xff ? bytes.subarray(12) : undefined;
}

function asIPv6(bytes: Uint8Array): Uint8Array {
  if (bytes.length === 16) return bytes;
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(bytes, 12);
  return out;
}

function v1(ends: Ends | undefined): Buffer {
  if (!ends) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const text = ends.family === 4 ? formatIPv4 : formatIPv6;
  return Buffer.from(`PROXY TCP${ends.family} ${text(ends.src)} ${text(ends.dst)} ${ends.sport} ${ends.dport}\r\n`, 'latin1');
}

function v2(ends: Ends | undefined): Buffer {
  const size = !ends ? 0 : ends.family === 4 ? 12 : 36;
  const out = Buffer.alloc(16 + size);
  V2_SIGNATURE.copy(out, 0);
  out[12] = ends ? V2_PROXY : V2_LOCAL;
  out[13] = !ends ? V2_UNSPEC : ends.family === 4 ? V2_TCP4 : V2_TCP6;
  out.writeUInt16BE(size, 14);
  if (ends) {
    out.set(ends.src, 16);
    out.set(ends.dst, 16 + ends.src.length);
    out.writeUInt16BE(ends.sport, 16 + 2 * ends.src.length);
    out.writeUInt16BE(ends.dport, 18 + 2 * ends.src.length);
  }
  return out;
}

function formatIPv4(bytes: Uint8Array): string {
  return Array.from(bytes).join('.');
}

// The text inet_ntop prints (RFC 5952): lower case, the first longest run of two or more zero
// groups as `::`, and a dotted IPv4 tail for mapped (`::ffff:a.b.c.d`) and compatible
// (`::a.b.c.d`) addresses, so the line shows what the backend's own getpeername would.
function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestAt === 0 && (bestLen === 6 || (bestLen === 5 && groups[5] === 0xffff))) {
    return `::${bestLen === 5 ? 'ffff:' : ''}${formatIPv4(bytes.subarray(12))}`;
  }
  const hex = (list: number[]): string => list.map((g) => g.toString(16)).join(':');
  if (bestAt === -1) return hex(groups);
  return `${hex(groups.slice(0, bestAt))}::${hex(groups.slice(bestAt + bestLen))}`;
}

// 16 bytes of an address that already satisfies isIPv6 (an IPv4 tail is allowed).
function ipv6Bytes(text: string): Uint8Array {
  const out = new Uint8Array(16);
  let s = text;
  const tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    const o = s.slice(lastColon + 1).split('.').map(Number);
    tail.push(((o[0] ?? 0) << 8) | (o[1] ?? 0), ((o[2] ?? 0) << 8) | (o[3] ?? 0));
    const head = s.slice(0, lastColon + 1);
    s = head.endsWith('::') ? head : head.slice(0, -1);
  }
  const [left = '', right] = s.split('::');
  const part = (p: string | undefined): number[] => (p === undefined || p === '' ? [] : p.split(':').map((g) => parseInt(g, 16)));
  const head = part(left);
  const rest = [...part(right), ...tail];
  const groups = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}
