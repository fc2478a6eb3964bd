// Compiles ACLs (pies manual, "ACL") into pre-built exact matchers and decides connections:
// the first matching entry decides, and whatever cannot be decided exactly fails closed (B10).
import { BlockList, SocketAddress } from 'node:net';
import { posix } from 'node:path';
import type { Location } from '../config/ast.js';
import type { Acl, AclAddress, AclEntry } from '../config/model.js';
import { type Peer, mappedIPv4, normalizePeer } from './peer.js';

/** Why a decision was forced to `deny` instead of being read off the rules. */
export type FailClosedReason = 'unknown-peer' | 'undefined-acl' | 'acl-cycle' | 'acl-too-deep';

/** One ACL's answer for one peer, with enough detail to say which rule decided. */
export interface AclDecision {
  readonly decision: 'allow' | 'deny' | 'no-match';
  /** The entry of this ACL that decided; absent for `no-match`. */
  readonly entry?: AclEntry;
  /**
   * The defacls descended through to satisfy `entry`'s `acl NAME` part, outermost first:
   * `entry` says `acl a`, and `a` allowed because of an entry saying `acl b`, … → `['a', 'b']`.
   */
  readonly path: readonly string[];
  /**
   * `trail[i]` is the entry of defacl `path[i]` that decided: the one that allowed, or the one
   * whose reference was broken (so `trail` is one shorter than `path` after a broken reference).
   */
  readonly trail: readonly AclEntry[];
  /** Set when the answer is a forced `deny` rather than what an entry says. */
  readonly failClosed?: FailClosedReason;
}

/** An ACL compiled for matching; `decide` is pure and never throws. */
export interface CompiledAcl {
  /** The defacl name, or undefined for an inline `acl { … }`. */
  readonly name: string | undefined;
  decide(peer: Peer): AclDecision;
  /** `decide` for a peer already parsed (decideChain parses once for every level). */
  decideProbe(probe: Probe): AclDecision;
}

/** The combined answer of global → master → subordinate ACLs. */
export interface ChainDecision {
  readonly decision: 'allow' | 'deny';
  /** Index into the chain of the ACL that stopped it with a deny; undefined when nothing denied there. */
  readonly level: number | undefined;
  /** One result per ACL consulted, in chain order (the chain stops at the first deny). */
  readonly results: readonly AclDecision[];
}

// A defacl whose `acl NAME` references nest deeper than this is refused (fail closed):
// no sane config comes near it, and it bounds recursion when deciding.
export const MAX_ACL_DEPTH = 32;

// Compile `acl` once (at config load) so that each connection costs one address parse plus
// one BlockList lookup per entry. References through `defacls` are compiled with it.
export function compileAcl(acl: Acl, defacls: ReadonlyMap<string, Acl>): CompiledAcl {
  const compiler: Compiler = { defacls, done: new Map(), cyclic: new Map(), heights: new Map() };
  const root = compileNode(acl, compiler);
  return {
    name: acl.name,
    decide: (peer) => evaluate(root, probeOf(peer), { memo: undefined }),
    decideProbe: (probe) => evaluate(root, probe, { memo: undefined }),
  };
}

// An ACL that denies everyone; used where a reference cannot be resolved.
export function denyAllAcl(name: string | undefined, reason: FailClosedReason): CompiledAcl {
  const result: AclDecision = { decision: 'deny', path: name === undefined ? [] : [name], trail: [], failClosed: reason };
  return { name, decide: () => result, decideProbe: () => result };
}

// Walk global → master → subordinate (pies manual, TCPMUX: "only if all three allow").
// The first deny stops the chain. A `no-match` takes that level's default, which is allow
// as in pies (hence "end a restrictive ACL with `deny any;`"). Exception, to fail closed: a
// peer whose address cannot be read is never admitted by a default, not even by an empty chain.
export function decideChain(acls: readonly CompiledAcl[], peer: Peer, defaultDecision: 'allow' | 'deny' = 'allow'): ChainDecision {
  // Most connections meet no ACL at all: no address parse for them (the handshake path).
  if (acls.length === 0) return { decision: unreadable(normalizePeer(peer)) ? 'deny' : 'allow', level: undefined, results: [] };
  const probe = probeOf(peer);
  const unknown = probe.kind === 'unknown';
  const results: AclDecision[] = [];
  for (let level = 0; level < acls.length; level++) {
    const result = acls[level]!.decideProbe(probe);
    results.push(result);
    const outcome = result.decision === 'no-match' ? (unknown ? 'deny' : defaultDecision) : result.decision;
    if (outcome === 'deny') return { decision: 'deny', level, results };
  }
  return { decision: unknown ? 'deny' : 'allow', level: undefined, results };
}

// One log-friendly line: "deny by tpies.conf:12:3 via acl trusted (tpies.conf:4:5)".
export function describeDecision(d: AclDecision): string {
  if (d.entry === undefined && d.decision === 'no-match') return 'no entry matched';
  const where = (l: Location): string => `${l.file}:${l.line}:${l.column}`;
  let text = d.entry === undefined ? d.decision : `${d.decision} by ${where(d.entry.location)}`;
  if (d.path.length > 0) {
    const hops = d.path.map((name, i) => {
      const e = d.trail[i];
      return e === undefined ? name : `${name} (${where(e.location)})`;
    });
    text += ` via acl ${hops.join(' -> ')}`;
  }
  if (d.failClosed !== undefined) text += ` [fail closed: ${d.failClosed}]`;
  return text;
}

