// `stdout|stderr file PATH;` and `stdout|stderr syslog [FACILITY.]PRIORITY;`.
import type { StatementNode } from '../ast.js';
import type { Redirect, SyslogPriority } from '../model.js';
import { type BuildContext, badValue, checkArity, isScalar, enumValue } from '../values.js';

export const SYSLOG_PRIORITIES: readonly SyslogPriority[] = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];
export const SYSLOG_FACILITIES = ['user', 'daemon', 'auth', 'authpriv', 'mail', 'cron', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;

export function readRedirect(s: StatementNode, ctx: BuildContext): Redirect | undefined {
  if (!checkArity(s, ctx, 2, 2)) return undefined;
  const [kind, target] = s.values as [typeof s.values[0] & object, typeof s.values[0] & object];
  if (!isScalar(kind) || !isScalar(target)) return badValue(ctx, kind, `"${s.name}" takes two words: file PATH or syslog PRIORITY`);
  if (kind.value === 'file') return { kind: 'file', path: target.value };
  if (kind.value !== 'syslog') return badValue(ctx, kind, `"${s.name}": unknown redirection "${kind.value}" (expected file or syslog)`);
  const dot = target.value.lastIndexOf('.');
  const facility = dot === -1 ? undefined : target.value.slice(0, dot).toLowerCase();
  const priorityText = (dot === -1 ? target.value : target.value.slice(dot + 1)).toLowerCase();
  if (facility !== undefined && !(SYSLOG_FACILITIES as readonly string[]).includes(facility)) {
    return badValue(ctx, target, `"${s.name}": unknown syslog facility "${facility}"; expected one of: ${SYSLOG_FACILITIES.join(', ')}`);
  }
  const priority = enumValue({ ...target, value: priorityText }, ctx, 'syslog priority', SYSLOG_PRIORITIES);
  if (!priority) return undefined;
  return facility === undefined ? { kind: 'syslog', priority } : { kind: 'syslog', facility, priority };
}
