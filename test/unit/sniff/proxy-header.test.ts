// PROXY protocol headers: fixed cases against bytes worked out by hand from the HAProxy
// spec, then a decoder written here from the spec, round-tripping random endpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SocketAddress } from 'node:net';
import fc from 'fast-check';
import { type Endpoint, proxyHeader } from '../../../src/sniff/proxy-header.js';

const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (...parts: number[][]): Buffer => Buffer.from(parts.flat());

test('v1 TCP4: the spec example line', () => {
  const h = proxyHeader(1, { address: '192.168.0.1', port: 56324, family: 4 }, { address: '192.168.0.11', port: 443, family: 4 });
  assert.equal(h.toString('latin1'), 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n');
});

test('v2 TCP4: signature, 0x21, 0x11, length 12, addresses, ports in network order', () => {
  const h = proxyHeader(2, { address: '192.168.0.1', port: 56324, family: 4 }, { address: '192.168.0.11', port: 443, family: 4 });
  const want = bytes(SIG, [0x21, 0x11, 0x00, 0x0c], [192, 168, 0, 1], [192, 168, 0, 11], [0xdc, 0x04], [0x01, 0xbb]);
  assert.equal(hex(h), hex(want));
});

test('v1 and v2 TCP6', () => {
  const src: Endpoint = { address: '2001:DB8:0:0:0:0:0:1', port: 1234, family: 6 };
  const dst: Endpoint = { address: '::1', port: 8080, family: 6 };
  assert.equal(proxyHeader(1, src, dst).toString('latin1'), 'PROXY TCP6 2001:db8::1 ::1 1234 8080\r\n');
  const want = bytes(
    SIG,
    [0x21, 0x21, 0x00, 0x24],
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01],
    [0x04, 0xd2],
    [0x1f, 0x90],
  );
  assert.equal(hex(proxyHeader(2, src, dst)), hex(want));
});

test('IPv4-mapped ends are presented as IPv4 when both are mapped or IPv4', () => {
  const src: Endpoint = { address: '::ffff:127.0.0.1', port: 40000, family: 6 };
  const dst: Endpoint = { address: '::ffff:7f00:2', port: 8080, family: 6 };
  assert.equal(proxyHeader(1, src, dst).toString('latin1'), 'PROXY TCP4 127.0.0.1 127.0.0.2 40000 8080\r\n');
  assert.equal(hex(proxyHeader(2, src, dst)), hex(bytes(SIG, [0x21, 0x11, 0, 12], [127, 0, 0, 1], [127, 0, 0, 2], [0x9c, 0x40], [0x1f, 0x90])));
  const v4: Endpoint = { address: '127.0.0.1', port: 8080, family: 4 };
  assert.equal(proxyHeader(1, src, v4).toString('latin1'), 'PROXY TCP4 127.0.0.1 127.0.0.1 40000 8080\r\n');
});

test('an IPv4 end beside a real IPv6 end is written mapped', () => {
  const src: Endpoint = { address: '10.0.0.1', port: 1, family: 4 };
  const dst: Endpoint = { address: '2001:db8::2', port: 2, family: 6 };
  assert.equal(proxyHeader(1, src, dst).toString('latin1'), 'PROXY TCP6 ::ffff:10.0.0.1 2001:db8::2 1 2\r\n');
  const v2 = proxyHeader(2, src, dst);
  assert.equal(v2[13], 0x21);
  assert.equal(hex(v2.subarray(16, 32)), '00000000000000000000ffff0a000001');
});

test('unknown ends: v1 UNKNOWN, v2 LOCAL with AF_UNSPEC and no addresses', () => {
  const known: Endpoint = { address: '127.0.0.1', port: 80, family: 4 };
  const local = hex(bytes(SIG, [0x20, 0x00, 0x00, 0x00]));
  for (const [s, d] of [
    [undefined, undefined],
    [known, undefined],
    [undefined, known],
    [{ address: '::1', port: 80, family: 4 }, known], // the family disagrees with the text
    [{ address: 'localhost', port: 80, family: 4 }, known],
    [{ address: '127.0.0.1', port: 65536, family: 4 }, known],
    [{ address: '127.0.0.1', port: -1, family: 4 }, known],
  ] as const) {
    assert.equal(proxyHeader(1, s, d).toString('latin1'), 'PROXY UNKNOWN\r\n');
    assert.equal(hex(proxyHeader(2, s, d)), local);
  }
});

test('a zone id is dropped; the address is kept', () => {
  const h = proxyHeader(1, { address: 'fe80::1%eth0', port: 5, family: 6 }, { address: 'fe80::2', port: 6, family: 6 });
  assert.equal(h.toString('latin1'), 'PROXY TCP6 fe80::1 fe80::2 5 6\r\n');
});

// ---- a decoder from the spec, and the round trip -------------------------------------------

interface Decoded {
  readonly command: 'PROXY' | 'LOCAL' | 'UNKNOWN';
  readonly family?: 4 | 6;
  readonly src?: string;
  readonly dst?: string;
  readonly sport?: number;
  readonly dport?: number;
  readonly length: number;
}

