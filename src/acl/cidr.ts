// The only importer of ip-cidr: parses and validates ACL address items (CIDR, single
// addresses, ADDR/NETMASK) into a normalised {family, address, prefix}. Matching is
// done elsewhere (acl/acl.ts) with exact arithmetic; ip-cidr's own contains() fails open.
import { isIPv4, isIPv6 } from 'node:net';
import IPCIDR from 'ip-cidr';

export interface Cidr {
  readonly family: 4 | 6;
  /** Network address with host bits cleared. */
  readonly address: string;
  readonly prefix: number;
}

export type ParsedCidr = { readonly cidr: Cidr } | { readonly error: string };

// Results by text: a large config repeats the same few addresses in many ACLs. Bounded, so
// that a daemon reloading ever-different configs does not grow it without end.
const cache = new Map<string, ParsedCidr>();
const CACHE_SIZE = 4096;

// Parse `10.0.0.0/8`, `10.1.2.3`, `10.0.0.0/255.0.0.0`, `::1`, `fe80::/10`, `::ffff:10.0.0.1`.
// The result is shared between calls with the same text: do not change it.
export function parseCidr(text: string): ParsedCidr {
  let parsed = cache.get(text);
  if (parsed === undefined) {
    parsed = parse(text);
    if (cache.size >= CACHE_SIZE) cache.clear();
    cache.set(text, parsed);
  }
  return parsed;
}

function parse(text: string): ParsedCidr {
  const slash = text.indexOf('/');
  const host = slash === -1 ? text : text.slice(0, slash);
  const mask = slash === -1 ? undefined : text.slice(slash + 1);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  // RFC 4291 IPv4-mapped addresses are IPv4 peers: rules about them are IPv4 rules.
  if (mapped && isIPv4(mapped[1]!)) {
    const prefix = mask === undefined ? 32 : Number(mask) - 96;
    if (mask !== undefined && (!/^\d+$/.test(mask) || prefix < 0 || prefix > 32)) return { error: `"${text}": an IPv4-mapped prefix must be /96 to /128` };
    return parseCidr(`${mapped[1]}/${prefix}`);
  }
  const family = isIPv4(host) ? 4 : isIPv6(host) ? 6 : 0;
  if (family === 0) return { error: `"${text}" is not an IP address, CIDR block or ADDR/NETMASK` };
  const bits = family === 4 ? 32 : 128;
  let prefix = bits;
  if (mask !== undefined) {
    if (/^\d+$/.test(mask)) prefix = Number(mask);
    else if (family === 4 && isIPv4(mask)) {
      const fromMask = netmaskPrefix(mask);
      if (fromMask === undefined) return { error: `"${mask}" in "${text}" is not a contiguous netmask` };
      prefix = fromMask;
    } else return { error: `"${mask}" in "${text}" is not a prefix length or netmask` };
  }
  if (prefix > bits) return { error: `prefix /${prefix} in "${text}" is longer than ${bits} bits` };
  // isIPv4 has vetted the dotted quad (no leading zeros, octets up to 255), which ip-cidr
  // accepts as is: clearing the host bits by arithmetic gives what it would, much faster.
  if (family === 4) return { cidr: { family, address: ipv4Network(host, prefix), prefix } };
  const block = `${hexTail(host)}/${prefix}`;
  if (!IPCIDR.isValidCIDR(block)) return { error: `"${text}" is not a valid CIDR block` };
  // ip-cidr's types do not narrow start() by its `type` option; addressObject is an ip-address object.
  const address = (new IPCIDR(block).start({ type: 'addressObject' }) as unknown as { correctForm(): string }).correctForm();
  return { cidr: { family, address, prefix } };
}

// ip-cidr refuses an IPv6 address written with an IPv4 tail (`64:ff9b::192.0.2.1`, RFC 4291
// §2.2 form 3) unless it starts with ::ffff:, so the tail becomes two hex groups first.
// isIPv6 has vetted the text: a tail is a dotted quad.
function hexTail(host: string): string {
  const colon = host.lastIndexOf(':');
  if (!host.includes('.', colon)) return host;
  const [a = 0, b = 0, c = 0, d = 0] = host.slice(colon + 1).split('.').map(Number);
  return `${host.slice(0, colon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
}

function netmaskPrefix(mask: string): number | undefined {
  const value = mask.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const inverted = 0xffffffff - value;
  // A contiguous mask's complement is 2^n - 1.
  if ((inverted & (inverted + 1)) !== 0) return undefined;
  return 32 - Math.log2(inverted + 1);
}

// The network address of an IPv4 dotted quad under a prefix, as a dotted quad.
function ipv4Network(host: string, prefix: number): string {
  const value = host.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const size = 2 ** (32 - prefix);
  const network = value - (value % size);
  return [network >>> 24, (network >>> 16) & 255, (network >>> 8) & 255, network & 255].join('.');
}
