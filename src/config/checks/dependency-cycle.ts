// Rule `dependency-cycle`: prerequisites (with dependents merged in) that loop, so no
// start order exists. Each cycle is reported once, at its first component.
import { buildDependencyGraph, findCycles } from '../../supervisor/deps.js';
import type { Component } from '../model.js';
import { type Check, componentsByTag } from './check.js';
import { locationOf } from './undefined-reference.js';

export const checkDependencyCycle: Check = (config, diags) => {
  const cycles = findCycles(buildDependencyGraph(linked(config.components)));
  if (cycles.length === 0) return;
  const byTag = componentsByTag(config);
  for (const cycle of cycles) {
    const first = byTag.get(cycle[0] ?? '');
    if (!first) continue;
    const at = first.prerequisites.length > 0 ? locationOf(first, 'prerequisites') : locationOf(first, 'dependents');
    diags.error('dependency-cycle', `dependency cycle: ${cycle.join(' -> ')}`, at,
      cycle.slice(1, -1).flatMap((tag) => {
        const c = byTag.get(tag);
        return c ? [{ message: `"${tag}" is defined here`, location: c.location }] : [];
      }),
    );
  }
};

// The components that a dependency names or that name one, every one with such a tag, in
// config order: a cycle runs through these only, and the graph of these alone has the same
// edges, order and cycles. Most components of a large config have no dependencies at all.
function linked(components: readonly Component[]): Component[] {
  const tags = new Set<string>();
  for (const c of components) {
    if (c.prerequisites.length === 0 && c.dependents.length === 0) continue;
    tags.add(c.tag);
    for (const t of c.prerequisites) tags.add(t);
    for (const t of c.dependents) tags.add(t);
  }
  return tags.size === 0 ? [] : components.filter((c) => tags.has(c.tag));
}
