// A component's environment (pies.md §5.2-5.3): Bourne-style variable expansion, the `env`
// operations (clear/keep/set/unset/eval and the legacy append/prepend) and their layering.
// Pure: nothing here reads or changes process.env.
import type { EnvOp } from '../config/model.js';
import { quoteWord } from '../config/command-line.js';
import { globToRegExp } from '../config/glob.js';

/** Where expansion problems go; `${V:?w}` reports here and expands to ''. */
export interface ExpandOptions {
  readonly onError?: (message: string) => void;
}

// Expansion reads and (for `${V:=w}`) writes variables through this, so a Record and the
// Map applyEnvOps builds behave the same.
interface VarStore {
  get(name: string): string | undefined;
  set(name: string, value: string): void;
}

// 'plain' produces a value. 'unquoted'/'double' produce shell-source text for
// splitCommandLine: literal text passes through with its quotes, expansions are escaped for
// the quoting context they sit in, so a value can never add quotes or words of its own.
type Context = 'plain' | 'unquoted' | 'double';

// Nested `${…}` words recurse; a config line cannot legitimately need more than this, and
// running out of stack would throw instead of reporting.
const MAX_NESTING = 64;

const NAME_START = /[A-Za-z_]/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
const OPERATOR = /^(:?[-=?+])/;
// C's ispunct() over ASCII, which is what pies tests for the legacy append/prepend forms.
const PUNCT = /^[!-\/:-@[-`{-~]$/;

/**
 * Expands `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:=w}`, `${V=w}`, `${V:?w}`, `${V?w}`,
 * `${V:+w}` and `${V+w}` in `text`. `\$`, `\\` and `\}` stand for the character itself;
 * anything else (command substitution, arithmetic, `${#V}` …) is left as written.
 * `${V:=w}` assigns into `env`, which is why it is not readonly.
 */
export function expandVariables(text: string, env: Record<string, string>, options: ExpandOptions = {}): string {
  return expand(text, recordStore(env), 'plain', options.onError ?? ignore, 0);
}

/**
 * Expands variables in a `command` line (flag `expandenv`) the way a Bourne shell would
 * before splitting: nothing inside '…', values inside "…" stay one word, unquoted values
 * are split at blanks. The result is text for splitCommandLine, never argv itself.
 */
export function expandCommandLine(command: string, env: Record<string, string>, options: ExpandOptions = {}): string {
  return expand(command, recordStore(env), 'unquoted', options.onError ?? ignore, 0);
}

/**
 * Applies one `env` block to `base` and returns the new environment (pies.md §5.2):
 * clear/keep act first, wherever they were written; the rest in order, each seeing the
 * result of the ones before.
 */
export function applyEnvOps(base: Readonly<Record<string, string>>, ops: readonly EnvOp[], options: ExpandOptions = {}): Record<string, string> {
  const onError = options.onError ?? ignore;
  const keeps = ops.filter((o): o is Extract<EnvOp, { op: 'keep' }> => o.op === 'keep');
  const clearing = keeps.length > 0 || ops.some((o) => o.op === 'clear');
  // The legacy NAME+=VAL and NAME=+VAL "retain variable NAME" (env-legacy-syntax.html), so
  // `env - PATH+=:/sbin` extends the inherited PATH rather than starting a new one.
  const retained = new Set(ops.flatMap((o) => (o.op === 'append' || o.op === 'prepend' ? [o.name] : [])));
  const env = new Map<string, string>();
  for (const [name, value] of Object.entries(base)) {
    if (!clearing || retained.has(name) || keeps.some((k) => matchesEntry(k.pattern, k.value, name, value))) env.set(name, value);
  }
  const store = mapStore(env);
  const expandValue = (text: string): string => expand(text, store, 'plain', onError, 0);
  for (const op of ops) {
    switch (op.op) {
      case 'clear':
      case 'keep':
        break;
      case 'set':
        env.set(op.name, expandValue(op.value));
        break;
      case 'eval':
        expandValue(op.expression);
        break;
      case 'unset':
        for (const [name, value] of [...env]) if (matchesEntry(op.pattern, op.value, name, value)) env.delete(name);
        break;
      case 'append': {
        const value = expandValue(op.value);
        const old = env.get(op.name);
        // An empty PATH component means ".", so an empty value counts as absent here, as
        // in the manual's modern equivalent "${PATH}${PATH:+:}/sbin".
        env.set(op.name, old ? old + value : PUNCT.test(value.charAt(0)) ? value.slice(1) : value);
        break;
      }
      case 'prepend': {
        const value = expandValue(op.value);
        const old = env.get(op.name);
        env.set(op.name, old ? value + old : PUNCT.test(value.charAt(value.length - 1)) ? value.slice(0, -1) : value);
        break;
      }
    }
  }
  return Object.fromEntries(env);
}

/**
 * The environment a component's process starts with: `processEnv` (tpies' own, undefined
 * values dropped) with each present layer applied in order — global `env`, then the TCPMUX
 * master's, then the component's own.
 */
export function componentEnv(
  processEnv: Readonly<Record<string, string | undefined>>,
  layers: readonly (readonly EnvOp[] | undefined)[],
  options: ExpandOptions = {},
): Record<string, string> {
  let env: Record<string, string> = Object.fromEntries(
    Object.entries(processEnv).flatMap(([k, v]): [string, string][] => (v === undefined ? [] : [[k, v]])),
  );
  for (const ops of layers) if (ops) env = applyEnvOps(env, ops, options);
  return env;
}

/** Shell glob match of a whole name: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`/`[^x]`, `\x`. */
export function matchGlob(pattern: string, name: string): boolean {
  return globToRegExp(pattern, { pathname: false }).test(name);
}

// keep/unset take either a glob or NAME=VALUE, which must match exactly on both sides.
function matchesEntry(pattern: string, value: string | undefined, name: string, actual: string): boolean {
  return value === undefined ? matchGlob(pattern, name) : pattern === name && value === actual;
}

function ignore(): void {}

function recordStore(env: Record<string, string>): VarStore {
  return {
    get: (name) => (Object.hasOwn(env, name) ? env[name] : undefined),
    // defineProperty, because plain assignment to "__proto__" would replace the prototype.
    set: (name, value) => void Object.defineProperty(env, name, { value, writable: true, enumerable: true, configurable: true }),
  };
}

function mapStore(env: Map<string, string>): VarStore {
  return { get: (name) => env.get(name), set: (name, value) => void env.set(name, value) };
}

function expand(text: string, vars: VarStore, start: Context, onError: (message: string) => void, depth: number): string {
  let out = '';
  let ctx = start;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') {
      const next = text[i + 1];
      if (next === undefined) out += c;
      else if (ctx === 'plain') {
        out += '$\\}'.includes(next) ? next : c + next;
        i++;
      } else if (ctx === 'unquoted' || '"\\$`\n'.includes(next)) {
        // Shell source keeps its escapes: splitCommandLine removes them later.
        out += c + next;
        i++;
      } else out += c;
    } else if (c === "'" && ctx === 'unquoted') {
      const end = text.indexOf("'", i + 1);
      const stop = end === -1 ? text.length - 1 : end;
      out += text.slice(i, stop + 1);
      i = stop;
    } else if (c === '"' && ctx !== 'plain') {
      ctx = ctx === 'double' ? 'unquoted' : 'double';
      out += c;
    } else if (c === '$') {
      const r = expandReference(text, i, vars, ctx, onError, depth);
      out += r.text;
      i = r.end;
    } else out += c;
  }
  return out;
}

