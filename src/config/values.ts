// Typed readers for statement values (grecs' typing at use): arity, strings, numbers,
// octal modes, booleans, enums, lists, durations. Each reports a located diagnostic and
// returns undefined on bad input, so the builder keeps going and reports everything.
import type { Location, ScalarNode, StatementNode, ValueNode } from './ast.js';
import type { Diagnostics } from './diagnostics.js';

/** What the readers need: where to report, and how to name the statement's context. */
export interface BuildContext {
  readonly diags: Diagnostics;
  /** Maps service names to TCP ports (from /etc/services) for socket URLs. */
  readonly services: ReadonlyMap<string, number>;
}

// `component "web": ` style prefix so a message names the thing it is about.
export function statementLabel(s: StatementNode): string {
  return `"${s.name}"`;
}

// Report a wrong value at its own location.
export function badValue(ctx: BuildContext, at: { readonly location: Location }, message: string): undefined {
  ctx.diags.error('bad-value', message, at.location);
  return undefined;
}

// Report a pies value that tpies refuses on purpose (a mode, a socket type, udp, an ACL
// clause): rule `unsupported`, as for refused statements, not `bad-value`.
export function unsupportedValue(ctx: BuildContext, at: { readonly location: Location }, message: string): undefined {
  ctx.diags.error('unsupported', message, at.location);
  return undefined;
}

// Exactly `min`..`max` values, as grecs demands ("missing semicolon?" is grecs' own hint).
export function checkArity(s: StatementNode, ctx: BuildContext, min: number, max: number): boolean {
  if (s.values.length > max) {
    const extra = s.values[max]!;
    ctx.diags.error(
      'arity',
      max === 0
        ? `${statementLabel(s)} takes no value`
        : `too many values for ${statementLabel(s)} (expected ${max === min ? max : `at most ${max}`}); missing semicolon?`,
      extra.location,
    );
    return false;
  }
  if (s.values.length < min) {
    ctx.diags.error('arity', `${statementLabel(s)} needs ${min === 1 ? 'a value' : `${min} values`}`, s.location);
    return false;
  }
  return true;
}

export function isScalar(v: ValueNode): v is ScalarNode {
  return v.type !== 'List';
}

// The one scalar value of a single-valued statement.
export function oneScalar(s: StatementNode, ctx: BuildContext): ScalarNode | undefined {
  if (!checkArity(s, ctx, 1, 1)) return undefined;
  const v = s.values[0]!;
  if (!isScalar(v)) return badValue(ctx, v, `${statementLabel(s)} takes a single value, not a list`);
  return v;
}

export function readString(s: StatementNode, ctx: BuildContext): string | undefined {
  return oneScalar(s, ctx)?.value;
}

// grecs numbers are C-like: 0x… hex, 0… octal (so `08` and `0789` are errors, as in C),
// else decimal.
export function parseInteger(text: string): number | undefined {
  const t = text.trim();
  let n: number;
  if (/^[+-]?0x[0-9a-f]+$/i.test(t)) n = Number.parseInt(t, 16);
  else if (/^[+-]?0[0-7]+$/.test(t)) n = Number.parseInt(t, 8);
  else if (/^[+-]?(0|[1-9][0-9]*)$/.test(t)) n = Number.parseInt(t, 10);
  else return undefined;
  return Number.isSafeInteger(n) ? n : undefined;
}

// A digit string with a leading 0 that is not octal: say why it is refused.
function octalHint(text: string): string {
  return /^[+-]?0[0-9]+$/.test(text.trim()) ? ' (a leading 0 means octal, which has no digits 8 or 9)' : '';
}

export function readInteger(s: StatementNode, ctx: BuildContext, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = oneScalar(s, ctx);
  if (!v) return undefined;
  return integerValue(v, ctx, `${statementLabel(s)}`, min, max);
}

export function integerValue(v: ScalarNode, ctx: BuildContext, what: string, min: number, max: number): number | undefined {
  const n = parseInteger(v.value);
  if (n === undefined) return badValue(ctx, v, `${what}: "${v.value}" is not a number${octalHint(v.value)}`);
  if (n < min || n > max) return badValue(ctx, v, `${what}: ${n} is out of range (${rangeText(min, max)})`);
  return n;
}

