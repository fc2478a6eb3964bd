// Access control against a reference (issue 8, "Access control"). Random ACLs are written as
// config text, read by the real loader and compiled by src/acl; their decisions for random
// IPv4, IPv6 and IPv4-mapped peers must agree with a naive evaluator written here (loops over
// entries, BigInt address arithmetic, its own address parser; nothing shared with src/acl),
// down to the entry that decided. Addresses that cannot be read are never allowed, rules that
// cannot be read never load, and a real TCPMUX master's `help` lists exactly the services a
// client may use, from IPv4 (seen as ::ffff:a.b.c.d on a dual-stack socket) and IPv6.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { compileAcl, decideChain } from '../../src/acl/acl.js';
import { peerFromAddress } from '../../src/acl/peer.js';
import { loadConfig } from '../../src/config/index.js';
import type { Acl } from '../../src/config/model.js';
import { startTestDaemon } from '../helpers/daemon.js';
import { SEED, record, seeded, size } from './lib.js';

const TMP = mkdtempSync(path.join(tmpdir(), 'tpies-acl-ref-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

// ---- a seeded generator, so a disagreement can be replayed (TPIES_SEED) -----------------------

function generator(seed: number) {
  const r = seeded(seed);
  const { int } = r;
  return {
    ...r,
    bits(n: number): bigint {
      let v = 0n;
      for (let i = 0; i < n; i += 16) v = (v << 16n) | BigInt(int(0x10000));
      return v & ((1n << BigInt(n)) - 1n);
    },
  };
}
type Gen = ReturnType<typeof generator>;

// ---- the reference: address text ⇄ numbers --------------------------------------------------

type Ip = { readonly family: 4 | 6; readonly n: bigint };
const MAPPED = 0xffffn; // ::ffff:0:0/96, RFC 4291 §2.5.5.2

function parseV4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    n = (n << 8n) | BigInt(p);
  }
  return n;
}

function groupsOf(text: string): bigint[] | undefined {
  if (text === '') return [];
  const out: bigint[] = [];
  for (const g of text.split(':')) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    out.push(BigInt(`0x${g}`));
  }
  return out;
}

