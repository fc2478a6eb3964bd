// Config diagnostics: collected, never thrown one at a time, and printed all together as
// `file:line:col: severity: message [rule]` with the source line and a caret under the
// column (the rule id last, as compilers name the flag behind a warning).
import type { Location } from './ast.js';

export type Severity = 'error' | 'warning';

/** A related place or a hint attached to a diagnostic ("first defined here"). */
export interface Note {
  readonly message: string;
  readonly location?: Location;
}

/** One config problem; `rule` is a stable id (e.g. `unknown-statement`, `syntax`). */
export interface Diagnostic {
  readonly rule: string;
  readonly severity: Severity;
  readonly message: string;
  readonly location?: Location;
  readonly notes: readonly Note[];
}

/** The text of every file read, so diagnostics can quote the offending line. */
export type Sources = ReadonlyMap<string, string>;

// Collects diagnostics from every stage of loading one config.
export class Diagnostics {
  readonly list: Diagnostic[] = [];

  error(rule: string, message: string, location?: Location, notes: readonly Note[] = []): void {
    this.add({ rule, severity: 'error', message, ...(location ? { location } : {}), notes });
  }

  warning(rule: string, message: string, location?: Location, notes: readonly Note[] = []): void {
    this.add({ rule, severity: 'warning', message, ...(location ? { location } : {}), notes });
  }

  add(diagnostic: Diagnostic): void {
    this.list.push(diagnostic);
  }

  get hasErrors(): boolean {
    return this.list.some((d) => d.severity === 'error');
  }
}

// `file:line:col` as editors and compilers print it.
export function formatLocation(location: Location): string {
  return `${location.file}:${location.line}:${location.column}`;
}

// Diagnostics in reading order: by file as first seen, then line, then column.
export function sortDiagnostics(list: readonly Diagnostic[]): Diagnostic[] {
  const fileOrder = new Map<string, number>();
  for (const d of list) if (d.location && !fileOrder.has(d.location.file)) fileOrder.set(d.location.file, fileOrder.size);
  const key = (d: Diagnostic): [number, number, number] =>
    d.location ? [fileOrder.get(d.location.file) ?? 0, d.location.line, d.location.column] : [-1, 0, 0];
  return [...list].sort((a, b) => {
    const [fa, la, ca] = key(a);
    const [fb, lb, cb] = key(b);
    return fa - fb || la - lb || ca - cb;
  });
}

// One diagnostic as text: the headline, the quoted source line with a caret, then notes.
export function formatDiagnostic(d: Diagnostic, sources: Sources): string {
  const text = `${d.severity}: ${d.message} [${d.rule}]`;
  const head = d.location ? `${formatLocation(d.location)}: ${text}` : text;
  const lines = [head];
  if (d.location) lines.push(...excerpt(d.location, sources));
  for (const note of d.notes) {
    lines.push(note.location ? `  note: ${note.message}: ${formatLocation(note.location)}` : `  note: ${note.message}`);
  }
  return lines.join('\n');
}

// Every diagnostic, sorted, followed by a count line when there are errors.
export function formatDiagnostics(list: readonly Diagnostic[], sources: Sources): string {
  const sorted = sortDiagnostics(list);
  const errors = sorted.filter((d) => d.severity === 'error').length;
  const warnings = sorted.length - errors;
  const text = sorted.map((d) => formatDiagnostic(d, sources)).join('\n');
  const summary = [errors ? `${errors} error${errors === 1 ? '' : 's'}` : '', warnings ? `${warnings} warning${warnings === 1 ? '' : 's'}` : '']
    .filter(Boolean)
    .join(', ');
  return summary ? `${text}\n${summary}\n` : '';
}

function excerpt(location: Location, sources: Sources): string[] {
  const text = sources.get(location.file);
  if (text === undefined) return [];
  const line = text.split('\n')[location.line - 1];
  if (line === undefined) return [];
  const gutter = String(location.line).length;
  // Tabs stay tabs under the caret so it lines up in any terminal.
  const pad = line.slice(0, Math.max(0, location.column - 1)).replace(/[^\t]/g, ' ');
  return [`${' '.repeat(gutter)} |`, `${location.line} | ${line.replace(/\r$/, '')}`, `${' '.repeat(gutter)} | ${pad}^`];
}
