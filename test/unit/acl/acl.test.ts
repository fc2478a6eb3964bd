// Unit tests for ACL compilation and decisions: first match, defacls, address families,
// unix peers, fail-closed cases and the global → master → subordinate chain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Acl, AclAddress, AclEntry } from '../../../src/config/model.js';
import { parseCidr } from '../../../src/acl/cidr.js';
import { type AclDecision, type CompiledAcl, compileAcl, decideChain, describeDecision, denyAllAcl } from '../../../src/acl/acl.js';
import { type Peer, peerFromAddress } from '../../../src/acl/peer.js';

let line = 0;
const at = () => ({ file: 't.conf', line: ++line, column: 1 });

function addr(text: string): AclAddress {
  if (text === 'any') return { kind: 'any' };
  if (text.startsWith('/')) return { kind: 'unix', path: text };
  const p = parseCidr(text);
  if ('error' in p) throw new Error(p.error);
  return { kind: 'cidr', ...p.cidr, text };
}

// `allow from a, b`, `deny acl x`, `allow` (any) …
function entry(action: 'allow' | 'deny', opts: { from?: string[]; acl?: string } = {}): AclEntry {
  return {
    action,
    location: at(),
    ...(opts.acl === undefined ? {} : { acl: opts.acl }),
    ...(opts.from === undefined ? {} : { from: opts.from.map(addr) }),
  };
}

const acl = (entries: AclEntry[], name?: string): Acl => ({ entries, location: at(), ...(name === undefined ? {} : { name }) });
const v4 = (address: string): Peer => ({ kind: 'inet', address, family: 4, port: 1234 });
const v6 = (address: string): Peer => ({ kind: 'inet', address, family: 6, port: 1234 });
const unix = (path: string): Peer => ({ kind: 'unix', path });
const NONE = new Map<string, Acl>();
const decisionOf = (c: CompiledAcl, p: Peer): AclDecision['decision'] => c.decide(p).decision;

test('the first matching entry decides', () => {
  const e1 = entry('deny', { from: ['10.1.0.0/16'] });
  const e2 = entry('allow', { from: ['10.0.0.0/8'] });
  const e3 = entry('deny');
  const c = compileAcl(acl([e1, e2, e3]), NONE);
  assert.equal(c.decide(v4('10.1.2.3')).entry, e1);
  assert.equal(c.decide(v4('10.1.2.3')).decision, 'deny');
  assert.equal(c.decide(v4('10.2.0.1')).entry, e2);
  assert.equal(c.decide(v4('10.2.0.1')).decision, 'allow');
  assert.equal(c.decide(v4('192.168.0.1')).entry, e3);
});

test('no matching entry is no-match, with no entry and an empty path', () => {
  const c = compileAcl(acl([entry('allow', { from: ['10.0.0.0/8'] })]), NONE);
  assert.deepEqual(c.decide(v4('11.0.0.1')), { decision: 'no-match', path: [], trail: [] });
  assert.equal(describeDecision(c.decide(v4('11.0.0.1'))), 'no entry matched');
});

test('a from list matches if any item does; boundaries are exact', () => {
  const c = compileAcl(acl([entry('allow', { from: ['192.168.1.0/24', '172.16.0.0/255.240.0.0', '203.0.113.7'] })]), NONE);
  for (const a of ['192.168.1.0', '192.168.1.255', '172.16.0.0', '172.31.255.255', '203.0.113.7']) assert.equal(decisionOf(c, v4(a)), 'allow', a);
  for (const a of ['192.168.0.255', '192.168.2.0', '172.15.255.255', '172.32.0.0', '203.0.113.6', '203.0.113.8']) assert.equal(decisionOf(c, v4(a)), 'no-match', a);
});

test('nested defacls: `acl NAME` matches when NAME allows, and the path says how', () => {
  const inner = acl([entry('deny', { from: ['10.9.0.0/16'] }), entry('allow', { from: ['10.0.0.0/8'] })], 'inner');
  const trustedEntry = entry('allow', { acl: 'inner', from: ['10.1.0.0/16', '10.9.0.0/16'] });
  const trusted = acl([trustedEntry], 'trusted');
  const defacls = new Map([
    ['inner', inner],
    ['trusted', trusted],
  ]);
  const top = entry('deny', { acl: 'trusted' });
  const c = compileAcl(acl([top, entry('allow')]), defacls);
  const d = c.decide(v4('10.1.2.3'));
  assert.equal(d.decision, 'deny');
  assert.equal(d.entry, top);
  assert.deepEqual(d.path, ['trusted', 'inner']);
  assert.deepEqual(d.trail, [trustedEntry, inner.entries[1]]);
  assert.match(describeDecision(d), /^deny by t\.conf:\d+:1 via acl trusted \(t\.conf:\d+:1\) -> inner \(t\.conf:\d+:1\)$/);
  // inner denies 10.9/16: trusted's entry does not apply, trusted is no-match, so the
  // top-level `deny acl trusted` does not apply either and `allow` decides.
  assert.equal(decisionOf(c, v4('10.9.0.1')), 'allow');
  // Outside trusted's from list.
  assert.equal(decisionOf(c, v4('10.2.0.1')), 'allow');
});