function decodeV1(b: Buffer): Decoded {
  const end = b.indexOf('\r\n');
  assert.ok(end > 0 && end + 2 <= 107, 'v1 line within 107 bytes');
  const words = b.subarray(0, end).toString('latin1').split(' ');
  assert.equal(words[0], 'PROXY');
  if (words[1] === 'UNKNOWN') return { command: 'UNKNOWN', length: end + 2 };
  assert.equal(words.length, 6);
  const family = words[1] === 'TCP4' ? 4 : words[1] === 'TCP6' ? 6 : assert.fail(`protocol ${words[1]}`);
  const [, , src = '', dst = '', sp = '', dp = ''] = words;
  for (const p of [sp, dp]) assert.match(p, /^(0|[1-9]\d{0,4})$/);
  return { command: 'PROXY', family, src, dst, sport: Number(sp), dport: Number(dp), length: end + 2 };
}

function decodeV2(b: Buffer): Decoded {
  assert.deepEqual([...b.subarray(0, 12)], SIG);
  const verCmd = b[12] ?? -1;
  assert.equal(verCmd >> 4, 2, 'version 2');
  const len = b.readUInt16BE(14);
  assert.equal(b.length, 16 + len);
  if ((verCmd & 0xf) === 0) return { command: 'LOCAL', length: b.length };
  assert.equal(verCmd & 0xf, 1);
  const fam = b[13];
  const text = (a: Buffer): string =>
    a.length === 4 ? [...a].join('.') : Array.from({ length: 8 }, (_, i) => a.readUInt16BE(2 * i).toString(16)).join(':');
  const size = fam === 0x11 ? 4 : fam === 0x21 ? 16 : assert.fail(`family ${fam}`);
  assert.equal(len, 2 * size + 4);
  return {
    command: 'PROXY',
    family: size === 4 ? 4 : 6,
    src: text(b.subarray(16, 16 + size)),
    dst: text(b.subarray(16 + size, 16 + 2 * size)),
    sport: b.readUInt16BE(16 + 2 * size),
    dport: b.readUInt16BE(18 + 2 * size),
    length: b.length,
  };
}

// Endpoints from numbers, spelled in several ways; the model answer is worked out from the
// numbers, and Node's SocketAddress (inet_pton/inet_ntop) is the judge of address text.
type Addr = { kind: 4; n: number } | { kind: 'mapped'; n: number } | { kind: 6; words: number[] };
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const addrArb: fc.Arbitrary<Addr> = fc.oneof(
  u32.map((n) => ({ kind: 4 as const, n })),
  u32.map((n) => ({ kind: 'mapped' as const, n })),
  fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }).map((words) => ({ kind: 6 as const, words })),
);
const dotted = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
const wordsOf = (a: Addr): number[] => (a.kind === 6 ? a.words : [0, 0, 0, 0, 0, 0xffff, a.n >>> 16, a.n & 0xffff]);
const isV4Like = (a: Addr): boolean =>
  a.kind !== 6 || (a.words.slice(0, 5).every((w) => w === 0) && a.words[5] === 0xffff);
const canon6 = (t: string): string => new SocketAddress({ address: t, family: 'ipv6' }).address;

function endpoint(a: Addr, port: number, spelling: number): Endpoint {
  if (a.kind === 4) return { address: dotted(a.n), port, family: 4 };
  const full = wordsOf(a).map((w) => w.toString(16)).join(':');
  const text = spelling === 0 ? full : spelling === 1 ? canon6(full) : full.toUpperCase();
  return { address: text, port, family: 6 };
}

test('property: v1 and v2 decode to the endpoints given (mapped as IPv4 when both are)', () => {
  const port = fc.integer({ min: 0, max: 65535 });
  const spelling = fc.integer({ min: 0, max: 2 });
  fc.assert(
    fc.property(addrArb, addrArb, port, port, spelling, spelling, (a, b, sp, dp, sa, sb) => {
      const src = endpoint(a, sp, sa);
      const dst = endpoint(b, dp, sb);
      const v4 = isV4Like(a) && isV4Like(b);
      const want = (x: Addr): string => {
        const w = wordsOf(x);
        return v4 ? dotted(((w[6] ?? 0) << 16) | (w[7] ?? 0)) : canon6(w.map((g) => g.toString(16)).join(':'));
      };
      const one = decodeV1(proxyHeader(1, src, dst));
      const two = decodeV2(proxyHeader(2, src, dst));
      for (const d of [one, two]) {
        assert.equal(d.command, 'PROXY');
        assert.equal(d.family, v4 ? 4 : 6);
        assert.equal(d.sport, sp);
        assert.equal(d.dport, dp);
        assert.equal(v4 ? d.src : canon6(d.src ?? ''), want(a));
        assert.equal(v4 ? d.dst : canon6(d.dst ?? ''), want(b));
      }
      // v1 prints what inet_ntop would.
      if (!v4) assert.equal(one.src, want(a));
      assert.equal(two.length, v4 ? 28 : 52);
    }),
    { numRuns: 2000 },
  );
});

test('property: one unknown end makes the whole header unknown', () => {
  fc.assert(
    fc.property(addrArb, fc.integer({ min: 0, max: 65535 }), fc.boolean(), (a, port, first) => {
      const e = endpoint(a, port, 1);
      const [s, d] = first ? [undefined, e] : [e, undefined];
      assert.equal(decodeV1(proxyHeader(1, s, d)).command, 'UNKNOWN');
      assert.equal(decodeV2(proxyHeader(2, s, d)).command, 'LOCAL');
    }),
    { numRuns: 300 },
  );
});
