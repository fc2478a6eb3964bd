// supervisor/deps.ts: dependents merged into prerequisites, stable start order, reverse stop
// order, cycles reported as paths, and transitive dependents (pies.md §6.2).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  buildDependencyGraph,
  dependentsOf,
  findCycles,
  prerequisitesOf,
  startOrder,
  stopOrder,
  type DependencyNode,
} from '../../../src/supervisor/deps.js';

function node(tag: string, prerequisites: string[] = [], dependents: string[] = []): DependencyNode {
  return { tag, prerequisites, dependents };
}

test('dependents are merged into the prerequisites of the components they name', () => {
  const g = buildDependencyGraph([node('db', [], ['web', 'mail']), node('web', ['cache', 'db']), node('cache'), node('mail')]);
  assert.deepEqual(g.tags, ['db', 'web', 'cache', 'mail']);
  assert.deepEqual(g.prerequisites.get('web'), ['cache', 'db'], 'declared once even when also implied');
  assert.deepEqual(g.prerequisites.get('mail'), ['db']);
  assert.deepEqual(g.prerequisites.get('db'), []);
  assert.deepEqual(g.dependents.get('db'), ['web', 'mail']);
  assert.deepEqual(g.dependents.get('cache'), ['web']);
});

test('references to undefined components are dropped (config/checks reports them)', () => {
  const g = buildDependencyGraph([node('a', ['ghost']), node('b', [], ['phantom'])]);
  assert.deepEqual(g.prerequisites.get('a'), []);
  assert.equal(g.prerequisites.has('phantom'), false);
  assert.deepEqual(startOrder(g), { ok: true, order: ['a', 'b'] });
});

test('without dependencies the start order is config order', () => {
  const g = buildDependencyGraph([node('c'), node('a'), node('b')]);
  assert.deepEqual(startOrder(g), { ok: true, order: ['c', 'a', 'b'] });
  assert.deepEqual(stopOrder(g), { ok: true, order: ['b', 'a', 'c'] });
});

test('prerequisites start first; otherwise config order decides', () => {
  // web needs db and cache; mail needs db; db is defined last.
  const g = buildDependencyGraph([node('web', ['db', 'cache']), node('mail', ['db']), node('cache'), node('log'), node('db')]);
  assert.deepEqual(startOrder(g), { ok: true, order: ['cache', 'log', 'db', 'web', 'mail'] });
  assert.deepEqual(stopOrder(g), { ok: true, order: ['mail', 'web', 'db', 'log', 'cache'] });
});

test('a component that becomes ready goes before later-defined ready ones', () => {
  // b is released when a starts and is defined before c, so it goes before c.
  const g = buildDependencyGraph([node('a'), node('b', ['a']), node('c')]);
  assert.deepEqual(startOrder(g), { ok: true, order: ['a', 'b', 'c'] });
  // Here z only becomes ready after y, which itself waits for x (defined last).
  const h = buildDependencyGraph([node('z', ['y']), node('y', ['x']), node('w'), node('x')]);
  assert.deepEqual(startOrder(h), { ok: true, order: ['w', 'x', 'y', 'z'] });
});

test('a repeated tag merges into its first position, as pies merges same-tag blocks', () => {
  const g = buildDependencyGraph([node('a'), node('b'), node('a', ['b'])]);
  assert.deepEqual(g.tags, ['a', 'b']);
  assert.deepEqual(g.prerequisites.get('a'), ['b']);
  assert.deepEqual(startOrder(g), { ok: true, order: ['b', 'a'] });
});

test('a self-dependency is a cycle', () => {
  const g = buildDependencyGraph([node('a'), node('b', ['b'])]);
  assert.deepEqual(startOrder(g), { ok: false, cycles: [['b', 'b']] });
  assert.deepEqual(stopOrder(g), { ok: false, cycles: [['b', 'b']] });
});

test('cycles are reported as paths from their earliest component, closed', () => {
  // b → c → a → b; x is unrelated and d merely depends on the cycle.
  const cyc = buildDependencyGraph([node('x'), node('b', ['c']), node('a', ['b']), node('c', ['a']), node('d', ['b'])]);
  assert.deepEqual(startOrder(cyc), { ok: false, cycles: [['b', 'c', 'a', 'b']] });
  assert.deepEqual(findCycles(cyc), [['b', 'c', 'a', 'b']]);
});

test('a cycle made of a prerequisite and a dependents statement is found', () => {
  // web needs db; web declares db as its dependent (db needs web).
  const g = buildDependencyGraph([node('db'), node('web', ['db'], ['db'])]);
  assert.deepEqual(findCycles(g), [['db', 'web', 'db']]);
});

test('every independent cycle is reported once, in config order, as a shortest path', () => {
  const g = buildDependencyGraph([
    node('p', ['q']),
    node('q', ['p', 'r']),
    node('r', ['p']),
    node('ok'),
    node('s', ['t']),
    node('t', ['s']),
    node('u', ['u']),
  ]);
  assert.deepEqual(findCycles(g), [
    ['p', 'q', 'p'],
    ['s', 't', 's'],
    ['u', 'u'],
  ]);
  assert.deepEqual(findCycles(buildDependencyGraph([node('a'), node('b', ['a'])])), []);
});