test('a defacl compiled as the top-level ACL works the same', () => {
  const a = acl([entry('allow', { from: ['127.0.0.1'] }), entry('deny')], 'local');
  const c = compileAcl(a, new Map([['local', a]]));
  assert.equal(c.name, 'local');
  assert.equal(decisionOf(c, v4('127.0.0.1')), 'allow');
  assert.equal(decisionOf(c, v4('127.0.0.2')), 'deny');
});

test('an undefined defacl fails closed when its entry is reached', () => {
  const c = compileAcl(acl([entry('allow', { from: ['10.0.0.0/8'] }), entry('allow', { acl: 'nowhere' }), entry('allow')]), NONE);
  assert.equal(decisionOf(c, v4('10.0.0.1')), 'allow'); // decided before the broken entry
  const d = c.decide(v4('11.0.0.1'));
  assert.equal(d.decision, 'deny');
  assert.equal(d.failClosed, 'undefined-acl');
  assert.deepEqual(d.path, ['nowhere']);
  // A deny entry with a broken reference also denies (rather than being passed over).
  const c2 = compileAcl(acl([entry('deny', { acl: 'nowhere' }), entry('allow')]), NONE);
  assert.equal(c2.decide(v4('11.0.0.1')).failClosed, 'undefined-acl');
});

test('a broken reference deep inside a defacl fails the whole decision closed', () => {
  const outer = acl([entry('allow', { acl: 'missing' })], 'outer');
  const c = compileAcl(acl([entry('deny', { acl: 'outer' }), entry('allow')]), new Map([['outer', outer]]));
  const d = c.decide(v4('1.2.3.4'));
  assert.equal(d.decision, 'deny');
  assert.equal(d.failClosed, 'undefined-acl');
  assert.deepEqual(d.path, ['outer', 'missing']);
});

test('defacls that reference each other deny instead of looping', () => {
  const a = acl([entry('allow', { from: ['10.0.0.0/8'] }), entry('allow', { acl: 'b' })], 'a');
  const b = acl([entry('allow', { acl: 'a' })], 'b');
  const self = acl([entry('allow', { acl: 'self' })], 'self');
  // c is not on the cycle, only refers into it: c itself is usable.
  const c = acl([entry('allow', { from: ['172.16.0.0/12'] }), entry('allow', { acl: 'a' })], 'c');
  const defacls = new Map([
    ['a', a],
    ['b', b],
    ['c', c],
    ['self', self],
  ]);
  const top = compileAcl(acl([entry('allow', { from: ['192.168.0.0/16'] }), entry('allow', { acl: 'a' }), entry('allow')]), defacls);
  assert.equal(decisionOf(top, v4('192.168.0.1')), 'allow'); // decided before the broken entry
  // A reference to a defacl on a cycle is refused outright, even for a peer that a's
  // first entry would have allowed: the answer never depends on how a was reached.
  for (const peer of [v4('10.0.0.1'), v4('11.0.0.1')]) {
    const d = top.decide(peer);
    assert.deepEqual([d.decision, d.failClosed, d.path], ['deny', 'acl-cycle', ['a']]);
  }
  assert.equal(compileAcl(self, defacls).decide(v4('1.1.1.1')).failClosed, 'acl-cycle');
  const viaC = compileAcl(acl([entry('allow', { acl: 'c' })]), defacls);
  assert.equal(decisionOf(viaC, v4('172.16.0.1')), 'allow');
  assert.deepEqual(viaC.decide(v4('11.0.0.1')).path, ['c', 'a']);
  assert.equal(viaC.decide(v4('11.0.0.1')).failClosed, 'acl-cycle');
});

test('a very long chain of defacls is refused, not recursed into', () => {
  const defacls = new Map<string, Acl>();
  for (let i = 0; i < 100; i++) defacls.set(`d${i}`, acl([entry('allow', i === 99 ? {} : { acl: `d${i + 1}` })], `d${i}`));
  const d = compileAcl(acl([entry('allow', { acl: 'd0' })]), defacls).decide(v4('1.1.1.1'));
  assert.equal(d.decision, 'deny');
  assert.equal(d.failClosed, 'acl-too-deep');
});

