// Property tests for ACLs: the compiled matcher (BlockList) agrees with a naive reference
// evaluator doing BigInt bit arithmetic, for random rules, defacls and IPv4/IPv6/mapped peers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SocketAddress, isIP } from 'node:net';
import fc from 'fast-check';
import type { Acl, AclAddress, AclEntry } from '../../src/config/model.js';
import { compileAcl, decideChain } from '../../src/acl/acl.js';
import { type Peer, peerFromAddress } from '../../src/acl/peer.js';

const MAPPED_TAG = 0xffffn; // bits 32..47 of ::ffff:a.b.c.d (RFC 4291 §2.5.5.2)
const UNIX_PATHS = ['/run/a.sock', '/run/b.sock'];
const NAMES = ['d0', 'd1', 'd2', 'missing'];
const location = { file: 'p.conf', line: 1, column: 1 };

// ---- address text from numbers -------------------------------------------------------------

const v4Text = (n: bigint): string => [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
const v6Full = (n: bigint): string =>
  Array.from({ length: 8 }, (_, i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');
// Node's canonical spelling (compressed, `::ffff:a.b.c.d` for mapped), for variety.
const v6Canonical = (n: bigint): string => new SocketAddress({ address: v6Full(n), family: 'ipv6' }).address;

// ---- the reference evaluator ---------------------------------------------------------------

type RefPeer = { kind: 4 | 6; n: bigint } | { kind: 'unix'; path: string } | { kind: 'unknown' };
type RefResult = { decision: 'allow' | 'deny' | 'no-match'; entry?: AclEntry; failClosed?: string };

const parseV4 = (t: string): bigint => t.split('.').reduce((acc, o) => (acc << 8n) | BigInt(o), 0n);
function parseV6(t: string): bigint {
  // Full 8 groups or a compressed form, possibly with a dotted IPv4 tail (Node spells
  // 0:0:0:0:0:0:1000:6 as ::16.0.0.6 and mapped addresses as ::ffff:a.b.c.d).
  let text = t;
  let tail: bigint[] = [];
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = parseV4(dotted[2]!);
    tail = [v4 >> 16n, v4 & 0xffffn];
    text = dotted[1]!.endsWith('::') ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const [head = '', rest] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const r = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = rest === undefined ? 0 : 8 - tail.length - h.length - r.length;
  const groups = [...h.map((g) => BigInt(parseInt(g, 16))), ...Array<bigint>(zeros).fill(0n), ...r.map((g) => BigInt(parseInt(g, 16))), ...tail];
  assert.equal(groups.length, 8, `reference parser: ${t}`);
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

function refPeer(p: Peer): RefPeer {
  if (p.kind === 'unknown') return { kind: 'unknown' };
  if (p.kind === 'unix') return p.path === '' ? { kind: 'unknown' } : { kind: 'unix', path: p.path };
  if (isIP(p.address) !== p.family) return { kind: 'unknown' };
  if (p.family === 4) return { kind: 4, n: parseV4(p.address) };
  const n = parseV6(p.address);
  return n >> 32n === MAPPED_TAG ? { kind: 4, n: n & 0xffffffffn } : { kind: 6, n };
}

function contains(rule: bigint, prefix: number, bits: number, n: bigint): boolean {
  return prefix === 0 || (rule ^ n) >> BigInt(bits - prefix) === 0n;
}

function itemMatches(item: AclAddress, p: Exclude<RefPeer, { kind: 'unknown' }>): boolean {
  if (item.kind === 'any') return true;
  if (item.kind === 'unix') return p.kind === 'unix' && p.path === item.path;
  let family = item.family;
  let prefix = item.prefix;
  let rule = family === 4 ? parseV4(item.address) : parseV6(item.address);
  // A /96-or-longer rule inside ::ffff:0:0/96 is about IPv4 peers.
  if (family === 6 && prefix >= 96 && rule >> 32n === MAPPED_TAG) {
    family = 4;
    prefix -= 96;
    rule &= 0xffffffffn;
  }
  return p.kind === family && contains(rule, prefix, family === 4 ? 32 : 128, p.n);
}

function reaches(from: string, target: string, defacls: ReadonlyMap<string, Acl>, seen = new Set<string>()): boolean {
  for (const e of defacls.get(from)?.entries ?? []) {
    if (e.acl === undefined || !defacls.has(e.acl)) continue;
    if (e.acl === target) return true;
    if (!seen.has(e.acl)) {
      seen.add(e.acl);
      if (reaches(e.acl, target, defacls, seen)) return true;
    }
  }
  return false;
}

function refDecide(acl: Acl, p: RefPeer, defacls: ReadonlyMap<string, Acl>): RefResult {
  for (const e of acl.entries) {
    if (p.kind === 'unknown') {
      if (e.action === 'allow') continue;
      return { decision: 'deny', entry: e, failClosed: 'unknown-peer' };
    }
    if (e.from !== undefined && !e.from.some((item) => itemMatches(item, p))) continue;
    if (e.acl !== undefined) {
      const sub = defacls.get(e.acl);
      if (sub === undefined) return { decision: 'deny', entry: e, failClosed: 'undefined-acl' };
      if (reaches(e.acl, e.acl, defacls)) return { decision: 'deny', entry: e, failClosed: 'acl-cycle' };
      const inner = refDecide(sub, p, defacls);
      if (inner.failClosed !== undefined) return { decision: 'deny', entry: e, failClosed: inner.failClosed };
      if (inner.decision !== 'allow') continue;
    }
    return { decision: e.action, entry: e };
  }
  return { decision: 'no-match' };
}

// ---- generators ----------------------------------------------------------------------------

const u32 = fc.bigInt({ min: 0n, max: 2n ** 32n - 1n });
const u128 = fc.bigInt({ min: 0n, max: 2n ** 128n - 1n });
const mapped = u32.map((n) => (MAPPED_TAG << 32n) | n);

// Rule addresses come from a small pool so that peers land inside them often.
const poolArb = fc.record({ v4: fc.array(u32, { minLength: 1, maxLength: 3 }), v6: fc.array(fc.oneof(u128, mapped), { minLength: 1, maxLength: 3 }) });
type Pool = { v4: bigint[]; v6: bigint[] };

const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length]!;

const itemArb = (pool: Pool): fc.Arbitrary<AclAddress> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant<AclAddress>({ kind: 'any' }) },
    { weight: 1, arbitrary: fc.constantFrom(...UNIX_PATHS).map((path): AclAddress => ({ kind: 'unix', path })) },
    {
      weight: 4,
      arbitrary: fc.tuple(fc.nat(), fc.integer({ min: 0, max: 32 })).map(([i, prefix]): AclAddress => {
        const address = v4Text(pick(pool.v4, i)); // host bits deliberately left set
        return { kind: 'cidr', family: 4, address, prefix, text: `${address}/${prefix}` };
      }),
    },
    {
      weight: 4,
      arbitrary: fc.tuple(fc.nat(), fc.oneof(fc.integer({ min: 0, max: 128 }), fc.integer({ min: 96, max: 128 })), fc.boolean()).map(
        ([i, prefix, canonical]): AclAddress => {
          const n = pick(pool.v6, i);
          const address = canonical ? v6Canonical(n) : v6Full(n);
          return { kind: 'cidr', family: 6, address, prefix, text: `${address}/${prefix}` };
        },
      ),
    },
  );

const entryArb = (pool: Pool): fc.Arbitrary<AclEntry> =>
  fc
    .record({
      action: fc.constantFrom<'allow' | 'deny'>('allow', 'deny'),
      from: fc.option(fc.array(itemArb(pool), { minLength: 1, maxLength: 3 }), { nil: undefined, freq: 4 }),
      // Mostly no sub-ACL, so that most decisions come from addresses.
      acl: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...NAMES) }),
    })
    .map(({ action, from, acl }) => ({ action, location, ...(from === undefined ? {} : { from }), ...(acl === undefined ? {} : { acl }) }));