test('dependentsOf is transitive and in start order; prerequisitesOf likewise', () => {
  const g = buildDependencyGraph([
    node('db'),
    node('cache', ['db']),
    node('web', ['cache']),
    node('api', ['db']),
    node('cron'),
    node('report', ['web', 'api']),
  ]);
  assert.deepEqual(dependentsOf(g, 'db'), ['cache', 'web', 'api', 'report']);
  assert.deepEqual(dependentsOf(g, 'web'), ['report']);
  assert.deepEqual(dependentsOf(g, 'cron'), []);
  assert.deepEqual(dependentsOf(g, 'nope'), []);
  assert.deepEqual(prerequisitesOf(g, 'report'), ['db', 'cache', 'web', 'api']);
  assert.deepEqual(prerequisitesOf(g, 'db'), []);
});

test('dependentsOf falls back to config order when the graph has a cycle, and excludes the tag itself', () => {
  const g = buildDependencyGraph([node('a', ['c']), node('b', ['a']), node('c', ['b']), node('d', ['a'])]);
  assert.deepEqual(dependentsOf(g, 'a'), ['b', 'c', 'd']);
});

test('long prerequisite chains do not overflow the stack', () => {
  const n = 20_000;
  const nodes = Array.from({ length: n }, (_, i) => node(`c${i}`, i === 0 ? [`c${n - 1}`] : [`c${i - 1}`]));
  const cycles = findCycles(buildDependencyGraph(nodes));
  assert.equal(cycles.length, 1);
  assert.equal(cycles[0]?.length, n + 1);
  assert.equal(cycles[0]?.[0], 'c0');
  assert.equal(cycles[0]?.[1], `c${n - 1}`);
});

// Random graphs over c0..cN: edges as index pairs.
const graphArb = fc.integer({ min: 1, max: 12 }).chain((n) =>
  fc.tuple(
    fc.constant(n),
    fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: 30 }),
    fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: 10 }),
  ),
);

function nodesOf(n: number, prereqs: [number, number][], deps: [number, number][]): DependencyNode[] {
  return Array.from({ length: n }, (_, i) =>
    node(
      `c${i}`,
      prereqs.filter(([from]) => from === i).map(([, to]) => `c${to}`),
      deps.filter(([from]) => from === i).map(([, to]) => `c${to}`),
    ),
  );
}

test('property: a start order puts every prerequisite first; otherwise every cycle is real', () => {
  fc.assert(
    fc.property(graphArb, ([n, prereqs, deps]) => {
      const g = buildDependencyGraph(nodesOf(n, prereqs, deps));
      const result = startOrder(g);
      if (result.ok) {
        assert.deepEqual([...result.order].sort(), [...g.tags].sort());
        const position = new Map(result.order.map((t, i) => [t, i]));
        for (const t of g.tags) for (const p of g.prerequisites.get(t) ?? []) assert.ok((position.get(p) ?? -1) < (position.get(t) ?? -1));
        assert.deepEqual(findCycles(g), []);
        const stop = stopOrder(g);
        assert.ok(stop.ok);
        assert.deepEqual(stop.order, [...result.order].reverse());
      } else {
        assert.ok(result.cycles.length > 0);
        for (const cycle of result.cycles) {
          assert.ok(cycle.length >= 2);
          assert.equal(cycle[0], cycle.at(-1));
          for (let i = 0; i + 1 < cycle.length; i++) assert.ok((g.prerequisites.get(cycle[i] ?? '') ?? []).includes(cycle[i + 1] ?? ''), `${cycle[i]} does not need ${cycle[i + 1]}`);
          assert.equal(new Set(cycle.slice(1)).size, cycle.length - 1, 'a simple cycle');
        }
      }
    }),
  );
});

test('property: when every prerequisite is defined earlier, start order is config order', () => {
  fc.assert(
    fc.property(graphArb, ([n, prereqs]) => {
      const backwards = prereqs.filter(([from, to]) => to < from);
      const g = buildDependencyGraph(nodesOf(n, backwards, []));
      assert.deepEqual(startOrder(g), { ok: true, order: g.tags });
    }),
  );
});

test('property: dependentsOf is exactly the set of components that reach the tag', () => {
  fc.assert(
    fc.property(graphArb, ([n, prereqs, deps]) => {
      const g = buildDependencyGraph(nodesOf(n, prereqs, deps));
      const reaches = (from: string, to: string): boolean => {
        const seen = new Set<string>();
        const stack = [...(g.prerequisites.get(from) ?? [])];
        while (stack.length > 0) {
          const t = stack.pop() ?? '';
          if (t === to) return true;
          if (seen.has(t)) continue;
          seen.add(t);
          stack.push(...(g.prerequisites.get(t) ?? []));
        }
        return false;
      };
      for (const tag of g.tags) {
        const expected = g.tags.filter((t) => t !== tag && reaches(t, tag));
        assert.deepEqual([...dependentsOf(g, tag)].sort(), [...expected].sort());
      }
    }),
  );
});