// ---- compilation -------------------------------------------------------------------------

interface Compiler {
  readonly defacls: ReadonlyMap<string, Acl>;
  /** Each usable defacl is compiled once and shared. */
  readonly done: Map<string, CompiledNode>;
  readonly cyclic: Map<string, boolean>;
  /** Nesting height of acyclic defacls, capped at MAX_ACL_DEPTH + 1. */
  readonly heights: Map<string, number>;
}

interface CompiledNode {
  readonly entries: readonly CompiledEntry[];
}

type SubAcl =
  | { readonly ok: true; readonly name: string; readonly node: CompiledNode }
  | { readonly ok: false; readonly name: string; readonly reason: FailClosedReason };

interface CompiledEntry {
  readonly entry: AclEntry;
  readonly allow: boolean;
  /** No `from`, or `from any`: the source never stops this entry. */
  readonly anySource: boolean;
  readonly v4: BlockList | undefined;
  readonly v6: BlockList | undefined;
  readonly unix: ReadonlySet<string> | undefined;
  readonly sub: SubAcl | undefined;
}

function compileNode(acl: Acl, c: Compiler): CompiledNode {
  return { entries: acl.entries.map((e) => compileEntry(e, c)) };
}

function compileEntry(entry: AclEntry, c: Compiler): CompiledEntry {
  const allow = entry.action === 'allow';
  let anySource = entry.from === undefined;
  let v4: BlockList | undefined;
  let v6: BlockList | undefined;
  let unix: Set<string> | undefined;
  for (const item of entry.from ?? []) {
    switch (item.kind) {
      case 'any':
        anySource = true;
        break;
      case 'unix':
        (unix ??= new Set()).add(posix.normalize(item.path));
        break;
      case 'cidr': {
        const rule = ruleOf(item);
        // One list per family, and each peer is checked only against its own family's
        // list: BlockList maps across families (an IPv6 ::/0 rule matches IPv4 peers).
        const list = rule.family === 4 ? (v4 ??= new BlockList()) : (v6 ??= new BlockList());
        try {
          list.addSubnet(rule.address, rule.prefix, rule.family === 4 ? 'ipv4' : 'ipv6');
        } catch {
          // Config validation makes this unreachable; if not, an unusable item may only
          // ever make an allow entry narrower and a deny entry wider.
          if (!allow) anySource = true;
        }
        break;
      }
      default:
        assertNever(item);
    }
  }
  const sub = entry.acl === undefined ? undefined : compileRef(entry.acl, c);
  return { entry, allow, anySource, v4, v6, unix, sub };
}

// Peers `::ffff:a.b.c.d` are matched as IPv4, so an IPv6 rule inside ::ffff:0:0/96
// (e.g. written `::ffff:a00:0/104`) is really an IPv4 rule; as IPv6 it could never match.
function ruleOf(item: Extract<AclAddress, { kind: 'cidr' }>): { family: 4 | 6; address: string; prefix: number } {
  if (item.family === 6 && item.prefix >= 96) {
    const v4 = mappedIPv4(item.address);
    if (v4 !== undefined) return { family: 4, address: v4, prefix: item.prefix - 96 };
  }
  return item;
}

// Whether a reference is usable depends only on the defacl it names, never on the route
// by which compilation reached it, so `tpiesctl acl test` and the daemon always agree.
// Config checks reject undefined names and cycles; here they only have to fail closed.
// A reference to a defacl on a reference cycle is refused outright (even where the cycle
// would not be reached for some peers); so is one whose nesting exceeds MAX_ACL_DEPTH.
// What remains is a DAG, so evaluation always terminates, with bounded recursion.
function compileRef(name: string, c: Compiler): SubAcl {
  const acl = c.defacls.get(name);
  if (acl === undefined) return { ok: false, name, reason: 'undefined-acl' };
  if (isCyclic(name, c)) return { ok: false, name, reason: 'acl-cycle' };
  if (heightOf(name, c) > MAX_ACL_DEPTH) return { ok: false, name, reason: 'acl-too-deep' };
  let node = c.done.get(name);
  if (node === undefined) {
    node = compileNode(acl, c);
    c.done.set(name, node);
  }
  return { ok: true, name, node };
}

// The defined defacls that `name` refers to.
function refsOf(name: string, c: Compiler): string[] {
  const refs = new Set<string>();
  for (const e of c.defacls.get(name)?.entries ?? []) if (e.acl !== undefined && c.defacls.has(e.acl)) refs.add(e.acl);
  return [...refs];
}