const aclArb = (pool: Pool, name?: string): fc.Arbitrary<Acl> =>
  fc.array(entryArb(pool), { maxLength: 6 }).map((entries) => ({ entries, location, ...(name === undefined ? {} : { name }) }));

// Peers: inside a pool address with random low bits flipped, or anywhere; spelled many ways.
const peerArb = (pool: Pool): fc.Arbitrary<Peer> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.tuple(fc.nat(), fc.integer({ min: 0, max: 32 }), u32, fc.boolean()).map(([i, bits, noise, viaFn]) => v4Peer(pick(pool.v4, i) ^ (noise & ((1n << BigInt(bits)) - 1n)), viaFn)) },
    { weight: 4, arbitrary: fc.tuple(fc.nat(), fc.integer({ min: 0, max: 128 }), u128, fc.integer({ min: 0, max: 2 })).map(([i, bits, noise, style]) => v6Peer(pick(pool.v6, i) ^ (noise & ((1n << BigInt(bits)) - 1n)), style)) },
    { weight: 1, arbitrary: fc.tuple(u32, fc.integer({ min: 0, max: 2 })).map(([n, style]) => v6Peer((MAPPED_TAG << 32n) | n, style)) },
    { weight: 1, arbitrary: fc.tuple(u32, fc.boolean()).map(([n, viaFn]) => v4Peer(n, viaFn)) },
    { weight: 1, arbitrary: fc.constantFrom(...UNIX_PATHS, '/run/c.sock').map((path): Peer => ({ kind: 'unix', path })) },
    { weight: 1, arbitrary: fc.constantFrom<Peer>({ kind: 'unknown' }, { kind: 'inet', address: 'not-an-ip', family: 4, port: 1 }) },
  );

