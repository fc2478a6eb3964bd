// ACL blocks (pies manual, ACL): `allow|deny [all] [acl NAME] [from ADDR-LIST];` and
// `allow|deny any;`. Anything we cannot read is an error, so no ACL is ever half-built.
import type { Location, Node, ScalarNode, StatementNode } from '../ast.js';
import type { Acl, AclAddress, AclEntry, AclRef } from '../model.js';
import { parseCidr } from '../../acl/cidr.js';
import { type BuildContext, badValue, flatten, isScalar, oneScalar, unsupportedValue } from '../values.js';

// `acl NAME;` refers to a defacl; `acl { … }` is inline.
export function readAclRef(s: StatementNode, ctx: BuildContext): AclRef | undefined {
  if (s.block) {
    if (s.values.length > 0) return badValue(ctx, s.values[0]!, `an inline "${s.name}" block takes no name (use defacl NAME { … } to name one)`);
    const acl = readAclBody(s.block, ctx, s.location);
    return acl ? { kind: 'inline', acl } : undefined;
  }
  const v = oneScalar(s, ctx);
  return v ? { kind: 'named', name: v.value, location: v.location } : undefined;
}

// `defacl NAME { … }`.
export function readDefacl(s: StatementNode, ctx: BuildContext): Acl | undefined {
  const name = s.values[0];
  if (s.values.length !== 1 || !name || !isScalar(name)) return badValue(ctx, s, '"defacl" takes one name: defacl NAME { … }');
  const acl = readAclBody(s.block ?? [], ctx, s.location);
  return acl ? { ...acl, name: name.value } : undefined;
}

export function readAclBody(block: readonly Node[], ctx: BuildContext, location: Location): Acl | undefined {
  const entries: AclEntry[] = [];
  let ok = true;
  for (const n of block) {
    if (n.type !== 'Statement') continue;
    const entry = readEntry(n, ctx);
    if (entry) entries.push(entry);
    else ok = false;
  }
  return ok ? { entries, location } : undefined;
}

function readEntry(s: StatementNode, ctx: BuildContext): AclEntry | undefined {
  if (s.name !== 'allow' && s.name !== 'deny') {
    ctx.diags.error('unknown-statement', `unknown statement "${s.name}" in acl (expected allow or deny)`, s.location);
    return undefined;
  }
  if (s.block) return badValue(ctx, s, `"${s.name}" takes no block`);
  const words = [...s.values];
  if (words.length === 0) return badValue(ctx, s, `"${s.name}" needs at least one of: any, all, acl NAME, from ADDRESSES`);
  const entry: { action: 'allow' | 'deny'; acl?: string; from?: AclAddress[]; location: Location } = { action: s.name, location: s.location };
  let i = 0;
  const word = (k: number): string | undefined => {
    const v = words[k];
    return v && isScalar(v) ? v.value : undefined;
  };
  if ((word(0) === 'any' || word(0) === 'all') && words.length === 1) return entry;
  if (word(0) === 'all') i++;
  else if (word(0) === 'authenticated' || word(0) === 'group') {
    // Identity providers are not implemented: fail closed rather than match nobody quietly.
    return unsupportedValue(ctx, words[0]!, `"${word(0)}" user-group ACL clauses are not supported (no identity providers in tpies)`);
  }
  if (word(i) === 'acl') {
    const name = words[i + 1];
    if (!name || !isScalar(name)) return badValue(ctx, words[i]!, '"acl" in an ACL entry needs a name');
    entry.acl = name.value;
    i += 2;
  }
  if (word(i) === 'from') {
    const list = words.slice(i + 1);
    if (list.length === 0) return badValue(ctx, words[i]!, '"from" needs an address list');
    const from = readAddresses(flatten(list), ctx);
    if (!from) return undefined;
    entry.from = from;
    i = words.length;
  }
  if (i < words.length) return badValue(ctx, words[i]!, `unexpected "${word(i) ?? '(list)'}" in ACL entry (expected [all] [acl NAME] [from ADDRESSES], or any)`);
  return entry;
}

function readAddresses(items: readonly ScalarNode[], ctx: BuildContext): AclAddress[] | undefined {
  const out: AclAddress[] = [];
  let ok = true;
  for (const item of items) {
    const a = readAddress(item, ctx);
    if (a) out.push(a);
    else ok = false;
  }
  return ok ? out : undefined;
}

function readAddress(item: ScalarNode, ctx: BuildContext): AclAddress | undefined {
  if (item.value === 'any') return { kind: 'any' };
  if (item.value.startsWith('/')) return { kind: 'unix', path: item.value };
  const parsed = parseCidr(item.value);
  if ('error' in parsed) {
    return badValue(ctx, item, `${parsed.error}${/^[A-Za-z]/.test(item.value) ? ' (host names are not resolved in ACLs: use an address)' : ''}`);
  }
  return { kind: 'cidr', family: parsed.cidr.family, address: parsed.cidr.address, prefix: parsed.cidr.prefix, text: item.value };
}
