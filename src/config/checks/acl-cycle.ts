// Rule `acl-cycle`: defacls whose `acl NAME` references loop (a refers to b, b to a), or
// nest deeper than MAX_ACL_DEPTH defacls. acl/acl.ts fails closed on both at run time; here
// they are refused up front. A cycle is reported at the entry that closes it, with the other
// hops as notes; a too-deep chain at the entry where it passes the limit.
import type { Note } from '../diagnostics.js';
import type { AclEntry } from '../model.js';
import { MAX_ACL_DEPTH } from '../../acl/acl.js';
import type { Check } from './check.js';

interface Frame {
  readonly name: string;
  /** Entries of this defacl that refer to a defined defacl. */
  readonly refs: readonly (AclEntry & { readonly acl: string })[];
  next: number;
}

export const checkAclCycle: Check = (config, diags) => {
  const defacls = config.defacls;
  const refsOf = (name: string): Frame['refs'] =>
    (defacls.get(name)?.entries ?? []).filter((e): e is AclEntry & { acl: string } => e.acl !== undefined && defacls.has(e.acl));

  // Depth-first, iteratively (a long chain must not exhaust the stack), in definition order.
  // An entry that leads back to a defacl still being walked closes a cycle.
  const state = new Map<string, 'walking' | 'done'>();
  const finished: string[] = [];
  for (const root of defacls.keys()) {
    if (state.has(root)) continue;
    const stack: Frame[] = [];
    const enter = (name: string): void => {
      state.set(name, 'walking');
      stack.push({ name, refs: refsOf(name), next: 0 });
    };
    enter(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const entry = top.refs[top.next++];
      if (entry === undefined) {
        state.set(top.name, 'done');
        finished.push(top.name);
        stack.pop();
        continue;
      }
      const seen = state.get(entry.acl);
      if (seen === undefined) enter(entry.acl);
      else if (seen === 'walking') {
        const from = stack.findIndex((f) => f.name === entry.acl);
        const hops = stack.slice(from, -1);
        const notes: Note[] = hops.map((f) => {
          const via = f.refs[f.next - 1]!;
          return { message: `defacl "${f.name}" refers to "${via.acl}" here`, location: via.location };
        });
        const cycle = [...stack.slice(from).map((f) => f.name), entry.acl];
        diags.error('acl-cycle', `defacl "${top.name}": ACL reference cycle: ${cycle.join(' -> ')}`, entry.location, notes);
      }
    }
  }

  // Nesting depth, over the defacls on no cycle (references into a cycle are refused
  // anyway). `finished` is a post-order: such a defacl comes after everything it reaches.
  const cyclic = onCycles(defacls.keys(), refsOf, finished);
  const height = new Map<string, number>();
  const deepest = new Map<string, string>();
  for (const name of finished) {
    if (cyclic.has(name)) continue;
    let h = 1;
    for (const e of refsOf(name)) {
      const below = height.get(e.acl);
      if (below !== undefined && below + 1 > h) {
        h = below + 1;
        deepest.set(name, e.acl);
      }
    }
    height.set(name, h);
  }
  for (const name of finished) {
    if (cyclic.has(name)) continue;
    const reported = new Set<string>();
    for (const e of refsOf(name)) {
      if (height.get(e.acl) !== MAX_ACL_DEPTH || reported.has(e.acl)) continue;
      reported.add(e.acl);
      const chain = [name, e.acl];
      for (let n = deepest.get(e.acl); n !== undefined; n = deepest.get(n)) chain.push(n);
      const shown = chain.length > 4 ? [...chain.slice(0, 2), '…', chain[chain.length - 1]!] : chain;
      const last = defacls.get(chain[chain.length - 1]!);
      diags.error(
        'acl-cycle',
        `defacl "${name}": ACL references nest ${chain.length} defacls deep, more than the ${MAX_ACL_DEPTH} tpies allows: ${shown.join(' -> ')}`,
        e.location,
        last ? [{ message: `the chain ends at defacl "${last.name ?? ''}"`, location: last.location }] : [],
      );
    }
  }
};

// The defacls that can reach themselves (Kosaraju: strongly connected components walked on
// the reversed graph in reverse finishing order; a component of two or more, or one with a
// self-reference, is a cycle).
function onCycles(names: Iterable<string>, refsOf: (name: string) => Frame['refs'], finished: readonly string[]): Set<string> {
  const reversed = new Map<string, string[]>();
  const selfLoop = new Set<string>();
  for (const name of names) {
    for (const e of refsOf(name)) {
      if (e.acl === name) selfLoop.add(name);
      const list = reversed.get(e.acl) ?? [];
      list.push(name);
      reversed.set(e.acl, list);
    }
  }
  const cyclic = new Set<string>(selfLoop);
  const assigned = new Set<string>();
  for (let i = finished.length - 1; i >= 0; i--) {
    const start = finished[i]!;
    if (assigned.has(start)) continue;
    const component: string[] = [];
    const work = [start];
    assigned.add(start);
    while (work.length > 0) {
      const n = work.pop()!;
      component.push(n);
      for (const m of reversed.get(n) ?? []) {
        if (!assigned.has(m)) {
          assigned.add(m);
          work.push(m);
        }
      }
    }
    if (component.length > 1) for (const n of component) cyclic.add(n);
  }
  return cyclic;
}