function v4Peer(n: bigint, viaFn: boolean): Peer {
  return viaFn ? peerFromAddress(v4Text(n), 'IPv4', 40000) : { kind: 'inet', address: v4Text(n), family: 4, port: 40000 };
}
// style 0: full text as a literal Peer; 1: canonical through peerFromAddress; 2: canonical literal.
function v6Peer(n: bigint, style: number): Peer {
  if (style === 0) return { kind: 'inet', address: v6Full(n), family: 6, port: 40000 };
  const text = v6Canonical(n);
  return style === 1 ? peerFromAddress(text, 'IPv6', 40000) : { kind: 'inet', address: text, family: 6, port: 40000 };
}

const scenarioArb = poolArb.chain((pool) =>
  fc.record({
    root: aclArb(pool),
    d0: aclArb(pool, 'd0'),
    d1: aclArb(pool, 'd1'),
    d2: aclArb(pool, 'd2'),
    extra: aclArb(pool),
    peers: fc.array(peerArb(pool), { minLength: 1, maxLength: 8 }),
  }),
);

// ---- properties ----------------------------------------------------------------------------

// FC_SEED=… FC_PATH=… replays a failure that fast-check reported.
function replay(): { seed?: number; path?: string } {
  const seed = process.env['FC_SEED'];
  return seed === undefined ? {} : { seed: Number(seed), path: process.env['FC_PATH'] ?? '' };
}

test('compiled ACLs agree with the reference evaluator', () => {
  let decided = 0;
  const seen = new Map<string, number>();
  fc.assert(
    fc.property(scenarioArb, ({ root, d0, d1, d2, peers }) => {
      const defacls = new Map([
        ['d0', d0],
        ['d1', d1],
        ['d2', d2],
      ]);
      const compiled = compileAcl(root, defacls);
      for (const peer of peers) {
        const got = compiled.decide(peer);
        const want = refDecide(root, refPeer(peer), defacls);
        assert.equal(got.decision, want.decision, `peer ${JSON.stringify(peer)}`);
        assert.equal(got.entry, want.entry, `peer ${JSON.stringify(peer)}`);
        assert.equal(got.failClosed, want.failClosed, `peer ${JSON.stringify(peer)}`);
        if (want.decision !== 'no-match' && want.failClosed === undefined) decided++;
        const kind = want.failClosed ?? (got.path.length > 0 ? `${want.decision} via defacl` : want.decision);
        seen.set(kind, (seen.get(kind) ?? 0) + 1);
      }
    }),
    { numRuns: 2000, ...replay() },
  );
  // Guard against a generator that never lets a rule decide.
  assert.ok(decided > 1000, `only ${decided} decisions came from rules`);
  for (const kind of ['allow', 'deny', 'no-match', 'allow via defacl', 'deny via defacl', 'unknown-peer', 'undefined-acl', 'acl-cycle']) {
    assert.ok((seen.get(kind) ?? 0) > 10, `too few "${kind}" cases: ${JSON.stringify([...seen])}`);
  }
});

test('decideChain is the left fold: first deny stops, no-match takes the default', () => {
  fc.assert(
    fc.property(scenarioArb, fc.constantFrom<'allow' | 'deny'>('allow', 'deny'), ({ root, extra, d0, peers }, dflt) => {
      const defacls = new Map([['d0', d0]]);
      const chain = [compileAcl(root, defacls), compileAcl(extra, defacls)];
      for (const peer of peers) {
        const p = refPeer(peer);
        let want: 'allow' | 'deny' = p.kind === 'unknown' ? 'deny' : 'allow';
        let level: number | undefined;
        for (const [i, acl] of [root, extra].entries()) {
          const r = refDecide(acl, p, defacls).decision;
          const outcome = r === 'no-match' ? (p.kind === 'unknown' ? 'deny' : dflt) : r;
          if (outcome === 'deny') {
            want = 'deny';
            level = i;
            break;
          }
        }
        const got = decideChain(chain, peer, dflt);
        assert.deepEqual([got.decision, got.level], [want, level]);
      }
    }),
    { numRuns: 500 },
  );
});
