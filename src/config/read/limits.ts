// `limits` strings (pies manual, Resources): LETTER NUMBER pairs, letters case-insensitive,
// blanks optional, e.g. "T10 R20 U16 P20".
import type { StatementNode } from '../ast.js';
import type { Limits } from '../model.js';
import { type BuildContext, badValue, flatten, checkArity } from '../values.js';

const LETTERS: Readonly<Record<string, keyof Limits | null>> = {
  A: 'as', C: 'core', D: 'data', F: 'fsize', M: 'memlock', N: 'nofile', R: 'rss', S: 'stack', T: 'cpu', U: 'nproc', P: 'nice',
  // L (logins) is reserved in pies and ignored.
  L: null,
};

// Parse a limits string; returns undefined (with a diagnostic) on any bad item.
export function parseLimits(text: string): { limits: Limits } | { error: string } {
  const limits: { -readonly [K in keyof Limits]: number } = {};
  const re = /\s*([A-Za-z])\s*([+-]?[0-9]+)\s*/y;
  let at = 0;
  if (text.trim() === '') return { error: 'empty limits string' };
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) return { error: `cannot read limits at "${text.slice(at)}" (expected LETTER NUMBER, e.g. "N1024 T10")` };
    at = re.lastIndex;
    const letter = m[1]!.toUpperCase();
    const key = Object.hasOwn(LETTERS, letter) ? LETTERS[letter] : undefined;
    if (key === undefined) return { error: `unknown limit letter "${m[1]}" (known: ${Object.keys(LETTERS).join('')})` };
    const n = Number(m[2]);
    if (key === null) continue;
    // Beyond 2^53 a number no longer has an exact value (and prints as 1e+23).
    if (!Number.isSafeInteger(n)) return { error: `limit ${letter}${m[2]} is too large (at most ${Number.MAX_SAFE_INTEGER})` };
    if (key === 'nice' ? n < -20 || n > 20 : n < 0) return { error: `limit ${letter}${n} is out of range` };
    limits[key] = n;
  }
  return { limits };
}

export function readLimits(s: StatementNode, ctx: BuildContext): Limits | undefined {
  if (!checkArity(s, ctx, 1, Number.MAX_SAFE_INTEGER)) return undefined;
  const parts = flatten(s.values);
  const parsed = parseLimits(parts.map((p) => p.value).join(' '));
  if ('error' in parsed) return badValue(ctx, parts[0]!, `"limits": ${parsed.error}`);
  return parsed.limits;
}
