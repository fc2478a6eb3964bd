// Syntax-tree helpers for grammar and printer tests: location stripping, and the tree a
// printed tree is expected to parse back to (config/print.ts documents the kind changes).
import type { Node, ValueNode } from '../../src/config/ast.js';

const WORD = /^[A-Za-z0-9_.*/:@-](?:[A-Za-z0-9_./:@-][A-Za-z0-9_.*/:@-]*)?$/;

type Stripped<T> = T extends readonly (infer U)[]
  ? Stripped<U>[]
  : T extends object
    ? { [K in keyof T as K extends 'location' ? never : K]: Stripped<T[K]> }
    : T;

/** A deep copy without `location` keys, as the golden files and comparisons want it. */
export function stripLocations<T>(tree: T): Stripped<T> {
  return JSON.parse(JSON.stringify(tree, (key: string, v: unknown) => (key === 'location' ? undefined : v))) as Stripped<T>;
}

type Kind = 'Word' | 'String' | 'HereDoc';

// Restated from the printer's documentation rather than imported, so the test pins the
// documented rules: a Word stays a Word only if it reads back as one, everything else
// prints quoted; of two neighbouring quoted values the second, else the first, becomes a
// here-document if its value ends in a newline, else the second a bare word if it is
// one, else the second a here-document anyway.
/** The statement list that `parse(printTree(body))` must produce, locations stripped. */
export function normalizeForPrint(body: readonly Node[]): unknown[] {
  return body.map((node) => {
    if (node.type === 'Include') return stripLocations(node);
    const kinds = statementKinds(node.values);
    const values = node.values.map((v, i) => normalizeValue(v, kinds[i]));
    return node.block === undefined
      ? { type: 'Statement', name: node.name, values }
      : { type: 'Statement', name: node.name, values, block: normalizeForPrint(node.block) };
  });
}

function isBare(text: string): boolean {
  return WORD.test(text) && !text.startsWith('//');
}

function endsLikeHereDoc(text: string): boolean {
  return text === '' || text.endsWith('\n');
}

function defaultKind(v: ValueNode): Kind | undefined {
  if (v.type === 'List') return undefined;
  return v.type === 'Word' && isBare(v.value) ? 'Word' : 'String';
}

function statementKinds(values: readonly ValueNode[]): (Kind | undefined)[] {
  const kinds = values.map(defaultKind);
  for (let i = 1; i < values.length; i++) {
    const prev = values[i - 1];
    const cur = values[i];
    if (kinds[i - 1] !== 'String' || kinds[i] !== 'String' || !prev || !cur || prev.type === 'List' || cur.type === 'List') continue;
    if (endsLikeHereDoc(cur.value)) kinds[i] = 'HereDoc';
    else if (endsLikeHereDoc(prev.value)) kinds[i - 1] = 'HereDoc';
    else if (isBare(cur.value)) kinds[i] = 'Word';
    else kinds[i] = 'HereDoc';
  }
  return kinds;
}

function normalizeValue(v: ValueNode, kind: Kind | undefined): unknown {
  if (v.type === 'List') return { type: 'List', items: v.items.map((item) => normalizeValue(item, defaultKind(item))) };
  return { type: kind ?? 'String', value: v.value };
}
