// The shape of a cross-reference check: one pass over the built model, adding diagnostics.
import type { Diagnostics } from '../diagnostics.js';
import type { Config } from '../model.js';

export type Check = (config: Config, diags: Diagnostics) => void;

// Components by tag; with duplicate tags (reported by duplicate-name) the first one counts.
export function componentsByTag(config: Config): ReadonlyMap<string, Config['components'][number]> {
  const byTag = new Map<string, Config['components'][number]>();
  for (const c of config.components) if (!byTag.has(c.tag)) byTag.set(c.tag, c);
  return byTag;
}
