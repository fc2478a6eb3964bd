// The only importer of the generated parser: turns config text into a FileNode, with
// `#line` directives applied to every location and syntax errors turned into diagnostics.
import type { FileNode, Location, ValueNode } from './ast.js';
import type { Diagnostic } from './diagnostics.js';
import { parse, SyntaxError as PeggySyntaxError } from './generated/parser.js';

export interface ParseResult {
  readonly file: FileNode | null;
  readonly diagnostics: readonly Diagnostic[];
}

interface LineDirective {
  readonly offset: number;
  readonly physLine: number;
  readonly line: number;
  readonly file: string | undefined;
}

// Parse one config file's text; `file` names it in every location.
export function parseConfigText(text: string, file: string): ParseResult {
  return run(text, file, 'File') as ParseResult;
}

// Parse a single value (used by tests of the lexical rules and by print round-trips).
export function parseValueText(text: string, file = '<value>'): { value: ValueNode | null; diagnostics: readonly Diagnostic[] } {
  const result = run(text, file, 'Value');
  return { value: (result.file as unknown as ValueNode | null) ?? null, diagnostics: result.diagnostics };
}

function run(text: string, file: string, startRule: 'File' | 'Value'): ParseResult {
  const directives = new Map<number, LineDirective>();
  const warnings = new Map<number, string>();
  const locate = (offset: number, line: number, column: number): Location => {
    let current: LineDirective | undefined;
    for (const d of directives.values()) if (d.offset <= offset && (!current || d.offset > current.offset)) current = d;
    if (!current) return { file, line, column };
    return { file: current.file ?? file, line: current.line + (line - current.physLine), column };
  };
  const diagnostics: Diagnostic[] = [];
  const lineOf = (offset: number): { line: number; column: number } => {
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    return { line, column: offset - before.lastIndexOf('\n') };
  };
  const warningDiagnostics = (): Diagnostic[] =>
    [...warnings].map(([offset, message]) => {
      const { line, column } = lineOf(offset);
      return { rule: 'syntax', severity: 'warning', message, location: locate(offset, line, column), notes: [] };
    });
  try {
    const tree = parse(text, {
      grammarSource: file,
      startRule,
      locate,
      // `#line N` without a file keeps the name an earlier directive set, as grecs does.
      lineDirective: (offset: number, physLine: number, line: number, name?: string) =>
        directives.set(offset, { offset, physLine, line, file: name ?? locate(offset, physLine, 1).file }),
      warn: (offset: number, message: string) => warnings.set(offset, message),
    });
    diagnostics.push(...warningDiagnostics());
    return { file: tree as FileNode, diagnostics };
  } catch (error) {
    if (!(error instanceof PeggySyntaxError)) throw error;
    const start = error.location.start;
    diagnostics.push({
      rule: 'syntax',
      severity: 'error',
      message: describeSyntaxError(error, text),
      location: locate(start.offset, start.line, start.column),
      notes: [],
    });
    diagnostics.push(...warningDiagnostics());
    return { file: null, diagnostics };
  }
}

// Peggy's "Expected A, B or C but X found." reworded in the diagnostics' lower-case style.
function describeSyntaxError(error: PeggySyntaxError, text: string): string {
  if (!error.expected) return error.message;
  // "#" is only ever expected as the start of an #include line: not worth suggesting.
  const wanted = [...new Set(error.expected.map(describeExpectation))].filter((e) => e !== '"#"').sort();
  const list = wanted.length <= 1 ? (wanted[0] ?? 'nothing') : `${wanted.slice(0, -1).join(', ')} or ${wanted.at(-1)}`;
  const word = /^[A-Za-z0-9_.*/:@-]+/.exec(text.slice(error.location.start.offset))?.[0];
  const shown = word ?? error.found;
  const found = error.found === null ? 'end of file' : error.found === '\n' ? 'end of line' : shown?.includes('"') ? `'${shown}'` : `"${shown}"`;
  return `syntax error: expected ${list}, found ${found}`;
}

function describeExpectation(e: PeggySyntaxError['expected'][number]): string {
  switch (e.type) {
    case 'literal':
      return `"${e.text}"`;
    case 'other':
      return e.description;
    case 'end':
      return 'end of file';
    case 'any':
      return 'any character';
    case 'class':
      return 'character';
  }
}