function rangeText(min: number, max: number): string {
  return max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `${min}..${max}`;
}

/** The longest duration, in seconds: Node timers hold at most 2^31-1 ms (about 24.8 days). */
export const MAX_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

// Seconds (decimals allowed) → milliseconds.
export function readSeconds(s: StatementNode, ctx: BuildContext): number | undefined {
  const v = oneScalar(s, ctx);
  if (!v) return undefined;
  if (!/^[0-9]+(\.[0-9]+)?$/.test(v.value)) return badValue(ctx, v, `${statementLabel(s)}: "${v.value}" is not a number of seconds`);
  if (Number(v.value) > MAX_SECONDS) {
    return badValue(ctx, v, `${statementLabel(s)}: ${v.value} seconds is too long (at most ${MAX_SECONDS}, about 24.8 days: the longest timer Node can set)`);
  }
  return Math.round(Number(v.value) * 1000);
}

export function readNumber(s: StatementNode, ctx: BuildContext, min: number, max: number): number | undefined {
  const v = oneScalar(s, ctx);
  if (!v) return undefined;
  const n = /^[0-9]+(\.[0-9]+)?$/.test(v.value) ? Number(v.value) : NaN;
  if (Number.isNaN(n) || n < min || n > max) return badValue(ctx, v, `${statementLabel(s)}: "${v.value}" is not a number from ${min} to ${max}`);
  return n;
}

// umask and modes are always octal, up to 777 (pies manual).
export function readOctal(s: StatementNode, ctx: BuildContext): number | undefined {
  const v = oneScalar(s, ctx);
  if (!v) return undefined;
  if (!/^[0-7]{1,4}$/.test(v.value) || Number.parseInt(v.value, 8) > 0o777) {
    return badValue(ctx, v, `${statementLabel(s)}: "${v.value}" is not an octal value up to 777`);
  }
  return Number.parseInt(v.value, 8);
}

const TRUE = new Set(['yes', 'true', 't', '1']);
const FALSE = new Set(['no', 'false', 'nil', '0']);

// grecs booleans, case-sensitive: yes/true/t/1 and no/false/nil/0.
export function readBoolean(s: StatementNode, ctx: BuildContext): boolean | undefined {
  if (s.values.length === 0) return true;
  const v = oneScalar(s, ctx);
  if (!v) return undefined;
  if (TRUE.has(v.value)) return true;
  if (FALSE.has(v.value)) return false;
  return badValue(ctx, v, `${statementLabel(s)}: "${v.value}" is not a valid boolean value (yes, no, true, false, t, nil, 1, 0)`);
}

export function readEnum<T extends string>(s: StatementNode, ctx: BuildContext, allowed: readonly T[]): T | undefined {
  const v = oneScalar(s, ctx);
  if (!v) return undefined;
  return enumValue(v, ctx, s.name, allowed);
}

export function enumValue<T extends string>(v: ScalarNode, ctx: BuildContext, what: string, allowed: readonly T[]): T | undefined {
  if ((allowed as readonly string[]).includes(v.value)) return v.value as T;
  const hint = suggest(v.value, allowed);
  return badValue(ctx, v, `unknown ${what} "${v.value}"${hint ? ` (did you mean "${hint}"?)` : ''}; expected one of: ${allowed.join(', ')}`);
}

// A list-typed value: `(a, b)`, a single scalar, or several scalars; nested lists flatten.
export function readList(s: StatementNode, ctx: BuildContext): ScalarNode[] | undefined {
  if (!checkArity(s, ctx, 1, Number.MAX_SAFE_INTEGER)) return undefined;
  return flatten(s.values);
}

export function flatten(values: readonly ValueNode[]): ScalarNode[] {
  return flattenInto(values, []);
}

function flattenInto(values: readonly ValueNode[], into: ScalarNode[]): ScalarNode[] {
  for (const v of values) {
    if (v.type === 'List') flattenInto(v.items, into);
    else into.push(v);
  }
  return into;
}

// The closest candidate by edit distance, for "did you mean" hints.
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = current;
    }
  }
  return row[b.length]!;
}
