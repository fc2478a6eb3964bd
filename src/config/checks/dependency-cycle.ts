// Rule `dependency-cycle`: prerequisites (with dependents merged in) that loop, so no
// start order exists. Each cycle is reported once, at its first component.
import { buildDependencyGraph, findCycles } from '../../supervisor/deps.js';
import { type Check, componentsByTag } from './check.js';
import { locationOf } from './undefined-reference.js';

export const checkDependencyCycle: Check = (config, diags) => {
  const byTag = componentsByTag(config);
  for (const cycle of findCycles(buildDependencyGraph(config.components))) {
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
