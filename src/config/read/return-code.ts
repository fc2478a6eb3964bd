// `return-code CODES { action disable|restart; exec CMD; notify ADDRS; message TEXT; }`
// (pies manual, Exit Actions). CODES: numbers, EX_* names, SIG* names or SIG+N.
import { constants } from 'node:os';
import type { ScalarNode, StatementNode } from '../ast.js';
import type { ExitMatch, ReturnCode } from '../model.js';
import { type BuildContext, badValue, flatten, parseInteger, readEnum, readString, readList, suggest } from '../values.js';

// sysexits.h, as pies names them.
export const EXIT_CODES: Readonly<Record<string, number>> = {
  EX_OK: 0, EX_USAGE: 64, EX_DATAERR: 65, EX_NOINPUT: 66, EX_NOUSER: 67, EX_NOHOST: 68, EX_UNAVAILABLE: 69, EX_SOFTWARE: 70,
  EX_OSERR: 71, EX_OSFILE: 72, EX_CANTCREAT: 73, EX_IOERR: 74, EX_TEMPFAIL: 75, EX_PROTOCOL: 76, EX_NOPERM: 77, EX_CONFIG: 78,
};

// Signal numbers `SIG+N` may name: 1 up to SIGRTMAX on Linux.
const MIN_SIGNAL = 1;
const MAX_SIGNAL = 64;

const STATEMENTS = ['action', 'exec', 'notify', 'message'] as const;

export function readReturnCode(s: StatementNode, ctx: BuildContext): ReturnCode | undefined {
  const codes = flatten(s.values);
  if (codes.length === 0) return badValue(ctx, s, '"return-code" needs exit codes or signals: return-code (EX_USAGE, SIGTERM) { … }');
  const match: ExitMatch[] = [];
  let ok = true;
  for (const c of codes) {
    const m = readExitMatch(c, ctx);
    if (m) match.push(m);
    else ok = false;
  }
  const result: { match: ExitMatch[]; location: typeof s.location; action?: 'disable' | 'restart'; exec?: string; notify?: string[]; message?: string } = { match, location: s.location };
  const seen = new Set<string>();
  for (const n of s.block ?? []) {
    if (n.type !== 'Statement') continue;
    if (seen.has(n.name)) {
      ctx.diags.error('repeated-statement', `"${n.name}" given twice in return-code`, n.location);
      ok = false;
      continue;
    }
    seen.add(n.name);
    switch (n.name) {
      case 'action': {
        const a = readEnum(n, ctx, ['disable', 'restart'] as const);
        if (a) result.action = a;
        else ok = false;
        break;
      }
      case 'exec':
      case 'message': {
        const v = readString(n, ctx);
        if (v !== undefined) result[n.name] = v;
        else ok = false;
        break;
      }
      case 'notify': {
        const list = readList(n, ctx);
        if (list) result.notify = list.flatMap((v) => v.value.split(',')).map((a) => a.trim()).filter(Boolean);
        else ok = false;
        break;
      }
      default: {
        const hint = suggest(n.name, STATEMENTS);
        ctx.diags.error('unknown-statement', `unknown statement "${n.name}" in return-code${hint ? ` (did you mean "${hint}"?)` : ''}`, n.location);
        ok = false;
      }
    }
  }
  return ok ? result : undefined;
}

function readExitMatch(v: ScalarNode, ctx: BuildContext): ExitMatch | undefined {
  const text = v.value;
  // Own properties only: `constructor` or `toString` is no exit code name.
  if (Object.hasOwn(EXIT_CODES, text)) return { kind: 'code', code: EXIT_CODES[text]! };
  const plus = /^SIG\+([0-9]+)$/.exec(text);
  if (plus) {
    const signal = Number(plus[1]);
    if (signal < MIN_SIGNAL || signal > MAX_SIGNAL) return badValue(ctx, v, `"${text}": signal number ${plus[1]} is out of range (${MIN_SIGNAL}..${MAX_SIGNAL})`);
    return { kind: 'signal', signal };
  }
  if (/^SIG[A-Z0-9]+$/.test(text)) {
    const signals = constants.signals as Record<string, number | undefined>;
    const n = Object.hasOwn(signals, text) ? signals[text] : undefined;
    if (n === undefined) return badValue(ctx, v, `unknown signal "${text}"`);
    return { kind: 'signal', signal: n };
  }
  const code = parseInteger(text);
  if (code === undefined || code < 0 || code > 255) {
    const hint = suggest(text, Object.keys(EXIT_CODES));
    return badValue(ctx, v, `"${text}" is not an exit code (0-255, EX_*) or signal (SIG*, SIG+N)${hint ? ` (did you mean "${hint}"?)` : ''}`);
  }
  return { kind: 'code', code };
}