// One `$…` reference at `at`: the text it becomes (escaped for `ctx`) and the index of its
// last character. Anything not understood is returned as written.
function expandReference(
  text: string,
  at: number,
  vars: VarStore,
  ctx: Context,
  onError: (message: string) => void,
  depth: number,
): { text: string; end: number } {
  const literal = { text: '$', end: at };
  const next = text[at + 1];
  if (next === undefined) return literal;
  if (NAME_START.test(next)) {
    const name = NAME.exec(text.slice(at + 1))![0];
    return { text: escapeFor(ctx, vars.get(name) ?? ''), end: at + name.length };
  }
  if (next !== '{') return literal;
  const close = findClose(text, at + 2, ctx);
  if (close === -1) return literal;
  const inner = text.slice(at + 2, close);
  const asWritten = { text: text.slice(at, close + 1), end: close };
  const name = NAME.exec(inner)?.[0];
  if (!name) return asWritten;
  const rest = inner.slice(name.length);
  const value = vars.get(name);
  if (rest === '') return { text: escapeFor(ctx, value ?? ''), end: close };
  const op = OPERATOR.exec(rest)?.[1];
  if (!op) return asWritten;
  if (depth >= MAX_NESTING) {
    onError(`\${${name}…}: nested more than ${MAX_NESTING} levels deep; left unexpanded`);
    return asWritten;
  }
  const word = rest.slice(op.length);
  // Only the word that is used gets expanded, so `${A:-${B:=x}}` assigns B only if A is empty.
  const wordText = (): string => expand(word, vars, ctx, onError, depth + 1);
  const wordValue = (): string => expand(word, vars, 'plain', onError, depth + 1);
  const missing = op.startsWith(':') ? value === undefined || value === '' : value === undefined;
  const present = escapeFor(ctx, value ?? '');
  switch (op.slice(-1)) {
    case '-':
      return { text: missing ? wordText() : present, end: close };
    case '=': {
      if (!missing) return { text: present, end: close };
      const assigned = wordValue();
      vars.set(name, assigned);
      return { text: escapeFor(ctx, assigned), end: close };
    }
    case '?': {
      if (!missing) return { text: present, end: close };
      const message = wordValue();
      onError(`${name}: ${message === '' ? (op === ':?' ? 'parameter null or not set' : 'parameter not set') : message}`);
      return { text: '', end: close };
    }
    default: // '+'
      return { text: missing ? '' : wordText(), end: close };
  }
}

// Index of the `}` closing a `${` whose body starts at `from`, or -1. Nested `${…}`,
// backslash escapes and (in a command line outside "…") quoted spans are skipped.
function findClose(text: string, from: number, ctx: Context): number {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') i++;
    else if (c === '$' && text[i + 1] === '{') {
      depth++;
      i++;
    } else if (c === '}') {
      if (depth === 0) return i;
      depth--;
    } else if (ctx === 'unquoted' && (c === "'" || c === '"')) {
      const end = c === "'" ? text.indexOf("'", i + 1) : closingDoubleQuote(text, i + 1);
      if (end === -1) return -1;
      i = end;
    }
  }
  return -1;
}

function closingDoubleQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

// A value as text for `ctx`: itself; inside "…" with \ " $ ` escaped; unquoted, split at
// blanks into separately quoted words (Bourne field splitting, without globbing).
function escapeFor(ctx: Context, value: string): string {
  if (ctx === 'plain' || value === '') return value;
  if (ctx === 'double') return value.replace(/[\\"$`]/g, '\\$&');
  return value.replace(/[^ \t\n]+/g, (field) => quoteWord(field)).replace(/[ \t\n]+/g, ' ');
}