// Can `name` reach itself through references? (An explicit work list: no recursion.)
function isCyclic(name: string, c: Compiler): boolean {
  const known = c.cyclic.get(name);
  if (known !== undefined) return known;
  const seen = new Set<string>();
  const queue = refsOf(name, c);
  let found = false;
  while (queue.length > 0 && !found) {
    const next = queue.pop()!;
    if (next === name) found = true;
    else if (!seen.has(next)) {
      seen.add(next);
      queue.push(...refsOf(next, c));
    }
  }
  c.cyclic.set(name, found);
  return found;
}

// Longest chain of usable references below an acyclic defacl, counting itself: a leaf is 1.
// Iterative post-order over the acyclic part (references to cyclic defacls are dead ends).
function heightOf(start: string, c: Compiler): number {
  const cap = MAX_ACL_DEPTH + 1;
  const stack: { name: string; kids: string[]; next: number }[] = [];
  const push = (name: string): void => {
    stack.push({ name, kids: refsOf(name, c).filter((k) => !isCyclic(k, c)), next: 0 });
  };
  if (!c.heights.has(start)) push(start);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const kid = top.kids[top.next];
    if (kid !== undefined) {
      top.next++;
      if (!c.heights.has(kid)) push(kid);
      continue;
    }
    let height = 1;
    for (const k of top.kids) height = Math.max(height, 1 + (c.heights.get(k) ?? cap));
    c.heights.set(top.name, Math.min(height, cap));
    stack.pop();
  }
  return c.heights.get(start) ?? cap;
}

// ---- evaluation --------------------------------------------------------------------------

export type Probe =
  | { readonly kind: 4 | 6; readonly address: SocketAddress }
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'unknown' };

const UNKNOWN: Probe = { kind: 'unknown' };
const NO_MATCH: AclDecision = { decision: 'no-match', path: [], trail: [] };

// What probeOf would call unknown, without building the probe. normalizePeer has checked the
// address with isIP and split off any zone, which is all SocketAddress would refuse.
function unreadable(p: Peer): boolean {
  return p.kind === 'unknown' || (p.kind === 'unix' && p.path === '');
}

// Parse the peer once per decision; SocketAddress both validates it and makes BlockList
// lookups ~10x cheaper than passing strings.
function probeOf(peer: Peer): Probe {
  const p = normalizePeer(peer);
  switch (p.kind) {
    case 'inet':
      try {
        return { kind: p.family, address: new SocketAddress({ address: p.address, family: p.family === 4 ? 'ipv4' : 'ipv6' }) };
      } catch {
        return UNKNOWN;
      }
    case 'unix':
      return p.path === '' ? UNKNOWN : { kind: 'unix', path: posix.normalize(p.path) };
    case 'unknown':
      return UNKNOWN;
    default:
      return assertNever(p);
  }
}

interface Evaluation {
  /** Sub-ACL answers for this peer, so shared defacls are evaluated once per decision. */
  memo: Map<CompiledNode, AclDecision> | undefined;
}

function evaluate(node: CompiledNode, probe: Probe, ev: Evaluation): AclDecision {
  for (const e of node.entries) {
    if (probe.kind === 'unknown') {
      // Fail closed: we cannot show the peer is what an allow entry admits, and we must
      // assume it is what a deny entry refuses.
      if (e.allow) continue;
      return { decision: 'deny', entry: e.entry, path: [], trail: [], failClosed: 'unknown-peer' };
    }
    if (!sourceMatches(e, probe)) continue;
    const verdict = e.allow ? 'allow' : 'deny';
    if (e.sub === undefined) return { decision: verdict, entry: e.entry, path: [], trail: [] };
    if (!e.sub.ok) return { decision: 'deny', entry: e.entry, path: [e.sub.name], trail: [], failClosed: e.sub.reason };
    const inner = subDecision(e.sub.node, probe, ev);
    const path = [e.sub.name, ...inner.path];
    const trail = inner.entry === undefined ? [...inner.trail] : [inner.entry, ...inner.trail];
    // A broken reference below makes this entry's outcome unknowable: deny, whatever its action.
    if (inner.failClosed !== undefined) return { decision: 'deny', entry: e.entry, path, trail, failClosed: inner.failClosed };
    // pies/dico: `acl NAME` matches when NAME admits the peer; a deny or no-match inside
    // NAME only means this entry does not apply, and the next entry is tried.
    if (inner.decision !== 'allow') continue;
    return { decision: verdict, entry: e.entry, path, trail };
  }
  return NO_MATCH;
}

function subDecision(node: CompiledNode, probe: Probe, ev: Evaluation): AclDecision {
  const cached = ev.memo?.get(node);
  if (cached !== undefined) return cached;
  const result = evaluate(node, probe, ev);
  (ev.memo ??= new Map()).set(node, result);
  return result;
}

function sourceMatches(e: CompiledEntry, probe: Exclude<Probe, { kind: 'unknown' }>): boolean {
  if (e.anySource) return true;
  switch (probe.kind) {
    case 4:
      return e.v4 !== undefined && e.v4.check(probe.address);
    case 6:
      return e.v6 !== undefined && e.v6.check(probe.address);
    case 'unix':
      return e.unix !== undefined && e.unix.has(probe.path);
    default:
      return assertNever(probe);
  }
}

function assertNever(x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`);
}
