// Component dependency order (pies.md §6.2): `dependents` merged into prerequisites, start
// order (prerequisites first, config order among equals), stop order, cycles, and the
// transitive dependents to stop and restart around a prerequisite's restart. Pure.

/** The dependency facts of one component, in config order. */
export interface DependencyNode {
  readonly tag: string;
  readonly prerequisites: readonly string[];
  readonly dependents: readonly string[];
}

export interface DependencyGraph {
  /** Tags in config order. */
  readonly tags: readonly string[];
  /** Direct prerequisites of each tag, `dependents` merged in; unknown tags dropped. */
  readonly prerequisites: ReadonlyMap<string, readonly string[]>;
  /** Direct dependents of each tag: the inverse of `prerequisites`. */
  readonly dependents: ReadonlyMap<string, readonly string[]>;
}

/**
 * A start order, or the cycles that prevent one. Each cycle lists tags where every tag needs
 * the next, closed by repeating the first: `['a', 'b', 'a']` means a needs b and b needs a.
 */
export type DependencyOrder = { readonly ok: true; readonly order: readonly string[] } | { readonly ok: false; readonly cycles: readonly (readonly string[])[] };

// Merge `dependents` into prerequisites. References to undefined components are dropped here
// (config/checks reports them); a repeated tag merges into its first position, as pies merges
// same-tag blocks.
export function buildDependencyGraph(nodes: readonly DependencyNode[]): DependencyGraph {
  const tags: string[] = [];
  const prerequisites = new Map<string, string[]>();
  for (const node of nodes) {
    if (prerequisites.has(node.tag)) continue;
    tags.push(node.tag);
    prerequisites.set(node.tag, []);
  }
  const add = (tag: string, prerequisite: string): void => {
    const list = prerequisites.get(tag);
    if (list === undefined || !prerequisites.has(prerequisite) || list.includes(prerequisite)) return;
    list.push(prerequisite);
  };
  for (const node of nodes) for (const p of node.prerequisites) add(node.tag, p);
  for (const node of nodes) for (const d of node.dependents) add(d, node.tag);

  const dependents = new Map<string, string[]>(tags.map((t) => [t, []]));
  for (const tag of tags) for (const p of prerequisites.get(tag) ?? []) dependents.get(p)?.push(tag);
  return { tags, prerequisites, dependents };
}

// Kahn's algorithm; among components that are ready, the earliest in config order goes first.
export function startOrder(graph: DependencyGraph): DependencyOrder {
  const index = indexOf(graph);
  const missing = new Map<string, number>(graph.tags.map((t) => [t, (graph.prerequisites.get(t) ?? []).length]));
  const ready: number[] = [];
  for (const [tag, n] of missing) if (n === 0) insertSorted(ready, index.get(tag) ?? 0);
  const order: string[] = [];
  while (ready.length > 0) {
    const tag = graph.tags[ready.shift() ?? 0] ?? '';
    order.push(tag);
    for (const d of graph.dependents.get(tag) ?? []) {
      const n = (missing.get(d) ?? 0) - 1;
      missing.set(d, n);
      if (n === 0) insertSorted(ready, index.get(d) ?? 0);
    }
  }
  if (order.length === graph.tags.length) return { ok: true, order };
  return { ok: false, cycles: findCycles(graph) };
}

// Dependents before their prerequisites: the start order reversed.
export function stopOrder(graph: DependencyGraph): DependencyOrder {
  const start = startOrder(graph);
  return start.ok ? { ok: true, order: [...start.order].reverse() } : start;
}

