// Rule `duplicate-name`: two components with one tag. pies merges such blocks; tpies
// refuses them, since a silent merge of two definitions is more often a mistake.
import type { Location } from '../ast.js';
import type { Check } from './check.js';

export const checkDuplicateName: Check = (config, diags) => {
  const seen = new Map<string, Location>();
  for (const c of config.components) {
    const first = seen.get(c.tag);
    if (first) diags.error('duplicate-name', `component "${c.tag}" is defined twice`, c.location, [{ message: 'first defined here', location: first }]);
    else seen.set(c.tag, c.location);
  }
};
