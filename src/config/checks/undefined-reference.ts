// Rule `undefined-reference`: an `acl NAME` with no such defacl, and prerequisites or
// dependents naming no component.
import type { Acl, AclRef, Component } from '../model.js';
import type { Diagnostics } from '../diagnostics.js';
import { suggest } from '../values.js';
import type { Check } from './check.js';

export const checkUndefinedReference: Check = (config, diags) => {
  const acls = config.defacls;
  const checkAcl = (acl: Acl): void => {
    for (const e of acl.entries) {
      if (e.acl !== undefined && !acls.has(e.acl)) reportAcl(diags, e.acl, e.location, acls.keys());
    }
  };
  const checkRef = (ref: AclRef | undefined): void => {
    if (!ref) return;
    if (ref.kind === 'inline') checkAcl(ref.acl);
    else if (!acls.has(ref.name)) reportAcl(diags, ref.name, ref.location, acls.keys());
  };
  for (const acl of acls.values()) checkAcl(acl);
  checkRef(config.acl);
  checkRef(config.control?.acl);
  checkRef(config.control?.adminAcl);
  checkRef(config.control?.userAcl);
  const tags = new Set(config.components.map((c) => c.tag));
  const checkNames = (c: Component, keyword: 'prerequisites' | 'dependents', names: readonly string[]): void => {
    for (const name of names) {
      if (tags.has(name)) continue;
      const hint = suggest(name, tags);
      diags.error('undefined-reference', `component "${c.tag}": ${keyword} names no component "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}`, locationOf(c, keyword));
    }
  };
  for (const c of config.components) {
    checkRef(c.acl);
    checkRef(c.listAcl);
    checkRef(c.adminAcl);
    checkNames(c, 'prerequisites', c.prerequisites);
    checkNames(c, 'dependents', c.dependents);
  }
};

function reportAcl(diags: Diagnostics, name: string, location: Parameters<Diagnostics['error']>[2], known: Iterable<string>): void {
  const hint = suggest(name, known);
  diags.error('undefined-reference', `no defacl named "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}`, location);
}

export function locationOf(c: Component, keyword: string): Component['location'] {
  return c.statementLocations.get(keyword) ?? c.location;
}
