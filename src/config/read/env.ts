// `env` (pies manual, Environment): the block form {clear; keep; set; unset; eval;} and
// the legacy one-line form `env - NAME -NAME NAME=VAL NAME+=VAL NAME=+VAL`.
import type { Node, StatementNode } from '../ast.js';
import type { EnvOp } from '../model.js';
import { type BuildContext, badValue, checkArity, flatten, oneScalar, suggest } from '../values.js';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BLOCK_STATEMENTS = ['clear', 'keep', 'set', 'unset', 'eval'] as const;

export function readEnv(s: StatementNode, ctx: BuildContext): readonly EnvOp[] | undefined {
  return s.block ? readEnvBlock(s.block, ctx) : readLegacyEnv(s, ctx);
}

// pies applies clear/keep before the rest, whatever their position; so do we.
function readEnvBlock(block: readonly Node[], ctx: BuildContext): readonly EnvOp[] | undefined {
  const first: EnvOp[] = [];
  const rest: EnvOp[] = [];
  let ok = true;
  for (const n of block) {
    if (n.type !== 'Statement') continue;
    const op = readEnvStatement(n, ctx);
    if (!op) ok = false;
    else if (op.op === 'clear' || op.op === 'keep') first.push(op);
    else rest.push(op);
  }
  return ok ? [...first, ...rest] : undefined;
}

function readEnvStatement(s: StatementNode, ctx: BuildContext): EnvOp | undefined {
  if (s.block) return badValue(ctx, s, `"${s.name}" inside env takes no block`);
  switch (s.name) {
    case 'clear':
      return checkArity(s, ctx, 0, 0) ? { op: 'clear' } : undefined;
    case 'keep':
    case 'unset': {
      const v = oneScalar(s, ctx);
      if (!v) return undefined;
      const eq = v.value.indexOf('=');
      return eq === -1 ? { op: s.name, pattern: v.value } : { op: s.name, pattern: v.value.slice(0, eq), value: v.value.slice(eq + 1) };
    }
    case 'set': {
      const v = oneScalar(s, ctx);
      if (!v) return undefined;
      const eq = v.value.indexOf('=');
      if (eq <= 0 || !NAME.test(v.value.slice(0, eq))) return badValue(ctx, v, `"set" needs NAME=VALUE, got "${v.value}"`);
      return { op: 'set', name: v.value.slice(0, eq), value: v.value.slice(eq + 1) };
    }
    case 'eval': {
      const v = oneScalar(s, ctx);
      return v ? { op: 'eval', expression: v.value } : undefined;
    }
    default: {
      const hint = suggest(s.name, BLOCK_STATEMENTS);
      ctx.diags.error('unknown-statement', `unknown statement "${s.name}" in env${hint ? ` (did you mean "${hint}"?)` : ''}`, s.location);
      return undefined;
    }
  }
}

function readLegacyEnv(s: StatementNode, ctx: BuildContext): readonly EnvOp[] | undefined {
  if (!checkArity(s, ctx, 1, Number.MAX_SAFE_INTEGER)) return undefined;
  const ops: EnvOp[] = [];
  const items = flatten(s.values);
  for (const [i, item] of items.entries()) {
    const a = item.value;
    let m: RegExpExecArray | null;
    if (a === '-' && i === 0) ops.push({ op: 'clear' });
    else if ((m = /^-([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/s.exec(a))) ops.push(m[2] === undefined ? { op: 'unset', pattern: m[1]! } : { op: 'unset', pattern: m[1]!, value: m[2] });
    else if ((m = /^([A-Za-z_][A-Za-z0-9_]*)\+=(.*)$/s.exec(a))) ops.push({ op: 'append', name: m[1]!, value: m[2]! });
    else if ((m = /^([A-Za-z_][A-Za-z0-9_]*)=\+(.*)$/s.exec(a))) ops.push({ op: 'prepend', name: m[1]!, value: m[2]! });
    else if ((m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(a))) ops.push({ op: 'set', name: m[1]!, value: m[2]! });
    else if (NAME.test(a)) ops.push({ op: 'keep', pattern: a });
    else return badValue(ctx, item, `cannot read env item "${a}" (expected -, -NAME, NAME, NAME=VALUE, NAME+=VALUE or NAME=+VALUE)`);
  }
  // As in the block form, a keep implies clear and both come first.
  return [...ops.filter((o) => o.op === 'clear' || o.op === 'keep'), ...ops.filter((o) => o.op !== 'clear' && o.op !== 'keep')];
}