// One cycle per strongly connected component that has one, ordered by config position; each
// is a shortest cycle through the component's earliest member, starting there.
export function findCycles(graph: DependencyGraph): readonly (readonly string[])[] {
  const index = indexOf(graph);
  const cycles: string[][] = [];
  for (const scc of stronglyConnected(graph)) {
    const members = new Set(scc);
    const first = [...scc].sort((a, b) => (index.get(a) ?? 0) - (index.get(b) ?? 0))[0];
    if (first === undefined) continue;
    const selfLoop = (graph.prerequisites.get(first) ?? []).includes(first);
    if (scc.length === 1 && !selfLoop) continue;
    const path = shortestCycle(graph, first, members);
    if (path !== undefined) cycles.push(path);
  }
  return cycles.sort((a, b) => (index.get(a[0] ?? '') ?? 0) - (index.get(b[0] ?? '') ?? 0));
}

// Everything that directly or transitively needs `tag`, in start order (config order if the
// graph has a cycle): stop these in reverse before restarting `tag`, start them after.
export function dependentsOf(graph: DependencyGraph, tag: string): readonly string[] {
  return closure(graph, tag, graph.dependents);
}

// Everything `tag` directly or transitively needs, in start order.
export function prerequisitesOf(graph: DependencyGraph, tag: string): readonly string[] {
  return closure(graph, tag, graph.prerequisites);
}

function closure(graph: DependencyGraph, tag: string, edges: ReadonlyMap<string, readonly string[]>): readonly string[] {
  const seen = new Set<string>();
  const stack = [...(edges.get(tag) ?? [])];
  while (stack.length > 0) {
    const t = stack.pop() ?? '';
    if (seen.has(t) || t === tag) continue;
    seen.add(t);
    stack.push(...(edges.get(t) ?? []));
  }
  const start = startOrder(graph);
  return (start.ok ? start.order : graph.tags).filter((t) => seen.has(t));
}

function indexOf(graph: DependencyGraph): Map<string, number> {
  return new Map(graph.tags.map((t, i) => [t, i]));
}

function insertSorted(list: number[], value: number): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid] ?? 0) < value) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, value);
}

// Tarjan's algorithm, iterative so that long prerequisite chains cannot overflow the stack.
function stronglyConnected(graph: DependencyGraph): string[][] {
  const low = new Map<string, number>();
  const order = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const result: string[][] = [];
  let counter = 0;
  for (const root of graph.tags) {
    if (order.has(root)) continue;
    const work: { tag: string; next: number }[] = [{ tag: root, next: 0 }];
    order.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      if (frame === undefined) break;
      const edges = graph.prerequisites.get(frame.tag) ?? [];
      const to = edges[frame.next++];
      if (to !== undefined) {
        if (!order.has(to)) {
          order.set(to, counter);
          low.set(to, counter++);
          stack.push(to);
          onStack.add(to);
          work.push({ tag: to, next: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.tag, Math.min(low.get(frame.tag) ?? 0, order.get(to) ?? 0));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) low.set(parent.tag, Math.min(low.get(parent.tag) ?? 0, low.get(frame.tag) ?? 0));
      if (low.get(frame.tag) === order.get(frame.tag)) {
        const scc: string[] = [];
        for (;;) {
          const t = stack.pop();
          if (t === undefined) break;
          onStack.delete(t);
          scc.push(t);
          if (t === frame.tag) break;
        }
        result.push(scc);
      }
    }
  }
  return result;
}

// Breadth-first over prerequisite edges inside `members`, from `first` back to itself.
function shortestCycle(graph: DependencyGraph, first: string, members: ReadonlySet<string>): string[] | undefined {
  const previous = new Map<string, string>();
  const queue = [first];
  for (let i = 0; i < queue.length; i++) {
    const tag = queue[i] ?? '';
    for (const p of graph.prerequisites.get(tag) ?? []) {
      if (!members.has(p)) continue;
      if (p === first) return closeCycle(first, tag, previous);
      if (previous.has(p)) continue;
      previous.set(p, tag);
      queue.push(p);
    }
  }
  return undefined;
}

function closeCycle(first: string, last: string, previous: ReadonlyMap<string, string>): string[] {
  const chain: string[] = [];
  for (let t: string | undefined = last; t !== undefined && t !== first; t = previous.get(t)) chain.push(t);
  return [first, ...chain.reverse(), first];
}