test('shared defacls (diamonds) are evaluated once per decision, so wide DAGs stay fast', () => {
  const defacls = new Map<string, Acl>();
  // Each level references the next one twice: 2^30 paths without memoisation.
  for (let i = 0; i < 30; i++) {
    const next = `d${i + 1}`;
    defacls.set(`d${i}`, acl([entry('deny', { acl: next, from: ['10.0.0.0/8'] }), entry('allow', { acl: next })], `d${i}`));
  }
  defacls.set('d30', acl([entry('deny', { from: ['10.0.0.0/8'] })], 'd30'));
  const c = compileAcl(acl([entry('allow', { acl: 'd0' })]), defacls);
  const t0 = performance.now();
  assert.equal(decisionOf(c, v4('11.0.0.1')), 'no-match');
  assert.ok(performance.now() - t0 < 200);
});

test('IPv4-mapped IPv6 peers match IPv4 rules and never IPv6-only ones', () => {
  const c = compileAcl(acl([entry('allow', { from: ['::/0'] }), entry('deny', { from: ['10.0.0.0/8'] })]), NONE);
  const mapped = peerFromAddress('::ffff:10.1.2.3', 'IPv6', 5);
  assert.deepEqual(mapped, { kind: 'inet', address: '10.1.2.3', family: 4, port: 5 });
  assert.equal(decisionOf(c, mapped), 'deny');
  // Even when handed over unnormalised, or in hex form.
  assert.equal(decisionOf(c, v6('::ffff:10.1.2.3')), 'deny');
  assert.equal(decisionOf(c, v6('::ffff:a01:203')), 'deny');
  assert.equal(decisionOf(c, v6('::1')), 'allow');
});

test('a mapped rule is an IPv4 rule, in dotted or hex spelling', () => {
  const dotted = compileAcl(acl([entry('allow', { from: ['::ffff:10.0.0.0/104'] })]), NONE);
  const hex: AclEntry = { action: 'allow', location: at(), from: [{ kind: 'cidr', family: 6, address: '::ffff:a00:0', prefix: 104, text: '::ffff:a00:0/104' }] };
  const hexAcl = compileAcl(acl([hex]), NONE);
  for (const c of [dotted, hexAcl]) {
    assert.equal(decisionOf(c, v4('10.200.0.1')), 'allow');
    assert.equal(decisionOf(c, v6('::ffff:10.200.0.1')), 'allow');
    assert.equal(decisionOf(c, v4('11.0.0.1')), 'no-match');
  }
  // Below /96 a rule is about IPv6 space: `::/64` does not reach IPv4 peers.
  const wide = compileAcl(acl([entry('allow', { from: ['::/64'] })]), NONE);
  assert.equal(decisionOf(wide, v6('::ffff:10.0.0.1')), 'no-match');
  assert.equal(decisionOf(wide, v6('::5')), 'allow');
});

test('IPv6 rules and peers', () => {
  const c = compileAcl(acl([entry('allow', { from: ['2001:db8::/32', '::1'] }), entry('deny')]), NONE);
  assert.equal(decisionOf(c, v6('2001:db8:ffff::1')), 'allow');
  assert.equal(decisionOf(c, v6('2001:DB8::')), 'allow');
  assert.equal(decisionOf(c, v6('2001:db9::')), 'deny');
  assert.equal(decisionOf(c, v6('::1')), 'allow');
  assert.equal(decisionOf(c, v6('::2')), 'deny');
  assert.equal(decisionOf(c, peerFromAddress('fe80::1%eth0', 'IPv6', 1)), 'deny');
});

test('IPv4 0.0.0.0/0 never matches IPv6 peers, and ::/0 never matches IPv4 peers', () => {
  const c4 = compileAcl(acl([entry('allow', { from: ['0.0.0.0/0'] })]), NONE);
  assert.equal(decisionOf(c4, v6('::1')), 'no-match');
  assert.equal(decisionOf(c4, v6('2001:db8::1')), 'no-match');
  assert.equal(decisionOf(c4, v4('1.2.3.4')), 'allow');
  const c6 = compileAcl(acl([entry('allow', { from: ['::/0'] })]), NONE);
  assert.equal(decisionOf(c6, v4('1.2.3.4')), 'no-match');
  assert.equal(decisionOf(c6, v6('::1')), 'allow');
});

test('unix-socket peers match only their path, any, and entries without from', () => {
  const c = compileAcl(
    acl([entry('allow', { from: ['0.0.0.0/0', '::/0'] }), entry('deny', { from: ['/run/other.sock'] }), entry('allow', { from: ['/run/tpies.sock'] }), entry('deny', { from: ['any'] })]),
    NONE,
  );
  assert.equal(decisionOf(c, unix('/run/tpies.sock')), 'allow');
  assert.equal(decisionOf(c, unix('/run//./tpies.sock')), 'allow');
  assert.equal(decisionOf(c, unix('/run/other.sock')), 'deny');
  assert.equal(c.decide(unix('/run/third.sock')).entry?.from?.[0]?.kind, 'any');
  assert.equal(decisionOf(compileAcl(acl([entry('deny')]), NONE), unix('/x')), 'deny');
  // And inet peers never match a path.
  assert.equal(decisionOf(compileAcl(acl([entry('allow', { from: ['/run/tpies.sock'] })]), NONE), v4('127.0.0.1')), 'no-match');
});