function parseV6(text: string): bigint | undefined {
  let body = text;
  const tail: bigint[] = [];
  const lastColon = body.lastIndexOf(':');
  if (lastColon === -1) return undefined;
  if (body.slice(lastColon + 1).includes('.')) {
    const v4 = parseV4(body.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail.push(v4 >> 16n, v4 & 0xffffn);
    body = body.slice(0, lastColon + 1);
    body = body.endsWith('::') ? body : body.slice(0, -1);
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const head = groupsOf(halves[0]!);
  const rest = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (head === undefined || rest === undefined) return undefined;
  const given = head.length + rest.length + tail.length;
  // `::` stands for one or more zero groups (RFC 4291 §2.2).
  if (halves.length === 2 ? given > 7 : given !== 8) return undefined;
  const groups = [...head, ...Array<bigint>(8 - given).fill(0n), ...rest, ...tail];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

// A peer as the socket reports it (address text and family) → what ACLs must compare, or
// undefined when it cannot be read. IPv4-mapped IPv6 is the IPv4 address; a zone is dropped.
function refPeer(text: string, family: string | undefined): Ip | undefined {
  const zone = text.indexOf('%');
  const bare = zone === -1 ? text : text.slice(0, zone);
  const v4 = zone === -1 ? parseV4(bare) : undefined;
  const v6 = v4 === undefined ? parseV6(bare) : undefined;
  const detected = v4 !== undefined ? 4 : v6 !== undefined ? 6 : 0;
  if (detected === 0) return undefined;
  if (family !== undefined && family !== `IPv${detected}`) return undefined;
  if (v4 !== undefined) return { family: 4, n: v4 };
  return v6! >> 32n === MAPPED ? { family: 4, n: v6! & 0xffffffffn } : { family: 6, n: v6! };
}

const v4Text = (n: bigint): string => [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
const groups16 = (n: bigint): bigint[] => Array.from({ length: 8 }, (_, i) => (n >> BigInt(112 - 16 * i)) & 0xffffn);

// Many spellings of one IPv6 address: full, zero-padded, compressed at any zero run (not
// only the longest), upper case, and with the low 32 bits as a dotted quad.
function v6Text(n: bigint, g: Gen): string {
  const groups = groups16(n).map((x) => x.toString(16));
  const dotted = g.chance(0.2);
  const words = dotted ? groups.slice(0, 6) : groups;
  let text: string;
  const runs: Array<[number, number]> = [];
  for (let i = 0; i < words.length; i++) {
    if (words[i] !== '0') continue;
    let j = i;
    while (j < words.length && words[j] === '0') j++;
    runs.push([i, j]);
    i = j;
  }
  const padded = g.chance(0.15);
  const shown = words.map((w) => (padded ? w.padStart(4, '0') : w));
  if (runs.length > 0 && g.chance(0.8)) {
    const [a, b] = g.pick(runs);
    text = `${shown.slice(0, a).join(':')}::${shown.slice(b).join(':')}`;
    if (dotted && b === words.length) text += v4Text(n & 0xffffffffn);
    else if (dotted) text += `:${v4Text(n & 0xffffffffn)}`;
  } else {
    text = shown.join(':');
    if (dotted) text += `:${v4Text(n & 0xffffffffn)}`;
  }
  return g.chance(0.2) ? text.toUpperCase() : text;
}

function mappedText(v4: bigint, g: Gen): string {
  const hi = (v4 >> 16n).toString(16);
  const lo = (v4 & 0xffffn).toString(16);
  return g.pick([`::ffff:${v4Text(v4)}`, `::FFFF:${v4Text(v4)}`, `0:0:0:0:0:ffff:${v4Text(v4)}`, `::ffff:${hi}:${lo}`, `0::ffff:${hi}:${lo}`]);
}

// ---- the reference: rules and decisions ------------------------------------------------------

type RefItem = { readonly kind: 'any' } | { readonly kind: 'unix' } | { readonly kind: 'net'; readonly family: 4 | 6; readonly net: bigint; readonly prefix: number };
interface RefEntry {
  readonly action: 'allow' | 'deny';
  readonly acl?: string;
  readonly from?: readonly RefItem[];
  /** Line of the entry in the config file, to check which entry decided. */
  line: number;
  readonly text: string;
}
type RefAcl = readonly RefEntry[];
type RefDecision = { readonly decision: 'allow' | 'deny' | 'no-match'; readonly line?: number };

// An IPv6 rule of /96 or longer inside ::ffff:0:0/96 is about IPv4 peers (those are compared
// as IPv4); a shorter one stays IPv6 and so never matches them.
function refItem(family: 4 | 6, net: bigint, prefix: number): RefItem {
  if (family === 6 && prefix >= 96 && net >> 32n === MAPPED) return { kind: 'net', family: 4, net: net & 0xffffffffn, prefix: prefix - 96 };
  return { kind: 'net', family, net, prefix };
}

function inside(item: RefItem, peer: Ip): boolean {
  if (item.kind === 'any') return true;
  if (item.kind === 'unix' || item.family !== peer.family) return false;
  const shift = BigInt((item.family === 4 ? 32 : 128) - item.prefix);
  return item.net >> shift === peer.n >> shift;
}

// Docs/acl.md: first matching entry decides; `acl NAME` matches when NAME allows; a peer that
// cannot be read matches every deny entry and no allow entry.
function refDecide(acl: RefAcl, peer: Ip | undefined, defacls: ReadonlyMap<string, RefAcl>): RefDecision {
  for (const e of acl) {
    if (peer === undefined) {
      if (e.action === 'deny') return { decision: 'deny', line: e.line };
      continue;
    }
    if (e.from !== undefined && !e.from.some((item) => inside(item, peer))) continue;
    if (e.acl !== undefined && refDecide(defacls.get(e.acl)!, peer, defacls).decision !== 'allow') continue;
    return { decision: e.action, line: e.line };
  }
  return { decision: 'no-match' };
}

// ---- random rules --------------------------------------------------------------------------

const V4_ANCHORS = ['10.0.0.0', '10.1.2.3', '127.0.0.1', '192.168.1.0', '172.16.0.0', '0.0.0.0', '255.255.255.255'].map((t) => parseV4(t)!);
const V6_ANCHORS = ['2001:db8::', '2001:db8:1::1', 'fe80::1', '::1', '::', '64:ff9b::a00:1', '::a00:1', 'ffff::'].map((t) => parseV6(t)!);

// An address near one of the anchors (so rules and peers often overlap), or anywhere.
function near(family: 4 | 6, g: Gen): bigint {
  const width = family === 4 ? 32 : 128;
  if (g.chance(0.1)) return g.bits(width);
  const anchor = g.pick(family === 4 ? V4_ANCHORS : V6_ANCHORS);
  return anchor ^ g.bits(g.int(width + 1));
}

function netmask(prefix: number): string {
  return v4Text(prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(32 - prefix));
}

function randomItem(g: Gen): { text: string; item: RefItem } {
  const r = g.int(100);
  if (r < 4) return { text: 'any', item: { kind: 'any' } };
  if (r < 7) return { text: `/run/peer-${g.int(3)}.sock`, item: { kind: 'unix' } };
  if (r < 45) {
    const n = near(4, g);
    const prefix = g.int(33);
    const form = g.int(3);
    // Host bits may be set (`10.1.2.3/8` is 10.0.0.0/8).
    const text = form === 0 && prefix === 32 ? v4Text(n) : form === 1 ? `${v4Text(n)}/${netmask(prefix)}` : `${v4Text(n)}/${prefix}`;
    return { text, item: refItem(4, n, prefix) };
  }
  if (r < 65) {
    // An IPv4-mapped rule, dotted (/96 to /128) or in hex (any prefix).
    const v4 = near(4, g);
    const dotted = g.chance(0.5);
    const prefix = dotted ? 96 + g.int(33) : g.chance(0.8) ? 96 + g.int(33) : g.int(96);
    const n = (MAPPED << 32n) | v4;
    const body = dotted ? `::ffff:${v4Text(v4)}` : `::ffff:${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
    return { text: prefix === 128 && g.chance(0.3) ? body : `${body}/${prefix}`, item: refItem(6, n, prefix) };
  }
  const n = near(6, g);
  const prefix = g.int(129);
  const body = v6Text(n, g);
  return { text: prefix === 128 && g.chance(0.3) ? body : `${body}/${prefix}`, item: refItem(6, n, prefix) };
}

function randomEntry(g: Gen, refs: readonly string[]): Omit<RefEntry, 'line'> {
  const action = g.chance(0.5) ? 'allow' : 'deny';
  const acl = refs.length > 0 && g.chance(0.25) ? g.pick(refs) : undefined;
  const from: Array<{ text: string; item: RefItem }> = [];
  if (acl === undefined || g.chance(0.5)) {
    if (g.chance(0.9)) for (let i = 1 + g.int(g.chance(0.3) ? 5 : 2); i > 0; i--) from.push(randomItem(g));
  }
  let text = action;
  if (acl !== undefined) text += `${g.chance(0.2) ? ' all' : ''} acl ${acl}`;
  if (from.length === 1) text += ` from ${from[0]!.text}`;
  else if (from.length > 1) text += g.chance(0.8) ? ` from (${from.map((f) => f.text).join(', ')})` : ` from ${from.map((f) => f.text).join(' ')}`;
  if (acl === undefined && from.length === 0) text += g.pick([' any', ' all']);
  return { action, text: `${text};`, ...(acl !== undefined ? { acl } : {}), ...(from.length > 0 ? { from: from.map((f) => f.item) } : {}) };
}

interface RandomConfig {
  readonly text: string;
  readonly acl: RefAcl;
  readonly defacls: ReadonlyMap<string, RefAcl>;
}

// A few defacls (each may use the ones before it, so there is no cycle) and a global acl.
function randomConfig(g: Gen): RandomConfig {
  const lines: string[] = [];
  const defacls = new Map<string, RefAcl>();
  const block = (header: string, refs: readonly string[]): RefAcl => {
    lines.push(`${header} {`);
    const entries: RefEntry[] = [];
    for (let i = 1 + g.int(6); i > 0; i--) {
      const e = { ...randomEntry(g, refs), line: 0 };
      lines.push(`    ${e.text}`);
      e.line = lines.length;
      entries.push(e);
    }
    if (g.chance(0.4)) {
      const last = { action: g.chance(0.5) ? ('allow' as const) : ('deny' as const), text: '', line: 0 };
      lines.push(`    ${last.action} any;`);
      last.line = lines.length;
      entries.push(last);
    }
    lines.push('}');
    return entries;
  };
  const count = g.int(4);
  for (let i = 0; i < count; i++) defacls.set(`d${i}`, block(`defacl d${i}`, [...defacls.keys()]));
  const acl = block('acl', [...defacls.keys()]);
  return { text: `${lines.join('\n')}\n`, acl, defacls };
}

// A peer as a socket would report it: [address text, family], with the reference's view.
function randomPeer(g: Gen): { text: string; family: string | undefined } {
  const r = g.int(100);
  if (r < 35) return { text: v4Text(near(4, g)), family: 'IPv4' };
  if (r < 55) return { text: mappedText(near(4, g), g), family: 'IPv6' };
  if (r < 80) {
    const n = near(6, g);
    // Not mapped, whatever the spelling: IPv4-compatible ::a.b.c.d and NAT64 stay IPv6.
    const text = v6Text(n, g);
    return { text: n >> 48n === 0xfe80n && g.chance(0.3) ? `${text}%lo` : text, family: 'IPv6' };
  }
  if (r < 88) return { text: unparsableAddress(g), family: g.pick(['IPv4', 'IPv6', undefined]) };
  // A family that disagrees with the address.
  return g.chance(0.5) ? { text: v4Text(near(4, g)), family: 'IPv6' } : { text: v6Text(near(6, g), g), family: g.pick(['IPv4', 'unix', '']) };
}

function unparsableAddress(g: Gen): string {
  const fixed = ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-4', '::g', '1::2::3', '1:2:3:4:5:6:7:8:9', ':::', '12345::', '::ffff:1.2.3.256', '::ffff:01.2.3.4', 'localhost', ' 10.0.0.1', '10.0.0.1 ', '10.0.0.1/8', '%lo', 'fe80::1%', '10.0.0.1%lo', '\u0000', '١٢٣.1.1.1'];
  if (g.chance(0.4)) return g.pick(fixed);
  // Random soup of address characters; the reference decides whether it is an address.
  const alphabet = '0123456789abcdefABCDEF:.%/x ';
  let text = '';
  for (let i = 1 + g.int(24); i > 0; i--) text += alphabet[g.int(alphabet.length)];
  return text;
}

// ---- the tests -----------------------------------------------------------------------------

async function load(text: string): Promise<{ acl: Acl; defacls: ReadonlyMap<string, Acl> }> {
  const file = path.join(TMP, 'acl.conf');
  writeFileSync(file, text);
  const loaded = await loadConfig(file);
  assert.ok(loaded.config, `seed ${SEED}: a generated config did not load:\n${text}\n${loaded.diagnostics.map((d) => d.message).join('\n')}`);
  const ref = loaded.config.acl;
  assert.ok(ref?.kind === 'inline');
  return { acl: ref.acl, defacls: loaded.config.defacls };
}

test('ACL decisions agree with the reference evaluator on random rules and peers', async (t) => {
  const g = generator(SEED);
  const configs = size(25, 250);
  const peersEach = size(200, 400);
  let cases = 0;
  let unreadable = 0;
  let mapped = 0;
  const disagreements: string[] = [];
  const started = performance.now();
  for (let c = 0; c < configs; c++) {
    const random = randomConfig(g);
    const { acl, defacls } = await load(random.text);
    const compiled = compileAcl(acl, defacls);
    for (let p = 0; p < peersEach; p++) {
      const { text, family } = randomPeer(g);
      const want = refPeer(text, family);
      const expected = refDecide(random.acl, want, random.defacls);
      const peer = peerFromAddress(text, family, 0);
      const got = compiled.decide(peer);
      const chain = decideChain([compiled], peer).decision;
      const expectedChain = want === undefined || expected.decision === 'deny' ? 'deny' : 'allow';
      cases++;
      if (want === undefined) unreadable++;
      else if (want.family === 4 && text.includes(':')) mapped++;
      const line = got.entry?.location.line;
      if (got.decision !== expected.decision || line !== expected.line || chain !== expectedChain) {
        if (disagreements.length < 5) {
          disagreements.push(`peer ${JSON.stringify(text)} (${family}): src/acl ${got.decision} line ${line} chain ${chain}, reference ${expected.decision} line ${expected.line} chain ${expectedChain}\n${random.text}`);
        } else disagreements.push('');
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const pass = disagreements.length === 0 && cases >= size(5000, 100_000);
  record(t, {
    scenario: 'acl-reference',
    figures: { cases, configs, 'unreadable peers': unreadable, 'mapped peers': mapped, disagreements: disagreements.length, seconds: Math.round(seconds * 10) / 10, seed: SEED },
    condition: 'zero disagreements with the reference evaluator (decision and deciding entry)',
    pass,
  });
  assert.deepEqual(disagreements.filter(Boolean), [], `seed ${SEED}`);
  assert.ok(cases >= size(5000, 100_000), `${cases} cases`);
  // The mix really exercised each kind of peer.
  assert.ok(unreadable > cases * 0.05 && mapped > cases * 0.1, `unreadable ${unreadable}, mapped ${mapped}`);
});

test('an address that cannot be read is never allowed, not even by an ACL that allows everything', async (t) => {
  const g = generator(SEED + 1);
  const { acl, defacls } = await load('defacl everyone { allow any; }\nacl {\n    allow acl everyone;\n    allow from (0.0.0.0/0, ::/0);\n    allow any;\n}\n');
  const compiled = compileAcl(acl, defacls);
  const denyByDefault = await load('acl {\n    allow from (0.0.0.0/0, ::/0, ::ffff:0.0.0.0/96);\n    deny any;\n}\n');
  const strict = compileAcl(denyByDefault.acl, denyByDefault.defacls);
  let tried = 0;
  const allowed: string[] = [];
  for (let i = 0; i < size(2000, 20_000); i++) {
    const text = unparsableAddress(g);
    const family = g.pick(['IPv4', 'IPv6', undefined]);
    if (refPeer(text, family) !== undefined) continue;
    tried++;
    const peer = peerFromAddress(text, family, 0);
    for (const a of [compiled, strict]) {
      if (a.decide(peer).decision === 'allow' || decideChain([a], peer).decision === 'allow' || decideChain([], peer).decision === 'allow') allowed.push(JSON.stringify(text));
    }
  }
  record(t, { scenario: 'acl-unreadable-peers', figures: { tried, allowed: allowed.length }, condition: 'no unreadable address is ever allowed', pass: allowed.length === 0 && tried > 100 });
  assert.deepEqual(allowed.slice(0, 10), []);
  assert.ok(tried > 100, `${tried}`);
});

const BAD_RULES = [
  '10.0.0.256', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/255.0.255.0', '10.0.0.0/255.255.255.256', '10.0.0.0/0.255.255.255',
  '1.2.3', '1.2.3.4.5', '01.2.3.4', '::g', '1::2::3', '2001:db8::/129', '::ffff:1.2.3.4/95', '::ffff:1.2.3.256', 'localhost',
  'example.com', '10.0.0.0/8x', '10.0.0.0/ 8', 'relative/path.sock', '1.2.3.4/32/32', '::/abc',
];

test('a rule that cannot be read never loads: the whole config is refused, at that line', async (t) => {
  const g = generator(SEED + 2);
  const accepted: string[] = [];
  let tried = 0;
  const tryRule = async (rule: string): Promise<void> => {
    tried++;
    const quoted = /[\s;(),{}"]/.test(rule) || rule === '' ? JSON.stringify(rule) : rule;
    const text = `acl {\n    allow from (127.0.0.1, ${quoted});\n    deny any;\n}\n`;
    const file = path.join(TMP, 'bad.conf');
    writeFileSync(file, text);
    const loaded = await loadConfig(file);
    const located = loaded.diagnostics.some((d) => d.severity === 'error' && d.location?.line === 2);
    if (loaded.config !== null || !located) accepted.push(rule);
  };
  for (const rule of BAD_RULES) await tryRule(rule);
  // Valid rules with one character changed: whatever the loader accepts, the reference must
  // read too, and the other way round (checked on the decisions above); here only the
  // unreadable ones count, and each must be refused.
  for (let i = 0; i < size(200, 2000); i++) {
    const { text } = randomItem(g);
    if (text === 'any' || text.startsWith('/')) continue;
    const at = g.int(text.length);
    const mutated = text.slice(0, at) + g.pick(['g', '.', ':', '/', '9', '-', '%', '']) + text.slice(at + 1);
    if (mutated.startsWith('/') || readableRule(mutated)) continue; // an absolute path is a unix socket rule
    await tryRule(mutated);
  }
  record(t, { scenario: 'acl-unreadable-rules', figures: { tried, loaded: accepted.length }, condition: 'every unreadable rule refuses the config', pass: accepted.length === 0 });
  assert.deepEqual(accepted, []);
});

// Whether the reference can read a rule: ADDR, ADDR/PREFIX, IPv4/NETMASK (contiguous), or
// ::ffff:a.b.c.d with a prefix of 96 to 128.
function readableRule(text: string): boolean {
  const [host = '', mask, extra] = text.split('/');
  if (extra !== undefined) return false;
  const v4 = parseV4(host);
  const v6 = v4 === undefined ? parseV6(host) : undefined;
  if (v4 === undefined && v6 === undefined) return false;
  if (mask === undefined) return true;
  if (/^[0-9]+$/.test(mask)) {
    const p = Number(mask);
    if (v6 !== undefined && /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(host)) return p >= 96 && p <= 128;
    return p <= (v4 !== undefined ? 32 : 128);
  }
  const m = v4 !== undefined ? parseV4(mask) : undefined;
  if (m === undefined) return false;
  const inverted = 0xffffffffn ^ m;
  return (inverted & (inverted + 1n)) === 0n;
}

// ---- a real master: help lists only what the client may use ---------------------------------

const CLIENTS: ReadonlyArray<{ host: string; local: string }> = [
  ...[1, 2, 3, 4, 5, 6].map((i) => ({ host: '127.0.0.1', local: `127.0.0.${i}` })),
  { host: '::1', local: '::1' },
];

function subordinateAcl(g: Gen, refs: readonly string[]): string[] {
  const items = (): string => {
    const pool = ['127.0.0.1', '127.0.0.2/31', '127.0.0.4/30', '127.0.0.0/29', '::1', '::1/128', '::ffff:127.0.0.3', '::ffff:127.0.0.0/125', '::/0', '0.0.0.0/0', '10.0.0.0/8', '127.0.0.5/255.255.255.255'];
    const n = 1 + g.int(3);
    const chosen = Array.from({ length: n }, () => g.pick(pool));
    return n === 1 ? chosen[0]! : `(${chosen.join(', ')})`;
  };
  const entries: string[] = [];
  for (let i = 1 + g.int(3); i > 0; i--) {
    const action = g.chance(0.5) ? 'allow' : 'deny';
    entries.push(refs.length > 0 && g.chance(0.2) ? `${action} acl ${g.pick(refs)};` : `${action} from ${items()};`);
  }
  if (g.chance(0.5)) entries.push(g.chance(0.7) ? 'deny any;' : 'allow any;');
  return entries;
}

test('a real TCPMUX master: help lists exactly the services each client may use', async (t) => {
  const g = generator(SEED + 3);
  const rounds = size(2, 8);
  const services = 8;
  let helps = 0;
  let requests = 0;
  let listedTotal = 0;
  const problems: string[] = [];
  let d: Awaited<ReturnType<typeof startTestDaemon>> | undefined;
  for (let round = 0; round < rounds; round++) {
    const lines: string[] = [];
    const defacl = subordinateAcl(g, []);
    lines.push('defacl near {', ...defacl.map((e) => `    ${e}`), '}');
    // The master itself lets every client in, so what help shows is the subordinates' ACLs.
    lines.push('component tcpmux {', '    socket \"inet6://[::]:0\";', '    service tcpmux;', '    flags internal;', '}');
    for (let s = 0; s < services; s++) {
      const disabled = g.chance(0.15);
      lines.push(`component s${s} {`, '    tcpmux-master tcpmux;', `    service S${s};`, `    flags ${disabled ? '(tcpmuxplus, disable)' : 'tcpmuxplus'};`, '    command /bin/cat;');
      if (g.chance(0.85)) lines.push('    acl {', ...subordinateAcl(g, ['near']).map((e) => `        ${e}`), '    }');
      lines.push('}');
    }
    const config = `${lines.join('\n')}\n`;
    if (d === undefined) d = await startTestDaemon(t, config);
    else {
      await d.writeConfig(config);
      const reloaded = await d.daemon.reload();
      assert.ok(reloaded.ok, JSON.stringify(reloaded));
    }
    const port = d.port('tcpmux');
    for (const client of CLIENTS) {
      const expected = expectedServices(config, client.local);
      const help = await ask(client.host, port, client.local, 'help\r\n');
      helps++;
      const listed = help.split('\r\n').filter(Boolean);
      listedTotal += listed.length;
      if (listed.join(',') !== expected.join(',')) problems.push(`round ${round} client ${client.local}: help listed [${listed}], may use [${expected}]\n${config}`);
      // …and help agrees with what actually happens when each service is asked for.
      for (let s = 0; s < services; s++) {
        const answer = await ask(client.host, port, client.local, `s${s}\r\n`);
        requests++;
        const served = answer.startsWith('+\r\n');
        if (served !== listed.includes(`S${s}`)) problems.push(`round ${round} client ${client.local}: S${s} ${served ? 'served' : 'refused'} but help ${listed.includes(`S${s}`) ? 'listed' : 'did not list'} it`);
      }
    }
  }
  record(t, { scenario: 'acl-help', figures: { rounds, 'help requests': helps, 'service requests': requests, 'services listed': listedTotal, mismatches: problems.length }, condition: 'help lists exactly the services the client may use', pass: problems.length === 0 });
  assert.deepEqual(problems.slice(0, 3), []);
  // Both answers occurred, so the comparison meant something.
  assert.ok(listedTotal > 0 && listedTotal < requests, `${listedTotal} of ${requests} listed`);
});

// The reference's answer for the generated master config: enabled subordinates, in config
// order, whose ACL (and the defacl it uses) does not deny `local`.
function expectedServices(config: string, local: string): string[] {
  const peer = refPeer(local, local.includes(':') ? 'IPv6' : 'IPv4');
  assert.ok(peer);
  const parseBlock = (body: string[]): RefAcl =>
    body.map((line): RefEntry => {
      const m = /^(allow|deny) (?:acl (\w+)|from (.+)|any);$/.exec(line.trim());
      assert.ok(m, line);
      const items = m[3] === undefined ? undefined : m[3].replace(/^\(|\)$/g, '').split(', ').map(ruleItem);
      return { action: m[1] as 'allow' | 'deny', ...(m[2] !== undefined ? { acl: m[2] } : {}), ...(items !== undefined ? { from: items } : {}), line: 0, text: line };
    });
  const lines = config.split('\n');
  const blockAfter = (start: number): string[] => {
    const out: string[] = [];
    for (let i = start + 1; !/^\s*}\s*$/.test(lines[i]!); i++) out.push(lines[i]!);
    return out;
  };
  const defacls = new Map<string, RefAcl>([['near', parseBlock(blockAfter(lines.indexOf('defacl near {')))]]);
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^component (s\d+) \{$/.exec(lines[i]!);
    if (!m) continue;
    const body: string[] = [];
    for (let j = i + 1; lines[j] !== '}'; j++) body.push(lines[j]!);
    if (body.some((l) => l.includes('disable'))) continue;
    const aclStart = body.findIndex((l) => l.trim() === 'acl {');
    if (aclStart !== -1) {
      const entries: string[] = [];
      for (let j = aclStart + 1; body[j]!.trim() !== '}'; j++) entries.push(body[j]!);
      if (refDecide(parseBlock(entries), peer, defacls).decision === 'deny') continue;
    }
    out.push(m[1]!.toUpperCase());
  }
  return out;
}

function ruleItem(text: string): RefItem {
  if (text === 'any') return { kind: 'any' };
  const [host = '', mask] = text.split('/');
  const v4 = parseV4(host);
  if (v4 !== undefined) {
    const prefix = mask === undefined ? 32 : mask.includes('.') ? [...parseV4(mask)!.toString(2)].filter((b) => b === '1').length : Number(mask);
    return refItem(4, v4, prefix);
  }
  const v6 = parseV6(host);
  assert.ok(v6 !== undefined, text);
  return refItem(6, v6, mask === undefined ? 128 : Number(mask));
}

// Send `text` from the local address `local` (any 127.0.0.0/8 address is ours on loopback),
// half-close, and collect the answer until the server closes.
function ask(host: string, port: number, local: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, localAddress: local });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end of answer to ${JSON.stringify(text)} from ${local} within 3 s`));
    }, 3000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('connect', () => socket.end(text));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.on('error', () => undefined);
  });
}