test('an unparsable peer matches no allow entry and every deny entry', () => {
  const c = compileAcl(acl([entry('allow'), entry('allow', { from: ['any'] }), entry('deny', { from: ['10.0.0.0/8'] }), entry('allow')]), NONE);
  for (const p of [peerFromAddress(undefined, undefined, undefined), peerFromAddress('garbage', 'IPv4', 1), v4('300.1.1.1'), v4('::1'), v6('1.2.3.4'), unix('')]) {
    const d = c.decide(p);
    assert.equal(d.decision, 'deny', JSON.stringify(p));
    assert.equal(d.failClosed, 'unknown-peer');
    assert.equal(d.entry?.action, 'deny');
  }
  // With only allow entries it is no-match, and the chain turns that into deny.
  const allowOnly = compileAcl(acl([entry('allow')]), NONE);
  assert.equal(decisionOf(allowOnly, v4('bogus')), 'no-match');
  assert.equal(decideChain([allowOnly], v4('bogus')).decision, 'deny');
  assert.equal(decideChain([], v4('bogus')).decision, 'deny');
});

test('peerFromAddress: families, mapping, zones and mismatches', () => {
  assert.deepEqual(peerFromAddress('127.0.0.1', 'IPv4', 80), { kind: 'inet', address: '127.0.0.1', family: 4, port: 80 });
  assert.deepEqual(peerFromAddress('::ffff:127.0.0.1', 'IPv6', 80), { kind: 'inet', address: '127.0.0.1', family: 4, port: 80 });
  assert.deepEqual(peerFromAddress('::ffff:7f00:1', 6, 80), { kind: 'inet', address: '127.0.0.1', family: 4, port: 80 });
  assert.deepEqual(peerFromAddress('::1', undefined, undefined), { kind: 'inet', address: '::1', family: 6, port: undefined });
  assert.deepEqual(peerFromAddress('fe80::1%eth0', 'IPv6', 1), { kind: 'inet', address: 'fe80::1', family: 6, port: 1 });
  // ::a.b.c.d (IPv4-compatible, deprecated) is not a mapped address.
  assert.deepEqual(peerFromAddress('::1.2.3.4', 'IPv6', 1), { kind: 'inet', address: '::1.2.3.4', family: 6, port: 1 });
  assert.equal(peerFromAddress('1.2.3.4', 'IPv6', 1).kind, 'unknown');
  assert.equal(peerFromAddress('1.2.3.4', 'AF_UNIX', 1).kind, 'unknown');
  assert.equal(peerFromAddress('', 'IPv4', 1).kind, 'unknown');
});

test('chain: global → master → subordinate; the first deny stops it', () => {
  const denyTen = compileAcl(acl([entry('deny', { from: ['10.0.0.0/8'] })]), NONE);
  const allowTen = compileAcl(acl([entry('allow', { from: ['10.0.0.0/8'] })]), NONE);
  const denyAll = compileAcl(acl([entry('deny')]), NONE);
  const r = decideChain([allowTen, denyTen, denyAll], v4('10.0.0.1'));
  assert.equal(r.decision, 'deny');
  assert.equal(r.level, 1);
  assert.equal(r.results.length, 2); // the subordinate was not consulted
  // no-match falls through to the default (allow, as pies) …
  const ok = decideChain([denyTen, allowTen], v4('11.0.0.1'));
  assert.deepEqual([ok.decision, ok.level, ok.results.map((x) => x.decision)], ['allow', undefined, ['no-match', 'no-match']]);
  assert.equal(decideChain([], v4('11.0.0.1')).decision, 'allow');
  // … unless the caller asks for a deny default.
  const strict = decideChain([allowTen, denyTen], v4('11.0.0.1'), 'deny');
  assert.deepEqual([strict.decision, strict.level], ['deny', 0]);
  // The last level can still deny after earlier ones allowed.
  assert.deepEqual([decideChain([allowTen, allowTen, denyAll], v4('10.0.0.1')).level], [2]);
});

test('denyAllAcl denies everyone, saying why', () => {
  const d = denyAllAcl('ghost', 'undefined-acl').decide(v4('1.1.1.1'));
  assert.deepEqual(d, { decision: 'deny', path: ['ghost'], trail: [], failClosed: 'undefined-acl' });
  assert.equal(describeDecision(d), 'deny via acl ghost [fail closed: undefined-acl]');
});
